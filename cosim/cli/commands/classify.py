"""``rram-cosim classify``: LSM + softmax readout on event data, per backend, over seeds.

Protocol (nothing is selected on test):

1. the data splits are fixed by ``data_seed``; each network seed draws its own differential
   conductance map (formed-cell distribution) for the (n_in + hidden) x hidden reservoir;
2. for every backend, the LIF hyperparameters (threshold, decay, input and recurrent levels) are
   chosen per seed by a small grid on the validation split, each with a softmax readout trained
   on that backend's own training features: a user tunes the network on the chip it runs on
   (hardware attenuation, e.g. IR drop on long columns, shifts the best threshold);
3. the chosen network runs the test split once;
4. a readout on the raw binned events (no reservoir) is the baseline on the same split;
5. the report gives mean and std over seeds, and for each backend the paired 95 % interval of
   its test-accuracy difference to the first backend on the same test samples.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ....analysis.report import markdown_table, save_figure, save_table, write_report
from ....analysis.stats import confusion_matrix, paired_difference, pca_2d
from ....models.checks import check_choice, check_int, check_range
from ....models.device.conductance import differential_pair
from ....models.errors import ConfigError
from ....models.params import AdcSpec, DeviceParams, LIFParams, TileSpec
from ....models.snn.heads import SoftmaxReadout
from ....models.snn.lsm import run_reservoir
from ....models.tile.backend import TileBackend
from ....models.tile.surrogate import TileSurrogate
from ....models.tile.tiling import TiledBackend
from ...data.datasets import EventDataset, load_dataset, to_frames
from ...engines.calibrate import (
    bind_for_workload,
    calibration_inputs,
    calibration_maps,
    fit_surrogate,
    simulate,
    with_full_scale,
    workload_full_scale_ua,
)
from ...engines.registry import check_run_options, make_backend
from ..runs import RunDir

COMMAND = "classify"
HELP = ("LSM + softmax readout on event data with ideal / surrogate / nodal / spice weights, "
        "hyperparameters chosen on validation, mean and spread over seeds")

EMBEDDED = ("digits-events", "spoken-digits")
PREFIXED = ("nmnist", "ntidigits", "wav", "images", "events")


@dataclass(frozen=True)
class TaskOptions:
    """What a classification task on a tile needs, shared by ``classify`` and the sweep's
    task: data split, LIF grid, readout, ADC range, tiling and linearisation."""

    data_seed: int = 0  # fixes the embedded data and its split
    n_train: int = 0  # 0: the whole split
    n_val: int = 0
    n_test: int = 0
    n_steps: int = 0  # 0: 50 for images, 129 for audio ([Lin25] scripts)
    crop: int = 16  # images: centre crop ([Lin25]: 16x16)
    hidden: int = 200  # [Lin25]
    v_th: tuple[float, ...] = (5.0, 10.0, 20.0)  # grid, chosen on validation
    decay: tuple[float, ...] = ()  # empty: 0.9 images, 0.97 audio ([Lin25] scripts)
    in_level: tuple[float, ...] = (1.0,)
    rec_level: tuple[float, ...] = (0.0, 0.25, 0.5)
    readout_epochs: int = 80
    # ADC full scale: 'corner' = all rows on at g_full_scale (never clips); 'workload' =
    # 1.1 x the 99.9th percentile of the column currents the reservoir draws on training data
    adc_range: str = "corner"
    tile_rows: int = 0  # 0: the whole map on one macro, whole columns read at once
    tile_cols: int = 0
    # surrogate linearisation: 'tangent' at half the read voltage, or 'workload': for the drive
    # the reservoir measures on training data, per map (TileSurrogate.with_drive; docs/tile.md)
    linearise: str = "tangent"

    def check_task(self, owner: str) -> None:
        """Validate the shared fields (each config's ``__post_init__`` calls this)."""
        for f in ("n_train", "n_val", "n_test", "n_steps", "tile_rows", "tile_cols"):
            check_int(owner, f, getattr(self, f), 0, 10_000_000)
        for f in ("crop", "hidden", "readout_epochs"):
            check_int(owner, f, getattr(self, f), 1, 1_000_000)
        check_choice(owner, "adc_range", self.adc_range, ("corner", "workload"))
        check_choice(owner, "linearise", self.linearise, ("tangent", "workload"))
        for f in ("v_th", "in_level", "rec_level"):
            if not getattr(self, f):
                raise ConfigError(f"The '{f}' grid of {owner} needs at least one value.")
        if (self.tile_rows == 0) != (self.tile_cols == 0):
            raise ConfigError(
                f"Give both tile_rows and tile_cols (a tile size), or neither. Got "
                f"{self.tile_rows}x{self.tile_cols}.")


@dataclass(frozen=True)
class ClassifyConfig(TaskOptions):
    """Configuration of a classify run (saved as config.json; every field is an option)."""

    name: str = "classify"
    dataset: str = "digits-events"  # or spoken-digits, nmnist:PATH, ntidigits:PATH, wav:DIR, ...
    backends: tuple[str, ...] = ("ideal", "surrogate")
    seeds: int = 3
    seed: int = 0  # network seeds are seed, seed+1, ...
    surrogate: str = ""  # fitted surrogate file; empty: calibrate on the nodal engine
    n_windows: int = 1  # spike counts over this many time windows (1: the paper's)
    r_wire_ohm: float = 1.0  # TileSpec default; 5 is the stressed value
    adc_bits: int = 14  # [Lin25] board; lower to stress the periphery
    cal_maps: int = 3  # surrogate calibration (when no file is given)
    cal_vectors: int = 24
    readout_solver: str = "adam"  # or lbfgs (full batch, deterministic)

    def __post_init__(self) -> None:
        o = "ClassifyConfig"
        kind = self.dataset.split(":", 1)[0]
        if self.dataset not in EMBEDDED and (kind not in PREFIXED or ":" not in self.dataset):
            raise ConfigError(
                f"The 'dataset' parameter of {o} must be one of {list(EMBEDDED)} or "
                f"'<kind>:PATH' with kind in {list(PREFIXED)}. Got {self.dataset!r} instead.")
        check_run_options(o, self.backends, self.seeds, self.seed, self.data_seed)
        self.check_task(o)
        for f in ("n_windows", "cal_maps", "cal_vectors"):
            check_int(o, f, getattr(self, f), 1, 1_000_000)
        check_int(o, "adc_bits", self.adc_bits, 1, 24)
        check_choice(o, "readout_solver", self.readout_solver, ("adam", "lbfgs"))
        check_range(o, "r_wire_ohm", self.r_wire_ohm, 0, 1e4, unit="ohm")


# -- data ------------------------------------------------------------------------------------
def load_split(spec: str, split: str, seed: int, n: int) -> EventDataset:
    """One split of a dataset named as in ``ClassifyConfig.dataset``."""
    n_samples = n or None
    if spec in EMBEDDED:
        return load_dataset(spec, split, seed=seed, n_samples=n_samples)
    kind, path = spec.split(":", 1)
    if kind == "nmnist":
        from ...data.nmnist import load_nmnist

        return load_nmnist(path, split, seed=seed, n_samples=n_samples)
    from ...data import user_data

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


# -- backends --------------------------------------------------------------------------------
def _tile_spec(cfg: ClassifyConfig, rows: int, cols: int) -> TileSpec:
    return TileSpec(rows=cfg.tile_rows or rows, cols=cfg.tile_cols or cols,
                    r_wire_ohm=cfg.r_wire_ohm, adc=AdcSpec(bits=cfg.adc_bits))


def most_active_lif(hidden: int, grid: list[tuple[float, float, float, float]]) -> LIFParams:
    """The LIF of a (v_th, decay, in_level, rec_level) grid that fires most: lowest threshold,
    highest decay and levels; the conservative point for sizing the ADC range."""
    return LIFParams(hidden=hidden, v_th=min(g[0] for g in grid), decay=max(g[1] for g in grid),
                     in_level=max(g[2] for g in grid), rec_level=max(g[3] for g in grid))


def _workload_spec(cfg: ClassifyConfig, spec: TileSpec, train: np.ndarray,
                   grid: list[tuple[float, float, float, float]], h: int) -> TileSpec:
    """Spec whose ADC full scale fits the currents the reservoir draws on training data.

    Measured with the ideal backend on a probe map of the same distribution, at the grid
    point with the most activity (:func:`most_active_lif`), on up to 200 training samples;
    with ``--tile-rows`` the currents are summed over row tiles, so the range is conservative
    there.
    """
    rng = np.random.default_rng([cfg.seed, 104729])
    gp, gn = differential_pair((train.shape[2] + h, h), rng, DeviceParams())
    tile = _backend("ideal", cfg, spec, None).bind(gp, gn)
    i_fs = workload_full_scale_ua(tile, train[:200], most_active_lif(h, grid), rng)
    return with_full_scale(spec, i_fs)


def _surrogate(cfg: ClassifyConfig, spec: TileSpec, run: RunDir,
               rng: np.random.Generator) -> TileSurrogate:
    if cfg.surrogate:
        sur = TileSurrogate.load(cfg.surrogate)
        if sur.spec != spec:
            raise ConfigError(
                f"The surrogate {cfg.surrogate} was calibrated for another TileSpec "
                f"({sur.spec.rows}x{sur.spec.cols}, r_wire {sur.spec.r_wire_ohm} ohm, "
                f"{sur.spec.adc.bits}-bit ADC) than this run needs ({spec.rows}x{spec.cols}, "
                f"r_wire {spec.r_wire_ohm} ohm, {spec.adc.bits}-bit ADC). Recalibrate, or drop "
                "--surrogate to calibrate on the nodal engine.")
        return sur
    device = DeviceParams()
    shape = (spec.rows, spec.cols)
    maps = calibration_maps(shape, cfg.cal_maps, rng, device, spec)
    inputs = [calibration_inputs(spec.rows, cfg.cal_vectors, rng) for _ in maps]
    samples = simulate(make_backend("nodal", spec), maps, inputs, rng)
    sur = fit_surrogate(spec, samples, read_noise_sigma_us=device.read_noise_sigma_us,
                        provenance={"reference": "nodal", "maps": len(maps),
                                    "vectors": cfg.cal_vectors})
    sur.save(run.path / "surrogate.json")
    return sur


def _backend(name: str, cfg: ClassifyConfig, spec: TileSpec,
             sur: TileSurrogate | None) -> TileBackend:
    be: TileBackend = sur if name == "surrogate" else make_backend(name, spec)
    if cfg.tile_rows:
        be = TiledBackend(be, cfg.tile_rows, cfg.tile_cols)
    return be


# -- one network -----------------------------------------------------------------------------
def _readout(feats: dict[str, np.ndarray], labels: dict[str, np.ndarray], n_classes: int,
             cfg: ClassifyConfig, rng: np.random.Generator) -> SoftmaxReadout:
    return SoftmaxReadout(epochs=cfg.readout_epochs, solver=cfg.readout_solver).fit(
        feats["train"], labels["train"], rng=rng, n_classes=n_classes)


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


def select_on_validation(tile: Any, frames: dict[str, np.ndarray],
                         labels: dict[str, np.ndarray], grid: list[tuple[float, float, float,
                                                                         float]],
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


def run_classify(cfg: ClassifyConfig, runs_root: str | Path = "runs", *,
                 progress: bool = True) -> dict[str, Any]:
    """Run the protocol in the module docstring and write ``runs_root/<cfg.name>/``."""
    t0 = time.perf_counter()
    run = RunDir.create(runs_root, cfg.name)
    run.write_config(COMMAND, asdict(cfg))
    data, frames, labels, audio, n_steps = load_task_frames(
        cfg.dataset, cfg.data_seed, (cfg.n_train, cfg.n_val, cfg.n_test), cfg.n_steps, cfg.crop)
    n_classes = int(max(lab.max() for lab in labels.values()) + 1)
    n_in = frames["train"].shape[2]
    h = cfg.hidden
    decays = cfg.decay or ((0.97,) if audio else (0.9,))
    grid = list(itertools.product(cfg.v_th, decays, cfg.in_level, cfg.rec_level))
    spec = _tile_spec(cfg, n_in + h, h)
    if cfg.adc_range == "workload":
        spec = _workload_spec(cfg, spec, frames["train"], grid, h)
    sur = (_surrogate(cfg, spec, run, np.random.default_rng([cfg.seed, 7919]))
           if "surrogate" in cfg.backends else None)
    backends = {b: _backend(b, cfg, spec, sur) for b in cfg.backends}

    n_work = cfg.seeds * (len(grid) * len(backends) + 1)
    bar = tqdm(total=n_work, desc="classify", disable=not progress, unit="net")
    grid_rows, acc_rows, correct, activity = [], [], {}, {}
    cms = {b: np.zeros((n_classes, n_classes), dtype=np.int64) for b in backends}
    embed = None
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
        clf = _readout(raw, labels, n_classes, cfg, r)
        pred = clf.predict(raw["test"])
        correct.setdefault("raw events", []).append(pred == labels["test"])
        acc_rows.append({"seed": seed, "model": "readout on raw events (no reservoir)",
                         "val_acc": clf.score(raw["val"], labels["val"]),
                         "test_acc": float(np.mean(pred == labels["test"]))})
        bar.update()
    bar.close()

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
    last = cfg.backends[-1]
    save_figure(_confusion_plot(cms[last], last), run.path / "confusion.png")
    assert embed is not None
    save_figure(_embedding_plot(embed[1], labels["test"], embed[0]), run.path / "embedding.png")
    wall = time.perf_counter() - t0
    _report(run, cfg, spec, data, n_in, n_steps, summary_tab, paired, per_class, wall)
    headline = {r["model"]: {"val": round(r["val_mean"], 4), "test": round(r["test_mean"], 4),
                             "test_std": round(float(np.nan_to_num(r["test_std"])), 4)}
                for r in summary_tab.to_dict(orient="records")}
    summary = {"headline": headline, "accuracy": acc.to_dict(orient="records"),
               "paired": paired.to_dict(orient="records"), "wall_s": wall}
    run.write_json("summary.json", {k: v for k, v in summary.items() if k != "wall_s"})
    return summary


def _confusion_plot(cm: np.ndarray, backend: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(cm / np.maximum(cm.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0,
                   vmax=1)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"test confusion, LSM on {backend} (all seeds)")
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    return fig


def _embedding_plot(feats: np.ndarray, labels: np.ndarray, backend: str):
    import matplotlib.pyplot as plt

    p = pca_2d(feats)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sc = ax.scatter(p[:, 0], p[:, 1], c=labels, cmap="tab10", s=8)
    ax.set_xlabel("PC 1 of spike counts")
    ax.set_ylabel("PC 2")
    ax.set_title(f"test spike-count embedding ({backend}, first seed)")
    fig.colorbar(sc, ax=ax, label="class")
    return fig


def _report(run: RunDir, cfg: ClassifyConfig, spec: TileSpec, data: dict, n_in: int,
            n_steps: int,
            summary_tab: pd.DataFrame, paired: pd.DataFrame, per_class: pd.DataFrame,
            wall: float) -> None:
    sizes = "/".join(str(len(d)) for d in data.values())
    tile = (f"tiles of {cfg.tile_rows}x{cfg.tile_cols}" if cfg.tile_rows
            else "the whole map on one macro")
    sections = [
        ("What ran", (
            f"`{cfg.dataset}` ({sizes} train/val/test samples, {n_in} inputs, {n_steps} steps), "
            f"LIF reservoir h = {cfg.hidden} on a {n_in + cfg.hidden}x{cfg.hidden} differential "
            f"map ({tile}; r_wire {cfg.r_wire_ohm} ohm, {cfg.adc_bits}-bit ADC with full scale "
            f"{spec.adc.v_full_scale_v / spec.r_f_ohm * 1e6:.0f} uA per column, "
            f"'{cfg.adc_range}' range), backends "
            f"{', '.join(cfg.backends)}"
            + (f" (surrogate linearised: '{cfg.linearise}')" if "surrogate" in cfg.backends
               else "")
            + f", {cfg.seeds} network seed(s). Hyperparameters chosen per "
            "seed and backend on validation (grid in grid.csv); nothing selected on "
            f"test. Wall time {wall:.0f} s.")),
        ("Accuracy (mean and std over seeds)", markdown_table(summary_tab)),
        (f"Paired test-accuracy difference to `{cfg.backends[0]}` (95 % interval)",
         markdown_table(paired) if len(paired) else "Only one backend ran."),
        ("Per class (test, pooled over seeds)", markdown_table(per_class)),
        ("Plots", "![](confusion.png)\n\n![](embedding.png)"),
    ]
    write_report(run.path / "report.md", f"rram-cosim classify: {cfg.name}", sections)


CONFIG = ClassifyConfig
run = run_classify
