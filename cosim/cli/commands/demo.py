"""``rram-cosim demo``: the thin end-to-end run, SPICE tile -> surrogate -> LIF reservoir ->
readout -> energy, on the embedded data (the chain: :mod:`rram_cosim.cosim.tasks.demo`).

Writes ``runs/<name>/``: ``config.json``, ``surrogate.json``, ``tile_error.csv`` and
``tile_error.png`` (held-out tile error), ``accuracy.csv`` and ``accuracy.png``, the energy
tables (``energy.csv``, ``energy_summary.csv``, ``energy_vs_paper.csv``,
``energy_constants.csv``) and ``energy_breakdown.png``, ``activity.json``, ``report.md`` and
``summary.json``.

Heavy libraries (pandas, matplotlib, scipy) and the chain load inside :func:`run_demo`, so
building the command line's parser imports only the configuration.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....models.tile.periphery import current_lsb_ua
from ...tasks.configs.common import describe_read
from ...tasks.configs.demo import DemoConfig
from ..runs import RunDir

if TYPE_CHECKING:
    import pandas as pd

    from ...tasks.demo import DemoResult

COMMAND = "demo"
HELP = ("thin end-to-end run on the embedded data: SPICE tile -> surrogate -> LIF reservoir -> "
        "readout -> energy")
CONFIG = DemoConfig


def run_demo(cfg: DemoConfig, runs_root: str | Path = "runs", *,
             progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Run the thin end-to-end chain and write ``runs_root/<cfg.name>/``; returns the summary."""
    from tqdm.auto import tqdm

    from ....analysis.energy_plots import breakdown_figure
    from ....analysis.report import save_figure, save_table, tile_error_figure
    from ...tasks.demo import demo_pipeline

    t_start = time.perf_counter()
    run = RunDir.create(runs_root, cfg.name, command=COMMAND, overwrite=overwrite)
    run.write_config(COMMAND, asdict(cfg))
    stages = tqdm(total=6, desc="demo", disable=not progress, unit="stage")
    timings: dict[str, float] = {}

    def stage(name: str, t0: float) -> None:
        timings[name] = time.perf_counter() - t0
        stages.set_postfix_str(name)
        stages.update()

    res = demo_pipeline(cfg, run.path, stage)
    t0 = time.perf_counter()
    save_table(res.tile_error, run.path / "tile_error.csv")
    save_figure(tile_error_figure(res.ref_ua, res.pred_ua, current_lsb_ua(res.spec),
                                  "Tile VMM on held-out maps and inputs"),
                run.path / "tile_error.png")
    save_table(res.accuracy, run.path / "accuracy.csv")
    save_figure(_accuracy_plot(res.accuracy), run.path / "accuracy.png")
    energy = res.energy
    e_sum = energy.totals
    save_table(energy.components, run.path / "energy.csv")
    save_table(e_sum, run.path / "energy_summary.csv")
    save_table(energy.paper, run.path / "energy_vs_paper.csv")
    save_table(energy.constants, run.path / "energy_constants.csv")
    save_figure(breakdown_figure(energy), run.path / "energy_breakdown.png")
    run.write_json("activity.json", res.activity.to_dict())
    summary = {
        "tile_error": res.tile_error.to_dict(orient="records"),
        "accuracy": res.accuracy.to_dict(orient="records"),
        "energy_uj": dict(zip(e_sum["system"], e_sum["energy_uj"])),
        "surrogate": res.surrogate.summary(),
        "map_stats": res.map_stats,
        "timings_s": timings,
    }
    _write_demo_report(run, cfg, res, summary)
    stage("report", t0)
    stages.close()
    summary["timings_s"]["total"] = time.perf_counter() - t_start
    run.write_json("summary.json", summary)
    summary["headline"] = {"accuracy": {r["model"]: {"val": r["val_acc"], "test": r["test_acc"]}
                                        for r in summary["accuracy"]},
                           "energy_uj": summary["energy_uj"]}
    run.finish()
    return summary


def _accuracy_plot(df: pd.DataFrame):
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(len(df))
    ax.bar(x - 0.2, df["val_acc"] * 100, 0.4, label="validation")
    ax.bar(x + 0.2, df["test_acc"] * 100, 0.4, label="test")
    ax.set_xticks(x, df["model"], rotation=15)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return fig


def _write_demo_report(run: RunDir, cfg: DemoConfig, res: DemoResult,
                       summary: dict[str, Any]) -> None:
    import pandas as pd

    from ....analysis.report import markdown_table, write_report

    spec, err, acc, energy = res.spec, res.tile_error, res.accuracy, res.energy
    s = summary["surrogate"]
    sections = [
        ("What ran", (
            f"A {cfg.tile_rows}x{cfg.tile_cols} differential 1T1R tile "
            f"({2 * cfg.tile_cols} physical columns, "
            f"{describe_read(spec, spec.rows, spec.cols)}, "
            f"{spec.adc.bits}-bit ADC) simulated with `{cfg.reference}` on {cfg.n_cal_maps} "
            f"calibration maps and {cfg.n_test_maps} held-out maps, {cfg.n_vectors} input "
            f"vectors each; surrogate calibrated (access transistor r_on = "
            f"{s['r_on_ohm']:.1f} ohm); a LIF reservoir (hidden {cfg.hidden}, T {cfg.n_steps}) on "
            f"`{cfg.dataset}` ({cfg.n_train}/{cfg.n_val}/{cfg.n_test} train/val/test samples) "
            "with every VMM through the surrogate, tiled over the calibrated tile size and "
            "linearised for the drive the reservoir measured on up to 200 training samples "
            "(per-row chord, see docs/tile.md); a softmax readout trained with Adam. Nothing "
            "was selected on the test split.")),
        ("Tile VMM error on held-out maps (vs the circuit simulation)",
         markdown_table(err) + "\n\nOne LSB is one code of a column's ADC; current errors are "
         "before quantisation, code errors after it. ![](tile_error.png)"),
        ("Accuracy", markdown_table(acc) + "\n\n![](accuracy.png)"),
        ("Energy per inference", (
            "Both modes from the activity this run measured (surrogate-backed reservoir), "
            "the map on one macro; `rram-cosim energy` gives the full report with the ADC "
            "sweep and the training cost.\n\n" + markdown_table(energy.totals)
            + "\n\nBeside the paper's figures:\n\n" + markdown_table(energy.paper)
            + "\n\n![](energy_breakdown.png)\n\nPer component:\n\n"
            + markdown_table(energy.components))),
        ("Energy constants and their sources", markdown_table(energy.constants)),
        ("Timings (s)", markdown_table(pd.DataFrame([summary["timings_s"]]))),
    ]
    write_report(run.path / "report.md", f"rram-cosim demo: {cfg.name}", sections)


run = run_demo
