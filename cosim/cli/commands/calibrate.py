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
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ....analysis.report import (
    markdown_table,
    save_figure,
    save_table,
    tile_error_figure,
    write_report,
)
from ....models.checks import check_choice, check_int, check_range
from ....models.errors import ConfigError
from ....models.params import AdcSpec, DacSpec, DeviceParams, MosfetSpec, TiaSpec, TileSpec
from ....models.tile.periphery import current_lsb_ua
from ...engines.calibrate import calibrate_tile
from ..runs import RunDir

COMMAND = "calibrate"
HELP = ("calibrate a tile surrogate on ngspice (or nodal) simulations of a rows x cols "
        "differential 1T1R tile: held-out error table and read energy; --out FILE.json")
ROOT_OPTION = "--runs"


@dataclass(frozen=True)
class TileSpecOptions:
    """TileSpec fields as command-line options (units in the names; None: the default)."""

    rows: int = 64
    cols: int = 64
    r_wire_ohm: float = 1.0  # TileSpec default (40 nm interconnect)
    v_read_v: float = 0.2
    v_gate_read_v: float = 1.1
    g_full_scale_us: float = 30.0
    temperature_c: float = 27.0
    t_read_s: float = 1e-6
    card: str = "level1"  # level1 | ptm45 | custom
    lib_path: str = ""  # card=custom: your PDK model file
    model_name: str = ""  # card=custom: the NMOS model in it
    kp: float | None = None  # A/V^2 (level-1 card)
    vto: float | None = None  # V
    w: float | None = None  # m
    l: float | None = None  # m
    dac_bits: int = 16
    dac_r_out_ohm: float = 1.0
    adc_bits: int = 14
    adc_v_full_scale_v: float = 2.4
    tia_a_ol: float = 3.16e6
    tia_v_offset_v: float = 0.5e-3
    r_f: float | None = None  # ohm; None: full scale at the calibration set's largest current

    def tile_spec(self) -> TileSpec:
        """The TileSpec these options describe (validated by the dataclasses)."""
        mos: dict[str, Any] = {"card": self.card}
        if self.card == "custom":
            mos.update(lib_path=self.lib_path or None, model_name=self.model_name or None)
        for opt, fld in (("kp", "kp_a_per_v2"), ("vto", "vto_v"), ("w", "w_m"), ("l", "l_m")):
            if getattr(self, opt) is not None:
                mos[fld] = getattr(self, opt)
        return TileSpec(
            rows=self.rows, cols=self.cols, r_wire_ohm=self.r_wire_ohm, v_read_v=self.v_read_v,
            v_gate_read_v=self.v_gate_read_v, g_full_scale_us=self.g_full_scale_us,
            temperature_c=self.temperature_c, t_read_s=self.t_read_s,
            mosfet=MosfetSpec(**mos),
            dac=DacSpec(bits=self.dac_bits, r_out_ohm=self.dac_r_out_ohm),
            adc=AdcSpec(bits=self.adc_bits, v_full_scale_v=self.adc_v_full_scale_v),
            tia=TiaSpec(a_ol=self.tia_a_ol, v_offset_v=self.tia_v_offset_v, r_f_ohm=self.r_f))


@dataclass(frozen=True)
class CalibrateConfig(TileSpecOptions):
    """The ``calibrate`` run: tile spec options, reference engine, sizes, output file."""

    name: str = "calibrate"
    out: str = "surrogate.json"  # the surrogate file (JSON)
    reference: str = "spice"  # spice (ngspice, in parallel) | nodal
    n_maps: int = 3  # calibration maps (plus the full-scale corner map)
    n_test_maps: int = 2  # held-out maps
    n_vectors: int = 32  # input vectors per map
    workers: int = 0  # ngspice worker processes; 0: one per CPU
    seed: int = 0
    fit_transistor: str = "auto"  # auto (level-1: card values) | yes | no

    def __post_init__(self) -> None:
        o = "CalibrateConfig"
        check_choice(o, "reference", self.reference, ["spice", "nodal"])
        check_choice(o, "fit_transistor", self.fit_transistor, ["auto", "yes", "no"])
        check_int(o, "n_maps", self.n_maps, 1, 1000)
        check_int(o, "n_test_maps", self.n_test_maps, 1, 1000)
        check_int(o, "n_vectors", self.n_vectors, 2, 100_000)
        check_int(o, "workers", self.workers, 0, 4096)
        check_int(o, "seed", self.seed, 0, 2**63 - 1)
        check_range(o, "r_wire_ohm", self.r_wire_ohm, 0, 1e4, unit="ohm")
        if not self.out.endswith(".json"):
            raise ConfigError(
                f"The 'out' parameter of CalibrateConfig names the surrogate file, written as "
                f"JSON. Got {self.out!r}; use a name ending in .json.")
        self.tile_spec()  # validate the spec options now


def _error_plot(result) -> Any:
    spec = result.spec
    ref = np.concatenate([np.stack([s.i_pos_ua, s.i_neg_ua]).ravel() for s in result.held_out])
    preds = {name: np.concatenate([np.stack(q).ravel() for q in p])
             for name, p in result.predictions.items()}
    return tile_error_figure(
        ref, preds, current_lsb_ua(spec),
        f"{spec.rows}x{spec.cols} tile, r_wire {spec.r_wire_ohm} ohm: held-out maps")


def run_calibrate(cfg: CalibrateConfig, runs_root: str | Path = "runs", *,
                  progress: bool = True) -> dict[str, Any]:
    """Calibrate, write the surrogate to ``cfg.out`` and the run folder; return the summary."""
    t_start = time.perf_counter()
    run = RunDir.create(runs_root, cfg.name)
    run.write_config(COMMAND, asdict(cfg))
    spec = cfg.tile_spec()
    opts: dict[str, Any] = {}
    if cfg.reference == "spice":
        opts = {"n_workers": cfg.workers or None, "progress": progress}
    say = (lambda m: print(f"[calibrate] {m}", flush=True)) if progress else None
    fit = {"auto": None, "yes": True, "no": False}[cfg.fit_transistor]
    result = calibrate_tile(spec, reference=cfg.reference, n_maps=cfg.n_maps,
                            n_test_maps=cfg.n_test_maps, n_vectors=cfg.n_vectors,
                            seed=cfg.seed, device=DeviceParams(), reference_options=opts,
                            progress=say, fit_transistor=fit)
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
            f"columns, r_wire {spec.r_wire_ohm} ohm/segment, {spec.mosfet.card} access "
            f"transistor, {spec.adc.bits}-bit ADC) simulated with `{cfg.reference}`: "
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
    return summary


CONFIG = CalibrateConfig
run = run_calibrate

