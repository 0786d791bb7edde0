"""Design-space sweeps: forming conditions and periphery -> conductance -> accuracy and energy.

A sweep is the product of comma lists (compliance current, forming voltage and width, wire
resistance, ADC bits) times ``chips`` independently formed arrays times ``seeds`` network
seeds. Each (point, chip, seed) is one *unit*:

1. **form** the (n_in + hidden) x 2 hidden array with the numpy twin at the point's pulse
   (:func:`rram_cosim.models.device.breakdown.form_cells`); physical column 2k is G+ of weight column
   k, 2k+1 its G-, as on the tile;
2. **spot check** ``spot_cells`` cells of that array in ngspice with the same per-cell draws
   (:func:`rram_cosim.cosim.spice.forming.simulate_cells`, deck cache under the sweep's cache folder)
   and record the twin's relative error on them;
3. **surrogate**: the tile spec (rows, cols, wire, ADC bits) and the point's *conductance
   domain* (the range a pilot array formed at the point's pulse reaches, widened and rounded
   outward to quarter octaves, so chips and seeds of one point share it) name a calibration by
   content hash; the surrogate is calibrated on the nodal engine only when no file of that hash
   is in the cache (``<cache>/surrogates/<hash>.json``), by tasks of the sweep's executor
   before the point's units run (below). The ADC full scale follows the domain:
   the corner map (every cell at the domain's top, all rows on) lands on the last code, or
   with ``adc_range="workload"`` the task's own column currents on the point's pilot array
   set it (what a low-resolution ADC needs);
4. **task**: the LIF reservoir reads the map through the surrogate; threshold, decay and levels
   are chosen on validation (the threshold grid is scaled by the chip's weight spread relative
   to the default forming's, ``v_th_scaled``), the chosen network runs the test split once.
   ``zeroshot:image+neural-sim`` runs the zero-shot protocol (:mod:`rram_cosim.cosim.tasks.zeroshot`,
   honest selection) on the chip's map: validation accuracy is its selection metric (zero-shot
   top-1 on held-out seen classes), test accuracy the top-1 on the unseen classes;
5. **energy** per inference from the test run's measured activity
   (:func:`rram_cosim.analysis.energy.physical_energy`, hybrid and digital) and the paper's dense
   count (:func:`~rram_cosim.analysis.energy.paper_energy`).

Seeds. A point's seed is a hash of its parameters and the base seed, never of the order of
execution; a chip's cells are drawn from a hash of (base seed, chip index), so chip k is the
same silicon at every point (common random numbers: differences between points are the
conditions, not the draw); the network seed (read noise, readout) hashes the point seed, the
chip and the seed index. The same configuration gives the same table on one worker, on a
process pool or on a Dask cluster.

Caches. Surrogates live in ``<cache>/surrogates/<hash>.json`` and the spot checks' decks in
``<cache>/spice/``, where ``<cache>`` is ``cache_dir`` or ``$RRAM_COSIM_CACHE/sweep``
(``~/.cache/rram-cosim/sweep``), resolved on the machine that runs the unit, so sweeps share
calibrations and a cluster worker never needs the coordinator's paths.

Storage. Every finished unit is one JSON file ``<run>/points/<unit hash>.json`` written
atomically by the process that coordinates the sweep; a rerun of the same command skips the
units whose file exists (failed ones too, unless ``retry_failed``), so an interrupted sweep
resumes and recomputes nothing that finished. A unit that raises is recorded with its error
(status ``failed``) and the sweep goes on.

Execution. The sweep is a task graph (:mod:`rram_cosim.cosim.tasks.sweep_graph`): per point a
set-up task, the calibration's solves in chunks of vectors and its fit, then the point's units.
It runs on ``workers`` local processes (``concurrent.futures``; 1 runs in this process), or on
a Dask distributed cluster when ``scheduler`` is an address (``tcp://HOST:PORT``); the workers
need this package installed. Caches on workers (surrogates, SPICE decks) are only a speed-up:
on a cluster without a shared file system each worker keeps its own.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import itertools
import json
import math
import os
import re
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...analysis.energy import NetworkSize, paper_energy, physical_energy, summarise
from ...models.device.breakdown import cell_values, draw_cells, form_cells
from ...models.errors import ConfigError, DomainWarning
from ...models.io import atomic_write_text, cache_root, writable_cache
from ...models.params import (
    IO_NMOS_25V,
    AdcSpec,
    BreakdownParams,
    FormingConditions,
    LIFParams,
    ReadScheme,
    TileSpec,
    to_dict,
)
from ...models.snn.lsm import run_reservoir
from ...models.tile.clipping import tally_reads
from ...models.tile.ideal import IdealBackend
from ...models.tile.surrogate import TileSurrogate
from ...models.tile.tiling import TiledBackend
from ..engines.calibrate import (
    bind_for_workload,
    with_full_scale,
    workload_full_scale_ua,
)
from ..spice.forming import compare_with_twin, sample_indices, simulate_cells
from .classify import load_task_frames, most_active_lif, select_on_validation
from .configs.sweep import TASKS, SweepConfig
from .seeds import content_hash, derive_seed
from .sweep_calibration import (
    CHUNK_VECTORS,
    CalibrationPlan,
    ChunkSolve,
    calibrate,
    fit_calibration,
    plan_calibration,
)
from .sweep_graph import dask_executor, local_executor, run_graph
from .zeroshot import (
    EncoderView,
    MapLayout,
    ZeroshotConfig,
    lif_grid,
    load_modalities,
    run_protocol,
)

__all__ = [
    "EXECUTION_COLUMNS", "OTHER_PARAMS", "PARAMS", "SWEEP_VERSION", "TASKS", "SweepConfig",
    "SweepResult", "Unit", "conductance_domain", "derive_seed", "pareto_front", "point_summary",
    "run_sweep", "run_unit", "sweep_table", "total_columns", "unit_read_scheme", "units_of",
]

#: Bumped when a unit's result for the same parameters changes (old result files are ignored).
# 2: points carry the read scheme; 3: differential reads offset-calibrated; 4: surrogate reads
# whose TIAs leave their linear range are solved exactly (units whose TIAs clip give other
# results under the same parameters); 5: calibrations solved in chunks of vectors (on maps
# small enough that several vectors share a Newton block, the last bits of a calibration move),
# and a differential read's zero-input reference read once per bound tile, not per VMM (the
# surrogate_reads and share_solved_exactly tallies of differential units change)
SWEEP_VERSION = 5

#: Columns that describe how a unit ran, not what it computed; they differ between runs.
EXECUTION_COLUMNS = ("wall_s", "spot_wall_s", "surrogate_calibrated", "calibration_s",
                     "critical_path_s", "host")

# Weight spread of the default forming (DeviceParams: 14.2 +- 2.46 uS per cell, W = G+ - G-):
# the threshold grid is given for it and scaled by each chip's own spread (v_th_scaled).
_W_STD_REF_US = math.sqrt(2.0) * 2.46

# Fields of SweepConfig that say how to run, not what: left out of the unit hashes.
_EXEC_FIELDS = ("name", "workers", "scheduler", "retry_failed", "cache_dir", "blas_threads")
# The sweep axes: each unit carries its own values of these.
_AXES = ("icc", "v_form", "t_pulse", "r_wire", "wire_width", "adc_bits", "rows_per_read",
         "cols_per_read", "sense", "drive", "chips", "seeds")




@dataclass(frozen=True)
class Unit:
    """One (point, chip, seed) of a sweep; ``key`` names its result file."""

    index: int  # position in grid order (for reading only; seeds never depend on it)
    point: dict[str, Any]  # icc_a, v_form_v, t_pulse_s, r_wire_ohm, adc_bits
    chip: int
    seed: int
    task: dict[str, Any]  # the config without execution fields and axes
    key: str

    @property
    def point_seed(self) -> int:
        return derive_seed("point", self.task["seed"], self.point)

    @property
    def chip_seed(self) -> int:
        return derive_seed("chip", self.task["seed"], self.chip)

    @property
    def net_seed(self) -> int:
        return derive_seed("net", self.point_seed, self.chip, self.seed)


def _task_dict(cfg: SweepConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    for f in _EXEC_FIELDS + _AXES:
        d.pop(f)
    if d["linearise"] == "tangent":
        d.pop("linearise")  # the default before the option existed: older sweeps resume
    return d


def units_of(cfg: SweepConfig) -> list[Unit]:
    """Every unit of the sweep in grid order: seeds vary fastest, then chips, I_cc, the read
    scheme, ADC bits, wire resistance, pulse width and forming voltage."""
    task = _task_dict(cfg)
    out = []
    grid = itertools.product(cfg.v_form, cfg.t_pulse, cfg.wire_ohms(), cfg.adc_bits,
                             cfg.read_points(), cfg.icc, range(cfg.chips), range(cfg.seeds))
    for k, (vf, tp, rw, bits, (rp, cp, se, dr), icc, chip, seed) in enumerate(grid):
        point = {"icc_a": float(icc), "v_form_v": float(vf), "t_pulse_s": float(tp),
                 "r_wire_ohm": float(rw), "adc_bits": int(bits), "rows_per_read": int(rp),
                 "cols_per_read": int(cp), "sense": str(se), "drive": str(dr)}
        key = content_hash({"v": SWEEP_VERSION, "point": point, "chip": chip, "seed": seed,
                     "task": task})[:24]
        out.append(Unit(k, point, chip, seed, task, key))
    return out


# -- one unit --------------------------------------------------------------------------------
def _conditions(unit: Unit) -> FormingConditions:
    p, t = unit.point, unit.task
    # forming uses the 2.5 V I/O select transistor, as `form` does
    # (rram_cosim.cosim.spice.forming.pulse_conditions)
    return FormingConditions(v_form_v=p["v_form_v"], t_pulse_s=p["t_pulse_s"],
                             i_cc_a=p["icc_a"], t_edge_s=t["t_edge"], t_step_s=t["t_step"],
                             mosfet=IO_NMOS_25V)


def _quarter_octave(x: float, up: bool) -> float:
    k = math.log2(x) * 4.0
    return 2.0 ** ((math.ceil(k) if up else math.floor(k)) / 4.0)


def conductance_domain(shape: tuple[int, int], params: BreakdownParams,
                       cond: FormingConditions, seed: int
                       ) -> tuple[tuple[float, float, float, float], np.ndarray]:
    """The conductance range (uS) a surrogate must cover at these forming conditions.

    A pilot array of ``shape`` is formed with a seed of its own; its range, widened (x0.5 at
    the bottom, x1.25 at the top: other chips reach further tails) and rounded outward to
    quarter octaves, is the domain.

    Returns
    -------
    domain : tuple
        ``(lo, hi, mean, std)`` in uS: the domain and the pilot's mean and standard deviation
        (calibration maps are drawn from them).
    pilot : numpy.ndarray, shape ``shape``
        The pilot array's conductances (uS).
    """
    pilot = form_cells(cell_values(draw_cells(shape, np.random.default_rng(seed)), params,
                                   cond.mosfet), params, cond).g_us
    lo = _quarter_octave(max(0.5 * float(pilot.min()), 1e-6), up=False)
    hi = _quarter_octave(1.25 * float(pilot.max()), up=True)
    return (lo, hi, round(float(pilot.mean()), 1), round(float(pilot.std()), 1)), pilot


def _workload_spec(unit: Unit, spec: TileSpec, pilot: np.ndarray) -> TileSpec:
    """``spec`` with the ADC full scale fitted to the task's column currents (adc_range
    'workload', :func:`rram_cosim.cosim.engines.calibrate.workload_full_scale_ua`).

    Measured with the ideal backend on the point's pilot array (not the chip: every chip and
    seed of a point then shares the range, and the surrogate), at the grid point with the most
    activity (lowest scaled threshold, highest decay and levels), on up to 200 training samples.
    """
    t = unit.task
    frames, _, audio, _ = _frames(t["task"], t["data_seed"], (t["n_train"], t["n_val"],
                                                              t["n_test"]), t["n_steps"],
                                  t["crop"])
    gp, gn = pilot[:, 0::2], pilot[:, 1::2]
    scale = _v_th_scale(gp - gn, t["v_th_scaled"])
    lif = most_active_lif(t["hidden"], _grid(t, audio, scale))
    backend: Any = IdealBackend(spec)
    if t["tile_rows"]:
        backend = TiledBackend(backend, t["tile_rows"], t["tile_cols"])
    i_fs = workload_full_scale_ua(backend.bind(gp, gn), frames["train"][:200], lif,
                                  np.random.default_rng(derive_seed("workload", unit.point)))
    return with_full_scale(spec, i_fs)


def _v_th_scale(w_us: np.ndarray, scaled: bool) -> float:
    """Threshold scale: the weights' spread relative to the default forming's (floored, so a
    chip where nothing formed, w = 0, still runs, at chance)."""
    return max(float(np.std(w_us)) / _W_STD_REF_US, 1e-3) if scaled else 1.0


def surrogate_key(spec: TileSpec, domain: tuple[float, float, float, float], cal_maps: int,
                  cal_vectors: int) -> str:
    """The cache key of the surrogate of ``spec`` over ``domain``."""
    lo, hi, mean, std = domain
    return content_hash({"v": SWEEP_VERSION, "spec": to_dict(spec),
                         "domain": [lo, hi, mean, std], "cal_maps": cal_maps,
                         "cal_vectors": cal_vectors, "reference": "nodal",
                         "chunk_vectors": CHUNK_VECTORS})[:24]


def _surrogate_path(cache: Path, key: str) -> Path:
    path = cache / "surrogates" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _cached_surrogate(path: Path) -> str | None:
    """The surrogate file's text when it loads, else None (absent, or another version)."""
    try:
        _load_surrogate(str(path))
        return path.read_text()
    except (OSError, ValueError, KeyError, ConfigError):
        return None


