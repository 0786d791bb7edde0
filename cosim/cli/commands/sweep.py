"""``rram-cosim sweep``: forming and circuit parameters -> conductance -> accuracy and energy.

``rram-cosim sweep --icc 5e-6,10e-6,20e-6,40e-6 --task digits-events --seeds 3`` forms an
array at every compliance current (and every ``--v-form``, ``--t-pulse``, ``--r-wire``,
``--adc-bits`` combination, ``--chips`` arrays each), spot-checks it in ngspice, recalibrates
the surrogate when the tile or the conductance domain changed, runs the task and prices an
inference (the unit's steps: :mod:`rram_cosim.cosim.tasks.sweep`). A local process pool runs the units
(``--workers``), or a Dask cluster (``--scheduler tcp://HOST:PORT``). Running the same command
again resumes: finished units are read back, not recomputed.

Writes ``runs/<name>/``: ``sweep.csv`` (one row per point, chip and seed: parameters, seeds,
validation and test accuracy, energy per component, wall time, status, error),
``sweep_summary.csv`` (mean and std over chips and seeds per point), ``pareto.csv``,
``accuracy_vs_icc.png``, ``energy_vs_icc.png``, ``conductance_vs_icc.png``, ``pareto.png``,
``points/<unit>.json`` (the stored units) and ``report.md``. Surrogates and spot-check decks
are cached by content hash under ``--cache-dir`` (default ``~/.cache/rram-cosim/sweep``).

Heavy libraries (pandas, matplotlib, dask) and the sweep load inside :func:`run_sweep_cmd`, so
building the command line's parser imports only the configuration.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...tasks.configs.sweep import SweepConfig
from ..runs import RunDir

if TYPE_CHECKING:
    import pandas as pd

    from ...tasks.sweep import SweepResult

COMMAND = "sweep"
HELP = ("design-space sweep: --icc (A), --v-form (V), --t-pulse (s), --r-wire (ohm) or "
        "--wire-width (um), --adc-bits, --rows-per-read, --cols-per-read, --sense, --drive "
        "comma lists x --chips formed arrays x --seeds; accuracy and energy per point, Pareto "
        "plot; local pool (--workers) or Dask (--scheduler tcp://HOST:PORT); rerun to resume")
CONFIG = SweepConfig


def _combos(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The groups of points that share the parameters beside I_cc, with their labels."""
    from ...tasks.sweep import OTHER_PARAMS

    varying = [c for c in OTHER_PARAMS if df[c].nunique() > 1]
    if not varying:
        return [("", df)]
    return [(", ".join(f"{c}={_fmt(v)}" for c, v in zip(varying, key if isinstance(key, tuple)
                                                       else (key,))), g)
            for key, g in df.groupby(varying, sort=False)]


