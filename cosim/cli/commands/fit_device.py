"""``rram-cosim fit-device``: fit the breakdown model to measured conductance maps.

Give one map per compliance current (``--map a.npy,b.npy --icc 5e-6,10e-6``; maps in uS, 2-D
``.npy``) and the forming conditions they were made with; the fit and what a map can tell
are :mod:`rram_cosim.cosim.tasks.fit_device`'s.

Writes ``runs/<name>/device_params.json`` (read by ``rram-cosim form --device-params FILE``),
``fit.csv`` (parameters, start, fitted, relative standard error), ``quality.csv`` (per map:
measured vs fitted mean, std, CV, unformed fraction, Kolmogorov-Smirnov distance, quantile
RMS error), ``fit.png`` (quantile-quantile and histograms) and ``report.md``.

Heavy libraries (pandas, matplotlib, scipy) and the fit load inside :func:`run_fit_device`, so
building the command line's parser imports only the configuration.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....models.device.io import load_device_params, save_device_params
from ....models.params import BreakdownParams, to_dict
from ...tasks.configs.fit_device import FitDeviceConfig
from ..runs import RunDir

if TYPE_CHECKING:
    import numpy as np

    from ....models.params import FormingConditions

COMMAND = "fit-device"
HELP = ("fit the breakdown model to measured conductance maps (--map a.npy,b.npy in uS, one per "
        "compliance current --icc in A; --v-form V, --t-pulse s); writes device_params.json for "
        "form --device-params")
CONFIG = FitDeviceConfig


def run_fit_device(cfg: FitDeviceConfig, runs_root: str | Path = "runs", *,
                   progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Fit the maps of ``cfg`` and write ``runs_root/<cfg.name>/``."""
    import pandas as pd

    from ....analysis.report import markdown_table, save_figure, save_table, write_report
    from ...tasks.fit_device import fit_breakdown, load_map, simulate_maps

    t0 = time.perf_counter()
    maps = [load_map(p) for p in cfg.map]
    conds = [cfg.conditions(i) for i in cfg.icc]
    start = load_device_params(cfg.start_params) if cfg.start_params else BreakdownParams()
    run = RunDir.create(runs_root, cfg.name, command=COMMAND, overwrite=overwrite)
    run.write_config(COMMAND, asdict(cfg))
    fit = fit_breakdown(maps, conds, start=start, names=cfg.fit or None,
                        sim_cells=cfg.sim_cells, g_formed_min_us=cfg.g_formed_min_us,
                        seed=cfg.seed)
    save_device_params(run.path / "device_params.json", fit.params,
                       {"fitted": list(fit.names), "maps": list(cfg.map),
                        "icc_a": list(cfg.icc), "v_form_v": cfg.v_form,
                        "t_pulse_s": cfg.t_pulse, "rel_std_err": fit.rel_std_err,
                        "cost": fit.cost})
    ptable = pd.DataFrame([{"parameter": n, "start": getattr(fit.start, n),
                            "fitted": getattr(fit.params, n),
                            "rel_std_err": fit.rel_std_err[n]} for n in fit.names])
    save_table(ptable, run.path / "fit.csv")
    save_table(fit.quality, run.path / "quality.csv")
    sims = simulate_maps(fit.params, conds, cfg.sim_cells, cfg.seed + 1)
    save_figure(_fit_figure(maps, sims, conds, cfg.g_formed_min_us), run.path / "fit.png")
    elapsed = time.perf_counter() - t0
    write_report(run.path / "report.md", f"Device fit: {cfg.name}", [
        ("Data", "\n".join(f"- map {k}: `{p}` ({m.shape[0]} x {m.shape[1]}), formed at "
                           f"I_cc = {i * 1e6:g} uA, {cfg.v_form} V, {cfg.t_pulse:g} s"
                           for k, (p, m, i) in enumerate(zip(cfg.map, maps, cfg.icc)))),
        ("Fitted parameters",
         markdown_table(ptable) + f"\n\nOptimiser: {fit.message} ({fit.nfev} evaluations, "
         f"cost {fit.cost:.3g}, {elapsed:.1f} s). A relative standard error near or above 1 "
         "means the maps do not determine that parameter (see the module docstring of "
         "cosim/tasks/fit_device.py)."),
        ("Fit quality", markdown_table(fit.quality)
         + "\n\nKS distance: largest gap between the measured and fitted distribution functions"
           " of formed cells. ![fit](fit.png)"),
        ("Use", f"`rram-cosim form --device-params {run.path / 'device_params.json'}`"),
        ("All parameters", markdown_table(pd.DataFrame(
            {"parameter": list(to_dict(fit.params)),
             "value": list(to_dict(fit.params).values())}))),
    ])
    summary = {"fitted": {n: getattr(fit.params, n) for n in fit.names},
               "rel_std_err": fit.rel_std_err, "quality": fit.quality.to_dict(orient="records"),
               "success": fit.success, "elapsed_s": elapsed}
    run.write_json("summary.json", summary)
    summary["headline"] = {"fitted": summary["fitted"],
                           "ks_distance": [round(float(v), 4)
                                           for v in fit.quality["ks_distance"]],
                           "device_params": str(run.path / "device_params.json")}
    run.finish()
    return summary


def _fit_figure(maps: list[np.ndarray], sims: list[np.ndarray], conds: list[FormingConditions],
                g_min: float):
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(maps)
    fig, axes = plt.subplots(2, n, figsize=(3.8 * n, 6.4), squeeze=False)
    for k, (g, s, c) in enumerate(zip(maps, sims, conds)):
        gm, sm = g[g >= g_min].ravel(), s[s >= g_min].ravel()
        lv = np.linspace(0.005, 0.995, 199)
        qm, qs = np.quantile(gm, lv), np.quantile(sm, lv)
        ax = axes[0][k]
        ax.plot(qm, qs, ".", ms=3)
        lims = [min(qm[0], qs[0]), max(qm[-1], qs[-1])]
        ax.plot(lims, lims, "k-", lw=0.7)
        ax.set_xlabel("measured quantile (uS)")
        ax.set_ylabel("fitted model quantile (uS)")
        ax.set_title(f"map {k}: I_cc = {c.i_cc_a * 1e6:g} uA")
        ax.grid(alpha=0.3)
        ax = axes[1][k]
        bins = np.linspace(lims[0], lims[1], 40)
        ax.hist(gm, bins=bins, density=True, alpha=0.5, label="measured")
        ax.hist(sm, bins=bins, density=True, histtype="step", lw=1.5, label="fitted model")
        ax.set_xlabel("G (uS)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


run = run_fit_device