def _surrogate(spec: TileSpec, domain: tuple[float, float, float, float], cal_maps: int,
               cal_vectors: int, cache: Path) -> tuple[TileSurrogate, str, bool, float]:
    """The surrogate for ``spec`` over ``domain`` from the cache, or calibrated and stored:
    the path of a unit run on its own. In a sweep, the calibration runs as tasks before the
    point's units (:mod:`rram_cosim.cosim.tasks.sweep_graph`) and they never get here.

    Returns the surrogate, its hash, whether it was calibrated now, and the calibration time.
    """
    key = surrogate_key(spec, domain, cal_maps, cal_vectors)
    path = _surrogate_path(cache, key)
    # one calibration per key: a process that needs a surrogate another one is calibrating
    # waits for it instead of doing the same work
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _cached_surrogate(path) is not None:
                return _load_surrogate(str(path)), key, False, 0.0
            sur, cal_s = calibrate(spec, domain, cal_maps, cal_vectors, key)
            sur.save(path)
            return sur, key, True, cal_s
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@functools.lru_cache(maxsize=8)
def _load_surrogate(path: str) -> TileSurrogate:
    return TileSurrogate.load(path)


@functools.lru_cache(maxsize=4)
def _frames(task: str, data_seed: int, sizes: tuple[int, int, int], n_steps: int,
            crop: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], bool, int]:
    _, frames, labels, audio, steps = load_task_frames(task, data_seed, sizes, n_steps, crop)
    return frames, labels, audio, steps


