"""``rram-cosim form``: form an array at one or more compliance currents, twin and SPICE.

Every cell gets the same pulse; the select transistor's gate sets the compliance. The numpy
twin forms the whole ``rows x cols`` array; with ``--backend spice`` a random sample of
``--cells`` cells is also formed in ngspice with the same per-cell random draws, and the two are
compared cell by cell (:mod:`rram_cosim.cosim.tasks.form`). The same cells (one draw of the
array from ``--seed``) are formed at every compliance current, so the sweep shows the
compliance alone.

Writes ``runs/<name>/``: ``stats.csv`` (one row per compliance current and source: mean, std,
CV, skew, excess kurtosis, Anderson-Darling A^2 and Shapiro-Wilk p against a normal, unformed
count), ``agreement.csv`` and ``cells_<I_cc>.csv`` (SPICE backend: per-cell SPICE vs twin),
``histograms.png`` (and ``spice_vs_twin.png``), ``maps/g_<I_cc>.npy`` (uS, rows x cols),
``maps/formed_<I_cc>.npy`` (bool) and ``maps/w_<I_cc>.npy`` (differential G+ - G-, uS,
rows x cols/2), ``device_params.json`` and ``report.md``.

Option units: ``--icc`` in A (a comma list), ``--v-form`` in V, ``--t-pulse``, ``--t-edge`` and
``--t-step`` in s. (The option names are kept short; the field names therefore carry no
unit suffix.)

Heavy libraries (pandas, matplotlib, scipy) and the task load inside :func:`run_form`, so
building the command line's parser imports only the configuration.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....models.device.io import load_device_params, save_device_params
from ....models.params import BreakdownParams, to_dict
from ...tasks.configs.form import FormConfig
from ..runs import RunDir

if TYPE_CHECKING:
    import pandas as pd

COMMAND = "form"
HELP = ("form a rows x cols 1T1R array with one pulse at each compliance current (--icc in A, "
        "--v-form in V, --t-pulse in s): conductance maps, statistics and histograms; "
        "--backend spice also forms --cells sampled cells in ngspice")
CONFIG = FormConfig


def run_form(cfg: FormConfig, runs_root: str | Path = "runs", *,
             progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Form the array at every compliance current; write ``runs_root/<cfg.name>/``."""
    import pandas as pd

    from ....analysis.report import save_figure, save_table
    from ...tasks.form import form_at_each_icc, icc_tag

    t_start = time.perf_counter()
    params = load_device_params(cfg.device_params) if cfg.device_params else BreakdownParams()
    run = RunDir.create(runs_root, cfg.name, command=COMMAND, overwrite=overwrite)
    run.write_config(COMMAND, asdict(cfg))
    save_device_params(run.path / "device_params.json", params,
                       {"source": cfg.device_params or "BreakdownParams defaults"})
    res = form_at_each_icc(cfg, params, run.path / "maps", progress=progress)
    spice = cfg.backend == "spice"
    for tag, cells in res.cells.items():
        save_table(cells, run.path / f"cells_{tag}.csv")
    table, agreement, failures = res.stats, res.agreement, res.failures
    timings = dict(res.timings_s)
    per_icc = res.per_icc
    save_table(table, run.path / "stats.csv")
    save_figure(_histograms(per_icc, spice), run.path / "histograms.png")
    if spice:
        save_table(agreement, run.path / "agreement.csv")
        save_figure(_scatter(per_icc), run.path / "spice_vs_twin.png")
        save_table(pd.DataFrame(failures, columns=["icc_a", "cell", "error", "message"]),
                   run.path / "spice_failures.csv")
    timings["total_s"] = time.perf_counter() - t_start
    summary: dict[str, Any] = {"stats": table.to_dict(orient="records"),
                               "agreement": agreement.to_dict(orient="records"),
                               "failures": failures, "timings_s": timings}
    _write_report(run, cfg, params, table, agreement, failures, timings)
    run.write_json("summary.json", summary)
    whole = table[table["source"] == "twin, whole array"]
    headline: dict[str, Any] = {
        f"{icc_tag(r.icc_a)}": {"mean_us": round(r.mean_us, 3), "std_us": round(r.std_us, 3),
                                "cv": round(r.cv, 4), "unformed": int(r.n_unformed)}
        for r in whole.itertuples()}
    if spice:
        headline["spice_vs_twin"] = {
            icc_tag(r.icc_a): {"median_rel": r.median_rel_diff, "p90_rel": r.p90_rel_diff,
                               "failed": r.n_failed} for r in agreement.itertuples()}
    summary["headline"] = headline
    run.finish()
    return summary


