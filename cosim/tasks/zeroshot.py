"""Zero-shot multimodal retrieval: two LSM encoders on one conductance map, contrastive heads.

The protocol ([Lin25] zero-shot task, measured honestly):

1. **Data.** Images (``digits-events``, ``images:FILE`` or ``nmnist:DIR``) and a second
   modality (``neural-sim``, ``spoken-digits`` or ``wav:DIR``), each split train / val / test by
   ``data_seed``. Training uses the *seen* classes' train splits, validation their val splits;
   the test uses every sample of the *unseen* classes (``unseen_from="all"``: none is trained
   or selected on) or only their test splits (``"test"``), and the seen classes' test splits
   for the seen-class number. With ``neural-sim`` the population views the image modality's
   own images (:func:`~.neural_sim.source_images`: the digits, the file's images, N-MNIST's
   event-count images) and the image modality keeps only the ``"image"`` half of them
   (:func:`~.neural_sim.source_partition`): no neural query is a recording of a gallery image.
   A class pairing whose class names disagree is refused, one that rests on class numbers
   alone is warned about (:mod:`.data_checks`).
2. **Pairs.** ``instance`` (neural-sim; the paper's BMI data): the population's *training*
   trials view the image modality's training images, so training pair i is (image i, a
   recording of image i); its val and test trials view the other half of the images.
   ``class``: every epoch pairs each sample of the scarcer modality with a random same-class
   sample of the other.
3. **One map, two encoders.** Per network seed one differential map of
   ``(n_image + n_other + hidden) x hidden`` weights is drawn: rows ``[image inputs | other
   inputs | recurrent]``. The backend binds the whole map once (as one physical array);
   each encoder is a view (:class:`EncoderView`) that drives its own input rows and the
   shared recurrent rows and holds the other modality's input rows at 0 V. The image encoder
   thus reads a ``(n_image + hidden) x hidden`` sub-map, the other a ``(n_other + hidden) x
   hidden`` one, and both read the same recurrent cells (the paper's 456x201 / 264x201
   sharing). With ``tile_rows``/``tile_cols`` the map is split over tiles
   (:class:`~rram_cosim.models.tile.tiling.TiledBackend`); tiles that hold only the other
   modality's rows then see zero inputs. The surrogate is linearised for the drive of both
   encoders, profiled on the one map (``linearise='workload'``, :func:`bind_shared_map`).
4. **Reservoir features** per (backend, seed, encoder, LIF parameters) are computed once
   (:class:`FeatureCache`); every head grid and checkpoint reuses them.
5. **Heads.** :class:`~rram_cosim.models.snn.contrastive.ContrastiveHeads` on the spike counts for
   every temperature / activation / positive mask of the grid, checkpoints every
   ``eval_every`` epochs, trained twice: on all seen classes (``full``) and on the seen
   classes minus the validation classes (``holdout``).
   **Selection** (:data:`SELECTIONS`), each over the (LIF, head, epoch) grid: ``honest`` by
   zero-shot top-1 on the held-out validation classes (the standard zero-shot protocol;
   the chosen point's ``full`` model is tested); ``honest-seen-val`` by top-1 on seen-class
   validation pairs; ``paper`` by the unseen *test* top-1 (the published scripts kept the
   best test epoch), labelled as such everywhere. Only ``paper`` looks at unseen classes.
6. **Baseline.** The same heads and grid on raw binned event counts (no reservoir).
7. **Statistics.** Mean, std and Student-t 95 % interval over seeds, the exact chance level of
   the retrieval rule (unseen, seen-class test and validation retrievals, from the labels
   that ran), a label-permutation p-value pooled over seeds, and paired differences between
   models by a bootstrap over seeds and queries of the per-query hit differences.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ...analysis.stats import paired_bootstrap
from ...models.blas import blas_limit
from ...models.checks import check_choice, check_int
from ...models.device.conductance import differential_pair
from ...models.errors import ConfigError, DomainWarning
from ...models.params import DeviceParams, LIFParams
from ...models.snn.contrastive import (
    ContrastiveHeads,
    chance_topk,
    mean_interval,
    nearest_labels,
    permutation_pvalue,
    topk_hits,
)
from ...models.snn.lsm import ReservoirActivity, run_reservoir
from ...models.tile.backend import BoundTile, TileOutput
from ...models.tile.clipping import tally_reads
from ..data.audio import SpokenDigitsParams
from ..data.datasets import EventDataset, load_dataset
from ..data.neural_sim import (
    ImageSource,
    NeuralSimParams,
    load_neural_sim,
    neural_responses,
    source_images,
    source_partition,
)
from ..engines.calibrate import bind_for_workload
from .classify import (
    frames_of,
    is_audio,
    load_split,
    model_label,
    task_backend,
    task_surrogate,
    task_tile_spec,
)
from .configs.zeroshot import ZeroshotConfig
from .data_checks import (
    class_names_of,
    describe_split,
    interval_warnings,
    pairing_warnings,
    shared_group_warnings,
    small_test_warnings,
    val_gap_warnings,
)
from .status import Status


# -- data ------------------------------------------------------------------------------------
@dataclass
class Modality:
    """Binned samples of one modality: frames per split (n, T, n_in) and labels."""

    name: str
    frames: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    audio: bool
    sources: dict[str, np.ndarray] = field(default_factory=dict)
    split_text: str = ""  # how the data were split (data_checks.describe_split)
    class_names: tuple[str, ...] = ()  # the classes' names where the data name them

    @property
    def n_in(self) -> int:
        return int(self.frames["train"].shape[2])


def _subset(ds: EventDataset, keep: np.ndarray) -> EventDataset:
    meta = dict(ds.metadata)
    for k in ("source_index", "groups"):
        if k in meta:
            meta[k] = np.asarray(meta[k])[keep]
    meta.pop("sample_info", None)
    return dataclasses.replace(ds, events=tuple(ds.events[i] for i in np.flatnonzero(keep)),
                               labels=ds.labels[keep], metadata=meta)


def _concat(parts: list[EventDataset]) -> EventDataset:
    meta = dict(parts[0].metadata)
    if all("source_index" in p.metadata for p in parts):
        meta["source_index"] = np.concatenate([p.metadata["source_index"] for p in parts])
    for k in ("groups", "sample_info"):
        meta.pop(k, None)
    return dataclasses.replace(parts[0], events=tuple(e for p in parts for e in p.events),
                               labels=np.concatenate([p.labels for p in parts]), split="all",
                               metadata=meta)


def _load_other(cfg: ZeroshotConfig, split: str, n: int,
                source: ImageSource | None = None) -> EventDataset:
    if cfg.other == "neural-sim":
        return load_neural_sim(split, seed=cfg.data_seed,
                               params=NeuralSimParams(n_neurons=cfg.neurons),
                               n_samples=n or None, source=source)
    if cfg.other == "spoken-digits" and cfg.oh_class >= 0:
        ds = load_dataset("spoken-digits", split, seed=cfg.data_seed, n_samples=n or None,
                          params=SpokenDigitsParams(include_oh=True))
        lab = np.where(ds.labels == 10, cfg.oh_class, ds.labels)
        return dataclasses.replace(ds, labels=lab, n_classes=max(ds.n_classes, cfg.oh_class + 1),
                                   split=split)
    return load_split(cfg.other, split, cfg.data_seed, n, split_by=cfg.split_by,
                      group_field=cfg.group_field)


def _load_image(cfg: ZeroshotConfig, split: str, n: int,
                source: ImageSource | None = None, progress: bool = False,
                loaded: EventDataset | None = None) -> EventDataset:
    ds = loaded if loaded is not None else load_split(
        cfg.image, split, cfg.data_seed, 0, split_by=cfg.split_by,
        group_field=cfg.group_field, progress=progress)
    if source is not None:
        # the population views the other half of the same images: keep this half only
        keep = np.isin(np.asarray(ds.metadata["source_index"]),
                       source_partition(cfg.data_seed, source.labels)["image"])
        ds = _subset(ds, keep)
    if n:
        ds = _subset(ds, np.arange(len(ds)) < n)
    return ds


def _numbered_recordings(cfg: ZeroshotConfig, status: Status
                         ) -> tuple[dict[str, EventDataset], EventDataset]:
    """Every split of an events-only image set (N-MNIST), each sample's ``source_index`` its
    row in the splits' concatenation (train, val, test), and that concatenation."""
    parts, start = {}, 0
    for s in ("train", "val", "test"):
        with status.step(f"loading {cfg.image}, {s} split"):
            ds = load_split(cfg.image, s, cfg.data_seed, 0)
        meta = dict(ds.metadata, source_index=np.arange(start, start + len(ds)))
        parts[s] = dataclasses.replace(ds, split=s, metadata=meta)
        start += len(ds)
    return parts, _concat(list(parts.values()))