def _spot_check(unit: Unit, params: BreakdownParams, cond: FormingConditions, draws: Any,
                twin: Any, cache: Path) -> dict[str, Any]:
    """Form ``spot_cells`` cells of the chip in ngspice and compare them with the twin."""
    n = int(unit.task["spot_cells"])
    if n == 0:
        return {"spot_cells": 0}
    shape = draws.shape
    idx = sample_indices(shape, min(n, int(np.prod(shape))),
                         np.random.default_rng(derive_seed("spot", unit.chip_seed)))
    vals = cell_values(draws.take(idx), params, cond.mosfet)
    sp = simulate_cells(vals, params, cond, n_workers=1, cache_dir=cache / "spice",
                        progress=False)
    cmp = compare_with_twin(sp, twin.g_us.ravel()[idx], twin.formed.ravel()[idx])
    return {"spot_cells": int(idx.size), "spot_compared": cmp["n_compared"],
            "spot_median_rel_diff": cmp["median_rel_diff"],
            "spot_max_rel_diff": cmp["max_rel_diff"], "spot_failed": cmp["n_failed"],
            "spot_formed_mismatch": cmp["n_formed_mismatch"], "spot_wall_s": sp.wall_time_s}


def _slug(text: str) -> str:
    """Column-name form of an energy component or system: its name before any '('."""
    return re.sub(r"[^a-z0-9]+", "_", text.split("(")[0].lower()).strip("_")


