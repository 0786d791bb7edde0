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
   is in the cache (``<cache>/surrogates/<hash>.json``). The ADC full scale follows the domain:
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

Execution. ``workers`` local processes (``concurrent.futures``; 1 runs in this process), or a
Dask distributed cluster when ``scheduler`` is an address (``tcp://HOST:PORT``); the workers
need this package installed. Caches on workers (surrogates, SPICE decks) are only a speed-up:
on a cluster without a shared file system each worker keeps its own.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import fcntl
import functools
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import re
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...analysis.energy import NetworkSize, paper_energy, physical_energy, summarise
from ...models.blas import pin_blas_threads, using_blas_threads
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
    calibration_inputs,
    corner_map,
    energy_summary,
    fit_surrogate,
    full_scale_spec,
    simulate_with_energy,
    with_full_scale,
    with_idle,
    workload_full_scale_ua,
)
from ..engines.registry import make_backend
from ..spice.forming import compare_with_twin, sample_indices, simulate_cells
from ..spice.processes import stop_workers, worker_signals
from .classify import load_task_frames, most_active_lif, select_on_validation
from .configs.sweep import TASKS, SweepConfig
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
# results under the same parameters)
SWEEP_VERSION = 4

#: Columns that describe how a unit ran, not what it computed; they differ between runs.
EXECUTION_COLUMNS = ("wall_s", "spot_wall_s", "surrogate_calibrated", "calibration_s", "host")

# Weight spread of the default forming (DeviceParams: 14.2 +- 2.46 uS per cell, W = G+ - G-):
# the threshold grid is given for it and scaled by each chip's own spread (v_th_scaled).
_W_STD_REF_US = math.sqrt(2.0) * 2.46

#: Seconds to wait for a Dask scheduler before the sweep gives up with an error.
DASK_CONNECT_TIMEOUT_S = 30

# Fields of SweepConfig that say how to run, not what: left out of the unit hashes.
_EXEC_FIELDS = ("name", "workers", "scheduler", "retry_failed", "cache_dir", "blas_threads")
# The sweep axes: each unit carries its own values of these.
_AXES = ("icc", "v_form", "t_pulse", "r_wire", "wire_width", "adc_bits", "rows_per_read",
         "cols_per_read", "sense", "drive", "chips", "seeds")


# -- seeds and hashes ------------------------------------------------------------------------
def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=repr)