def load_modalities(cfg: ZeroshotConfig, status: Status | None = None
                    ) -> tuple[Modality, Modality]:
    """Both modalities, binned, restricted to the classes the protocol uses, checked.

    Splits: ``train``/``val`` hold seen classes, ``test`` the unseen classes, ``seen_test`` the
    seen classes' test samples. With ``neural-sim`` the population views the image modality's
    own source images (:func:`~rram_cosim.cosim.data.neural_sim.source_images`; refused for an
    image modality without them). A class pairing that cannot mean anything is refused and
    one that rests on class numbers alone is warned about
    (:func:`~.data_checks.pairing_warnings`), through ``status``.
    """
    status = Status("zeroshot", enabled=False) if status is None else status
    seen, unseen = np.array(cfg.seen_classes), np.array(cfg.unseen_classes)
    sizes = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
    source, loaded = None, {}
    if cfg.other == "neural-sim" and cfg.image.startswith("nmnist:"):
        # N-MNIST keeps no images: the population views the recordings' event-count images,
        # so every recording is read first (the source rows are the recordings)
        loaded, every = _numbered_recordings(cfg, status)
        with status.step(f"counting the events of {len(every)} recordings (the images the "
                         "neural population views)"):
            source = source_images(cfg.image, every)
    elif cfg.other == "neural-sim":
        with status.step(f"reading the images the neural population views ({cfg.image})"):
            source = source_images(cfg.image)
    mods, raws = [], {}
    for name, spec in (("image", cfg.image), ("other", cfg.other)):
        raw = {}
        for s, n in sizes.items():
            with status.step(f"loading {spec}, {s} split"):
                raw[s] = (_load_image(cfg, s, n, source, progress=status.enabled,
                                      loaded=loaded.get(s))
                          if name == "image" else _load_other(cfg, s, n, source))
        raws[name] = raw
        audio = is_audio(raw["train"])
        n_steps = cfg.n_steps or (129 if audio and cfg.other != "neural-sim" else 50)
        frames, labels, sources = {}, {}, {}
        if cfg.unseen_from == "all":
            # no unseen-class sample is trained on or selected on: all of them are test data
            raw["all"] = _concat([raw[s] for s in ("train", "val", "test")])
        for split, src, classes in (("train", "train", seen), ("val", "val", seen),
                                    ("test", "all" if cfg.unseen_from == "all" else "test",
                                     unseen), ("seen_test", "test", seen)):
            ds = raw[src]
            keep = np.isin(ds.labels, classes)
            missing = sorted(set(classes.tolist()) - set(ds.labels[keep].tolist()))
            if missing:
                raise ConfigError(
                    f"Class(es) {missing} have no samples in the '{src}' split of the "
                    f"{name} modality ({spec}). Every seen class needs train and val samples "
                    "and every class test samples in both modalities; check --seen/--unseen "
                    "or the data.")
            sub = _subset(ds, keep)
            frames[split] = frames_of(sub, n_steps, cfg.crop)
            labels[split] = np.asarray(sub.labels)
            if "source_index" in sub.metadata:
                sources[split] = np.asarray(sub.metadata["source_index"])
        split_text = describe_split({s: raw[s] for s in sizes})
        status.note(f"{spec} split: {split_text}")
        mods.append(Modality(name=spec, frames=frames, labels=labels, audio=audio,
                             sources=sources, split_text=split_text,
                             class_names=class_names_of(raw["train"]) or ()))
    img, oth = mods
    for w in pairing_warnings(raws["image"]["train"], raws["other"]["train"],
                              [*cfg.seen_classes, *cfg.unseen_classes],
                              shared_source=source is not None):
        status.warn(w)
    for mod, what in ((oth, "unseen queries"), (img, "unseen gallery images")):
        for w in small_test_warnings(mod.labels["test"], cfg.unseen_classes,
                                     cfg.warn_min_test_per_class, what):
            status.warn(w)
    for w in shared_group_warnings(raws["image"]) + shared_group_warnings(raws["other"]):
        status.warn(w)
    if cfg.pairing_mode == "instance":
        # [Lin25] BMI: recordings of the viewed images. Training trials view the image
        # modality's own training images (row i pairs with image i); val and test queries stay
        # responses to the disjoint neural half, so no query is a gallery image in disguise.
        # stream 3: load_neural_sim's splits use trial streams 0-2 (train, val, test); a
        # fourth keeps these training trials' noise independent of the val/test queries'.
        with status.step("simulating the population's trials on the training images"):
            ds = neural_responses(img.sources["train"], seed=cfg.data_seed,
                                  params=NeuralSimParams(n_neurons=cfg.neurons), stream=3,
                                  source=source)
        oth.frames["train"] = frames_of(ds, oth.frames["val"].shape[1], cfg.crop)
        oth.labels["train"] = np.asarray(ds.labels)
        oth.sources["train"] = img.sources["train"]
    for mod, want, what in ((img, cfg.image_inputs, "image_inputs"),
                            (oth, cfg.other_inputs, "other_inputs")):
        if want and mod.n_in != want:
            raise ConfigError(
                f"Mismatched encoder sizes: {what}={want} but the {mod.name} data gives "
                f"{mod.n_in} inputs a time step. Set {what} to {mod.n_in} (or 0 to take it "
                "from the data), or change crop / neurons.")
    return img, oth