def _energy(activity: Any, spec: TileSpec, gp: np.ndarray, gn: np.ndarray, n_classes: int,
            lif: LIFParams) -> dict[str, float]:
    """Hybrid energy per component (``e_<component>_j``), the hybrid total (``e_hybrid_uj``)
    and every other system's total (``e_total_<system>_uj``), per inference; the array reads'
    latency (``latency_us``: time steps x one VMM's reads) and ADC conversions per inference."""
    g_row_s = float((gp + gn).sum(axis=1).mean() * 1e-6)
    phys = physical_energy(activity, spec, g_row_s, n_classes, in_level=lif.in_level,
                           rec_level=lif.rec_level)
    paper = paper_energy(NetworkSize(n_in=activity.n_in, hidden=activity.hidden,
                                     n_steps=activity.n_steps, n_out=n_classes))
    out: dict[str, float] = {
        "latency_us": activity.n_steps * phys.attrs["t_vmm_s"] * 1e6,
        "conversions": float(activity.n_steps * phys.attrs["conversions_per_vmm"])}
    hybrid = phys[phys["system"].str.startswith("hybrid")]
    for comp, e in hybrid.groupby("component", sort=False)["energy_j"].sum().items():
        out[f"e_{_slug(str(comp))}_j"] = float(e)
    for r in summarise(phys, paper).itertuples():
        system = str(r.system)
        paper_mode = "paper" in system or getattr(r, "mode", "") == "paper"
        if system.startswith("hybrid") and not paper_mode:
            out["e_hybrid_uj"] = float(r.energy_uj)
        else:
            out[f"e_total_{_slug(system)}{'_paper' if paper_mode else ''}_uj"] = \
                float(r.energy_uj)
    return out


def _grid(t: dict[str, Any], audio: bool, v_th_scale: float
          ) -> list[tuple[float, float, float, float]]:
    """The task's (v_th, decay, in_level, rec_level) grid, thresholds scaled by the chip."""
    decays = tuple(t["decay"]) or ((0.97,) if audio else (0.9,))
    return list(itertools.product([float(v) * v_th_scale for v in t["v_th"]], decays,
                                  t["in_level"], t["rec_level"]))


def _classify(unit: Unit, backend: Any, gp: np.ndarray, gn: np.ndarray, w_scale: float,
              rng_seed: int) -> tuple[dict[str, Any], Any, LIFParams, int]:
    t = unit.task
    frames, labels, audio, _ = _frames(t["task"], t["data_seed"],
                                       (t["n_train"], t["n_val"], t["n_test"]), t["n_steps"],
                                       t["crop"])
    n_classes = int(max(lab.max() for lab in labels.values()) + 1)
    grid = _grid(t, audio, w_scale)
    if t.get("linearise", "tangent") == "workload":
        tile = bind_for_workload(backend, gp, gn, frames["train"][:200],
                                 most_active_lif(t["hidden"], grid),
                                 np.random.default_rng([rng_seed, 5]))
    else:
        tile = backend.bind(gp, gn)
    val, lif, _, clf = select_on_validation(tile, frames, labels, grid,
                                            t["hidden"], n_classes, rng_seed,
                                            epochs=t["readout_epochs"])
    feats_test, act = run_reservoir(tile, frames["test"], lif,
                                    np.random.default_rng([rng_seed, 2]))
    test = float(np.mean(clf.predict(feats_test) == labels["test"]))
    return ({"val_acc": float(val), "test_acc": test, "v_th": lif.v_th, "decay": lif.decay,
             "in_level": lif.in_level, "rec_level": lif.rec_level,
             "spikes_per_neuron": float(feats_test.mean()), "n_test": len(feats_test)},
            act, lif, n_classes)


