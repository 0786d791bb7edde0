"""The held-out set of a calibration: formed maps and structured corner cases, error per family.

Formed maps drawn around the device's mean (14 uS) with random spike inputs say how the
surrogate does on a typical network, not where it is worst. The worst cases inside the
calibrated domain are structured: every cell at the full-scale conductance (largest currents,
largest IR drop), every cell at the low end, a checkerboard of the two, gradients along the
rows and along the columns, a map with G+ cells only; driven all on, one row on (the farthest
from the TIAs, and the nearest), graded levels and half the rows on. On a 64 x 64 tile with
5 ohm wires the full-scale map with only row 0 on reached 8.8 LSB against 1.35 LSB max on
formed maps. Each family's error is kept; the worst over families is what the bars
(:class:`ErrorBars`) judge and what the surrogate file reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...models.checks import check_range
from ...models.params import TileSpec
from ...models.tile.surrogate import CalibrationSample

__all__ = ["FAMILIES", "ErrorBars", "HeldOutCase", "family_errors", "structured_cases",
           "structured_inputs", "worst_case"]

#: Structured map families (beside ``formed``), in the order they are simulated.
FAMILIES = ("full-scale", "low-end", "checkerboard", "row-gradient", "column-gradient",
            "g-pos-only")


@dataclass(frozen=True)
class ErrorBars:
    """The surrogate's accuracy bars (docs/tile.md, "Error table") for one read: held-out
    current error RMS at most ``rms_lsb`` ADC codes and largest error at most ``max_pct_fs``
    % of full scale. A bar in LSB depends on the ADC's resolution: 8 LSB is 0.05 % of a
    14-bit full scale but 3 % of an 8-bit one. A VMM of several reads (row groups) sums their
    currents, so :func:`worst_case` scales both bars by the reads per VMM."""

    rms_lsb: float = 8.0
    max_pct_fs: float = 0.5

    def __post_init__(self) -> None:
        check_range("ErrorBars", "rms_lsb", self.rms_lsb, 0, 1e6, lo_open=True, unit="LSB")
        check_range("ErrorBars", "max_pct_fs", self.max_pct_fs, 0, 100, lo_open=True,
                    unit="% FS")


@dataclass(frozen=True)
class HeldOutCase:
    """One held-out map with its inputs (levels, n x rows) and the family it belongs to."""

    family: str
    g_pos_us: np.ndarray
    g_neg_us: np.ndarray
    levels: np.ndarray


def structured_inputs(rows: int) -> np.ndarray:
    """Inputs of the structured maps (levels, 5 x rows): all on, row 0 only (farthest from
    the TIAs), the last row only, graded 0 -> 1 over the rows, and the first half on. (The
    idle vector is in every formed map's set; on a map of low-end cells alone its currents,
    the TIA offset's 0.1 nA per cell, are below what ngspice converges on at calibration
    tolerances.)"""
    x = np.zeros((5, rows))
    x[0] = 1.0
    x[1, 0] = 1.0
    x[2, -1] = 1.0
    x[3] = np.linspace(0.0, 1.0, rows)
    x[4, : max(rows // 2, 1)] = 1.0
    return x


def _structured_maps(shape: tuple[int, int], g_lo: float, g_hi: float
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    r, k = shape
    full = np.full(shape, g_hi)
    low = np.full(shape, g_lo)
    ii, jj = np.indices(shape)
    board = np.where((ii + jj) % 2 == 0, g_hi, g_lo)
    rows = np.broadcast_to(np.linspace(g_lo, g_hi, r)[:, None], shape).copy()
    cols = np.broadcast_to(np.linspace(g_lo, g_hi, k)[None, :], shape).copy()
    return {
        "full-scale": (full, full.copy()),
        "low-end": (low, low.copy()),
        # the G- column the complement, so both physical columns of a pair alternate
        "checkerboard": (board, g_lo + g_hi - board),
        "row-gradient": (rows, rows[::-1].copy()),
        "column-gradient": (cols, cols[:, ::-1].copy()),
        "g-pos-only": (full.copy(), np.zeros(shape)),
    }


def structured_cases(shape: tuple[int, int], g_lo_us: float,
                     g_hi_us: float) -> list[HeldOutCase]:
    """One map of each structured family (:data:`FAMILIES`) with conductances in
    ``[g_lo_us, g_hi_us]`` (inside the calibrated domain: the calibration's smallest formed
    cell and the full-scale conductance), each with :func:`structured_inputs`."""
    check_range("structured_cases", "g_lo_us", g_lo_us, 0, g_hi_us, unit="uS")
    x = structured_inputs(shape[0])
    return [HeldOutCase(fam, gp, gn, x.copy()) for fam, (gp, gn) in
            _structured_maps(shape, g_lo_us, g_hi_us).items()]


def rms_max(e: np.ndarray) -> tuple[float, float]:
    """Root mean square and largest magnitude of an error array."""
    return float(np.sqrt(np.mean(e**2))), float(np.abs(e).max())


def family_errors(spec: TileSpec, held: list[CalibrationSample], families: list[str],
                  predictions: list[tuple[np.ndarray, np.ndarray]], lsb_ua: float
                  ) -> pd.DataFrame:
    """Current error of one model per family (rows: family, n, rms_lsb, max_lsb, max_pct_fs;
    one LSB = ``lsb_ua``, full scale = the ADC's codes)."""
    n_codes = spec.adc.n_codes
    err: dict[str, list[np.ndarray]] = {}
    for s, (ip, i_n), fam in zip(held, predictions, families):
        e = np.concatenate([(ip - s.i_pos_ua).ravel(), (i_n - s.i_neg_ua).ravel()]) / lsb_ua
        err.setdefault(fam, []).append(e)
    rows = []
    for fam, parts in err.items():
        e = np.concatenate(parts)
        rms, mx = rms_max(e)
        rows.append({"family": fam, "n": int(e.size), "rms_lsb": rms, "max_lsb": mx,
                     "max_pct_fs": mx / n_codes * 100})
    return pd.DataFrame(rows)


def worst_case(fam: pd.DataFrame, bars: ErrorBars, *, reads: int = 1,
               lsb_ua: float | None = None) -> dict[str, Any]:
    """The worst family by RMS and by largest error, and whether the bars hold; ``failed``
    names the families that miss a bar (and which).

    The errors in ``fam`` are per VMM, the sum of its ``reads`` reads (row groups), while the
    bars are for one read's full scale: each read within the bars keeps the VMM within
    ``reads`` times them, so both bars are scaled by ``reads`` (``bars_vmm``). ``lsb_ua``
    (one LSB in uA) adds the largest error in uA (``max_ua``), which does not depend on the
    ADC."""
    i_rms, i_max = fam["rms_lsb"].idxmax(), fam["max_lsb"].idxmax()
    b_rms, b_max = bars.rms_lsb * reads, bars.max_pct_fs * reads
    per = f" = {reads} reads x {{:g}}" if reads > 1 else ""
    failed = [f"{r.family} (RMS {r.rms_lsb:.3g} LSB > {b_rms:g}{per.format(bars.rms_lsb)})"
              for r in fam.itertuples() if r.rms_lsb > b_rms]
    failed += [f"{r.family} (max {r.max_pct_fs:.3g} % FS > {b_max:g}"
               f"{per.format(bars.max_pct_fs)})"
               for r in fam.itertuples() if r.max_pct_fs > b_max]
    out = {"rms_lsb": float(fam.loc[i_rms, "rms_lsb"]),
           "rms_family": str(fam.loc[i_rms, "family"]),
           "max_lsb": float(fam.loc[i_max, "max_lsb"]),
           "max_pct_fs": float(fam.loc[i_max, "max_pct_fs"]),
           "max_family": str(fam.loc[i_max, "family"]),
           "bars": {"rms_lsb": bars.rms_lsb, "max_pct_fs": bars.max_pct_fs},
           "reads_per_vmm": int(reads),
           "bars_vmm": {"rms_lsb": b_rms, "max_pct_fs": b_max},
           "meets_bars": not failed, "failed": failed}
    if lsb_ua is not None:
        out["max_ua"] = out["max_lsb"] * lsb_ua
    return out
