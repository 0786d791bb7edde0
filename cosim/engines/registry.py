"""Tile backends by name: ``ideal``, ``surrogate``, ``nodal``, ``spice``.

Each returns an object implementing :class:`rram_cosim.models.tile.backend.TileBackend`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...models.checks import check_choice, check_int
from ...models.errors import ConfigError
from ...models.params import TileSpec

if TYPE_CHECKING:
    from ...models.tile.backend import TileBackend

BACKENDS = ("ideal", "surrogate", "nodal", "spice")
#: The circuit engines a surrogate is calibrated on.
REFERENCES = ("spice", "nodal")


def check_run_options(owner: str, backends: tuple[str, ...], seeds: int, seed: int,
                      data_seed: int) -> None:
    """Validate the options every network command shares: backends, seed count and seeds."""
    if not backends:
        raise ConfigError(f"The 'backends' parameter of {owner} needs at least one backend.")
    for b in backends:
        check_choice(owner, "backends", b, BACKENDS)
    check_int(owner, "seeds", seeds, 1, 1000)
    check_int(owner, "seed", seed, 0, 2**63 - 1)
    check_int(owner, "data_seed", data_seed, 0, 2**63 - 1)


def make_backend(name: str, spec: TileSpec, *, surrogate_path: str | Path | None = None,
                 **options: Any) -> TileBackend:
    """Build the named backend for ``spec``; ``options`` go to the backend's constructor."""
    check_choice("make_backend", "name", name, BACKENDS)
    # the backends load here: the command line's configurations import BACKENDS and
    # check_run_options only
    if name == "ideal":
        from ...models.tile.ideal import IdealBackend

        return IdealBackend(spec, **options)
    if name == "surrogate":
        if surrogate_path is None:
            raise ConfigError(
                "The 'surrogate' backend needs a fitted surrogate file (surrogate_path). Create "
                "one with `rram-cosim demo` or the calibration API.")
        from ...models.tile.surrogate import TileSurrogate

        return TileSurrogate.load(surrogate_path, **options)
    if name == "nodal":
        from .nodal import NodalBackend

        return NodalBackend(spec, **options)
    from ..spice.backend import SpiceBackend

    return SpiceBackend(spec, **options)