def _hash(obj: Any) -> str:
    return hashlib.sha256(_canonical(obj).encode()).hexdigest()


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from the parts' canonical JSON (order of execution plays no role)."""
    return int.from_bytes(hashlib.sha256(_canonical(list(parts)).encode()).digest()[:8],
                          "big") >> 1


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
        key = _hash({"v": SWEEP_VERSION, "point": point, "chip": chip, "seed": seed,
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


def _surrogate(spec: TileSpec, domain: tuple[float, float, float, float], cal_maps: int,
               cal_vectors: int, cache: Path) -> tuple[TileSurrogate, str, bool, float]:
    """The surrogate for ``spec`` over ``domain`` from the cache, or calibrated and stored.

    Returns the surrogate, its hash, whether it was calibrated now, and the calibration time.
    """
    lo, hi, mean, std = domain
    key = _hash({"v": SWEEP_VERSION, "spec": to_dict(spec), "domain": [lo, hi, mean, std],
                 "cal_maps": cal_maps, "cal_vectors": cal_vectors, "reference": "nodal"})[:24]
    path = cache / "surrogates" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    # one calibration per key: a worker that needs a surrogate another worker is calibrating
    # waits for it instead of doing the same work
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.is_file():
                try:
                    return _load_surrogate(str(path)), key, False, 0.0
                except (OSError, ValueError, KeyError):
                    pass  # unreadable (another version): calibrate again and overwrite it
            sur, cal_s = _calibrate(spec, domain, cal_maps, cal_vectors, key)
            sur.save(path)
            return sur, key, True, cal_s
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _calibrate(spec: TileSpec, domain: tuple[float, float, float, float], cal_maps: int,
               cal_vectors: int, key: str) -> tuple[TileSurrogate, float]:
    """Calibrate a surrogate on the nodal engine over ``domain``; returns it and the time."""
    lo, hi, mean, std = domain
    t0 = time.perf_counter()
    rng = np.random.default_rng(derive_seed("calibration", key))
    shape = (spec.rows, spec.cols)
    spec, i_fs = full_scale_spec(spec, lambda s: make_backend("nodal", s), shape, rng)
    ref = make_backend("nodal", spec)
    # formed-like maps at the domain's statistics, one uniform over the domain, the corner
    maps = [(np.clip(rng.normal(mean, std, shape), lo, hi),
             np.clip(rng.normal(mean, std, shape), lo, hi))
            for _ in range(max(cal_maps - 1, 1))]
    if cal_maps > 1:
        maps.append((rng.uniform(lo, hi, shape), rng.uniform(lo, hi, shape)))
    maps.append(corner_map(shape, spec))
    inputs = [with_idle(calibration_inputs(spec.rows, cal_vectors - 1, rng)) for _ in maps]
    samples, energies = simulate_with_energy(ref, maps, inputs, rng)
    sur = fit_surrogate(spec, samples,
                        read_noise_sigma_us=BreakdownParams().read_noise_sigma_us,
                        provenance={"reference": "nodal", "n_maps": len(maps),
                                    "n_vectors": cal_vectors, "domain_us": [lo, hi],
                                    "i_full_scale_ua": i_fs, "sweep_key": key})
    sur.energy_ = energy_summary(spec, energies, inputs)
    return sur, time.perf_counter() - t0


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


def _compute(unit: Unit, cache: Path) -> dict[str, Any]:
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
    # 3. the surrogate of this tile spec and conductance domain (cached by content hash)
    # the pilot depends on the forming conditions only: points that differ in the wire or the
    # ADC share the domain
    forming = {k: unit.point[k] for k in ("icc_a", "v_form_v", "t_pulse_s")}
    domain, pilot = conductance_domain(shape, params, cond,
                                       derive_seed("domain", t["seed"], forming))
    out.update({"domain_lo_us": domain[0], "domain_hi_us": domain[1]})
    spec = TileSpec(rows=t["tile_rows"] or rows, cols=t["tile_cols"] or h,
                    r_wire_ohm=unit.point["r_wire_ohm"], read=unit_read_scheme(unit),
                    adc=AdcSpec(bits=unit.point["adc_bits"]), g_full_scale_us=domain[1])
    if t["adc_range"] == "workload":
        spec = _workload_spec(unit, spec, pilot)
    sur, skey, calibrated, cal_s = _surrogate(spec, domain, t["cal_maps"], t["cal_vectors"],
                                              cache)
    out.update({"surrogate_key": skey, "surrogate_calibrated": calibrated,
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


def run_unit(unit: Unit, cache_dir: str) -> dict[str, Any]:
    """Compute one unit; never raises for the unit's own errors (they become a failed row).

    Runs in a worker process (local pool or Dask worker) or in this process.
    """
    t0 = time.perf_counter()
    row: dict[str, Any] = {"key": unit.key, "index": unit.index, **unit.point,
                           "chip": unit.chip, "seed": unit.seed, "point_seed": unit.point_seed,
                           "chip_seed": unit.chip_seed, "net_seed": unit.net_seed,
                           "host": os.uname().nodename}
    try:
        # resolved where the unit runs: a cluster worker uses its own cache folder
        with tally_reads() as tally:
            row.update(_compute(unit, Path(cache_dir) if cache_dir else writable_cache(
                cache_root() / "sweep", "The sweep cache folder")))
        row.update(tally.summary())
        tally.warn(f"sweep unit {unit.key}")
        row["status"], row["error"] = "ok", ""
    except Exception as e:  # noqa: BLE001 - a failed point is recorded and the sweep goes on
        row["status"] = "failed"
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        row["traceback"] = traceback.format_exc(limit=8)
    row["wall_s"] = time.perf_counter() - t0
    return row


def _init_local_worker(blas_threads: int = 1) -> None:
    # one BLAS thread per worker process by default: N workers on N cores, no oversubscription
    pin_blas_threads(blas_threads)
    worker_signals()  # SIGTERM from the coordinator also stops this worker's ngspice runs


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


def _failed(unit: Unit, err: BaseException) -> dict[str, Any]:
    return {"key": unit.key, "index": unit.index, **unit.point, "chip": unit.chip,
            "seed": unit.seed, "point_seed": unit.point_seed, "chip_seed": unit.chip_seed,
            "net_seed": unit.net_seed, "status": "failed",
            "error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
            "wall_s": float("nan"), "host": ""}


def _local(todo: list[Unit], cache: str, workers: int,
           blas_threads: int = 1) -> Iterator[dict[str, Any]]:
    if workers == 1:
        # one BLAS thread by default, as in every pool worker: the units' matrices are small,
        # and on shared cores a second BLAS thread only fights the other jobs (measured here
        # under load: 1 worker with two BLAS threads took 2.9-3.8x the time of 2
        # single-thread workers, more than the 2x that parallelism alone explains)
        with using_blas_threads(blas_threads):
            for u in todo:
                yield run_unit(u, cache)
        return
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                  initializer=_init_local_worker, initargs=(blas_threads,))
    finished = False
    try:
        futs = {pool.submit(run_unit, u, cache): u for u in todo}
        for f in cf.as_completed(futs):
            try:
                yield f.result()
            except Exception as e:  # noqa: BLE001 - a dead worker fails its unit, not the sweep
                yield _failed(futs[f], e)
        finished = True
    finally:
        if not finished:
            # interrupted (Ctrl-C, SIGTERM, or the caller stopped): the units in flight are
            # lost anyway, so stop this pool's workers (and their ngspice runs) now rather
            # than wait for them
            stop_workers(list(getattr(pool, "_processes", {}).values()))
        pool.shutdown(wait=True, cancel_futures=True)


def _dask(todo: list[Unit], cache: str, address: str,
          blas_threads: int = 1) -> Iterator[dict[str, Any]]:
    from dask.distributed import Client, as_completed

    try:
        client = Client(address, timeout=f"{DASK_CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as e:
        raise ConfigError(
            f"Cannot reach the Dask scheduler at --scheduler {address} within "
            f"{DASK_CONNECT_TIMEOUT_S} s ({type(e).__name__}: {e}). Start it (dask scheduler) "
            "or check the address; without --scheduler the sweep runs on local "
            "processes.") from None
    try:
        # every worker, also one that joins later, pins its BLAS pools before it runs a unit
        from .dask_plugin import BlasThreads

        client.register_plugin(BlasThreads(blas_threads))
        futs = client.map(run_unit, todo, cache_dir=cache, pure=False,
                          key=[f"rram-sweep-{u.key}" for u in todo])
        unit_of = {f.key: u for f, u in zip(futs, todo)}
        for f in as_completed(futs):
            try:
                yield f.result()
            except Exception as e:  # noqa: BLE001 - e.g. KilledWorker: record and go on
                yield _failed(unit_of[f.key], e)
    finally:
        client.close()


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
        cache = str(writable_cache(Path(cache), "The sweep cache folder (--cache-dir)")
                    if cache else writable_cache(cache_root() / "sweep",
                                                 "The sweep cache folder"))
    units = units_of(cfg)
    done: dict[str, dict[str, Any]] = {}
    for u in units:
        row = _read_result(points / f"{u.key}.json")
        if row is not None and (row["status"] == "ok" or not cfg.retry_failed):
            done[u.key] = row
    # schedule the first chip and seed of every point first: the points' surrogates are then
    # calibrated in parallel, and later units find them in the cache
    todo = sorted((u for u in units if u.key not in done),
                  key=lambda u: (u.chip, u.seed, u.index))
    n_reused = len(done)
    if cfg.scheduler:
        stream, executor = _dask(todo, cache, cfg.scheduler, cfg.blas_threads), f"dask {cfg.scheduler}"
    else:
        n = cfg.workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                            else (os.cpu_count() or 1))
        n = max(1, min(n, len(todo)))
        stream, executor = _local(todo, cache, n, cfg.blas_threads), f"local pool, {n} worker(s)"
    bar = tqdm(total=len(units), initial=n_reused, desc="sweep", unit="point",
               disable=not progress)
    try:
        for row in stream:
            _store(points, row)
            done[row["key"]] = row
            bar.update()
            bar.set_postfix_str(f"{sum(r['status'] != 'ok' for r in done.values())} failed")
            if on_row is not None:
                on_row(row)
    finally:
        bar.close()
        close = getattr(stream, "close", None)
        if close is not None:
            close()
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