# -- one map, two encoders -------------------------------------------------------------------
@dataclass(frozen=True)
class MapLayout:
    """Rows of the shared map: ``[image inputs | other inputs | recurrent]``, ``hidden`` cols."""

    n_image: int
    n_other: int
    hidden: int

    def __post_init__(self) -> None:
        for f in ("n_image", "n_other", "hidden"):
            check_int("MapLayout", f, getattr(self, f), 1, 1 << 20)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_image + self.n_other + self.hidden, self.hidden)

    @property
    def recurrent_rows(self) -> np.ndarray:
        return np.arange(self.n_image + self.n_other, self.shape[0])

    def rows_of(self, encoder: str) -> np.ndarray:
        """Rows one encoder reads: its own inputs, then the shared recurrent rows."""
        check_choice("MapLayout", "encoder", encoder, ["image", "other"])
        own = (np.arange(self.n_image) if encoder == "image"
               else np.arange(self.n_image, self.n_image + self.n_other))
        return np.concatenate([own, self.recurrent_rows])

    def n_tiles(self, tile_rows: int, tile_cols: int) -> int:
        """Tiles the map takes when split into ``tile_rows x tile_cols`` (weights) blocks."""
        r, c = self.shape
        return -(-r // tile_rows) * -(-c // tile_cols)


class EncoderView:
    """One encoder's rows of a bound shared map (a :class:`BoundTile` of the sub-map shape).

    ``apply`` drives this encoder's rows with ``x`` and holds every other row at 0 V, on the
    one bound array: the circuit (wires, transistors, TIAs) is the whole map's.
    """

    def __init__(self, bound: BoundTile, rows: np.ndarray) -> None:
        self.bound = bound
        self.rows = np.asarray(rows, dtype=np.int64)
        self.spec = bound.spec
        self.g_pos_us = bound.g_pos_us[self.rows]
        self.g_neg_us = bound.g_neg_us[self.rows]
        self.n_rows_total = bound.g_pos_us.shape[0]

    def apply(self, x: np.ndarray, rng: np.random.Generator, *,
              volts: bool = False) -> TileOutput:
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if x.shape[1] != self.rows.size:
            hidden = self.bound.g_pos_us.shape[1]
            raise ConfigError(
                f"This encoder reads {self.rows.size} rows ({self.rows.size - hidden} own "
                f"inputs, then the {hidden} shared recurrent rows), so x must be (n, "
                f"{self.rows.size}). Got inputs of shape "
                f"{x.shape}; pass one column per row in MapLayout.rows_of(encoder) order.")
        full = np.zeros((x.shape[0], self.n_rows_total))
        full[:, self.rows] = x
        return self.bound.apply(full, rng, volts=volts)


def draw_shared_map(layout: MapLayout, seed: int,
                    device: DeviceParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The network seed's differential map (G+, G- in uS) of ``layout.shape``."""
    return differential_pair(layout.shape, np.random.default_rng(seed),
                             device if device is not None else DeviceParams())


def bind_shared_map(cfg: ZeroshotConfig, name: str, backend: Any, gp: np.ndarray,
                    gn: np.ndarray, layout: MapLayout, image: Modality, other: Modality,
                    seed: int) -> BoundTile:
    """Bind the shared map on ``backend``; the surrogate with ``cfg.linearise == 'workload'``
    is linearised for both encoders' drive, profiled on one map.

    Each encoder runs on up to 200 training samples through its own view of the plain
    (tangent) binding, at the grid's most active point (lowest threshold, highest recurrent
    level, as classify profiles); every VMM of both goes into one drive profile, so the image
    rows are linearised for the image encoder, the other modality's rows for its encoder and
    the shared recurrent rows for both together.
    """
    if name != "surrogate" or cfg.linearise != "workload":
        return backend.bind(gp, gn)
    lifs = lif_grid(cfg, other.audio)
    hot = [dataclasses.replace(lifs[0][k], v_th=min(p[k].v_th for p in lifs),
                               rec_level=max(p[k].rec_level for p in lifs)) for k in (0, 1)]
    runs = [(lambda t, e=enc: EncoderView(t, layout.rows_of(e)), mod.frames["train"][:200],
             lif) for enc, mod, lif in (("image", image, hot[0]), ("other", other, hot[1]))]
    return bind_for_workload(backend, gp, gn, None, None, np.random.default_rng([seed, 5]),
                             runs=runs)


# -- features --------------------------------------------------------------------------------
class FeatureCache:
    """Reservoir spike counts and activity per (backend, seed, encoder, LIF parameters),
    computed once."""

    def __init__(self) -> None:
        self._store: dict[tuple, Any] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple, compute: Callable[[], Any]) -> Any:
        if key in self._store:
            self.hits += 1
        else:
            self.misses += 1
            self._store[key] = compute()
        return self._store[key]


def reservoir_features(view: BoundTile, mod: Modality, lif: LIFParams,
                       rng: np.random.Generator
                       ) -> tuple[dict[str, np.ndarray], ReservoirActivity]:
    """Spike counts of every split of ``mod`` (one reservoir call over all splits) and the
    reservoir's activity over all those samples (for energy accounting)."""
    splits = list(mod.frames)
    allf = np.concatenate([mod.frames[s] for s in splits])
    feats, activity = run_reservoir(view, allf, lif, rng)
    out, i = {}, 0
    for s in splits:
        n = len(mod.frames[s])
        out[s] = feats[i:i + n]
        i += n
    return out, activity


def encoder_names(cfg: ZeroshotConfig) -> dict[str, str]:
    """Energy-preset encoder name (:data:`rram_cosim.analysis.energy.PRESETS`) of each of the
    run's encoders: ``image``, and ``neural`` (neural-sim) or ``audio`` (spoken digits, wav)."""
    return {"image": "image", "other": "neural" if cfg.other == "neural-sim" else "audio"}


def activity_records(cfg: ZeroshotConfig, res: ProtocolResult,
                     selection: str) -> dict[str, dict[str, Any]]:
    """``{"<backend>/<encoder>/seed<k>": ReservoirActivity.to_dict()}`` of every backend and
    seed, at the LIF point ``selection`` chose for that seed's model (the reservoir a user
    would deploy; the energy command reads this as activity.json)."""
    names = encoder_names(cfg)
    out: dict[str, dict[str, Any]] = {}
    for backend in cfg.backends:
        for row in res.chosen[(model_label(backend), selection)]:
            for enc, act in row["activity"].items():
                out[f"{backend}/{names[enc]}/seed{row['seed']}"] = act.to_dict()
    return out


def raw_features(mod: Modality) -> dict[str, np.ndarray]:
    """Baseline features: events per input over the whole sample (no reservoir)."""
    return {s: f.sum(axis=1).astype(np.float64) for s, f in mod.frames.items()}


# -- heads over a grid -----------------------------------------------------------------------
def head_grid(cfg: ZeroshotConfig) -> list[dict[str, Any]]:
    return [{"temperature": t, "activation": a, "positives": p}
            for t, a, p in itertools.product(cfg.temperature, cfg.activation, cfg.positives)]


def lif_grid(cfg: ZeroshotConfig, other_audio: bool) -> list[tuple[LIFParams, LIFParams]]:
    """(image LIF, other LIF) pairs of the grid; the two differ only in their decay."""
    d_other = cfg.decay_other or (0.97 if other_audio and cfg.other != "neural-sim" else 0.9)
    out = []
    for v_th, rec in itertools.product(cfg.v_th, cfg.rec_level):
        out.append((LIFParams(hidden=cfg.hidden, v_th=v_th, decay=cfg.decay_image,
                              rec_level=rec),
                    LIFParams(hidden=cfg.hidden, v_th=v_th, decay=d_other, rec_level=rec)))
    return out


@dataclass(frozen=True)
class RetrievalSet:
    """Queries (other modality) and gallery (images) of one evaluation."""

    queries: np.ndarray
    query_labels: np.ndarray
    gallery: np.ndarray
    gallery_labels: np.ndarray


def retrieval_sets(fi: dict[str, np.ndarray], fo: dict[str, np.ndarray],
                   li: dict[str, np.ndarray], lo: dict[str, np.ndarray],
                   val_classes: tuple[int, ...], instance: bool) -> dict[str, Any]:
    """Training data and evaluation sets of the full grid and of the held-out-class grid.

    ``full``: train on all seen classes; evaluate ``val`` (seen val pairs), ``unseen`` and
    ``seen_test``. ``holdout`` (when ``val_classes``): train on the seen classes minus
    ``val_classes`` (train split) and evaluate zero-shot on the validation classes, which that
    grid never trained on: gallery their train and val images, queries their val samples of
    the other modality (and their train samples with class pairing; with instance pairing the
    training trials viewed the gallery images, so they are left out).
    """
    def rs(split: str) -> RetrievalSet:
        return RetrievalSet(fo[split], lo[split], fi[split], li[split])

    out = {"full": {"train": (fi["train"], fo["train"], li["train"], lo["train"]),
                    "eval": {"val": rs("val"), "unseen": rs("test"),
                             "seen_test": rs("seen_test")}}}
    if val_classes:
        vc = np.array(val_classes)
        ti, to = ~np.isin(li["train"], vc), ~np.isin(lo["train"], vc)
        vi, vo = np.isin(li["val"], vc), np.isin(lo["val"], vc)
        gallery = np.concatenate([fi["train"][~ti], fi["val"][vi]])
        g_lab = np.concatenate([li["train"][~ti], li["val"][vi]])
        q_parts = [(fo["val"][vo], lo["val"][vo])]
        if not instance:
            q_parts.append((fo["train"][~to], lo["train"][~to]))
        queries = np.concatenate([q for q, _ in q_parts])
        q_lab = np.concatenate([lab for _, lab in q_parts])
        out["holdout"] = {"train": (fi["train"][ti], fo["train"][to], li["train"][ti],
                                    lo["train"][to]),
                          "eval": {"heldout": RetrievalSet(queries, q_lab, gallery, g_lab)}}
    return out


def train_heads(cfg: ZeroshotConfig, train: tuple[np.ndarray, ...], hp: dict[str, Any],
                rng: np.random.Generator) -> ContrastiveHeads:
    """Fit one head configuration on training pairs drawn by class, with checkpoints."""
    xa, xb, ya, yb = train
    model = ContrastiveHeads(dim=cfg.dim, temperature=hp["temperature"],
                             activation=hp["activation"], positives=hp["positives"], lr=cfg.lr,
                             epochs=cfg.epochs, batch_size=cfg.batch_size, l2=cfg.l2,
                             checkpoints=cfg.checkpoints)
    return model.fit(xa, xb, rng=rng, labels_a=ya, labels_b=yb,
                     paired=cfg.pairing_mode == "instance")


def evaluate(model: ContrastiveHeads, sets: dict[str, RetrievalSet],
             top_k: int) -> dict[str, Any]:
    """Top-1 on every set; for ``unseen`` also top-k and the neighbour labels (nearest first)."""
    out: dict[str, Any] = {}
    for name, r in sets.items():
        k = min(top_k, r.gallery_labels.size) if name == "unseen" else 1
        nl = nearest_labels(model.transform_b(r.queries), model.transform_a(r.gallery),
                            r.gallery_labels, k)
        out[f"{name}_top1"] = float(np.mean(topk_hits(nl[:, :1], r.query_labels)))
        if name == "unseen":
            out["unseen_topk"] = float(np.mean(topk_hits(nl, r.query_labels)))
            out["neighbours"] = nl
    return out


SELECTIONS = {
    "honest": ("heldout_top1", "honest: held-out seen classes (zero-shot on validation classes)"),
    "honest-seen-val": ("val_top1", "honest: seen-class validation pairs"),
    "paper": ("unseen_top1", "paper protocol: selected on the unseen test queries"),
}
"""Selection rules: the grid row maximising the named metric (ties: earliest row)."""


def select(rows: list[dict[str, Any]], metric: str) -> int:
    """Index of the row with the largest ``metric`` (ties go to the earliest row: grid order,
    fewer epochs first)."""
    vals = [r.get(metric, np.nan) for r in rows]
    if not rows or np.all(np.isnan(vals)):
        raise ConfigError(f"No grid row carries the selection metric {metric!r}.")
    return int(np.nanargmax(vals))


P_INVALID_NOTE = "not valid after test selection"
"""Note beside the p-value of rows chosen on the test queries (``paper``): the permutation
null does not include the selection over the grid, so the p-value would be too small."""


def summarise(per_seed: list[dict[str, Any]], query_labels: np.ndarray,
              gallery_labels: np.ndarray, n_perm: int,
              rng: np.random.Generator, *, p_valid: bool = True,
              seen_test: tuple[np.ndarray, np.ndarray] | None = None,
              val: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Mean, std, 95 % interval over seeds, chance levels and the permutation p-value.

    ``p_valid=False`` (a row selected on the test queries): ``p_value_top1`` is NaN and
    ``p_value_note`` says why (:data:`P_INVALID_NOTE`). ``seen_test`` and ``val`` are the
    (query labels, gallery labels) of the seen-class test and validation retrievals: their
    exact top-1 chance levels (``chance_seen_test_top1``, ``chance_val_top1``; NaN without
    them) come from the labels that ran, so an imbalanced set gets its own chance."""
    s1 = mean_interval([r["unseen_top1"] for r in per_seed])
    sk = mean_interval([r["unseen_topk"] for r in per_seed])
    neighbours = [r["neighbours"] for r in per_seed]
    k = neighbours[0].shape[1]
    qls = [query_labels] * len(per_seed)
    return {
        "unseen_top1_mean": s1["mean"], "unseen_top1_std": s1["std"],
        # an accuracy lies in [0, 1]: the t interval is clipped there (wide with few seeds)
        "unseen_top1_ci_low": max(s1["ci_low"], 0.0),
        "unseen_top1_ci_high": min(s1["ci_high"], 1.0),
        "chance_top1": chance_topk(query_labels, gallery_labels, 1),
        "p_value_top1": (permutation_pvalue([n[:, :1] for n in neighbours], qls, n_perm, rng)
                         if p_valid else float("nan")),
        "p_value_note": "" if p_valid else P_INVALID_NOTE,
        f"unseen_top{k}_mean": sk["mean"], f"unseen_top{k}_std": sk["std"],
        f"chance_top{k}": chance_topk(query_labels, gallery_labels, k),
        "seen_test_top1_mean": float(np.mean([r["seen_test_top1"] for r in per_seed])),
        "val_top1_mean": float(np.mean([r["val_top1"] for r in per_seed])),
        "chance_seen_test_top1": (chance_topk(*seen_test, 1) if seen_test is not None
                                  else float("nan")),
        "chance_val_top1": chance_topk(*val, 1) if val is not None else float("nan"),
        "n_seeds": len(per_seed), "n_queries": int(query_labels.size),
        "n_gallery": int(gallery_labels.size),
    }


# -- the whole protocol ----------------------------------------------------------------------
@dataclass
class ProtocolResult:
    """Everything a run measured.

    ``grid``: one row per (seed, model, grid, LIF point, head point, checkpoint); ``grid`` is
    ``"full"`` (trained on all seen classes) or ``"holdout"`` (seen minus validation classes).
    ``chosen``: ``{(model, selection): [per-seed row]}``; each row is the chosen full-grid row
    (its metrics and hyperparameters) plus ``neighbours`` (unseen queries' gallery labels),
    the fitted ``heads``, the features ``feats`` it used and the reservoirs' ``activity``
    (``{"image": ReservoirActivity, "other": ...}``; empty for the raw-events baseline).
    """

    grid: list[dict[str, Any]]
    chosen: dict[tuple[str, str], list[dict[str, Any]]]
    query_labels: np.ndarray
    gallery_labels: np.ndarray
    layout: MapLayout
    val_classes: tuple[int, ...]
    cache_hits: int
    cache_misses: int
    # the bound shared map of every (backend name, seed), as the reservoirs read it
    tiles: dict[tuple[str, int], BoundTile] = field(default_factory=dict)


def run_protocol(cfg: ZeroshotConfig, image: Modality, other: Modality,
                 backends: dict[str, Any], *,
                 on_step: Callable[[], None] = lambda: None,
                 on_note: Callable[[str], None] = lambda text: None) -> ProtocolResult:
    """Steps 2-6 of the module docstring for every seed; ``backends`` by name (unbound).
    ``on_step`` is called after every head of the grid, ``on_note`` with what runs now (a
    bind of the whole map takes tens of seconds with the surrogate).

    BLAS threads as :mod:`~rram_cosim.models.blas` says (one by default: the heads' matrices
    are small, and two threads fighting over two shared cores made a training step 10-40x
    slower in measurements on this machine).
    """
    with blas_limit():
        return _run_protocol(cfg, image, other, backends, on_step, on_note)


def _run_protocol(cfg: ZeroshotConfig, image: Modality, other: Modality,
                  backends: dict[str, Any], on_step: Callable[[], None],
                  on_note: Callable[[str], None]) -> ProtocolResult:
    layout = MapLayout(image.n_in, other.n_in, cfg.hidden)
    lifs = lif_grid(cfg, other.audio)
    heads = head_grid(cfg)
    vcls = cfg.val_class_tuple
    cache = FeatureCache()
    grid: list[dict[str, Any]] = []
    chosen: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def fit_grid(model_name: str, seed: int, points: list[tuple[dict, Callable]]) -> None:
        rows: dict[str, list[dict]] = {"full": [], "holdout": []}
        extra: list[dict] = []
        for point, feats in points:
            fi, fo, acts = feats()
            data = retrieval_sets(fi, fo, image.labels, other.labels, vcls,
                                  cfg.pairing_mode == "instance")
            for h_i, hp in enumerate(heads):
                for g_name, d in data.items():
                    model = train_heads(cfg, d["train"], hp,
                                        np.random.default_rng([seed, 4, h_i]))
                    per_epoch = model.train_ops_ / model.epochs
                    for epoch in sorted(model.snapshots_):
                        m = model.at_epoch(epoch)
                        ev = evaluate(m, d["eval"], cfg.top_k)
                        nl = ev.pop("neighbours", None)
                        rows[g_name].append({"seed": seed, "model": model_name,
                                             "grid": g_name, **point, **hp, "epoch": epoch,
                                             **ev, "train_ops": round(per_epoch * epoch)})
                        if g_name == "full":
                            extra.append({"neighbours": nl, "heads": m, "feats": (fi, fo),
                                          "activity": acts})
                on_step()
        grid.extend(rows["full"] + rows["holdout"])
        total = sum(r["train_ops"] for g in rows.values() for r in g if r["epoch"] == cfg.epochs)
        full = rows["full"]
        if rows["holdout"]:  # same order of (point, head, epoch) in both grids
            for r, h in zip(full, rows["holdout"]):
                r["heldout_top1"] = h["heldout_top1"]
        for sel, (metric, _) in SELECTIONS.items():
            if metric == "heldout_top1" and not vcls:
                continue
            i = select(full, metric)
            chosen.setdefault((model_name, sel), []).append(
                {**full[i], **extra[i], "selection": sel, "grid_train_ops": int(total)})

    tiles: dict[tuple[str, int], BoundTile] = {}
    for k in range(cfg.seeds):
        seed = cfg.seed + k
        gp, gn = draw_shared_map(layout, seed)
        for name, be in backends.items():
            on_note(f"seed {seed}: binding the map on {name}")
            bound = bind_shared_map(cfg, name, be, gp, gn, layout, image, other, seed)
            tiles[(name, seed)] = bound
            on_note(f"seed {seed}: reservoirs and heads on {name}")
            views = {e: EncoderView(bound, layout.rows_of(e)) for e in ("image", "other")}
            points = []
            for lif_i, lif_o in lifs:
                def feats(lif_i=lif_i, lif_o=lif_o, name=name, views=views, seed=seed):
                    fi, ai = cache.get((name, seed, "image", lif_i), lambda: reservoir_features(
                        views["image"], image, lif_i, np.random.default_rng([seed, 1, 0])))
                    fo, ao = cache.get((name, seed, "other", lif_o), lambda: reservoir_features(
                        views["other"], other, lif_o, np.random.default_rng([seed, 1, 1])))
                    return fi, fo, {"image": ai, "other": ao}
                points.append(({"v_th": lif_i.v_th, "rec_level": lif_i.rec_level}, feats))
            fit_grid(model_label(name), seed, points)
        if cfg.baseline:
            raw_i, raw_o = raw_features(image), raw_features(other)
            fit_grid("raw events (no reservoir)", seed,
                     [({"v_th": np.nan, "rec_level": np.nan},
                       lambda raw_i=raw_i, raw_o=raw_o: (raw_i, raw_o, {}))])
    return ProtocolResult(grid=grid, chosen=chosen, query_labels=other.labels["test"],
                          gallery_labels=image.labels["test"], layout=layout,
                          val_classes=vcls, cache_hits=cache.hits, cache_misses=cache.misses,
                          tiles=tiles)


# -- what a run reports ----------------------------------------------------------------------
def headline_selection(cfg: ZeroshotConfig) -> str:
    """The selection rule a run leads with: ``paper``, or the honest rule in use."""
    if cfg.protocol == "paper":
        return "paper"
    return "honest" if cfg.val_class_tuple else "honest-seen-val"


def permutation_rng(seed: int, model: str, selection: str) -> np.random.Generator:
    """The permutation test's generator of one (model, selection) summary row, derived from
    the run seed and the row's names, so adding a backend or model leaves every other row's
    p-value unchanged."""
    return np.random.default_rng([seed, 0x5045524D, zlib.crc32(f"{model}|{selection}".encode())])


def paired_rng(seed: int, model: str, reference: str, selection: str) -> np.random.Generator:
    """The paired bootstrap's generator of one (model, reference, selection) row, derived from
    the run seed and the names, so adding a backend or model leaves every other row alone."""
    return np.random.default_rng(
        [seed, 0x50414952, zlib.crc32(f"{model}|{reference}|{selection}".encode())])


def paired_by_seed(chosen: dict[tuple[str, str], list[dict[str, Any]]],
                   query_labels: np.ndarray, reference: str, seed: int) -> pd.DataFrame:
    """Per selection rule, every model's unseen top-1 minus the reference model's: the mean
    and the paired bootstrap 95 % interval (:func:`~rram_cosim.analysis.stats.paired_bootstrap`)
    of the per-query hit differences within each seed (same map, data and head initialisation
    in a seed; seeds and queries resampled), and how many hits only one model got.

    ``chosen`` is :attr:`ProtocolResult.chosen`; rows pair by seed."""
    def hits(rows: list[dict[str, Any]]) -> dict[int, np.ndarray]:
        return {int(r["seed"]): r["neighbours"][:, 0] == query_labels for r in rows}

    out = []
    for (model, sel), rows in chosen.items():
        if model == reference or (reference, sel) not in chosen:
            continue
        ref, mine = hits(chosen[(reference, sel)]), hits(rows)
        seeds = sorted(set(ref) & set(mine))
        r = paired_bootstrap(np.stack([ref[k] for k in seeds]),
                             np.stack([mine[k] for k in seeds]),
                             paired_rng(seed, model, reference, sel))
        out.append({"selection": SELECTIONS[sel][1], "model": model, "vs": reference,
                    "diff_mean": r["diff"], "diff_ci_low": r["ci_low"],
                    "diff_ci_high": r["ci_high"], "n_seeds": r["n_seeds"],
                    "n_queries": r["n_samples"], "n_model_only": r["n_b_only"],
                    "n_reference_only": r["n_a_only"]})
    return pd.DataFrame(out)


# -- a whole run -----------------------------------------------------------------------------
@dataclass
class ZeroshotRun:
    """What :func:`zeroshot` measured, with its tables."""

    image: Modality
    other: Modality
    result: ProtocolResult
    domain_warnings: list[str]  # the surrogate's out-of-domain warnings (messages)
    grid: pd.DataFrame  # every grid point and checkpoint
    chosen: pd.DataFrame  # the chosen point per seed, model and selection rule
    summary: pd.DataFrame  # per model and selection: mean, interval, chance, p-value
    paired: pd.DataFrame  # per selection: each model against the first backend, by seed
    warnings: list[str] = field(default_factory=list)  # what the data cannot support
    # surrogate reads, and those solved exactly because a TIA left its linear range
    exact_reads: dict[str, Any] = field(default_factory=dict)
    # the surrogate's worst case on the held-out corner families (None: none)
    surrogate_worst: dict[str, Any] | None = None


def short_selection(row: dict[str, Any]) -> str:
    """A summary row's selection rule in one word or two (``honest``, ``paper protocol``)."""
    return str(row["selection"]).split(":")[0]


def p_interval_note(row: dict[str, Any], alpha: float = 0.05) -> str:
    """Why a summary row's permutation p-value and its interval over seeds disagree (one says
    "above chance", the other does not); empty when they agree, or when there is no p-value
    or no interval (one seed: the warnings say so)."""
    p, lo, chance = row["p_value_top1"], row["unseen_top1_ci_low"], row["chance_top1"]
    if not np.isfinite(p) or not np.isfinite(lo) or (p < alpha) == (lo > chance):
        return ""
    n_q, n_s = int(row["n_queries"]), int(row["n_seeds"])
    pooled = (f"the permutation p-value ({p:.2g}) pools {n_q} queries x {n_s} seeds and asks "
              "whether these trained models retrieve better than with shuffled query labels: "
              "evidence of some signal in the models that ran")
    spread = (f"the 95 % interval over seeds ({100 * lo:.1f} to "
              f"{100 * row['unseen_top1_ci_high']:.1f} %, chance {100 * chance:.1f} %) asks "
              f"where the mean of another set of {n_s} network seeds would fall: a t "
              f"interval on {n_s} values, wide when seeds differ")
    if p < alpha:
        return (f"{row['model']}: {pooled}; {spread}. Both hold: the signal is real but small "
                "next to the seed-to-seed spread, so a new seed may well score at chance.")
    return (f"{row['model']}: {pooled}; {spread}. The seeds agree on a mean above chance, but "
            "pooled over queries the retrievals are not distinguishable from shuffled labels: "
            "too few queries to tell.")


def zeroshot(cfg: ZeroshotConfig, run_path: Path, *, progress: bool = True,
             status: Status | None = None) -> ZeroshotRun:
    """Load both modalities, build the backends (a surrogate calibrated here is saved as
    ``run_path/surrogate.json``), run the protocol over the seeds and summarise it; ``status``
    prints the long steps and the data warnings (default: step lines when ``progress``)."""
    status = Status("zeroshot", enabled=progress) if status is None else status
    image, other = load_modalities(cfg, status)
    layout = MapLayout(image.n_in, other.n_in, cfg.hidden)
    spec = task_tile_spec(cfg, *layout.shape)
    sur = None
    if "surrogate" in cfg.backends:
        with status.step("surrogate: " + (f"reading {cfg.surrogate}" if cfg.surrogate else
                                          f"calibrating on the nodal engine ({cfg.cal_maps} "
                                          f"maps of {layout.shape[0]}x{layout.shape[1]})")):
            sur = task_surrogate(cfg, spec, run_path, np.random.default_rng([cfg.seed, 7919]))
    backends = {b: task_backend(b, cfg, spec, sur) for b in cfg.backends}
    n_lif = len(lif_grid(cfg, other.audio))
    n_work = cfg.seeds * len(head_grid(cfg)) * (len(backends) * n_lif + int(cfg.baseline))
    bar = tqdm(total=n_work, desc="zeroshot", disable=not progress, unit="head")
    with warnings.catch_warnings(record=True) as caught:
        # the surrogate warns on every read below its calibrated input density (the other
        # modality's rows sit at 0 V); the report gives the count and one example instead
        warnings.simplefilter("always", DomainWarning)
        with tally_reads() as tally:
            res = run_protocol(cfg, image, other, backends, on_step=bar.update,
                               on_note=bar.set_postfix_str)
    bar.close()
    tally.warn("zeroshot")
    domain = [str(w.message) for w in caught if issubclass(w.category, DomainWarning)]
    for w in caught:
        if not issubclass(w.category, DomainWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    chosen_rows, summary_rows = [], []
    for (model, sel), rows in res.chosen.items():
        for r in rows:
            chosen_rows.append({k: v for k, v in r.items()
                                if k not in ("neighbours", "heads", "feats", "activity")})
        s = summarise(rows, res.query_labels, res.gallery_labels, cfg.n_perm,
                      permutation_rng(cfg.seed, model, sel), p_valid=sel != "paper",
                      seen_test=(other.labels["seen_test"], image.labels["seen_test"]),
                      val=(other.labels["val"], image.labels["val"]))
        metric = SELECTIONS[sel][0]
        summary_rows.append({"model": model, "selection": SELECTIONS[sel][1], **s,
                             "selection_score_mean": float(np.mean([r[metric] for r in rows])),
                             "train_ops_chosen": float(np.mean([r["train_ops"] for r in rows])),
                             "train_ops_grid": float(np.mean([r["grid_train_ops"]
                                                              for r in rows]))})
    summary = pd.DataFrame(summary_rows)
    head = SELECTIONS[headline_selection(cfg)][1]
    hl = [r for r in summary_rows if r["selection"] == head]
    what = {r["model"]: f"{r['model']} unseen top-1 ({short_selection(r)} selection, over seeds)"
            for r in hl}
    for w in (interval_warnings([(what[r["model"]], r["unseen_top1_ci_low"],
                                  r["unseen_top1_ci_high"]) for r in hl],
                                cfg.warn_interval_width)
              + val_gap_warnings([(f"{r['model']} (selection score vs unseen top-1)",
                                   r["selection_score_mean"], r["unseen_top1_mean"])
                                  for r in hl], cfg.warn_val_test_gap)):
        status.warn(w)
    summary["p_interval_note"] = [p_interval_note(r) for r in summary_rows]
    chosen = pd.DataFrame(chosen_rows)
    return ZeroshotRun(image=image, other=other, result=res, domain_warnings=domain,
                       grid=pd.DataFrame(res.grid), chosen=chosen, summary=summary,
                       paired=paired_by_seed(res.chosen, res.query_labels,
                                             model_label(cfg.backends[0]), cfg.seed),
                       warnings=list(status.warnings), exact_reads=tally.summary(),
                       surrogate_worst=getattr(sur, "validation_worst_", None))