def _input_rows(unit: Unit) -> int:
    """Input rows of the task's map: the classifier's inputs, or both zero-shot encoders'."""
    t = unit.task
    if t["task"].startswith("zeroshot:"):
        image, other = _zeroshot_data(**_zeroshot_data_args(t))
        return int(image.n_in + other.n_in)
    frames, _, _, _ = _frames(t["task"], t["data_seed"], (t["n_train"], t["n_val"],
                                                          t["n_test"]), t["n_steps"], t["crop"])
    return int(frames["train"].shape[2])


# -- the zero-shot task (the zero-shot protocol on the chip's map) --------------------------------
def _zeroshot_data_args(t: dict[str, Any]) -> dict[str, Any]:
    return {"data_seed": t["data_seed"], "n_train": t["n_train"], "n_val": t["n_val"],
            "n_test": t["n_test"], "n_steps": t["n_steps"], "crop": t["crop"]}


@functools.lru_cache(maxsize=2)
def _zeroshot_data(**kw: Any) -> tuple[Any, Any]:
    return load_modalities(ZeroshotConfig(image="digits-events", other="neural-sim", **kw))


@dataclass(frozen=True)
class _ChipBackend:
    """The chip as a backend: the zero-shot protocol binds the network map it draws; a sweep
    runs the map the chip was formed with, so ``bind`` binds the chip's (same shape)."""

    inner: Any
    g_pos_us: np.ndarray
    g_neg_us: np.ndarray
    name: str = "surrogate"

    def bind(self, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> Any:
        if np.shape(g_pos_us) != self.g_pos_us.shape:
            raise ConfigError(f"The zero-shot protocol asked for a {np.shape(g_pos_us)} map; "
                              f"the chip is {self.g_pos_us.shape}.")
        return self.inner.bind(self.g_pos_us, self.g_neg_us)


def _zeroshot(unit: Unit, backend: Any, gp: np.ndarray, gn: np.ndarray, w_scale: float,
              spec: TileSpec) -> dict[str, Any]:
    """Zero-shot retrieval (image <-> neural-sim) on the chip, honest selection.

    ``val_acc``: the selection metric (top-1 zero-shot retrieval on held-out *seen* classes);
    ``test_acc``: top-1 on the unseen classes. Energy: both encoders' reservoirs on their test
    queries at the chosen thresholds, plus the projection heads (``dim`` outputs each).
    """
    t = unit.task
    cfg = ZeroshotConfig(image="digits-events", other="neural-sim", backends=("surrogate",),
                         seeds=1, seed=unit.net_seed, hidden=t["hidden"],
                         v_th=tuple(float(v) * w_scale for v in t["v_th"]),
                         rec_level=tuple(t["rec_level"]), epochs=t["readout_epochs"],
                         eval_every=max(1, t["readout_epochs"] // 4), baseline=False,
                         r_wire_ohm=unit.point["r_wire_ohm"], adc_bits=unit.point["adc_bits"],
                         rows_per_read=unit.point["rows_per_read"],
                         cols_per_read=unit.point["cols_per_read"], unsensed=t["unsensed"],
                         sense=unit.point["sense"], drive=unit.point["drive"],
                         linearise=t.get("linearise", "tangent"), **_zeroshot_data_args(t))
    image, other = _zeroshot_data(**_zeroshot_data_args(t))
    res = run_protocol(cfg, image, other, {"surrogate": _ChipBackend(backend, gp, gn)})
    row = res.chosen[("LSM, surrogate", "honest" if cfg.val_class_tuple
                      else "honest-seen-val")][0]
    metric = "heldout_top1" if cfg.val_class_tuple else "val_top1"
    lif_i, lif_o = next((a, b) for a, b in lif_grid(cfg, other.audio)
                        if a.v_th == row["v_th"] and a.rec_level == row["rec_level"])
    layout = MapLayout(image.n_in, other.n_in, cfg.hidden)
    # the chip's map as the protocol bound (and, linearised for the workload, profiled) it
    bound = res.tiles[("surrogate", unit.net_seed)]
    energy: dict[str, float] = {}
    for enc, mod, lif in (("image", image, lif_i), ("other", other, lif_o)):
        _, act = run_reservoir(EncoderView(bound, layout.rows_of(enc)), mod.frames["test"],
                               lif, np.random.default_rng([unit.net_seed, 5]))
        rows = layout.rows_of(enc)
        for k, v in _energy(act, spec, gp[rows], gn[rows], cfg.dim, lif).items():
            energy[k] = energy.get(k, 0.0) + v
    return {"val_acc": float(row[metric]), "test_acc": float(row["unseen_top1"]),
            "unseen_topk": float(row.get("unseen_topk", np.nan)),
            "seen_test_top1": float(row.get("seen_test_top1", np.nan)),
            "v_th": float(row["v_th"]), "rec_level": float(row["rec_level"]),
            "temperature": row.get("temperature"), "epoch": row.get("epoch"),
            "n_test": len(res.query_labels), **energy}


def unit_read_scheme(unit: Unit) -> ReadScheme:
    """The read scheme of a unit's point (its task gives what floats)."""
    p = unit.point
    return ReadScheme(rows_per_read=p["rows_per_read"], cols_per_read=p["cols_per_read"],
                      unsensed=unit.task["unsensed"], drive=p["drive"], sense=p["sense"])


def point_setup(unit: Unit) -> tuple[TileSpec, tuple[float, float, float, float]]:
    """The tile spec of a unit's point and the conductance domain its surrogate covers.

    The pilot array depends on the forming conditions only: points that differ in the wire,
    the ADC or the read scheme share the domain.
    """
    t = unit.task
    h = int(t["hidden"])
    rows = _input_rows(unit) + h
    shape = (rows, 2 * h)
    forming = {k: unit.point[k] for k in ("icc_a", "v_form_v", "t_pulse_s")}
    domain, pilot = conductance_domain(shape, BreakdownParams(), _conditions(unit),
                                       derive_seed("domain", t["seed"], forming))
    spec = TileSpec(rows=t["tile_rows"] or rows, cols=t["tile_cols"] or h,
                    r_wire_ohm=unit.point["r_wire_ohm"], read=unit_read_scheme(unit),
                    adc=AdcSpec(bits=unit.point["adc_bits"]), g_full_scale_us=domain[1])
    if t["adc_range"] == "workload":
        spec = _workload_spec(unit, spec, pilot)
    return spec, domain


def prepare_point(unit: Unit, cache_dir: str) -> dict[str, Any]:
    """The first task of a point: its spec, domain and surrogate key, and the surrogate's
    text when the cache has it, else the plan of its calibration."""
    t0 = time.perf_counter()
    t = unit.task
    spec, domain = point_setup(unit)
    key = surrogate_key(spec, domain, t["cal_maps"], t["cal_vectors"])
    out: dict[str, Any] = {"key": key, "domain": domain, "surrogate": None, "plan": None}
    text = _cached_surrogate(_surrogate_path(_cache_path(cache_dir), key))
    if text is not None:
        out["surrogate"] = text
    else:
        out["plan"] = plan_calibration(spec, domain, t["cal_maps"], t["cal_vectors"], key)
    out["wall_s"] = time.perf_counter() - t0
    return out


def finish_calibration(plan: CalibrationPlan, solves: list[ChunkSolve],
                       cache_dir: str) -> dict[str, Any]:
    """The last task of a calibration: fit the surrogate, store it in the cache (atomic),
    and return its text for the point's units (a cluster worker may not share the cache)."""
    t0 = time.perf_counter()
    sur = fit_calibration(plan, solves)
    path = sur.save(_surrogate_path(_cache_path(cache_dir), plan.key))
    return {"key": plan.key, "surrogate": path.read_text(), "wall_s": time.perf_counter() - t0}


def _cache_path(cache_dir: str, *, check: bool = False) -> Path:
    """The sweep's cache folder: ``cache_dir``, else the default one (checked writable, a
    fallback under the temporary folder with a warning otherwise).

    Resolved where the task runs (a cluster worker uses its own folder). ``check`` also probes
    a given ``cache_dir``, as the coordinator does before anything is computed; a task does
    not, so that a folder a worker cannot write fails that task's units with the error in
    their rows instead of a warning only the worker's log would show.
    """
    if cache_dir:
        path = Path(cache_dir)
        return writable_cache(path, "The sweep cache folder (--cache-dir)") if check else path
    return writable_cache(cache_root() / "sweep", "The sweep cache folder")


@functools.lru_cache(maxsize=8)
def _surrogate_from_text(text: str) -> TileSurrogate:
    return TileSurrogate.from_dict(json.loads(text))


def _compute(unit: Unit, cache: Path,
             calibrated: dict[str, Any] | None = None) -> dict[str, Any]:
    t = unit.task
    params = BreakdownParams()
    cond = _conditions(unit)
    h = int(t["hidden"])
    rows = _input_rows(unit) + h
    shape = (rows, 2 * h)
    out: dict[str, Any] = {}
    # 1. form the chip (its cells are the same at every point: common random numbers)
    draws = draw_cells(shape, np.random.default_rng(unit.chip_seed))
    twin = form_cells(cell_values(draws, params, cond.mosfet), params, cond)
    gp, gn = twin.g_us[:, 0::2], twin.g_us[:, 1::2]
    w = gp - gn
    out.update({"v_gate_v": twin.v_gate_v, "g_mean_us": float(twin.g_us.mean()),
                "g_std_us": float(twin.g_us.std()), "g_min_us": float(twin.g_us.min()),
                "g_max_us": float(twin.g_us.max()), "n_unformed": twin.n_unformed,
                "w_std_us": float(w.std())})
    # 2. SPICE spot check of a few cells of this chip
    out.update(_spot_check(unit, params, cond, draws, twin, cache))
    # 3. the surrogate of this tile spec and conductance domain (cached by content hash):
    # calibrated by the sweep's tasks before this unit runs, or here when run on its own
    if calibrated is not None:
        domain, skey = tuple(calibrated["domain"]), calibrated["key"]
        sur, cal_s, fresh = _surrogate_from_text(calibrated["surrogate"]), 0.0, False
    else:
        spec, domain = point_setup(unit)
        sur, skey, fresh, cal_s = _surrogate(spec, domain, t["cal_maps"], t["cal_vectors"],
                                             cache)
    out.update({"domain_lo_us": domain[0], "domain_hi_us": domain[1]})
    out.update({"surrogate_key": skey, "surrogate_calibrated": fresh,
                "calibration_s": cal_s, "r_f_ohm": sur.spec.r_f_ohm})
    backend: Any = sur
    if t["tile_rows"]:
        backend = TiledBackend(sur, t["tile_rows"], t["tile_cols"])
    # 4. the task, hyperparameters on validation; 5. energy from the test run's activity
    w_scale = _v_th_scale(w, t["v_th_scaled"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DomainWarning)
        if t["task"].startswith("zeroshot:"):
            out.update(_zeroshot(unit, backend, gp, gn, w_scale, sur.spec))
        else:
            acc, act, lif, n_classes = _classify(unit, backend, gp, gn, w_scale,
                                                 unit.net_seed)
            out.update(acc)
            out.update(_energy(act, sur.spec, gp, gn, n_classes, lif))
    out["v_th_scale"] = w_scale
    out["domain_warnings"] = sum(issubclass(c.category, DomainWarning) for c in caught)
    return out


def run_unit(unit: Unit, cache_dir: str,
             calibrated: dict[str, Any] | None = None) -> dict[str, Any]:
    """Compute one unit; never raises for the unit's own errors (they become a failed row).

    Runs in a worker process (local pool or Dask worker) or in this process. ``calibrated``
    (the key, domain and surrogate text of the unit's point, from the sweep's calibration
    tasks) spares the unit the point's set-up; without it the unit calibrates (or finds in the
    cache) its surrogate itself.
    """
    t0 = time.perf_counter()
    row = {**_row_head(unit), "host": os.uname().nodename}
    try:
        with tally_reads() as tally:
            row.update(_compute(unit, _cache_path(cache_dir), calibrated))
        row.update(tally.summary())
        tally.warn(f"sweep unit {unit.key}")
        row["status"], row["error"] = "ok", ""
    except Exception as e:  # noqa: BLE001 - a failed point is recorded and the sweep goes on
        row["status"] = "failed"
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        row["traceback"] = traceback.format_exc(limit=8)
    row["wall_s"] = time.perf_counter() - t0
    return row


# -- the sweep -------------------------------------------------------------------------------
@dataclass
class SweepResult:
    """What :func:`run_sweep` did: every unit's row (in grid order) and the bookkeeping."""

    rows: list[dict[str, Any]]
    n_units: int
    n_reused: int
    n_computed: int
    wall_s: float
    executor: str


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        row = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # never written completely (atomic writes make this a foreign file)
    return row if isinstance(row, dict) and "status" in row else None


def _store(points: Path, row: dict[str, Any]) -> None:
    atomic_write_text(points / f"{row['key']}.json",
                      json.dumps(row, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _failed(unit: Unit, error: str, tb: str = "") -> dict[str, Any]:
    """The row of a unit that failed outside its own computation (its point's set-up or
    calibration, or a worker that died)."""
    return {**_row_head(unit), "status": "failed", "error": error, "traceback": tb,
            "wall_s": float("nan"), "host": ""}


def _row_head(unit: Unit) -> dict[str, Any]:
    """What names a unit's row: its key, grid position, point, chip, seed and seeds."""
    return {"key": unit.key, "index": unit.index, **unit.point, "chip": unit.chip,
            "seed": unit.seed, "point_seed": unit.point_seed, "chip_seed": unit.chip_seed,
            "net_seed": unit.net_seed}


def run_sweep(cfg: SweepConfig, run_path: str | Path, *, progress: bool = True,
              on_row: Callable[[dict[str, Any]], None] | None = None) -> SweepResult:
    """Run (or resume) the sweep; results go to ``run_path/points/``.

    Parameters
    ----------
    cfg : SweepConfig
    run_path : str or Path
        The run folder; finished units are read back from ``points/`` and not recomputed.
    progress : bool
        Progress bar over units.
    on_row : callable, optional
        Called with each newly stored row (in completion order).

    Returns
    -------
    SweepResult
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    run_path = Path(run_path)
    points = run_path / "points"
    points.mkdir(parents=True, exist_ok=True)
    cache = cfg.cache_dir
    if not cfg.scheduler:
        # checked before anything is computed; a cluster's workers resolve their own cache
        cache = str(_cache_path(cache, check=True))
    units = units_of(cfg)
    done: dict[str, dict[str, Any]] = {}
    for u in units:
        row = _read_result(points / f"{u.key}.json")
        if row is not None and (row["status"] == "ok" or not cfg.retry_failed):
            done[u.key] = row
    todo = sorted((u for u in units if u.key not in done),
                  key=lambda u: (u.chip, u.seed, u.index))
    n_reused = len(done)
    if cfg.scheduler:
        ex = dask_executor(cfg.scheduler, cfg.blas_threads)
    else:
        n = cfg.workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                            else (os.cpu_count() or 1))
        # not capped at the number of units: a point's solve tasks outnumber its units
        ex = local_executor(n if todo else 1, cfg.blas_threads)
    executor = ex.name
    interrupted = True
    bar = tqdm(total=len(units), initial=n_reused, desc="sweep", unit="point",
               disable=not progress)
    stream = run_graph(todo, cache, ex, prepare=prepare_point, fit=finish_calibration,
                       unit=run_unit, failed=_failed)
    try:
        for row in stream:
            _store(points, row)
            done[row["key"]] = row
            bar.update()
            bar.set_postfix_str(f"{sum(r['status'] != 'ok' for r in done.values())} failed")
            if on_row is not None:
                on_row(row)
        interrupted = False
    finally:
        bar.close()
        stream.close()
        # interrupted (Ctrl-C, SIGTERM, or the caller stopped): the tasks in flight are lost
        # anyway, so the executor stops its workers (and their ngspice runs) at once
        ex.close(interrupted)
    rows = [done[u.key] for u in units if u.key in done]
    return SweepResult(rows=rows, n_units=len(units), n_reused=n_reused,
                       n_computed=len(rows) - n_reused, wall_s=time.perf_counter() - t0,
                       executor=executor)


# -- tables of a finished sweep --------------------------------------------------------------
#: The parameters that name a point, and those beside the compliance current.
PARAMS = ["icc_a", "v_form_v", "t_pulse_s", "r_wire_ohm", "adc_bits", "rows_per_read",
          "cols_per_read", "sense", "drive"]
OTHER_PARAMS = PARAMS[1:]


def sweep_table(result: SweepResult) -> pd.DataFrame:
    """One row per unit in grid order; the long traceback stays in the unit's JSON file."""
    df = pd.DataFrame(result.rows)
    df = df.drop(columns=[c for c in ("traceback",) if c in df.columns])
    first = ["index", *PARAMS, "chip", "seed", "point_seed", "chip_seed", "net_seed", "status",
             "error", "val_acc", "test_acc"]
    first = [c for c in first if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]].sort_values("index")


def total_columns(df: pd.DataFrame) -> list[str]:
    """Energy totals of the systems compared with the hybrid (digital, paper mode)."""
    return [c for c in df.columns if c.startswith("e_total_")
            and c.endswith(("_uj", "_uj_mean"))]


def point_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per point: mean and std over chips and seeds of accuracy, energy and conductance, and
    the chip-to-chip spread (``*_chip_std``: std over chips of each chip's mean over seeds;
    NaN with one chip)."""
    ok = df[df["status"] == "ok"]
    cols = [c for c in ("val_acc", "test_acc", "e_hybrid_uj", *total_columns(ok), "latency_us",
                        "conversions", "g_mean_us", "g_std_us") if c in ok.columns]
    counts = df.groupby(PARAMS, sort=False)["status"].agg(
        n_ok=lambda s: int((s == "ok").sum()), n_failed=lambda s: int((s != "ok").sum()))
    if not len(ok) or not cols:
        return counts.reset_index()
    agg = ok.groupby(PARAMS, sort=False)[cols].agg(["mean", "std"])
    agg.columns = [f"{c}_{s}" for c, s in agg.columns]
    spread = [c for c in ("val_acc", "test_acc", "e_hybrid_uj", "g_mean_us") if c in cols]
    chip = (ok.groupby([*PARAMS, "chip"], sort=False)[spread].mean()
            .groupby(PARAMS, sort=False).std())
    chip.columns = [f"{c}_chip_std" for c in chip.columns]
    return counts.join(agg).join(chip).reset_index()


def pareto_front(summary: pd.DataFrame) -> pd.DataFrame:
    """Points no other point beats on both validation accuracy (higher) and hybrid energy
    (lower); chosen on validation, never on test."""
    if not {"val_acc_mean", "e_hybrid_uj_mean"} <= set(summary.columns):
        return summary.iloc[0:0]  # no unit finished (or the task prices no energy)
    s = summary.dropna(subset=["val_acc_mean", "e_hybrid_uj_mean"])
    s = s.sort_values(["e_hybrid_uj_mean", "val_acc_mean"], ascending=[True, False])
    keep, best = [], -np.inf
    for i, r in s.iterrows():
        if r["val_acc_mean"] > best:
            keep.append(i)
            best = r["val_acc_mean"]
    return s.loc[keep]
