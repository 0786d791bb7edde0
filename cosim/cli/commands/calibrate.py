"""``rram-cosim calibrate``: calibrate a tile surrogate on circuit simulations.

``rram-cosim calibrate --rows 64 --cols 64 [spec options] --out surrogate.json`` sets the TIA
gain from the corner map (every cell at ``--g-full-scale``, all rows on; unless ``--r-f`` is
given), simulates calibration maps and spike inputs of every density in ngspice (``--reference
spice``, in parallel, cached by deck hash) or the nodal engine (``--reference nodal``), fits
the surrogate, measures its error on held-out maps next to the ideal G.V model's, and writes
the surrogate (JSON: TileSpec, fitted transistor, validity domain, provenance, held-out error,
read energy per VMM) to ``--out``.

The held-out set also holds structured corner cases (every cell at full scale or at the low
end, a checkerboard, gradients, G+ only; all rows on, one row, graded); the report gives the
error per family and the worst case. When the worst case misses the bars (RMS <= 8 LSB, max
<= 0.5 % FS) the surrogate goes to ``runs/<name>/surrogate.rejected.json`` instead of
``--out`` and the command exits 1 naming the families that failed, unless ``--accept-error``
is given: the file is then written with the flag set, and ``bind`` warns whenever it is used.

The run folder ``runs/<name>/`` (root: ``--runs``) holds ``config.json``, ``errors.csv``,
``families.csv``, ``energy.csv``, ``error.png`` and ``report.md``. Spec options are in the units their names
carry (ohm, V, uS, s, degC); the transistor's ``--kp`` in A/V^2, ``--w``/``--l`` in m.

Heavy libraries (pandas, matplotlib, scipy) and the calibration
(:mod:`rram_cosim.cosim.tasks.calibrate`) load inside :func:`run_calibrate`, so building the
command line's parser imports only the configuration.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....models.tile.periphery import current_lsb_ua
from ...tasks.configs.calibrate import CalibrateConfig
from ...tasks.configs.common import describe_read
from ..runs import RunDir, ensure_output_file

if TYPE_CHECKING:
    from ...tasks.calibrate import CalibrationResult

COMMAND = "calibrate"
HELP = ("calibrate a tile surrogate on ngspice (or nodal) simulations of a rows x cols "
        "differential 1T1R tile: held-out error table and read energy; --out FILE.json")
ROOT_OPTION = "--runs"
CONFIG = CalibrateConfig


def run_calibrate(cfg: CalibrateConfig, runs_root: str | Path = "runs", *,
                  progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Calibrate, write the surrogate to ``cfg.out`` and the run folder; return the summary."""
    import pandas as pd

    from ....analysis.report import markdown_table, save_figure, save_table, write_report
    from ...tasks.calibrate import calibrate

    t_start = time.perf_counter()
    ensure_output_file(cfg.out, "--out")
    run = RunDir.create(runs_root, cfg.name, command=COMMAND, overwrite=overwrite,
                        root_option=ROOT_OPTION)
    run.write_config(COMMAND, asdict(cfg))
    spec = cfg.tile_spec()
    result = calibrate(cfg, progress=progress)
    sur = result.surrogate
    rejected = not (result.meets_bars or cfg.accept_error)
    written = run.path / "surrogate.rejected.json" if rejected else Path(cfg.out)
    sur.save(written)
    errors = result.errors
    save_table(errors, run.path / "errors.csv")
    save_table(result.families, run.path / "families.csv")
    energy = pd.DataFrame([result.energy]) if result.energy else pd.DataFrame()
    save_table(energy, run.path / "energy.csv")
    save_figure(_error_plot(result), run.path / "error.png")
    lsb = current_lsb_ua(result.spec)
    e = errors.set_index("backend")
    worst = result.worst or {}
    summary = {
        "surrogate_file": str(written.resolve()),
        "i_full_scale_ua": result.i_full_scale_ua, "r_f_ohm": result.spec.r_f_ohm,
        "lsb_ua": lsb, "errors": errors.to_dict(orient="records"),
        "families": result.families.to_dict(orient="records"), "worst": worst,
        "transistor": sur.summary(), "energy": result.energy,
        "timings_s": dict(result.timings_s, total=time.perf_counter() - t_start),
    }
    summary["headline"] = {
        "surrogate": summary["surrogate_file"],
        "surrogate_rms_lsb": float(e.loc["surrogate", "rms_lsb"]),
        "surrogate_max_pct_fs": float(e.loc["surrogate", "max_pct_fs"]),
        "ideal_rms_lsb": float(e.loc["ideal", "rms_lsb"]),
        "worst_rms_lsb": worst.get("rms_lsb"), "worst_max_pct_fs": worst.get("max_pct_fs"),
        "meets_bars": result.meets_bars, "error_accepted": sur.error_accepted_,
    }
    if rejected:
        summary["incomplete"] = (
            f"the surrogate's worst-case held-out error misses the bars: "
            f"{'; '.join(worst['failed'])}. It was written to {written}, not {cfg.out}; "
            "recalibrate at an operating point where the tile is closer to linear, or pass "
            "--accept-error to use it anyway (the file then carries the flag).")
    run.write_json("summary.json", summary)
    s = sur.summary()
    sections = [
        ("What ran", (
            f"A {spec.rows}x{spec.cols} differential 1T1R tile ({2 * spec.cols} physical "
            f"columns, {spec.mosfet.card} access transistor, {spec.adc.bits}-bit ADC; read "
            f"scheme: {describe_read(spec, spec.rows, spec.cols)}) simulated with "
            f"`{cfg.reference}`: "
            f"{cfg.n_maps} calibration maps plus the full-scale corner and {cfg.n_test_maps} "
            f"held-out maps, {cfg.n_vectors} input vectors each (densities 0 to 1). The TIA "
            f"feedback resistor is {result.spec.r_f_ohm:.1f} ohm, so the largest calibration "
            f"current, {result.i_full_scale_ua:.2f} uA, is the ADC full scale; one LSB is "
            f"{lsb * 1e3:.3f} nA. Surrogate written to `{written}`.")),
        ("Held-out error (surrogate and ideal G.V vs the circuit)",
         markdown_table(errors) + "\n\nFormed maps. Current errors are before quantisation, "
         "in LSB of current; code errors after the TIA and ADC. ![](error.png)"),
        ("Held-out error per family, and the worst case", _worst_text(result, cfg, written)),
        ("Access transistor", markdown_table(pd.DataFrame([s]))),
        ("Read energy per VMM", (markdown_table(energy) if len(energy) else
                                 "Not measured by this reference.")),
        ("Timings (s)", markdown_table(pd.DataFrame([summary["timings_s"]]))),
    ]
    write_report(run.path / "report.md", f"rram-cosim calibrate: {cfg.name}", sections)
    run.finish()
    return summary


