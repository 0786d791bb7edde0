"""``rram-cosim energy``: energy per inference, latency, TOPS/W, ADC sweep and training cost.

For one of the paper's networks (``--network nmnist|ntidigits|zeroshot|bmi``, the paper's
sizes) it prices an inference in both modes of :mod:`rram_cosim.analysis.energy`, driven by
measured activity (``--from RUNDIR``, or small default classify runs under
``runs/<name>/activity_runs/``); the steps are :mod:`rram_cosim.cosim.tasks.energy`'s. Writes
``runs/<name>/``: ``config.json``, ``energy_components.csv``, ``energy_totals.csv``,
``paper_comparison.csv``, ``energy_constants.csv``, ``adc_sweep.csv``, ``training_cost.csv``,
``activity_used.csv``, ``spice_crosscheck.csv`` (with ``--array-source ngspice``),
``energy_breakdown.png``, ``adc_sweep.png``, ``summary.json`` and ``report.md`` with the
paper's figures beside ours and what explains every difference
(:mod:`rram_cosim.analysis.energy_text`).

Library use (the demo): :func:`rram_cosim.analysis.energy.energy_report` for the numbers and
:func:`rram_cosim.analysis.energy_plots.breakdown_figure` for the stacked bar plot.

Heavy libraries (pandas, matplotlib, scipy) and the task load inside :func:`run_energy`, so
building the command line's parser imports only the configuration.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....analysis.energy_constants import PAPER_FIGURES
from ...tasks.configs.energy import EnergyConfig
from ..runs import RunDir, require_complete

if TYPE_CHECKING:
    import pandas as pd

    from ....analysis import energy as en

COMMAND = "energy"
HELP = ("energy per inference (paper and physical modes, per component), latency, TOPS/W, "
        "ADC-resolution sweep and training cost, beside the paper's figures")
CONFIG = EnergyConfig


def run_energy(cfg: EnergyConfig, runs_root: str | Path = "runs", *,
               progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Write ``runs_root/<cfg.name>/`` (tables, plots, report.md); returns the summary."""
    from ....analysis.energy_plots import adc_sweep_figure, breakdown_figure
    from ....analysis.report import save_figure, save_table
    from ...tasks.energy import price_energy, quiescent_share

    t0 = time.perf_counter()
    if cfg.from_run:
        require_complete(cfg.from_run, "--from")
    run = RunDir.create(runs_root, cfg.name, command=COMMAND, overwrite=overwrite)
    run.write_config(COMMAND, asdict(cfg))
    res = price_energy(cfg, run.path / "activity_runs", _activity_run, progress=progress)
    rep, sweep, crosscheck = res.report, res.sweep, res.crosscheck
    if crosscheck is not None:
        save_table(crosscheck, run.path / "spice_crosscheck.csv")
    save_table(rep.components, run.path / "energy_components.csv")
    save_table(rep.totals, run.path / "energy_totals.csv")
    save_table(rep.paper, run.path / "paper_comparison.csv")
    save_table(rep.constants, run.path / "energy_constants.csv")
    save_table(sweep, run.path / "adc_sweep.csv")
    save_table(res.training, run.path / "training_cost.csv")
    save_table(res.activity, run.path / "activity_used.csv")
    save_figure(breakdown_figure(rep), run.path / "energy_breakdown.png")
    save_figure(adc_sweep_figure(sweep, cfg.network), run.path / "adc_sweep.png")
    wall = time.perf_counter() - t0
    _report(run, cfg, rep, sweep, res.training, res.training_notes, crosscheck, res.measured,
            res.activity, res.levels, wall)
    tot = dict(zip(rep.totals.system, rep.totals.energy_uj))
    fig = PAPER_FIGURES[cfg.network]
    headline = {
        "network": cfg.network,
        "paper mode hybrid/digital uJ": [round(tot["hybrid (paper mode)"], 4),
                                         round(tot["digital (paper mode)"], 3)],
        "paper mode ratio (ours, paper)": [
            round(tot["digital (paper mode)"] / tot["hybrid (paper mode)"], 2), fig.ratio],
        "physical uJ (hybrid, dense, event-driven)": [
            round(tot["hybrid (physical)"], 4), round(tot["digital dense (physical)"], 3),
            round(tot["digital event-driven (physical)"], 4)],
    }
    if crosscheck is not None:
        # the total is checked with the priced periphery (integrated by default, where the
        # TIA quiescent power is a minority share), the dynamic part always
        cc = crosscheck.set_index("component")
        headline[f"ngspice cross-check max error % (total, dynamic), {cfg.periphery} "
                 "periphery"] = [round(float(cc.loc[k, "max_abs_rel_err_pct"]), 2)
                                 for k in ("array + TIA (total)",
                                           "array + TIA output (dynamic)")]
        headline["ngspice cross-check TIA quiescent share of the total %"] = round(
            quiescent_share(crosscheck) * 100, 1)
    summary = {"headline": headline, "totals": rep.totals.to_dict(orient="records"),
               "paper": rep.paper.to_dict(orient="records"),
               "adc_sweep": sweep.to_dict(orient="records"), "wall_s": wall}
    run.write_json("summary.json", summary)
    run.finish()
    return summary