def _accuracy_plot(summary: pd.DataFrame, df: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ok = df[df["status"] == "ok"]
    for k, (label, g) in enumerate(_combos(summary)):
        g = g.sort_values("icc_a")
        x = g["icc_a"] * 1e6
        for col, style, name in (("val_acc", "--", "validation"), ("test_acc", "-", "test")):
            if f"{col}_mean" not in g.columns:
                continue
            ax.errorbar(x, g[f"{col}_mean"], yerr=g[f"{col}_std"].fillna(0.0), fmt="o" + style,
                        color=f"C{k}", capsize=3, alpha=0.9 if col == "test_acc" else 0.6,
                        label=f"{name}{', ' + label if label else ''}")
    if len(ok) and "test_acc" in ok.columns:
        ax.plot(ok["icc_a"] * 1e6, ok["test_acc"], ".", color="0.5", ms=3,
                label="test, each chip and seed")
    _icc_axis(ax, summary["icc_a"])
    ax.set_ylabel("accuracy")
    ax.set_title("accuracy vs I_cc (mean +- std over chips and seeds)")
    ax.grid(alpha=0.3)
    _legend(ax)
    return fig


def _energy_plot(summary: pd.DataFrame, df: pd.DataFrame):
    import matplotlib.pyplot as plt

    from ...tasks.sweep import total_columns

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for k, (label, g) in enumerate(_combos(summary)):
        g = g.sort_values("icc_a")
        if "e_hybrid_uj_mean" not in g.columns:
            continue
        x = g["icc_a"] * 1e6
        axes[0].errorbar(x, g["e_hybrid_uj_mean"], yerr=g["e_hybrid_uj_std"].fillna(0.0),
                         fmt="o-", color=f"C{k}", capsize=3,
                         label=f"hybrid{', ' + label if label else ''}")
        for j, c in enumerate(total_columns(g)):
            if c.endswith("_uj_mean"):
                axes[0].plot(x, g[c], "s^vd"[j % 4] + ":", color=f"C{k}", alpha=0.6,
                             label=f"{c[8:-8].replace('_', ' ')}{', ' + label if label else ''}")
    axes[0].set_ylabel("energy per inference (uJ)")
    axes[0].set_title("total energy vs I_cc")
    ok = df[df["status"] == "ok"]
    comp = [c for c in ok.columns if c.startswith("e_") and c.endswith("_j")]
    if comp:
        per = ok.groupby("icc_a")[comp].mean().sort_index()
        for k, c in enumerate(comp):
            axes[1].plot(per.index * 1e6, per[c] * 1e6, "o-", color=f"C{k % 10}",
                         label=c[2:-2].replace("_", " "))
    axes[1].set_yscale("log")
    axes[1].set_ylabel("energy per inference (uJ)")
    axes[1].set_title("hybrid system by component (mean over the other parameters)")
    for ax in axes:
        _icc_axis(ax, summary["icc_a"])
        ax.grid(alpha=0.3)
        _legend(ax)
    return fig


def _conductance_plot(summary: pd.DataFrame):
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    s = summary.dropna(subset=["g_mean_us_mean"]) if "g_mean_us_mean" in summary.columns \
        else summary.iloc[0:0]
    for k, (label, g) in enumerate(_combos(s) if len(s) else []):
        g = g.sort_values("icc_a")
        ax.errorbar(g["icc_a"] * 1e6, g["g_mean_us_mean"], yerr=g["g_std_us_mean"], fmt="o-",
                    color=f"C{k}", capsize=3, label=label or "formed cells, mean +- std")
    if len(s):
        x = np.sort(s["icc_a"].unique())
        ax.plot(x * 1e6, x / 0.5 * 1e6, "k--", lw=0.8, label="I_cc / V_hold")
    _icc_axis(ax, summary["icc_a"])
    ax.set_yscale("log")
    ax.set_ylabel("conductance after forming (uS)")
    ax.set_title("I_cc -> conductance (numpy twin)")
    ax.grid(alpha=0.3)
    _legend(ax)
    return fig


def _legend(ax: Any) -> None:
    """A legend when something is labelled (a sweep whose units all failed plots nothing)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _icc_axis(ax: Any, icc_a: Any) -> None:
    """Log I_cc axis ticked at the swept values, in uA."""
    import numpy as np

    x = np.sort(np.unique(np.asarray(icc_a, dtype=float))) * 1e6
    ax.set_xscale("log")
    if x.size:
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.minorticks_off()
    ax.set_xlabel("compliance current I_cc (uA)")


def _label(r: Any, varying: list[str]) -> str:
    parts = [f"{r['icc_a'] * 1e6:g} uA"]
    parts += [f"{c}={_fmt(r[c])}" for c in varying]
    return ", ".join(parts)


def _pareto_plot(summary: pd.DataFrame, front: pd.DataFrame):
    import matplotlib.pyplot as plt

    from ...tasks.sweep import OTHER_PARAMS

    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    cols = ["val_acc_mean", "val_acc_std", "e_hybrid_uj_mean", "e_hybrid_uj_std"]
    s = summary.dropna(subset=cols[::2]) if set(cols) <= set(summary.columns) \
        else summary.iloc[0:0].reindex(columns=[*summary.columns, *cols])
    varying = [c for c in OTHER_PARAMS if c in s.columns and s[c].nunique() > 1]
    ax.errorbar(s["e_hybrid_uj_mean"], s["val_acc_mean"], xerr=s["e_hybrid_uj_std"].fillna(0),
                yerr=s["val_acc_std"].fillna(0), fmt="o", color="C0", alpha=0.6, capsize=2,
                label="points (mean +- std over chips and seeds)")
    if len(front):
        f = front.sort_values("e_hybrid_uj_mean")
        ax.step(f["e_hybrid_uj_mean"], f["val_acc_mean"], where="post", color="C3",
                label="Pareto front (validation)")
        ax.plot(f["e_hybrid_uj_mean"], f["val_acc_mean"], "o", color="C3")
    for _, r in s.iterrows():
        ax.annotate(_label(r, varying), (r["e_hybrid_uj_mean"], r["val_acc_mean"]),
                    fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("hybrid energy per inference (uJ)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("accuracy-energy trade-off (selected on validation)")
    ax.grid(alpha=0.3)
    _legend(ax)
    return fig


def run_sweep_cmd(cfg: SweepConfig, runs_root: str | Path = "runs", *,
                  progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Run or resume the sweep and write ``runs_root/<cfg.name>/``."""
    from ....analysis.report import save_figure, save_table
    from ...tasks.sweep import (
        OTHER_PARAMS,
        pareto_front,
        point_summary,
        run_sweep,
        sweep_table,
    )

    t0 = time.perf_counter()
    run = RunDir.create(runs_root, cfg.name, command=COMMAND, overwrite=overwrite, resume=True)
    run.write_config(COMMAND, asdict(cfg))
    result = run_sweep(cfg, run.path, progress=progress)
    df = sweep_table(result)
    save_table(df, run.path / "sweep.csv")
    summary = point_summary(df)
    front = pareto_front(summary)
    save_table(summary, run.path / "sweep_summary.csv")
    save_table(front, run.path / "pareto.csv")
    save_figure(_accuracy_plot(summary, df), run.path / "accuracy_vs_icc.png")
    save_figure(_energy_plot(summary, df), run.path / "energy_vs_icc.png")
    save_figure(_conductance_plot(summary), run.path / "conductance_vs_icc.png")
    save_figure(_pareto_plot(summary, front), run.path / "pareto.png")
    wall = time.perf_counter() - t0
    _report(run, cfg, result, df, summary, front, wall)
    n_failed = int((df["status"] != "ok").sum())
    spot_failed = _spot_failures(df)
    headline: dict[str, Any] = {
        "units": result.n_units, "computed": result.n_computed, "reused": result.n_reused,
        "failed": n_failed, "spot_check_failed_cells": spot_failed,
        "wall_s": round(wall, 1), "executor": result.executor}
    if "val_acc_mean" in summary.columns:
        headline["points"] = {
            _label(r, [c for c in OTHER_PARAMS if summary[c].nunique() > 1]): {
                "val": round(float(r["val_acc_mean"]), 4),
                "test": round(float(r["test_acc_mean"]), 4),
                "hybrid_uj": round(float(r["e_hybrid_uj_mean"]), 5)}
            for _, r in summary.dropna(subset=["val_acc_mean"]).iterrows()}
    out = {"headline": headline, "n_units": result.n_units, "n_computed": result.n_computed,
           "n_reused": result.n_reused, "n_failed": n_failed, "wall_s": wall,
           "sweep_s": result.wall_s, "executor": result.executor,
           "n_spot_failed": spot_failed}
    run.write_json("summary.json", {k: v for k, v in out.items() if k != "headline"})
    if n_failed or spot_failed:
        what = [f"{n_failed} of {result.n_units} unit(s) failed"] if n_failed else []
        if spot_failed:
            what.append(f"{spot_failed} spot-check cell(s) failed in ngspice")
        out["incomplete"] = (
            f"{' and '.join(what)}: see {run.path / 'report.md'}"
            + ("; rerun with --retry-failed to compute the failed units again." if n_failed
               else "."))
    run.finish()
    return out


def _spot_failures(df: pd.DataFrame) -> int:
    """Cells of the SPICE spot checks that failed in ngspice, over the finished units."""
    import pandas as pd

    if "spot_failed" not in df.columns:
        return 0
    ok = df[df["status"] == "ok"]
    return int(pd.to_numeric(ok["spot_failed"], errors="coerce").fillna(0).sum())


def _compact(summary: pd.DataFrame) -> pd.DataFrame:
    """The report's per-point table: varying parameters, counts, mean +- std."""
    import pandas as pd

    from ...tasks.sweep import OTHER_PARAMS, total_columns

    out = pd.DataFrame({"I_cc (uA)": summary["icc_a"] * 1e6})
    for c in OTHER_PARAMS:
        if summary[c].nunique() > 1:
            out[c] = summary[c]
    out["ok / failed"] = [f"{a} / {b}" for a, b in zip(summary["n_ok"], summary["n_failed"])]

    def pm(col: str, fmt: str) -> list[str]:
        if f"{col}_mean" not in summary.columns:
            return ["-"] * len(summary)
        return [("-" if pd.isna(m) else format(m, fmt)
                 + ("" if pd.isna(sd) else " +- " + format(sd, fmt)))
                for m, sd in zip(summary[f"{col}_mean"], summary[f"{col}_std"])]

    out["G (uS)"] = pm("g_mean_us", ".2f")
    out["val acc"] = pm("val_acc", ".3f")
    out["test acc"] = pm("test_acc", ".3f")
    out["hybrid (uJ)"] = pm("e_hybrid_uj", ".4g")
    if "test_acc_chip_std" in summary.columns and summary["test_acc_chip_std"].notna().any():
        out["test acc, chip-to-chip std"] = [format(v, ".3f")
                                             for v in summary["test_acc_chip_std"]]
    for c in total_columns(summary):
        if c.endswith("_uj_mean"):
            name = c[len("e_total_"):-len("_uj_mean")].replace("_", " ")
            out[f"{name} (uJ)"] = [format(v, ".4g") for v in summary[c]]
    return out


def _report(run: RunDir, cfg: SweepConfig, result: SweepResult, df: pd.DataFrame,
            summary: pd.DataFrame, front: pd.DataFrame, wall: float) -> None:
    from ....analysis.report import markdown_table, write_report
    from ...tasks.sweep import EXECUTION_COLUMNS, PARAMS

    ok = df[df["status"] == "ok"]
    failed = df[df["status"] != "ok"]
    cal = int(ok["surrogate_calibrated"].sum()) if "surrogate_calibrated" in ok else 0
    n_sur = ok["surrogate_key"].nunique() if "surrogate_key" in ok else 0
    what = (
        f"Task `{cfg.task}`; I_cc {', '.join(f'{i * 1e6:g}' for i in cfg.icc)} uA; v_form "
        f"{', '.join(f'{v:g}' for v in cfg.v_form)} V; t_pulse "
        f"{', '.join(f'{t:g}' for t in cfg.t_pulse)} s; wire segments "
        f"{', '.join(f'{r:g}' for r in cfg.wire_ohms())} ohm; rows per read "
        f"{', '.join(str(r) for r in cfg.rows_per_read)} (0: all); outputs sensed per read "
        f"{', '.join(str(c) for c in cfg.cols_per_read)} (0: all; others {cfg.unsensed}); "
        f"sensing {', '.join(cfg.sense)}; rows driven from {', '.join(cfg.drive)} end(s); ADC "
        f"{', '.join(str(b) for b in cfg.adc_bits)} bit; {cfg.chips} chip(s) x {cfg.seeds} "
        f"seed(s) per point: {result.n_units} units ({result.n_computed} computed in this run, "
        f"{result.n_reused} read back from points/), {len(failed)} failed. Executor: "
        f"{result.executor}. Wall time {wall:.0f} s (sweep {result.wall_s:.0f} s). Hidden "
        f"{cfg.hidden}, v_th grid {list(cfg.v_th)}"
        f"{' scaled by each chip weight spread' if cfg.v_th_scaled else ''}, rec_level grid "
        f"{list(cfg.rec_level)}, chosen on validation; nothing is selected on test. "
        f"{n_sur} surrogate(s) used, {cal} calibrated in this run (the rest from the cache).")
    sections = [("What ran", what)]
    title = "Per point (mean +- std over chips and seeds; all columns in sweep_summary.csv)"
    sections.append((title, markdown_table(_compact(summary)) if len(summary)
                     else "No unit finished."))
    if len(front):
        sections.append(("Pareto front: validation accuracy vs hybrid energy",
                         markdown_table(front[[c for c in PARAMS + ["val_acc_mean",
                                                                    "test_acc_mean",
                                                                    "e_hybrid_uj_mean"]
                                               if c in front.columns]])
                         + "\n\nTest accuracy is shown beside, never used to choose."))
    if "spot_median_rel_diff" in ok.columns and ok["spot_cells"].max() > 0:
        spot = ok.groupby(PARAMS[:3], sort=False).agg(
            cells=("spot_cells", "first"), median_rel_diff=("spot_median_rel_diff", "median"),
            max_rel_diff=("spot_max_rel_diff", "max"), failed=("spot_failed", "sum"),
            formed_mismatch=("spot_formed_mismatch", "sum")).reset_index()
        sections.append(("SPICE spot check of the twin (per chip, same draws)",
                         markdown_table(spot) + "\n\n|G_spice - G_twin| / G_spice over "
                         "sampled cells formed in both."))
    if len(failed):
        sections.append(("Failed units", markdown_table(
            failed[["index", *PARAMS, "chip", "seed", "error"]])
            + "\n\nRerun with `--retry-failed` to compute them again; the traceback is "
              "in points/<key>.json."))
    plots = ("![](conductance_vs_icc.png)\n\n![](accuracy_vs_icc.png)\n\n"
             "![](energy_vs_icc.png)\n\n![](pareto.png)")
    files = ("sweep.csv (one row per point, chip and seed; the columns "
             f"{', '.join(EXECUTION_COLUMNS)} describe the execution and differ between runs), "
             "sweep_summary.csv, pareto.csv, points/ (one JSON a unit). Surrogates and spot-check "
             f"decks: {cfg.cache_dir or '$RRAM_COSIM_CACHE/sweep (~/.cache/rram-cosim/sweep)'}"
             " (by content hash).")
    sections += [("Plots", plots), ("Files", files)]
    write_report(run.path / "report.md", f"rram-cosim sweep: {cfg.name}", sections)


run = run_sweep_cmd


def _fmt(v: object) -> str:
    """A point's value in a label: numbers in short form, names (sensing, drive) as they are."""
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
