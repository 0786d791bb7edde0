"""Forming an array at one or more compliance currents, numpy twin and SPICE sample: the
library half of ``rram-cosim form``.

Every cell gets the same pulse; the select transistor's gate sets the compliance. The numpy
twin forms the whole ``rows x cols`` array; with ``backend="spice"`` a random sample of
``cells`` cells is also formed in ngspice with the same per-cell random draws, and the two are
compared cell by cell. The same cells (one draw of the array from ``seed``) are formed at
every compliance current, so the sweep shows the compliance alone.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from ...models.device.breakdown import (
    cell_values,
    differential_map,
    draw_cells,
    form_cells,
    gate_voltage_v,
)
from ...models.io import atomic_save_npy
from ...models.params import BreakdownParams
from ..spice.forming import (
    compare_with_twin,
    sample_indices,
    simulate_cells,
    spice_gate_voltage_v,
)
from .configs.form import FormConfig

__all__ = ["FormResult", "anderson_darling_a2", "distribution_stats", "form_at_each_icc",
           "icc_tag"]


def icc_tag(i_cc_a: float) -> str:
    """File-name tag of a compliance current, e.g. ``7.5uA``."""
    return f"{i_cc_a * 1e6:g}uA"


def anderson_darling_a2(g: np.ndarray) -> float:
    """Anderson-Darling A^2 of ``g`` against a normal with the sample's mean and std."""
    x = np.sort(np.asarray(g, dtype=np.float64).ravel())
    n = x.size
    z = (x - x.mean()) / x.std(ddof=1)
    i = np.arange(1, n + 1)
    return float(-n - np.mean((2 * i - 1) * (stats.norm.logcdf(z)
                                            + stats.norm.logsf(z[::-1]))))