def _activity_run(root: Path, name: str) -> RunDir:
    """The folder of a default classify run (under this run's folder, fresh)."""
    return RunDir.create(root, name, command="classify")


def _report(run: RunDir, cfg: EnergyConfig, rep: en.EnergyReport, sweep: pd.DataFrame,
            train: pd.DataFrame, train_notes: list[str], crosscheck: pd.DataFrame | None,
            measured: en.MeasuredRead | None, act_tab: pd.DataFrame,
            levels: dict[str, tuple[float, float]], wall: float) -> None:
    from ....analysis.energy_text import explain
    from ....analysis.report import markdown_table, write_report
    from ...tasks.energy import quiescent_share

    comp = rep.components
    per_comp = comp[["system", "encoder", "component", "count", "unit_energy_j", "energy_j"]]
    sizes = ", ".join(f"{e}: {s.n_in} in, {s.hidden} hidden, {s.n_steps} steps, {s.n_out} out"
                      for e, s in rep.network.encoders)
    tr_cols = ["task", "model", "inference_ops", "training_ops", "paper_compatible_ops",
               "ratio_paper_compatible", "ratio_full_bptt", "paper_ratio", "paper_ops",
               "diff_pct", "paper_says", "formula"]
    per = ("integrated periphery, the one priced here: on-chip TIA bias and supply, "
           "integrated read time" if cfg.periphery == "integrated"
           else "board periphery, the one priced here")
    cross = ("Not run (array_source = conductance)." if crosscheck is None else (
        f"A {cfg.spice_rows}x{cfg.spice_cols} formed tile ({per}; the deck's TIAs draw their "
        "quiescent current from the supply sources) in ngspice, "
        f"{cfg.spice_vectors} input vectors from the measured density up to all rows on. "
        "The physical model (ideal cells, no IR drop) against the deck's measured supply "
        "energy per VMM. The TIA quiescent current draws "
        f"{quiescent_share(crosscheck) * 100:.0f} % of the measured total, so the total row "
        "tests the array and output stage too (the dynamic row tests them alone):\n\n"
        + markdown_table(crosscheck)
        + f"\n\nMeasured per driven row and physical column: array "
          f"{measured.p_array_w:.3e} W, column current {measured.i_col_a:.3e} A (used for the "
          "array and TIA output stage of the physical hybrid)."))
    sections = [
        ("What ran", (
            f"Network `{cfg.network}` at the paper's sizes ({sizes}); activity: see below; "
            f"energy tile: {'the whole map on one macro' if not cfg.energy_tile_rows else f'{cfg.energy_tile_rows}x{cfg.energy_tile_cols} tiles'}; "
            f"read scheme: {cfg.rows_per_read or 'all'} rows per read, "
            f"{cfg.cols_per_read or 'all'} outputs sensed per read ({cfg.unsensed} when not), "
            f"{cfg.sense} sensing, rows driven from {cfg.drive} end(s), "
            f"{cfg.outputs_per_adc or 'all'} output(s) per ADC; "
            f"periphery `{cfg.periphery}`; array energy from `{cfg.array_source}`. "
            f"Wall time {wall:.0f} s.")),
        ("The paper's figures beside ours", markdown_table(rep.paper)),
        ("What explains every difference", "\n".join(f"- {s}" for s in
                                                      explain(rep, sweep, levels))),
        ("Totals, latency and TOPS/W", markdown_table(rep.totals) + (
            "\n\nTOPS/W counts the dense-equivalent operations (2 per MAC of the reservoir and "
            "heads) over the energy, the same operations for every system. Latency: hybrid "
            "runs one VMM per step (the read scheme's reads one after another, every tile in "
            "parallel, serial conversions where outputs share an ADC), then the LIF updates on "
            "the digital lanes; "
            "digital systems run their MACs (or accumulations) on the lanes.")),
        ("Per component", markdown_table(per_comp) + "\n\n![](energy_breakdown.png)"),
        ("ADC-resolution sweep", markdown_table(sweep) + "\n\n![](adc_sweep.png)"),
        ("Array and TIA: ngspice cross-check", cross),
        ("Activity used", markdown_table(act_tab)),
        ("Training cost (operations per sample and iteration)",
         markdown_table(train[tr_cols]) + "\n\n" + "\n".join(f"- {s}" for s in train_notes)),
        ("Technology constants (override with --constants name=value,...)",
         markdown_table(rep.constants)),
    ]
    write_report(run.path / "report.md", f"rram-cosim energy: {cfg.name}", sections)


run = run_energy