def _histograms(per_icc: list[dict[str, Any]], spice: bool):
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy import stats

    n = len(per_icc)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), squeeze=False)
    for ax, r in zip(axes[0], per_icc):
        g = r["twin_g"]
        lo, hi = np.quantile(g, [0.001, 0.999]) if g.size else (0.0, 1.0)
        bins = np.linspace(lo, hi + 1e-9, 40)
        if spice:
            ax.hist(g, bins=bins, density=True, alpha=0.35, color="C0",
                    label=f"twin, whole array ({g.size})")
            sg = r["spice_g"]
            if not sg.size:
                ax.text(0.5, 0.9, "no SPICE cell formed", transform=ax.transAxes,
                        ha="center", color="C3")
            # coarser bins for the sample: about sqrt(n) of them
            sb = np.linspace(bins[0], bins[-1], int(np.clip(np.sqrt(sg.size), 5, 25)) + 1)
            w = (sb[1] - sb[0]) * 0.4
            ts = r["twin_sample_g"]
            h_s = np.histogram(sg, bins=sb, density=True)[0] if sg.size else 0 * sb[1:]
            h_t = np.histogram(ts, bins=sb, density=True)[0] if ts.size else 0 * sb[1:]
            c = 0.5 * (sb[1:] + sb[:-1])
            ax.bar(c - w / 2, h_s, width=w, color="C3", label=f"SPICE sample ({sg.size})")
            ax.bar(c + w / 2, h_t, width=w, color="C2", label="twin, same cells")
        else:
            ax.hist(g, bins=bins, density=True, color="C0", label=f"twin ({g.size} cells)")
        if g.size > 2:
            x = np.linspace(bins[0], bins[-1], 200)
            ax.plot(x, stats.norm.pdf(x, g.mean(), g.std()), "k--", lw=1, label="normal fit")
        ax.set_title(f"I_cc = {r['icc'] * 1e6:g} uA")
        ax.set_xlabel("G after forming (uS)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("density")
    fig.tight_layout()
    return fig


def _scatter(per_icc: list[dict[str, Any]]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    for k, r in enumerate(per_icc):
        ax.plot(*r["pair"], ".", ms=4, color=f"C{k}", label=f"{r['icc'] * 1e6:g} uA")
    lims = ax.get_xlim()
    ax.plot(lims, lims, "k-", lw=0.7)
    ax.set_xlabel("G, ngspice (uS)")
    ax.set_ylabel("G, numpy twin (uS)")
    ax.set_title("Same cells, same draws")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def _write_report(run: RunDir, cfg: FormConfig, params: BreakdownParams, table: pd.DataFrame,
                  agreement: pd.DataFrame, failures: list[dict[str, Any]],
                  timings: dict[str, float]) -> None:
    import pandas as pd

    from ....analysis.report import markdown_table, write_report

    cond = cfg.conditions(cfg.icc[0])
    cols = ["icc_a", "source", "cells", "n_unformed", "mean_us", "std_us", "cv", "skew",
            "excess_kurtosis", "anderson_a2", "shapiro_p", "g_eq_us", "mean_over_g_eq",
            "v_gate_v"]
    sections = [
        ("Forming operation",
         f"- pulse {cfg.v_form} V for {cfg.t_pulse:g} s (edges {cfg.t_edge:g} s, time step "
         f"{cfg.t_step:g} s); compliance currents {', '.join(f'{i * 1e6:g} uA' for i in cfg.icc)}"
         f" set by the select transistor's gate ({cond.mosfet.card} card, W/L = "
         f"{cond.mosfet.w_m * 1e6:g}/{cond.mosfet.l_m * 1e6:g} um)\n"
         f"- array {cfg.rows} x {cfg.cols}, seed {cfg.seed}; the same cells at every "
         f"compliance\n- backend: {cfg.backend}"
         + (f" ({cfg.cells} sampled cells in ngspice, {cfg.cells_per_deck} a deck)"
            if cfg.backend == "spice" else "")),
        ("Conductance statistics (formed cells)",
         markdown_table(table[cols]) + "\n\n`g_eq_us` = I_cc / V_hold, the conductance the "
         "compliance alone would give; `mean_over_g_eq` shows how close the pulse got to it. "
         "Normality: Anderson-Darling A^2 (5 % critical value 0.75) and the Shapiro-Wilk p-value "
         "on up to 5000 cells. ![histograms](histograms.png)"),
    ]
    if len(agreement):
        sections.append((
            "SPICE vs twin, cell by cell",
            markdown_table(agreement) + "\n\nRelative difference |G_spice - G_twin| / G_spice "
            "over cells formed in both. ![scatter](spice_vs_twin.png)"
            + (f"\n\n{len(failures)} cell(s) failed in ngspice also when re-run alone: see "
               "spice_failures.csv." if failures else "")))
    sections.append(("Device parameters",
                     markdown_table(pd.DataFrame({"parameter": list(to_dict(params)),
                                                  "value": list(to_dict(params).values())}))
                     + "\n\nSources and equations: docs/device.md."))
    sections.append(("Files", "stats.csv, histograms.png, maps/g_<I_cc>.npy (uS), "
                              "maps/formed_<I_cc>.npy, maps/w_<I_cc>.npy (G+ - G-, uS)"
                     + (", agreement.csv, cells_<I_cc>.csv, spice_vs_twin.png, "
                        "spice_failures.csv" if cfg.backend == "spice" else "")
                     + f", device_params.json. Times: {timings}."))
    write_report(run.path / "report.md", f"Forming: {cfg.name}", sections)


run = run_form
