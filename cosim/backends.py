"""Tile backends by name: ``ideal``, ``surrogate``, ``nodal``, ``spice``.

Each returns an object implementing :class:`rram_cosim.models.backend.TileBackend`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models.backend import IdealBackend, TileBackend
from ..models.checks import check_choice
from ..models.errors import ConfigError
from ..models.params import TileSpec
from ..models.surrogate import TileSurrogate

BACKENDS = ("ideal", "surrogate", "nodal", "spice")


def make_backend(name: str, spec: TileSpec, *, surrogate_path: str | Path | None = None,
                 **options: Any) -> TileBackend:
    """Build the named backend for ``spec``; ``options`` go to the backend's constructor."""
    check_choice("make_backend", "name", name, BACKENDS)
    if name == "ideal":
        return IdealBackend(spec, **options)
    if name == "surrogate":
        if surrogate_path is None:
            raise ConfigError(
                "The 'surrogate' backend needs a fitted surrogate file (surrogate_path). Create "
                "one with `rram-cosim demo` or the calibration API.")
        return TileSurrogate.load(surrogate_path, **options)
    if name == "nodal":
        from .nodal import NodalBackend

        return NodalBackend(spec, **options)
    from .spice_backend import SpiceBackend

    return SpiceBackend(spec, **options)
