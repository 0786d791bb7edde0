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
5. the tables give mean and std over seeds, a 95 % interval from a bootstrap over seeds and
   test samples, the chance level (most frequent test class), and for each model the paired
   95 % interval of its test-accuracy difference to the first backend (the same bootstrap on
   per-sample differences within each seed);
6. the data are checked: the split (by group where the data name groups), too few test
   samples a class, intervals too wide, validation at 100 % far above test
   (:mod:`.data_checks`).

Besides :func:`classify` (the protocol), the pieces the zero-shot protocol, the sweep and the
energy accounting share: data splits and frames, the tile spec, surrogate and backends of a
task, the most active grid point and the selection on validation.
"""

from __future__ import annotations

import contextlib
import itertools
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ...analysis.report import save_table
from ...analysis.stats import (
    bootstrap_interval,
    bootstrap_method,
    chance_accuracy,
    confusion_matrix,
    paired_bootstrap,
)
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
from .data_checks import (
    describe_split,
    interval_warnings,
    shared_group_warnings,
    small_test_warnings,
    val_gap_warnings,
)
from .status import Status

__all__ = [
    "CENTRE_CROP_DEFAULT",
    "ClassifyResult",
    "RunFolder",
    "classify",
    "frames_of",
    "is_audio",
    "load_split",
    "load_task_frames",
    "most_active_lif",
    "resolve_crop",
    "select_on_validation",
    "task_backend",
    "task_surrogate",
    "task_tile_spec",
    "workload_spec",
]

Grid = list[tuple[float, float, float, float]]


class RunFolder(Protocol):
    """Where a task writes its files: :class:`rram_cosim.cosim.cli.runs.RunDir`."""

    @property
    def path(self) -> Path: ...

    def write_json(self, name: str, data: Any) -> Path: ...


# -- data ------------------------------------------------------------------------------------
def load_split(spec: str, split: str, seed: int, n: int, *, split_by: str = "auto",
               group_field: int = 1, progress: bool = False) -> EventDataset:
    """One split of a dataset named as in ``ClassifyConfig.dataset``; ``split_by`` and
    ``group_field`` reach the loaders of a user's data (``wav``, ``images``, ``events``),
    ``progress`` shows a bar where a loader simulates for long (images)."""
    n_samples = n or None
    if spec in EMBEDDED:
        return load_dataset(spec, split, seed=seed, n_samples=n_samples)
    kind, path = spec.split(":", 1)
    if kind == "nmnist":
        return load_nmnist(path, split, seed=seed, n_samples=n_samples)
    if kind == "ntidigits":
        return user_data.load_ntidigits(path, split, seed=seed, n_samples=n_samples)
    loader = getattr(user_data, f"load_{kind}", None)
    if loader is None:
        raise ConfigError(f"No reader for dataset kind {kind!r} in this installation.")
    extra: dict[str, Any] = {"split_by": split_by}
    if kind == "wav":
        extra["group_field"] = group_field
    if kind == "images":
        extra["progress"] = progress
    return loader(path, split, seed=seed, n_samples=n_samples, **extra)


#: Image datasets whose default crop is [Lin25]'s 16x16 centre (N-MNIST's script; the
#: embedded digits sit in the centre 16x16 of a 20x20 sensor). Any other image data is used
#: whole: a user's images fill their sensor, and a centre crop would cut them.
CENTRE_CROP_DEFAULT = {"digits-events": 16, "nmnist": 16}


def resolve_crop(ds: EventDataset, crop: int) -> int:
    """The crop side a run uses on ``ds``: ``crop``, or (0) the dataset's default
    (:data:`CENTRE_CROP_DEFAULT`, else the whole sensor), never more than the sensor."""
    w, h = ds.sensor_size[0], ds.sensor_size[1]
    if crop:
        return min(crop, w, h)
    if ds.name in CENTRE_CROP_DEFAULT:
        return min(CENTRE_CROP_DEFAULT[ds.name], w, h)
    return max(w, h)  # the whole sensor


def frames_of(ds: EventDataset, n_steps: int, crop: int) -> np.ndarray:
    """Binary frames (n, T, features): images ON events of a centre crop (``crop`` 0: the
    dataset's default, :func:`resolve_crop`); audio channels."""
    if len(ds.sensor_size) >= 2 and ds.sensor_size[1] > 1:  # image sensor (W, H, P)
        w, h = ds.sensor_size[0], ds.sensor_size[1]
        c = resolve_crop(ds, crop)
        if c >= max(w, h):
            return to_frames(ds, n_steps, polarities=(1,))
        return to_frames(ds, n_steps, crop=c, polarities=(1,))
    # audio: one input row per channel, whatever the polarity (N-TIDIGITS has 64 inputs)
    f = to_frames(ds, n_steps)
    p = max(1, f.shape[2] // ds.sensor_size[0])
    return f.reshape(f.shape[0], n_steps, p, -1).max(axis=2)


def is_audio(ds: EventDataset) -> bool:
    return not (len(ds.sensor_size) >= 2 and ds.sensor_size[1] > 1)


def load_task_frames(dataset: str, data_seed: int, sizes: tuple[int, int, int], n_steps: int,
                     crop: int, *, split_by: str = "auto", group_field: int = 1,
                     status: Any = None) -> tuple[dict[str, EventDataset],
                                                  dict[str, np.ndarray],
                                                  dict[str, np.ndarray], bool, int]:
    """Train/val/test splits of ``dataset``, binned: (data, frames, labels, audio, n_steps).

    ``n_steps`` 0 picks the paper scripts' 129 steps for audio, 50 for images; ``split_by``
    and ``group_field`` go to :func:`load_split`; ``status`` (a
    :class:`~rram_cosim.cosim.tasks.status.Status`) announces each split's loading.
    """
    data = {}
    for s, n in zip(("train", "val", "test"), sizes):
        step = (status.step(f"loading {dataset}, {s} split") if status is not None
                else contextlib.nullcontext())
        with step:
            data[s] = load_split(dataset, s, data_seed, n, split_by=split_by,
                                 group_field=group_field,
                                 progress=status is not None and status.enabled)
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
RAW_KEY = "raw events"
"""The raw-event readout's key in every per-model dict and table column of a run (the
backends' keys are their names)."""
RAW_MODEL = "readout on raw events (no reservoir)"
"""The raw-event readout as tables and plots name it (:func:`model_label`)."""


def model_label(key: str) -> str:
    """A model's name in tables and plots from its key: a backend ``b`` is ``LSM, b``."""
    return RAW_MODEL if key == RAW_KEY else f"LSM, {key}"


def interval_rng(seed: int, *names: str) -> np.random.Generator:
    """The bootstrap generator of one model's interval (or one pair's, ``names`` both models),
    derived from the run seed and the names: adding, removing or reordering a backend leaves
    every other interval unchanged."""
    return np.random.default_rng([seed, 0x43494E54, zlib.crc32("|".join(names).encode())])


def accuracy_intervals(correct: dict[str, list[np.ndarray]], reference: str, seed: int
                       ) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Bootstrap 95 % intervals of each model's test accuracy and of each model's paired
    difference to ``reference``, from per-seed, per-sample outcomes ``correct[model]``
    (models by label); each from its own :func:`interval_rng`."""
    cis = {m: bootstrap_interval(np.stack(c), interval_rng(seed, m)) for m, c in correct.items()}
    paired = [{"model": m, "vs": reference,
               **paired_bootstrap(np.stack(correct[reference]), np.stack(c),
                                  interval_rng(seed, m, reference))}
              for m, c in correct.items() if m != reference]
    return cis, paired


@dataclass
class ClassifyResult:
    """What :func:`classify` measured (its tables are also in the run folder)."""

    spec: TileSpec  # the tile spec the backends ran (ADC range included)
    sizes: dict[str, int]  # samples per split
    n_in: int
    n_steps: int
    accuracy: pd.DataFrame  # one row per seed and model (accuracy.csv)
    # per model: mean and std over seeds, bootstrap 95 % interval, chance, counts
    # (accuracy_summary.csv)
    summary: pd.DataFrame
    paired: pd.DataFrame  # paired difference to the first backend (paired_difference.csv)
    per_class: pd.DataFrame  # per-class test accuracy (per_class.csv)
    confusion: dict[str, np.ndarray]  # per model (backends and raw events), pooled over seeds
    embedding: dict[str, np.ndarray]  # per backend: test features of the first seed
    test_labels: np.ndarray
    class_names: tuple[str, ...] = ()
    chance: float = float("nan")  # the most frequent test class's share
    split_text: str = ""  # how the data were split (data_checks.describe_split)
    warnings: list[str] | None = None  # what the data cannot support (also on the console)
    interval_method: str = ""
    # surrogate reads, and those solved exactly because a TIA left its linear range
    exact_reads: dict[str, Any] = field(default_factory=dict)
    # the surrogate's worst case on the held-out corner families (None: no surrogate, or a
    # file that carries none)
    surrogate_worst: dict[str, Any] | None = None


def classify(cfg: ClassifyConfig, run: RunFolder, *, progress: bool = True,
             status: Status | None = None) -> ClassifyResult:
    """Run the protocol in the module docstring; write its tables (``accuracy.csv``,
    ``accuracy_summary.csv``, ``paired_difference.csv``, ``grid.csv``, ``per_class.csv``),
    ``activity.json`` and, when calibrated here, ``surrogate.json`` into ``run``.

    ``status`` prints a line before and after every long step and the data warnings
    (default: a new one, its step lines shown when ``progress``)."""
    status = Status("classify", enabled=progress) if status is None else status
    data, frames, labels, audio, n_steps = load_task_frames(
        cfg.dataset, cfg.data_seed, (cfg.n_train, cfg.n_val, cfg.n_test), cfg.n_steps, cfg.crop,
        split_by=cfg.split_by, group_field=cfg.group_field, status=status)
    n_classes = int(max(lab.max() for lab in labels.values()) + 1)
    n_in = frames["train"].shape[2]
    h = cfg.hidden
    split_text = f"Split: {describe_split(data)}."
    status.note(split_text)
    for w in shared_group_warnings(data) + small_test_warnings(
            labels["test"], sorted(set(labels["train"].tolist()) | set(labels["test"].tolist())),
            cfg.warn_min_test_per_class):
        status.warn(w)
    decays = cfg.decay or ((0.97,) if audio else (0.9,))
    grid = list(itertools.product(cfg.v_th, decays, cfg.in_level, cfg.rec_level))
    spec = task_tile_spec(cfg, n_in + h, h)
    if cfg.adc_range == "workload":
        with status.step("sizing the ADC range on the reservoir's training currents"):
            spec = workload_spec(cfg, spec, frames["train"], grid, h)
    sur = None
    if "surrogate" in cfg.backends:
        with status.step("surrogate: " + (f"reading {cfg.surrogate}" if cfg.surrogate else
                                          f"calibrating on the nodal engine ({cfg.cal_maps} "
                                          f"maps of {n_in + h}x{h}, {cfg.cal_vectors} vectors "
                                          "each)")):
            sur = task_surrogate(cfg, spec, run.path, np.random.default_rng([cfg.seed, 7919]))
    backends = {b: task_backend(b, cfg, spec, sur) for b in cfg.backends}

    n_work = cfg.seeds * (len(grid) * len(backends) + 1)
    bar = tqdm(total=n_work, desc="classify", disable=not progress, unit="net")
    grid_rows, acc_rows, correct, activity = [], [], {}, {}
    cms = {m: np.zeros((n_classes, n_classes), dtype=np.int64)
           for m in [*backends, RAW_KEY]}
    embed: dict[str, np.ndarray] = {}
    # the raw-event readout's features: the same for every seed
    raw = {s: frames[s].reshape(len(frames[s]), cfg.n_windows, -1, n_in).sum(axis=2)
           .reshape(len(frames[s]), -1) if n_steps % cfg.n_windows == 0
           else frames[s].sum(axis=1) for s in frames}
    with tally_reads() as tally:
        for k in range(cfg.seeds):
            seed = cfg.seed + k
            rng = np.random.default_rng(seed)
            gp, gn = differential_pair((n_in + h, h), rng, DeviceParams())
            for name, be in backends.items():
                bar.set_postfix_str(f"seed {seed}, binding the map on {name}")
                if name == "surrogate" and cfg.linearise == "workload":
                    # profiled at the grid point that fires most, as the ADC range is
                    tile = bind_for_workload(be, gp, gn, frames["train"][:200],
                                             most_active_lif(h, grid),
                                             np.random.default_rng([seed, 5]))
                else:
                    tile = be.bind(gp, gn)
                bar.set_postfix_str(f"seed {seed}, {name}")
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
                correct.setdefault(model_label(name), []).append(pred == labels["test"])
                cms[name] += confusion_matrix(labels["test"], pred, n_classes)
                acc_rows.append({"seed": seed, "model": model_label(name), "v_th": lif.v_th,
                                 "decay": lif.decay, "in_level": lif.in_level,
                                 "rec_level": lif.rec_level, "val_acc": val,
                                 "test_acc": float(np.mean(pred == labels["test"])),
                                 "spikes_per_neuron": float(feats["test"].mean())})
                activity[f"{name}/seed{seed}"] = act.to_dict()
                if k == 0:
                    embed[name] = feats["test"]
            r = np.random.default_rng([seed, 3])
            clf = SoftmaxReadout(epochs=cfg.readout_epochs, solver=cfg.readout_solver).fit(
                raw["train"], labels["train"], rng=r, n_classes=n_classes)
            pred = clf.predict(raw["test"])
            correct.setdefault(RAW_MODEL, []).append(pred == labels["test"])
            cms[RAW_KEY] += confusion_matrix(labels["test"], pred, n_classes)
            acc_rows.append({"seed": seed, "model": RAW_MODEL,
                             "val_acc": clf.score(raw["val"], labels["val"]),
                             "test_acc": float(np.mean(pred == labels["test"]))})
            bar.update()
    bar.close()
    tally.warn("classify")

    acc = pd.DataFrame(acc_rows)
    chance = chance_accuracy(labels["test"])
    cis, paired_rows = accuracy_intervals(correct, model_label(cfg.backends[0]), cfg.seed)
    summary_rows = []
    for model, g in acc.groupby("model", sort=False):
        ci = cis[model]
        summary_rows.append({"model": model, "val_mean": g["val_acc"].mean(),
                             "val_std": g["val_acc"].std(), "test_mean": g["test_acc"].mean(),
                             "test_std": g["test_acc"].std(), "test_ci_low": ci["ci_low"],
                             "test_ci_high": ci["ci_high"], "chance": chance,
                             "n_val": int(labels["val"].size),
                             "n_test": ci["n_samples"], "n_seeds": ci["n_seeds"]})
    summary_tab = pd.DataFrame(summary_rows)
    paired = pd.DataFrame(paired_rows)
    method = bootstrap_method(cfg.seeds)
    for w in (interval_warnings([(f"{r['model']} test accuracy", r["test_ci_low"],
                                  r["test_ci_high"]) for r in summary_rows],
                                cfg.warn_interval_width)
              + val_gap_warnings([(r["model"], r["val_mean"], r["test_mean"])
                                  for r in summary_rows], cfg.warn_val_test_gap)):
        status.warn(w)
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
    names = data["train"].metadata.get("class_names") or tuple(str(c) for c in range(n_classes))
    return ClassifyResult(spec=spec, sizes={s: len(d) for s, d in data.items()}, n_in=n_in,
                          n_steps=n_steps, accuracy=acc, summary=summary_tab, paired=paired,
                          per_class=per_class, confusion=cms, embedding=embed,
                          test_labels=labels["test"], class_names=tuple(map(str, names)),
                          chance=chance, split_text=split_text,
                          warnings=list(status.warnings), interval_method=method,
                          exact_reads=tally.summary(),
                          surrogate_worst=getattr(sur, "validation_worst_", None))