def distribution_stats(g_us: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Mean, std, CV, skew, excess kurtosis and normality of formed conductances (uS).

    Normality: Anderson-Darling A^2 against a normal with the sample's mean and std (5 %
    critical value ~0.75; grows with n for any fixed departure) and the Shapiro-Wilk p-value on
    at most 5000 cells (drawn with ``seed``; scipy's p is exact only up to 5000).
    """
    g = np.asarray(g_us, dtype=np.float64).ravel()
    nan = float("nan")
    if g.size < 3:
        return {"n": int(g.size), "mean_us": float(g.mean()) if g.size else nan,
                "std_us": nan, "cv": nan, "skew": nan, "excess_kurtosis": nan,
                "anderson_a2": nan, "shapiro_p": nan}
    m, s = float(g.mean()), float(g.std(ddof=1))
    sub = g if g.size <= 5000 else np.random.default_rng(seed).choice(g, 5000, replace=False)
    return {"n": int(g.size), "mean_us": m, "std_us": s, "cv": s / m if m else nan,
            "skew": float(stats.skew(g)), "excess_kurtosis": float(stats.kurtosis(g)),
            "anderson_a2": anderson_darling_a2(g),
            "shapiro_p": float(stats.shapiro(sub).pvalue)}


@dataclass
class FormResult:
    """What :func:`form_at_each_icc` measured."""

    stats: pd.DataFrame  # per compliance current and source: distribution statistics
    agreement: pd.DataFrame  # SPICE backend: per compliance current, SPICE vs twin
    cells: dict[str, pd.DataFrame]  # SPICE backend: per I_cc tag, per-cell SPICE vs twin
    failures: list[dict[str, Any]]  # SPICE cells that failed also when re-run alone
    per_icc: list[dict[str, Any]]  # per compliance current: the samples the plots show
    timings_s: dict[str, float]  # twin_s, spice_s


def form_at_each_icc(cfg: FormConfig, params: BreakdownParams, maps_dir: Path, *,
                     progress: bool = True) -> FormResult:
    """Form the array at every compliance current of ``cfg``; each map is saved in
    ``maps_dir`` as it is formed: ``g_<I_cc>.npy`` (uS), ``formed_<I_cc>.npy`` (bool) and
    ``w_<I_cc>.npy`` (G+ - G-, uS)."""
    rng = np.random.default_rng(cfg.seed)
    shape = (cfg.rows, cfg.cols)
    draws = draw_cells(shape, rng)
    spice = cfg.backend == "spice"
    idx = sample_indices(shape, cfg.cells, rng) if spice else None
    rows: list[dict[str, Any]] = []
    agree: list[dict[str, Any]] = []
    per_icc: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    timings: dict[str, float] = {"twin_s": 0.0, "spice_s": 0.0}
    cell_tables: dict[str, pd.DataFrame] = {}
    for i_cc in tqdm(cfg.icc, desc="form", unit="I_cc", disable=not progress):
        cond = cfg.conditions(i_cc)
        tag = icc_tag(i_cc)
        t0 = time.perf_counter()
        twin = form_cells(cell_values(draws, params, cond.mosfet), params, cond)
        timings["twin_s"] += time.perf_counter() - t0
        atomic_save_npy(maps_dir / f"g_{tag}.npy", twin.g_us)
        atomic_save_npy(maps_dir / f"formed_{tag}.npy", twin.formed)
        atomic_save_npy(maps_dir / f"w_{tag}.npy", differential_map(twin.g_us))
        g_eq = i_cc / params.v_hold_v * 1e6
        common = {"icc_a": i_cc, "v_gate_v": twin.v_gate_v, "g_eq_us": g_eq}
        tg = twin.g_us[twin.formed]
        st = distribution_stats(tg, cfg.seed)
        rows.append({**common, "source": "twin, whole array", "cells": twin.g_us.size,
                     "n_unformed": twin.n_unformed, **st,
                     "mean_over_g_eq": st["mean_us"] / g_eq})
        rec: dict[str, Any] = {"icc": i_cc, "twin_g": tg}
        if spice:
            assert idx is not None
            vals = cell_values(draws.take(idx), params, cond.mosfet)
            # a BSIM card gets the gate that gives it the same compliance current
            cond_sp = cond if cfg.card == "level1" else dataclasses.replace(
                cond, i_cc_a=None, v_gate_v=spice_gate_voltage_v(params, cond))
            sp = simulate_cells(vals, params, cond_sp, cells_per_deck=cfg.cells_per_deck,
                                n_workers=cfg.workers or None, progress=progress)
            timings["spice_s"] += sp.wall_time_s
            t_g, t_f = twin.g_us.ravel()[idx], twin.formed.ravel()[idx]
            cmp = compare_with_twin(sp, t_g, t_f)
            agree.append({"icc_a": i_cc, **cmp, "spice_wall_s": sp.wall_time_s,
                          "decks": sp.n_decks, "decks_cached": sp.n_cached,
                          "retried_cells": len(sp.retried)})
            for f in sp.failures:
                failures.append({"icc_a": i_cc, "cell": int(idx[f.cell]), "error": f.error,
                                 "message": f.message})
            ok = sp.ok
            r_i, c_i = np.unravel_index(idx, shape)
            cells = pd.DataFrame({"row": r_i, "col": c_i, "g_spice_us": sp.g_us,
                                  "g_twin_us": t_g, "formed_spice": sp.formed,
                                  "formed_twin": t_f, "spice_ok": ok,
                                  "rel_diff": np.abs(sp.g_us - t_g) / np.abs(sp.g_us)})
            cell_tables[tag] = cells
            sg = sp.g_us[ok & sp.formed]
            rows.append({**common, "v_gate_v": gate_voltage_v(params, cond_sp),
                         "source": "SPICE sample", "cells": int(idx.size),
                         "n_unformed": int(np.count_nonzero(ok & ~sp.formed)),
                         **distribution_stats(sg, cfg.seed),
                         "mean_over_g_eq": float(sg.mean()) / g_eq if sg.size else np.nan})
            ts = t_g[t_f]
            rows.append({**common, "source": "twin, same cells", "cells": int(idx.size),
                         "n_unformed": int(np.count_nonzero(~t_f)),
                         **distribution_stats(ts, cfg.seed),
                         "mean_over_g_eq": float(ts.mean()) / g_eq if ts.size else np.nan})
            both = ok & sp.formed & t_f
            rec.update(spice_g=sg, twin_sample_g=ts, pair=(sp.g_us[both], t_g[both]))
        per_icc.append(rec)

    return FormResult(stats=pd.DataFrame(rows), agreement=pd.DataFrame(agree), cells=cell_tables,
                      failures=failures, per_icc=per_icc, timings_s=timings)
