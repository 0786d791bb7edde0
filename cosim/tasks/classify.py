"""Classification on a tile: LSM + softmax readout on event data, per backend, over seeds.

Protocol (nothing is selected on test):

1. the data splits are fixed by ``data_seed``; each network seed draws its own differential
   conductance map (formed-cell distribution) for the (n_in + hidden) x hidden reservoir;
2. for every backend, the LIF hyperparameters (threshold, decay, input and recurrent levels) are
   chosen per seed by a small grid on the validation split, each with a softmax readout trained
   on that backend's own training features: a user tunes the network on the chip it runs on
   (hardware attenuation, e.g. IR drop on long columns, shifts the best threshold);
3. the chosen network runs the test split once;
4. a readout on the raw binned events (no reservoir) is the baseline on the same split;
5. the tables give mean and std over seeds, and for each backend the paired 95 % interval of
   its test-accuracy difference to the first backend on the same test samples.

Besides :func:`classify` (the protocol), the pieces the zero-shot protocol, the sweep and the
energy accounting share: data splits and frames, the tile spec, surrogate and backends of a
task, the most active grid point and the selection on validation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ...analysis.report import save_table
from ...analysis.stats import confusion_matrix, paired_difference
from ...models.device.conductance import differential_pair
from ...models.errors import ConfigError
from ...models.params import AdcSpec, DeviceParams, LIFParams, TileSpec
from ...models.snn.heads import SoftmaxReadout
from ...models.snn.lsm import run_reservoir
from ...models.tile.backend import TileBackend
from ...models.tile.clipping import tally_reads
from ...models.tile.surrogate import TileSurrogate
from ...models.tile.tiling import TiledBackend
from ..data import user_data
from ..data.datasets import EventDataset, load_dataset, to_frames
from ..data.nmnist import load_nmnist
from ..engines.calibrate import (
    bind_for_workload,
    calibration_inputs,
    calibration_maps,
    check_families,
    fit_surrogate,
    simulate,
    with_full_scale,
    workload_full_scale_ua,
)
from ..engines.registry import make_backend
from .configs.classify import EMBEDDED, ClassifyConfig

__all__ = [
    "ClassifyResult", "RunFolder", "classify", "frames_of", "is_audio", "load_split",
    "load_task_frames", "most_active_lif", "select_on_validation", "task_backend",
    "task_surrogate", "task_tile_spec", "workload_spec",
]

Grid = list[tuple[float, float, float, float]]


class RunFolder(Protocol):
    """Where a task writes its files: :class:`rram_cosim.cosim.cli.runs.RunDir`."""

    @property
    def path(self) -> Path: ...

    def write_json(self, name: str, data: Any) -> Path: ...


# -- data ------------------------------------------------------------------------------------
def load_split(spec: str, split: str, seed: int, n: int) -> EventDataset:
    """One split of a dataset named as in ``ClassifyConfig.dataset``."""
    n_samples = n or None
    if spec in EMBEDDED:
        return load_dataset(spec, split, seed=seed, n_samples=n_samples)
    kind, path = spec.split(":", 1)
    if kind == "nmnist":
        return load_nmnist(path, split, seed=seed, n_samples=n_samples)
    loader = getattr(user_data, f"load_{kind}", None)
    if loader is None:
        raise ConfigError(f"No reader for dataset kind {kind!r} in this installation.")
    return loader(path, split, seed=seed, n_samples=n_samples)


def frames_of(ds: EventDataset, n_steps: int, crop: int) -> np.ndarray:
    """Binary frames (n, T, features): images ON events of a centre crop; audio channels."""
    if len(ds.sensor_size) >= 2 and ds.sensor_size[1] > 1:  # image sensor (W, H, P)
        w, h = ds.sensor_size[0], ds.sensor_size[1]
        c = min(crop, w, h)
        return to_frames(ds, n_steps, crop=c, polarities=(1,))
    # audio: one input row per channel, whatever the polarity (N-TIDIGITS has 64 inputs)
    f = to_frames(ds, n_steps)
    p = max(1, f.shape[2] // ds.sensor_size[0])
    return f.reshape(f.shape[0], n_steps, p, -1).max(axis=2)


def is_audio(ds: EventDataset) -> bool:
    return not (len(ds.sensor_size) >= 2 and ds.sensor_size[1] > 1)


def load_task_frames(dataset: str, data_seed: int, sizes: tuple[int, int, int], n_steps: int,
                     crop: int) -> tuple[dict[str, EventDataset], dict[str, np.ndarray],
                                         dict[str, np.ndarray], bool, int]:
    """Train/val/test splits of ``dataset``, binned: (data, frames, labels, audio, n_steps).

    ``n_steps`` 0 picks the paper scripts' 129 steps for audio, 50 for images.
    """
    data = {s: load_split(dataset, s, data_seed, n)
            for s, n in zip(("train", "val", "test"), sizes)}
    audio = is_audio(data["train"])
    steps = n_steps or (129 if audio else 50)
    frames = {s: frames_of(d, steps, crop) for s, d in data.items()}
    labels = {s: np.asarray(d.labels) for s, d in data.items()}
    return data, frames, labels, audio, steps


# -- backends --------------------------------------------------------------------------------
def task_tile_spec(cfg: Any, rows: int, cols: int) -> TileSpec:
    """The TileSpec of a task's ``rows x cols`` map: ``cfg`` (a classify or zero-shot config)
    gives the tile size (``tile_rows``/``tile_cols``, 0: the whole map), ``r_wire_ohm``,
    ``adc_bits``, the read scheme and the wire geometry (:class:`ReadOptions`)."""
    return TileSpec(rows=cfg.tile_rows or rows, cols=cfg.tile_cols or cols,
                    r_wire_ohm=cfg.r_wire_ohm, adc=AdcSpec(bits=cfg.adc_bits),
                    **cfg.read_spec())


def most_active_lif(hidden: int, grid: Grid) -> LIFParams:
    """The LIF of a (v_th, decay, in_level, rec_level) grid that fires most: lowest threshold,
    highest decay and levels; the conservative point for sizing the ADC range."""
    return LIFParams(hidden=hidden, v_th=min(g[0] for g in grid), decay=max(g[1] for g in grid),
                     in_level=max(g[2] for g in grid), rec_level=max(g[3] for g in grid))


def workload_spec(cfg: ClassifyConfig, spec: TileSpec, train: np.ndarray, grid: Grid,
                  h: int) -> TileSpec:
    """Spec whose ADC full scale fits the currents the reservoir draws on training data.

    Measured with the ideal backend on a probe map of the same distribution, at the grid
    point with the most activity (:func:`most_active_lif`), on up to 200 training samples;
    with ``--tile-rows`` the currents are summed over row tiles, so the range is conservative
    there.
    """
    rng = np.random.default_rng([cfg.seed, 104729])
    gp, gn = differential_pair((train.shape[2] + h, h), rng, DeviceParams())
    tile = task_backend("ideal", cfg, spec, None).bind(gp, gn)
    i_fs = workload_full_scale_ua(tile, train[:200], most_active_lif(h, grid), rng)
    return with_full_scale(spec, i_fs)


def task_surrogate(cfg: Any, spec: TileSpec, run_path: Path,
                   rng: np.random.Generator) -> TileSurrogate:
    """The surrogate a task runs on: ``cfg.surrogate``'s file (refused when it was calibrated
    for another spec), or one calibrated on the nodal engine (``cfg.cal_maps`` maps of
    ``cfg.cal_vectors`` vectors) and saved as ``run_path/surrogate.json``.

    A surrogate calibrated here is then held out on the two corner families that were the
    worst in every measured row (:data:`~rram_cosim.cosim.engines.calibrate.TASK_FAMILIES`;
    docs/tile.md gives the measured cost); the worst case is stored in
    it (``bind`` warns when it misses the bars, the run warns once here) and in the run's
    summary. ``rram-cosim calibrate`` holds out all six families and the formed maps."""
    if cfg.surrogate:
        sur = TileSurrogate.load(cfg.surrogate)
        if sur.spec != spec:
            raise ConfigError(
                f"The surrogate {cfg.surrogate} was calibrated for another TileSpec "
                f"({_spec_text(sur.spec)}) than this run needs ({_spec_text(spec)}). "
                "Recalibrate with the same options, or drop --surrogate to calibrate on the "
                "nodal engine.")
        return sur
    device = DeviceParams()
    shape = (spec.rows, spec.cols)
    maps = calibration_maps(shape, cfg.cal_maps, rng, device, spec)
    inputs = [calibration_inputs(spec.rows, cfg.cal_vectors, rng) for _ in maps]
    samples = simulate(make_backend("nodal", spec), maps, inputs, rng)
    sur = fit_surrogate(spec, samples, read_noise_sigma_us=device.read_noise_sigma_us,
                        provenance={"reference": "nodal", "maps": len(maps),
                                    "vectors": cfg.cal_vectors})
    g = np.concatenate([np.concatenate([gp.ravel(), gn.ravel()]) for gp, gn in maps])
    check_families(spec, sur, float(g[g > 0].min()), rng)
    sur.save(Path(run_path) / "surrogate.json")
    return sur


def _spec_text(s: TileSpec) -> str:
    return (f"{s.rows}x{s.cols}, wires {s.r_row_ohm:g}/{s.r_col_ohm:g} ohm, "
            f"{s.rows_per_read} rows per read, {s.read.sense} sensing, {s.read.drive}-end "
            f"drive, {s.adc.bits}-bit ADC")


def task_backend(name: str, cfg: Any, spec: TileSpec,
                 sur: TileSurrogate | None) -> TileBackend:
    """Backend ``name`` for ``spec`` (``surrogate``: ``sur``), split over ``cfg``'s tiles when
    it gives a tile size."""
    be: TileBackend = sur if name == "surrogate" else make_backend(name, spec)
    if cfg.tile_rows:
        be = TiledBackend(be, cfg.tile_rows, cfg.tile_cols)
    return be


# -- one network -----------------------------------------------------------------------------
def select_on_validation(tile: Any, frames: dict[str, np.ndarray],
                         labels: dict[str, np.ndarray], grid: Grid,
                         hidden: int, n_classes: int, seed: int, *, epochs: int,
                         solver: str = "adam", n_windows: int = 1,
                         on_point: Any = None) -> tuple[float, LIFParams, dict, SoftmaxReadout]:
    """Grid over (v_th, decay, in_level, rec_level) on the validation split.

    Each point runs the reservoir on train and val and trains its own readout on train; the
    best validation accuracy wins (first on ties). ``on_point(lif, val_acc)`` is called after
    every point (progress, grid tables). Returns (val_acc, lif, features, readout).
    """
    best = None
    for v_th, decay, lin, lrec in grid:
        lif = LIFParams(hidden=hidden, v_th=v_th, decay=decay, in_level=lin, rec_level=lrec)
        r = np.random.default_rng([seed, 1])
        feats = {s: run_reservoir(tile, frames[s], lif, r, n_windows=n_windows)[0]
                 for s in ("train", "val")}
        clf = SoftmaxReadout(epochs=epochs, solver=solver).fit(
            feats["train"], labels["train"], rng=r, n_classes=n_classes)
        val = clf.score(feats["val"], labels["val"])
        if on_point is not None:
            on_point(lif, val)
        if best is None or val > best[0]:
            best = (val, lif, feats, clf)
    if best is None:
        raise ConfigError("The hyperparameter grid is empty: give at least one value of "
                          "v_th, decay, in_level and rec_level.")
    return best


# -- the protocol ----------------------------------------------------------------------------
@dataclass
class ClassifyResult:
    """What :func:`classify` measured (its tables are also in the run folder)."""

    spec: TileSpec  # the tile spec the backends ran (ADC range included)
    sizes: dict[str, int]  # samples per split
    n_in: int
    n_steps: int
    accuracy: pd.DataFrame  # one row per seed and model (accuracy.csv)
    summary: pd.DataFrame  # mean and std over seeds per model (accuracy_summary.csv)
    paired: pd.DataFrame  # paired difference to the first backend (paired_difference.csv)
    per_class: pd.DataFrame  # per-class test accuracy (per_class.csv)
    confusion: dict[str, np.ndarray]  # per backend, pooled over seeds
    embedding: tuple[str, np.ndarray]  # (backend, test features) of the first seed
    test_labels: np.ndarray
    # surrogate reads, and those solved exactly because a TIA left its linear range
    exact_reads: dict[str, Any] = field(default_factory=dict)
    # the surrogate's worst case on the held-out corner families (None: no surrogate, or a
    # file that carries none)
    surrogate_worst: dict[str, Any] | None = None


def classify(cfg: ClassifyConfig, run: RunFolder, *, progress: bool = True) -> ClassifyResult:
    """Run the protocol in the module docstring; write its tables (``accuracy.csv``,
    ``accuracy_summary.csv``, ``paired_difference.csv``, ``grid.csv``, ``per_class.csv``),
    ``activity.json`` and, when calibrated here, ``surrogate.json`` into ``run``."""
    data, frames, labels, audio, n_steps = load_task_frames(
        cfg.dataset, cfg.data_seed, (cfg.n_train, cfg.n_val, cfg.n_test), cfg.n_steps, cfg.crop)
    n_classes = int(max(lab.max() for lab in labels.values()) + 1)
    n_in = frames["train"].shape[2]
    h = cfg.hidden
    decays = cfg.decay or ((0.97,) if audio else (0.9,))
    grid = list(itertools.product(cfg.v_th, decays, cfg.in_level, cfg.rec_level))
    spec = task_tile_spec(cfg, n_in + h, h)
    if cfg.adc_range == "workload":
        spec = workload_spec(cfg, spec, frames["train"], grid, h)
    sur = (task_surrogate(cfg, spec, run.path, np.random.default_rng([cfg.seed, 7919]))
           if "surrogate" in cfg.backends else None)
    backends = {b: task_backend(b, cfg, spec, sur) for b in cfg.backends}

    n_work = cfg.seeds * (len(grid) * len(backends) + 1)
    bar = tqdm(total=n_work, desc="classify", disable=not progress, unit="net")
    grid_rows, acc_rows, correct, activity = [], [], {}, {}
    cms = {b: np.zeros((n_classes, n_classes), dtype=np.int64) for b in backends}
    embed = None
    with tally_reads() as tally:
        for k in range(cfg.seeds):
            seed = cfg.seed + k
            rng = np.random.default_rng(seed)
            gp, gn = differential_pair((n_in + h, h), rng, DeviceParams())
            for name, be in backends.items():
                if name == "surrogate" and cfg.linearise == "workload":
                    # profiled at the grid point that fires most, as the ADC range is
                    tile = bind_for_workload(be, gp, gn, frames["train"][:200],
                                             most_active_lif(h, grid),
                                             np.random.default_rng([seed, 5]))
                else:
                    tile = be.bind(gp, gn)
                # grid on validation, per backend: a user tunes the network on the chip it runs on
                def record(lif: LIFParams, val: float, seed: int = seed, name: str = name) -> None:
                    grid_rows.append({"seed": seed, "backend": name, "v_th": lif.v_th,
                                      "decay": lif.decay, "in_level": lif.in_level,
                                      "rec_level": lif.rec_level, "val_acc": val})
                    bar.update()

                val, lif, feats, clf = select_on_validation(
                    tile, frames, labels, grid, h, n_classes, seed, epochs=cfg.readout_epochs,
                    solver=cfg.readout_solver, n_windows=cfg.n_windows, on_point=record)
                feats["test"], act = run_reservoir(tile, frames["test"], lif,
                                                   np.random.default_rng([seed, 2]),
                                                   n_windows=cfg.n_windows)
                pred = clf.predict(feats["test"])
                correct.setdefault(name, []).append(pred == labels["test"])
                cms[name] += confusion_matrix(labels["test"], pred, n_classes)
                acc_rows.append({"seed": seed, "model": f"LSM, {name}", "v_th": lif.v_th,
                                 "decay": lif.decay, "in_level": lif.in_level,
                                 "rec_level": lif.rec_level, "val_acc": val,
                                 "test_acc": float(np.mean(pred == labels["test"])),
                                 "spikes_per_neuron": float(feats["test"].mean())})
                activity[f"{name}/seed{seed}"] = act.to_dict()
                if k == 0:
                    embed = (name, feats["test"])
            raw = {s: frames[s].reshape(len(frames[s]), cfg.n_windows, -1, n_in).sum(axis=2)
                   .reshape(len(frames[s]), -1) if n_steps % cfg.n_windows == 0
                   else frames[s].sum(axis=1) for s in frames}
            r = np.random.default_rng([seed, 3])
            clf = SoftmaxReadout(epochs=cfg.readout_epochs, solver=cfg.readout_solver).fit(
                raw["train"], labels["train"], rng=r, n_classes=n_classes)
            pred = clf.predict(raw["test"])
            correct.setdefault("raw events", []).append(pred == labels["test"])
            acc_rows.append({"seed": seed, "model": "readout on raw events (no reservoir)",
                             "val_acc": clf.score(raw["val"], labels["val"]),
                             "test_acc": float(np.mean(pred == labels["test"]))})
            bar.update()
    bar.close()
    tally.warn("classify")

    acc = pd.DataFrame(acc_rows)
    summary_tab = (acc.groupby("model", sort=False)[["val_acc", "test_acc"]]
                   .agg(["mean", "std"]).reset_index())
    summary_tab.columns = ["model", "val_mean", "val_std", "test_mean", "test_std"]
    ref = cfg.backends[0]
    paired = pd.DataFrame([{"model": name, "vs": ref,
                            **paired_difference(np.concatenate(correct[ref]),
                                                np.concatenate(correct[name]))}
                           for name in correct if name != ref])
    per_class = pd.DataFrame({"class": np.arange(n_classes),
                              **{f"{b}_test_acc": np.diag(cm) / np.maximum(cm.sum(1), 1)
                                 for b, cm in cms.items()},
                              "n_test": np.bincount(labels["test"], minlength=n_classes)})
    save_table(acc, run.path / "accuracy.csv")
    save_table(summary_tab, run.path / "accuracy_summary.csv")
    save_table(paired, run.path / "paired_difference.csv")
    save_table(pd.DataFrame(grid_rows), run.path / "grid.csv")
    save_table(per_class, run.path / "per_class.csv")
    run.write_json("activity.json", activity)
    assert embed is not None
    return ClassifyResult(spec=spec, sizes={s: len(d) for s, d in data.items()}, n_in=n_in,
                          n_steps=n_steps, accuracy=acc, summary=summary_tab, paired=paired,
                          per_class=per_class, confusion=cms, embedding=embed,
                          test_labels=labels["test"], exact_reads=tally.summary(),
                          surrogate_worst=getattr(sur, "validation_worst_", None))
