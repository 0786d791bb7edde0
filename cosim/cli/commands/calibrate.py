"""``rram-cosim calibrate``: calibrate a tile surrogate on circuit simulations.

``rram-cosim calibrate --rows 64 --cols 64 [spec options] --out surrogate.json`` sets the TIA
gain from the corner map (every cell at ``--g-full-scale``, all rows on; unless ``--r-f`` is
given), simulates calibration maps and spike inputs of every density in ngspice (``--reference
spice``, in parallel, cached by deck hash) or the nodal engine (``--reference nodal``), fits
the surrogate, measures its error on held-out maps next to the ideal G.V model's, and writes
the surrogate (JSON: TileSpec, fitted transistor, validity domain, provenance, held-out error,
read energy per VMM) to ``--out``.

The run folder ``runs/<name>/`` (root: ``--runs``) holds ``config.json``, ``errors.csv``,
``energy.csv``, ``error.png`` and ``report.md``. Spec options are in the units their names
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
    sur.save(cfg.out)
    errors = result.errors
    save_table(errors, run.path / "errors.csv")
    energy = pd.DataFrame([result.energy]) if result.energy else pd.DataFrame()
    save_table(energy, run.path / "energy.csv")
    save_figure(_error_plot(result), run.path / "error.png")
    lsb = current_lsb_ua(result.spec)
    e = errors.set_index("backend")
    summary = {
        "surrogate_file": str(Path(cfg.out).resolve()),
        "i_full_scale_ua": result.i_full_scale_ua, "r_f_ohm": result.spec.r_f_ohm,
        "lsb_ua": lsb, "errors": errors.to_dict(orient="records"),
        "transistor": sur.summary(), "energy": result.energy,
        "timings_s": dict(result.timings_s, total=time.perf_counter() - t_start),
    }
    summary["headline"] = {
        "surrogate": summary["surrogate_file"],
        "surrogate_rms_lsb": float(e.loc["surrogate", "rms_lsb"]),
        "surrogate_max_pct_fs": float(e.loc["surrogate", "max_pct_fs"]),
        "ideal_rms_lsb": float(e.loc["ideal", "rms_lsb"]),
    }
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
            f"{lsb * 1e3:.3f} nA. Surrogate written to `{cfg.out}`.")),
        ("Held-out error (surrogate and ideal G.V vs the circuit)",
         markdown_table(errors) + "\n\nCurrent errors are before quantisation, in LSB of "
         "current; code errors after the TIA and ADC. ![](error.png)"),
        ("Access transistor", markdown_table(pd.DataFrame([s]))),
        ("Read energy per VMM", (markdown_table(energy) if len(energy) else
                                 "Not measured by this reference.")),
        ("Timings (s)", markdown_table(pd.DataFrame([summary["timings_s"]]))),
    ]
    write_report(run.path / "report.md", f"rram-cosim calibrate: {cfg.name}", sections)
    run.finish()
    return summary


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