def _worst_text(result: CalibrationResult, cfg: CalibrateConfig, written: Path) -> str:
    """The per-family table and what the worst case means for the file written."""
    from ....analysis.report import markdown_table

    w = result.worst
    if w is None:
        return "No held-out maps: the worst case is unknown."
    head = (f"Worst RMS {w['rms_lsb']:.3g} LSB ({w['rms_family']}), worst error "
            f"{w['max_lsb']:.3g} LSB = {w['max_pct_fs']:.3g} % FS ({w['max_family']}); bars: "
            f"RMS <= {w['bars']['rms_lsb']:g} LSB, max <= {w['bars']['max_pct_fs']:g} % FS a "
            f"read{_per_vmm(w)}. ")
    if w["meets_bars"]:
        verdict = "The bars hold in every family."
    elif cfg.accept_error:
        verdict = (f"**The bars are missed** ({'; '.join(w['failed'])}); accepted with "
                   f"--accept-error: `{written}` carries the flag and bind warns.")
    else:
        verdict = (f"**The bars are missed** ({'; '.join(w['failed'])}): the surrogate was "
                   f"written to `{written}`, not `{cfg.out}`, and the command exits 1.")
    return markdown_table(result.families) + "\n\n" + head + verdict


def _per_vmm(w: dict[str, Any]) -> str:
    """How the bars apply to a VMM of several reads (the errors are per VMM)."""
    n = w.get("reads_per_vmm", 1)
    if n <= 1:
        return ""
    b = w["bars_vmm"]
    return (f"; a VMM here is {n} reads, whose currents add, so its errors are judged against "
            f"{n} x the bars: RMS <= {b['rms_lsb']:g} LSB, max <= {b['max_pct_fs']:g} % FS")


def _error_plot(result: CalibrationResult) -> Any:
    import numpy as np

    from ....analysis.report import tile_error_figure

    spec = result.spec
    ref = np.concatenate([np.stack([s.i_pos_ua, s.i_neg_ua]).ravel() for s in result.held_out])
    preds = {name: np.concatenate([np.stack(q).ravel() for q in p])
             for name, p in result.predictions.items()}
    return tile_error_figure(
        ref, preds, current_lsb_ua(spec),
        f"{spec.rows}x{spec.cols} tile, {spec.r_row_ohm:g}/{spec.r_col_ohm:g} ohm wires, "
        f"{spec.rows_per_read} rows per read: held-out maps")


run = run_calibrate
