"""Fitting the breakdown model to measured conductance maps: the library half of
``rram-cosim fit-device``.

One map per compliance current (maps in uS, 2-D) and the forming conditions they were made
with. The fit varies a few
:class:`~rram_cosim.models.params.BreakdownParams` fields so that the numpy twin, forming
``--sim-cells`` cells with fixed draws (common random numbers: the objective is a smooth
function of the parameters), reproduces the measured distributions: residuals are the
differences of 49 quantiles (2 % ... 98 %) of the formed cells, relative to the measured
median, plus the unformed fractions. ``scipy.optimize.least_squares`` works in log-parameter
space; relative standard errors come from the Jacobian at the optimum.

What a map can tell (the default fit set follows it):

- ``v_hold_v`` sets the scale (G ~ I_cc / V_hold) and ``a_vt_mv_um`` the spread from the
  select transistor's mismatch: both from one map.
- ``tau_growth_s`` (the slow tail of cells that did not finish growing) trades off against
  ``a_vt_mv_um`` in one map; maps at several compliance currents separate them, because the
  mismatch spread shrinks as 1/sqrt(I_cc) and the growth spread does not. It is fitted when
  two or more maps are given.
- ``t63_ref_s`` (breakdown time) is fitted when some map has between 0.5 % and 99.5 %
  unformed cells (G below ``--g-formed-min-us``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ...models.checks import check_choice
from ...models.device.breakdown import cell_values, draw_cells, form_cells
from ...models.errors import ConfigError
from ...models.io import load_npy
from ...models.params import BreakdownParams, FormingConditions
from .configs.fit_device import FIT_BOUNDS

__all__ = ["FIT_BOUNDS", "DeviceFit", "auto_fit_names", "fit_breakdown", "load_map",
           "simulate_maps"]

_LEVELS = np.linspace(0.02, 0.98, 49)
_W_UNFORMED = 5.0  # weight of an unformed-fraction residual against the quantile residuals


@dataclass(frozen=True)
class DeviceFit:
    """Result of :func:`fit_breakdown`.

    Attributes
    ----------
    params : BreakdownParams
        Fitted parameters (fields not fitted as in ``start``).
    start : BreakdownParams
        Starting point.
    names : tuple of str
        Fitted fields.
    rel_std_err : dict of str to float
        Relative standard error of each fitted field (from the Jacobian; inf if not
        identifiable).
    quality : pandas.DataFrame
        One row per map: measured and fitted statistics, KS distance, quantile RMS error.
    cost : float
        Final least-squares cost (half the sum of squared residuals).
    nfev : int
        Objective evaluations.
    success : bool
        The optimiser's convergence flag.
    message : str
        The optimiser's message.
    """

    params: BreakdownParams
    start: BreakdownParams
    names: tuple[str, ...]
    rel_std_err: dict[str, float]
    quality: pd.DataFrame
    cost: float
    nfev: int
    success: bool
    message: str


def auto_fit_names(maps: list[np.ndarray], g_formed_min_us: float) -> tuple[str, ...]:
    """The fit set the maps can support (module docstring)."""
    names = ["v_hold_v", "a_vt_mv_um"]
    if len(maps) >= 2:
        names.append("tau_growth_s")
    fr = [float(np.mean(np.asarray(g) < g_formed_min_us)) for g in maps]
    if any(0.005 < f < 0.995 for f in fr):
        names.append("t63_ref_s")
    return tuple(names)


def _formed_quantiles(g: np.ndarray, g_min: float) -> tuple[np.ndarray | None, float]:
    g = np.asarray(g, dtype=np.float64).ravel()
    formed = g[g >= g_min]
    frac_unformed = 1.0 - formed.size / g.size
    if formed.size < 2:
        return None, frac_unformed
    return np.quantile(formed, _LEVELS), frac_unformed


def fit_breakdown(maps: list[np.ndarray], conds: list[FormingConditions], *,
                  start: BreakdownParams | None = None,
                  names: tuple[str, ...] | None = None, sim_cells: int = 16384,
                  g_formed_min_us: float = 0.1, seed: int = 0) -> DeviceFit:
    """Fit breakdown parameters to measured maps.

    Parameters
    ----------
    maps : list of numpy.ndarray
        Measured conductances, uS, one 2-D map per forming condition.
    conds : list of FormingConditions
        How each map was formed (same length as ``maps``).
    start : BreakdownParams, optional
        Starting point (default: BreakdownParams defaults); fields not fitted keep its
        values.
    names : tuple of str, optional
        Fields to fit (keys of :data:`FIT_BOUNDS`); default :func:`auto_fit_names`.
    sim_cells : int
        Cells the twin forms per map at each evaluation.
    g_formed_min_us : float
        Conductance below which a cell counts as unformed, uS (measured and model alike).
    seed : int
        Seed of the model's fixed draws.

    Returns
    -------
    DeviceFit
    """
    if len(maps) != len(conds) or not maps:
        raise ConfigError(f"fit_breakdown needs one forming condition per map. Got "
                          f"{len(maps)} map(s) and {len(conds)} condition(s).")
    maps = [_as_map(f"map[{k}]", m) for k, m in enumerate(maps)]
    start = start if start is not None else BreakdownParams()
    names = tuple(names) if names else auto_fit_names(maps, g_formed_min_us)
    for n in names:
        check_choice("fit_breakdown", "names", n, list(FIT_BOUNDS))
    measured = [_formed_quantiles(g, g_formed_min_us) for g in maps]
    for k, (q, f) in enumerate(measured):
        if q is None:
            raise ConfigError(f"Measured map {k} has fewer than 2 formed cells (G >= "
                              f"{g_formed_min_us:g} uS): nothing to fit. Check its units (uS) "
                              "or lower g_formed_min_us.")
    children = np.random.SeedSequence(seed).spawn(len(maps))
    draws = [draw_cells((sim_cells,), np.random.default_rng(c)) for c in children]
    lo = np.log([FIT_BOUNDS[n][0] for n in names])
    hi = np.log([FIT_BOUNDS[n][1] for n in names])
    x0 = np.clip(np.log([float(getattr(start, n)) for n in names]), lo + 1e-9, hi - 1e-9)

    def params_at(x: np.ndarray) -> BreakdownParams:
        return dataclasses.replace(start, **{n: float(v) for n, v in zip(names, np.exp(x))})

    def simulate(p: BreakdownParams) -> list[np.ndarray]:
        return [form_cells(cell_values(d, p, c.mosfet), p, c).g_us for d, c in zip(draws, conds)]

    def residuals(x: np.ndarray) -> np.ndarray:
        try:
            sims = simulate(params_at(x))
        except ConfigError:
            # a trial point where the compliance cannot act: a large, smooth penalty
            return np.full(len(maps) * (_LEVELS.size + 1), 10.0)
        out = []
        for g, (q_meas, f_meas) in zip(sims, measured):
            q_mod, f_mod = _formed_quantiles(g, g_formed_min_us)
            scale = float(np.median(q_meas))
            out.append((q_mod - q_meas) / scale if q_mod is not None
                       else np.full(_LEVELS.size, 10.0))
            out.append(np.array([_W_UNFORMED * (f_mod - f_meas)]))
        return np.concatenate(out)

    sol = optimize.least_squares(residuals, x0, bounds=(lo, hi), diff_step=1e-3,
                                 x_scale=1.0, max_nfev=200)
    fitted = params_at(sol.x)
    m, n = sol.fun.size, len(names)
    try:
        cov = np.linalg.inv(sol.jac.T @ sol.jac) * (2.0 * sol.cost / max(m - n, 1))
        err = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        err = np.full(n, np.inf)
    rel_err = {k: float(np.expm1(e)) for k, e in zip(names, err)}
    quality = _quality(maps, simulate(fitted), conds, g_formed_min_us)
    return DeviceFit(params=fitted, start=start, names=names, rel_std_err=rel_err,
                     quality=quality, cost=float(sol.cost), nfev=int(sol.nfev),
                     success=bool(sol.success), message=str(sol.message))


def _quality(maps: list[np.ndarray], sims: list[np.ndarray], conds: list[FormingConditions],
             g_min: float) -> pd.DataFrame:
    rows = []
    for k, (g, s, c) in enumerate(zip(maps, sims, conds)):
        gm, sm = g[g >= g_min].ravel(), s[s >= g_min].ravel()
        qm, qs = np.quantile(gm, _LEVELS), np.quantile(sm, _LEVELS)
        rows.append({
            "map": k, "icc_a": c.i_cc_a,
            "mean_meas_us": gm.mean(), "mean_fit_us": sm.mean(),
            "std_meas_us": gm.std(ddof=1), "std_fit_us": sm.std(ddof=1),
            "cv_meas": gm.std(ddof=1) / gm.mean(), "cv_fit": sm.std(ddof=1) / sm.mean(),
            "unformed_meas": float(np.mean(g < g_min)), "unformed_fit": float(np.mean(s < g_min)),
            "ks_distance": float(stats.ks_2samp(gm, sm).statistic),
            "quantile_rms_us": float(np.sqrt(np.mean((qm - qs) ** 2))),
        })
    return pd.DataFrame(rows)


def _as_map(name: str, g: Any) -> np.ndarray:
    """A measured map as a finite 2-D float array (slightly negative reads of unformed cells
    are kept: they count as unformed)."""
    raw = np.asarray(g)
    if raw.dtype.kind not in "iuf":
        raise ConfigError(f"'{name}' must hold conductances in uS as numbers. Got dtype "
                          f"{raw.dtype}.")
    a = raw.astype(np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ConfigError(f"'{name}' must be a 2-D conductance map (rows x cols) in uS. Got "
                          f"shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ConfigError(f"'{name}' holds a non-finite value at {bad}. Conductances must be "
                          "finite numbers in uS (mark failed reads as 0).")
    return a


def load_map(path: str | Path) -> np.ndarray:
    """A measured conductance map from a 2-D ``.npy`` file (uS)."""
    return _as_map(str(path), load_npy(path, "The conductance map (--map)"))


def simulate_maps(params: BreakdownParams, conds: list[FormingConditions], n_cells: int,
                  seed: int) -> list[np.ndarray]:
    """Conductances (uS) of ``n_cells`` cells the model forms under each condition, with fresh
    draws from ``seed`` (the fitted model beside the measured maps)."""
    children = np.random.SeedSequence(seed).spawn(len(conds))
    return [form_cells(cell_values(draw_cells((n_cells,), np.random.default_rng(ch)), params,
                                   c.mosfet), params, c).g_us
            for ch, c in zip(children, conds)]
