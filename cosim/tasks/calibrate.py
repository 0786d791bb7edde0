"""Calibrating a tile surrogate from a ``calibrate`` configuration: the library half of
``rram-cosim calibrate`` (the calibration itself: :mod:`rram_cosim.cosim.engines.calibrate`)."""

from __future__ import annotations

from typing import Any

from ...models.params import DeviceParams
from ..engines.calibrate import CalibrationResult, calibrate_tile
from .configs.calibrate import CalibrateConfig

__all__ = ["CalibrationResult", "calibrate"]

#: --fit-transistor as calibrate_tile's fit_transistor (None: decide by the card)
_FIT = {"auto": None, "yes": True, "no": False}


def calibrate(cfg: CalibrateConfig, *, progress: bool = True) -> CalibrationResult:
    """Calibrate a surrogate for the tile ``cfg`` describes on its reference engine (ngspice
    in ``cfg.workers`` processes, or the nodal engine) with the default device model;
    ``progress`` prints the steps and shows ngspice's progress bar. With ``accept_error`` a
    surrogate whose worst-case held-out error misses the bars is flagged
    (``error_accepted_``)."""
    opts: dict[str, Any] = {}
    if cfg.reference == "spice":
        opts = {"n_workers": cfg.workers or None, "progress": progress}
    say = (lambda m: print(f"[calibrate] {m}", flush=True)) if progress else None
    res = calibrate_tile(cfg.tile_spec(), reference=cfg.reference, n_maps=cfg.n_maps,
                         n_test_maps=cfg.n_test_maps, n_vectors=cfg.n_vectors, seed=cfg.seed,
                         device=DeviceParams(), reference_options=opts, progress=say,
                         fit_transistor=_FIT[cfg.fit_transistor])
    # the file says so when its worst case missed the bars and the user took it anyway
    res.surrogate.error_accepted_ = cfg.accept_error and not res.meets_bars
    return res
