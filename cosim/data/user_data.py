"""Datasets a user brings: a folder of WAV files, an ``.npz`` of images, an ``.npz`` of events.

Each loader returns one split (``"train"``, ``"val"``, ``"test"``) as an
:class:`~rram_cosim.cosim.data.datasets.EventDataset`, like the embedded datasets, so the rest of
the pipeline does not know where the data came from. The formats are documented in
``docs/data.md``:

- :func:`load_wav`: a folder of ``<label>_<speaker>_<anything>.wav`` files (any sample rate,
  PCM or float, channels averaged; two-field names ``<label>_<anything>.wav`` are read too and
  split by file), resampled to the cochlea's rate and turned into audio events by
  the same cochlea as ``spoken-digits`` (:mod:`.audio`);
- :func:`load_images`: an ``.npz`` with ``images`` (n, h, w) and ``labels`` (n,), turned into
  DVS events by the same saccade simulator as ``digits-events`` (:mod:`.datasets`);
- :func:`load_events`: an ``.npz`` with ``labels``, ``offsets`` and the event fields.

Unless the file says which sample belongs to which split (an optional ``split`` array), the
split is seeded (default 60/20/20). ``split_by="auto"`` (the default) keeps every *group* in
one split whenever the data names groups: the speaker field of WAV names
``<label>_<speaker>_<rest>.wav``, an optional ``groups`` array in an ``.npz``. Time-stretched or
re-recorded copies of one speaker's word are near-duplicates, and a split by file puts them on
both sides of the train / test line. ``split_by="sample"`` is the stratified split over
samples. Bad files raise :class:`~rram_cosim.models.errors.ConfigError` naming the file and the
problem.

:func:`~rram_cosim.cosim.data.ntidigits.load_ntidigits` is re-exported here, so every
``<kind>:PATH`` dataset of the CLI resolves to ``load_<kind>`` in this module.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ...models.checks import check_choice, check_int
from ...models.errors import ConfigError
from ...models.params import to_dict
from ...models.snn.events import check_events, make_audio_events, make_image_events
from .audio import CochleaParams, audio_to_events, channel_thresholds, read_wav, resample
from .datasets import (
    DEFAULT_SPLIT_FRACTIONS,
    SPLITS,
    EventDataset,
    SaccadeDvsParams,
    group_split,
    saccade_threshold_maps,
    simulate_saccade_events,
    stratified_split,
)
from .ntidigits import load_ntidigits

__all__ = ["SPLIT_RULES", "load_events", "load_images", "load_ntidigits", "load_wav",
           "read_image_file"]

_IMAGE_CHUNK = 256  # images simulated together: bounds the simulator's memory (~100 MB)

#: How a loader without a ``split`` array in its file splits: ``auto`` by group where the data
#: names groups (else by sample), ``group`` (refused without groups), ``sample`` (stratified).
SPLIT_RULES = ("auto", "group", "sample")


# --------------------------------------------------------------------------------------------
# Shared: labels and splits
# --------------------------------------------------------------------------------------------

def _encode_labels(raw: Sequence[Any], source: str,
                   names: Sequence[str] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices and class names from raw labels (integers or names)."""
    arr = np.asarray(raw)
    if arr.ndim != 1:
        raise ConfigError(f"{source}: labels must be a 1-D array, one per sample. Got shape "
                          f"{arr.shape}.")
    text = arr.astype(str)
    if arr.dtype.kind in "iu" or (arr.dtype.kind in "US" and all(t.isdigit() for t in text)):
        labels = arr.astype(np.int64) if arr.dtype.kind in "iu" else text.astype(np.int64)
        if labels.size and labels.min() < 0:
            raise ConfigError(f"{source}: integer labels must be >= 0 (class indices). Got "
                              f"{labels.min()}.")
        n_classes = int(labels.max()) + 1 if labels.size else 0
        class_names = tuple(names) if names is not None else tuple(str(i)
                                                                   for i in range(n_classes))
        if len(class_names) < n_classes:
            raise ConfigError(f"{source}: class_names lists {len(class_names)} names but the "
                              f"labels go up to {n_classes - 1}.")
        return labels, class_names
    if arr.dtype.kind == "f":
        raise ConfigError(f"{source}: labels must be integers (class indices) or names. Got "
                          f"dtype {arr.dtype}; cast whole-number labels to int.")
    class_names = tuple(sorted(set(text.tolist())))
    lookup = {c: i for i, c in enumerate(class_names)}
    return np.array([lookup[t] for t in text], dtype=np.int64), class_names


def _split_indices(labels: np.ndarray, split: str, seed: int,
                   fractions: Sequence[float], source: str, *,
                   groups: np.ndarray | None = None,
                   predefined: np.ndarray | None = None) -> np.ndarray:
    """Indices of ``split``, classes interleaved so any prefix is stratified."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    if predefined is not None:
        members = np.flatnonzero(predefined == split)
        # Each sample its own group: a seeded, class-interleaved order of the members.
        order = group_split(np.arange(members.size), labels[members], rng, (1.0, 0.0, 0.0))
        idx = members[order["train"]]
    elif groups is not None:
        idx = group_split(groups, labels, rng, fractions, stratify=True)[split]
    else:
        idx = stratified_split(labels, rng, fractions)[split]
    if idx.size == 0:
        n_groups = np.unique(groups).size if groups is not None else 0
        raise ConfigError(f"{source}: the '{split}' split is empty (split fractions "
                          f"{tuple(fractions)}, {labels.size} samples"
                          + (", split given by the file" if predefined is not None else "")
                          + (f" in {n_groups} groups, whole groups a split" if n_groups else "")
                          + "). Give it a larger fraction or more samples"
                          + (", or split by sample (--split-by sample)" if n_groups else "")
                          + ".")
    return idx


def _take(idx: np.ndarray, n_samples: int | None, split: str, owner: str) -> np.ndarray:
    if n_samples is None:
        return idx
    check_int(owner, "n_samples", n_samples, 1, idx.size,
              hint=f"The '{split}' split holds {idx.size} samples.")
    return idx[:n_samples]


def _resolve_groups(split_by: str, groups: np.ndarray | None, source: str,
                    what: str) -> tuple[str, np.ndarray | None]:
    """The split rule that runs (``"group"`` or ``"sample"``) and the groups it uses.

    ``what`` says where groups come from, for the error when ``split_by="group"`` finds none.
    """
    if split_by == "sample":
        return "sample", None
    if groups is None:
        if split_by == "group":
            raise ConfigError(f"{source}: split_by='group' needs {what}. Add them, or split by "
                              "sample (split_by='sample', --split-by sample).")
        return "sample", None
    return "group", groups


def _groups_array(z: Any, n: int, source: str) -> np.ndarray | None:
    """The optional ``groups`` array of an ``.npz`` (one speaker / writer / session a sample)."""
    if "groups" not in z.files:
        return None
    raw = np.asarray(_read_array(z, "groups", source))
    if raw.shape != (n,) or raw.dtype.kind not in "iuUS":
        raise ConfigError(f"{source}: 'groups' must hold one integer or string a sample, shape "
                          f"({n},). Got shape {raw.shape}, dtype {raw.dtype}.")
    return raw.astype(str)


def _split_meta(rule: str, groups: np.ndarray | None, idx: np.ndarray,
                predefined: np.ndarray | None, group_name: str) -> dict[str, Any]:
    """Metadata of the split that ran: its rule (``group``, ``sample`` or ``file``: the file's
    ``split`` array) and, whenever the data names groups, the group of every sample taken
    (also after a split by sample, so a report can show groups shared between splits)."""
    meta: dict[str, Any] = {"split_by": "file" if predefined is not None else rule,
                            "split_given": predefined is not None}
    if groups is not None:
        g = np.asarray(groups)[idx]
        g.setflags(write=False)
        meta.update(groups=g, group_name=group_name)
    return meta


def _predefined_split(z: Any, n: int, source: str) -> np.ndarray | None:
    if "split" not in z.files:
        return None
    raw = np.asarray(_read_array(z, "split", source))
    if raw.shape != (n,):
        raise ConfigError(f"{source}: 'split' must hold one entry per sample, shape ({n},). "
                          f"Got {raw.shape}.")
    if raw.dtype.kind in "iu":
        if raw.size and (raw.min() < 0 or raw.max() > 2):
            raise ConfigError(f"{source}: integer 'split' values must be 0 (train), 1 (val) "
                              f"or 2 (test). Got values in [{raw.min()}, {raw.max()}].")
        return np.asarray(SPLITS)[raw]
    text = raw.astype(str)
    bad = sorted(set(text.tolist()) - set(SPLITS))
    if bad:
        raise ConfigError(f"{source}: 'split' values must be {list(SPLITS)}. Got {bad}.")
    return text


# --------------------------------------------------------------------------------------------
# npz files
# --------------------------------------------------------------------------------------------

def _open_npz(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"{path} does not exist (or is not a file).")
    try:
        return np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ConfigError(f"{path}: not a readable .npz file ({exc}); the file is truncated or "
                          "corrupt, or not written by numpy.savez.") from None


def _read_array(z: Any, key: str, source: str) -> np.ndarray:
    try:
        return z[key]
    except KeyError:
        raise ConfigError(f"{source}: no array '{key}'. Found {sorted(z.files)}; see "
                          "docs/data.md for the format.") from None
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ConfigError(
                f"{source}: '{key}' is an object array (a list of arrays saved with pickle), "
                "which is not read for safety. Save the arrays as documented in docs/data.md "
                "(concatenated events with 'offsets').") from None
        raise ConfigError(f"{source}: '{key}' is unreadable ({exc}); the file is corrupt.") \
            from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ConfigError(f"{source}: '{key}' is unreadable ({exc}); the file is truncated or "
                          "corrupt.") from None


def _class_names(z: Any, source: str) -> tuple[str, ...] | None:
    if "class_names" not in z.files:
        return None
    return tuple(str(c) for c in np.ravel(_read_array(z, "class_names", source)))


# --------------------------------------------------------------------------------------------
# WAV folder
# --------------------------------------------------------------------------------------------

def load_wav(folder: str | os.PathLike, split: str, *, seed: int = 0,
             n_samples: int | None = None,
             split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
             cochlea: CochleaParams | None = None, split_by: str = "auto",
             group_field: int = 1) -> EventDataset:
    """Read a folder of ``<label>_<speaker>_<anything>.wav`` files as cochlea events.

    Parameters
    ----------
    folder : path
        Folder with the WAV files (not searched recursively). The label is the file name up to
        the first underscore: class indices when all labels are whole numbers
        (``3_alice_01.wav``), otherwise names (``yes_bob_01.wav``), numbered in sorted order.
    split : str
        ``"train"``, ``"val"`` or ``"test"``.
    seed : int
        Seeds the split, the cochlea's threshold map (the same for every split) and its start
        phases.
    n_samples : int, optional
        Only the first ``n_samples`` files of the split (classes interleaved) are read.
    split_fractions : (float, float, float)
        Train, val, test fractions (of speakers when split by group, else of files).
    cochlea : CochleaParams, optional
        Front end (default ``CochleaParams()``, as spoken-digits).
    split_by : str
        ``"auto"`` (default): by speaker when every name has the speaker field (a field
        followed by at least one more: in ``3_01.wav`` the ``01`` is a take), else by file;
        ``"group"``: by speaker (refused when a name lacks the field); ``"sample"``: stratified
        over files. A speaker's files all land in one split, so no test voice is heard in
        training (the Free Spoken Digit Dataset's naming, ``<label>_<speaker>_<rest>.wav``).
    group_field : int
        Which underscore-separated field of the name is the speaker (1: the second; 0 is the
        label).

    Returns
    -------
    EventDataset
        Sensor ``(n_channels, 1, 2)``; ``metadata["files"]`` names the files,
        ``metadata["class_names"]`` the classes, ``metadata["split_by"]`` the rule that ran
        and ``metadata["groups"]`` the speaker of each file (when the names have one).
    """
    check_choice("load_wav", "split", split, list(SPLITS))
    check_choice("load_wav", "split_by", split_by, list(SPLIT_RULES))
    check_int("load_wav", "seed", seed, 0)
    check_int("load_wav", "group_field", group_field, 1, 1000,
              hint="Field 0 of a name is the label; the speaker is field 1 in "
                   "<label>_<speaker>_<anything>.wav.")
    cochlea = CochleaParams() if cochlea is None else cochlea
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"WAV folder {folder} does not exist. Pass a folder of "
                          "<label>_<speaker>_<anything>.wav files.")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".wav")
    if not files:
        raise ConfigError(f"No .wav files in {folder}. Name them <label>_<speaker>_<anything>"
                          ".wav.")
    fields = [p.stem.split("_") for p in files]
    for p, f in zip(files, fields):
        if len(f) < 2 or not f[0]:
            raise ConfigError(f"{p}: the name does not start with '<label>_'; name WAV files "
                              "<label>_<speaker>_<anything>.wav (e.g. 3_alice_01.wav).")
    # <label>_<speaker>_<anything>.wav: a field counts as the speaker only when another field
    # follows it; in a two-field name (3_01.wav, yes_001.wav) the second is the take
    lacking = [p.name for p, f in zip(files, fields)
               if len(f) <= group_field + 1 or not f[group_field]]
    named = None if lacking else np.array([f[group_field] for f in fields])
    rule, groups = _resolve_groups(
        split_by, named, str(folder),
        f"every name to carry a speaker in field {group_field} followed by at least one "
        f"more field (<label>_<speaker>_<anything>.wav); {lacking[:3]} do not" if lacking
        else "")
    labels, class_names = _encode_labels([f[0] for f in fields], str(folder))
    idx = _split_indices(labels, split, seed, split_fractions, str(folder), groups=groups)
    idx = _take(idx, n_samples, split, "load_wav")

    signals = []
    for i in idx:  # file I/O: one file at a time
        x, rate = read_wav(files[i])
        x = resample(x, rate, cochlea.sample_rate_hz)
        if x.size < 2:
            raise ConfigError(f"{files[i]}: too short ({x.size} samples at "
                              f"{cochlea.sample_rate_hz} Hz) to hear.")
        signals.append(x)
    thresholds = channel_thresholds(
        cochlea, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,))))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, SPLITS.index(split))))
    events, offsets = audio_to_events(signals, cochlea, rng, thresholds=thresholds)
    meta = {"source": "WAV folder", "path": str(folder), "seed": seed,
            "files": tuple(files[i].name for i in idx), "class_names": class_names,
            "split_fractions": tuple(float(f) for f in split_fractions),
            "group_field": group_field, "cochlea": to_dict(cochlea),
            **_split_meta(rule, named, idx, None, "speaker")}
    if lacking and split_by == "auto":
        meta["split_note"] = (f"split by file: {len(lacking)} of {len(files)} names carry no "
                              f"speaker in field {group_field} (e.g. {lacking[0]}; the "
                              "speaker form is <label>_<speaker>_<anything>.wav)")
    return EventDataset(events=tuple(events[offsets[k]:offsets[k + 1]] for k in range(idx.size)),
                        labels=labels[idx], sensor_size=cochlea.sensor_size,
                        n_classes=len(class_names), name=f"wav:{folder.name}", split=split,
                        metadata=meta)


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------

def _as_intensities(images: np.ndarray, source: str) -> np.ndarray:
    img = np.asarray(images)
    if img.ndim == 4 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim != 3 or min(img.shape) < 1:
        raise ConfigError(f"{source}: 'images' must have shape (n, height, width) (grey "
                          f"levels). Got {img.shape}; convert colour images to grey first.")
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    if img.dtype == bool:
        return img.astype(np.float64)
    if img.dtype.kind not in "iuf":
        raise ConfigError(f"{source}: 'images' must be numbers. Got dtype {img.dtype}.")
    out = img.astype(np.float64)
    if not np.all(np.isfinite(out)) or out.min() < 0 or out.max() > 1:
        raise ConfigError(
            f"{source}: 'images' of dtype {img.dtype} must hold intensities in [0, 1]. Got "
            f"values in [{np.nanmin(out):g}, {np.nanmax(out):g}]. Divide by the largest grey "
            "level, or save uint8 images (0-255).")
    return out


def read_image_file(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray,
                                                      tuple[str, ...]]:
    """All images of an images ``.npz``: intensities (n, h, w) in [0, 1], class indices (n,)
    and class names, checked as :func:`load_images` checks them (what a simulated population
    views in ``neural-sim``)."""
    source = str(path)
    with _open_npz(Path(path)) as z:
        images, labels, class_names = _labelled_images(z, source)
    return _as_intensities(images, source), labels, class_names


def _labelled_images(z: Any, source: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The raw ``images`` of an open images ``.npz``, its class indices and class names,
    one label per image."""
    labels, class_names = _encode_labels(_read_array(z, "labels", source), source,
                                         _class_names(z, source))
    images = _read_array(z, "images", source)
    if images.shape[0] != labels.size:
        raise ConfigError(f"{source}: {images.shape[0]} images but {labels.size} labels.")
    return images, labels, class_names


def load_images(path: str | os.PathLike, split: str, *, seed: int = 0,
                n_samples: int | None = None,
                split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
                saccade: SaccadeDvsParams | None = None, split_by: str = "auto",
                progress: bool = False) -> EventDataset:
    """Read an ``.npz`` of images and turn them into saccade DVS events (N-MNIST-like).

    Parameters
    ----------
    path : path
        ``.npz`` with ``images`` (n, height, width): uint8 0-255, bool, or floats in [0, 1]
        (1 = bright stroke); ``labels`` (n,): class indices or names. Optional
        ``class_names`` (k,), ``split`` (n,): ``"train"``/``"val"``/``"test"`` or 0/1/2, and
        ``groups`` (n,): the writer / photographer / session of each image.
    split : str
    seed : int
        Seeds the split, the sensor's threshold maps (the same for every split) and the
        simulation (jitter, start states, noise).
    n_samples : int, optional
        Only the first ``n_samples`` images of the split (classes interleaved) are simulated.
    split_fractions : (float, float, float)
        Used when the file has no ``split``.
    saccade : SaccadeDvsParams, optional
        Simulator parameters (default as digits-events). Images are used at their own size
        (``upsample_factor`` applies to the embedded digits only) and padded by ``pad_px``.
    split_by : str
        Without a ``split`` array: ``"auto"`` (by group when the file has ``groups``, else by
        sample), ``"group"`` or ``"sample"``.
    progress : bool
        A progress bar over the simulated chunks of images (a few seconds per thousand).

    Returns
    -------
    EventDataset
        Sensor ``(width + 2 pad, height + 2 pad, 2)``; ``metadata["duration_us"]`` is the
        recording length, ``metadata["image_shape"]`` the images' ``(height, width)``.
    """
    check_choice("load_images", "split", split, list(SPLITS))
    check_choice("load_images", "split_by", split_by, list(SPLIT_RULES))
    check_int("load_images", "seed", seed, 0)
    params = SaccadeDvsParams() if saccade is None else saccade
    path = Path(path)
    source = str(path)
    with _open_npz(path) as z:
        images, labels, class_names = _labelled_images(z, source)
        predefined = _predefined_split(z, labels.size, source)
        named = _groups_array(z, labels.size, source)
        rule, groups = _resolve_groups(split_by, named, source, "a 'groups' array (n,)")
        idx = _split_indices(labels, split, seed, split_fractions, source,
                             predefined=predefined, groups=groups)
        idx = _take(idx, n_samples, split, "load_images")
    images = _as_intensities(images[idx], source)
    hh, ww = images.shape[1] + 2 * params.pad_px, images.shape[2] + 2 * params.pad_px
    maps = saccade_threshold_maps(
        params, (hh, ww), np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,))))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, SPLITS.index(split))))
    samples: list[np.ndarray] = []
    with tqdm(total=idx.size, desc=f"DVS events, {path.name} {split}", unit="image",
              disable=not progress) as bar:
        for c0 in range(0, idx.size, _IMAGE_CHUNK):
            ev, off = simulate_saccade_events(images[c0:c0 + _IMAGE_CHUNK], params, rng,
                                              threshold_maps=maps)
            samples.extend(ev[off[k]:off[k + 1]] for k in range(off.size - 1))
            bar.update(off.size - 1)
    meta = {"source": "images .npz", "path": source, "seed": seed, "class_names": class_names,
            "source_index": idx, "duration_us": params.duration_us, "saccade": to_dict(params),
            "split_fractions": tuple(float(f) for f in split_fractions),
            "image_shape": tuple(int(v) for v in images.shape[1:]),
            **_split_meta(rule, named, idx, predefined, "group")}
    return EventDataset(events=tuple(samples), labels=labels[idx], sensor_size=(ww, hh, 2),
                        n_classes=len(class_names), name=f"images:{path.name}", split=split,
                        metadata=meta)


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------

def load_events(path: str | os.PathLike, split: str, *, seed: int = 0,
                n_samples: int | None = None,
                split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
                split_by: str = "auto") -> EventDataset:
    """Read an ``.npz`` of event samples with labels.

    Parameters
    ----------
    path : path
        ``.npz`` with ``labels`` (n,), ``offsets`` (n + 1,) (sample ``i`` is events
        ``offsets[i]:offsets[i + 1]``) and the events, either as one structured array
        ``events`` with fields ``t, x, y, p`` (images) or ``t, x, p`` (audio, ``x`` the
        channel), or as separate arrays ``t``, ``x``, ``p`` and, for images, ``y``. ``t`` in
        integer microseconds, ``p`` 1 ON / 0 OFF. Optional: ``sensor_size`` (tonic's
        ``(width, height, P)`` or ``(channels, 1, P)``; default: largest coordinate + 1 and
        2 polarities), ``class_names``, ``split`` and ``groups`` (as in :func:`load_images`)
        and ``duration_us`` (fixed recording length for binning; default: each sample's span).
    split : str
    seed : int
        Seeds the split only.
    n_samples : int, optional
    split_fractions : (float, float, float)
        Used when the file has no ``split``.
    split_by : str
        As in :func:`load_images`.

    Returns
    -------
    EventDataset
        Samples whose events are not time-ordered are sorted (stable).
    """
    check_choice("load_events", "split", split, list(SPLITS))
    check_choice("load_events", "split_by", split_by, list(SPLIT_RULES))
    check_int("load_events", "seed", seed, 0)
    path = Path(path)
    source = str(path)
    with _open_npz(path) as z:
        labels, class_names = _encode_labels(_read_array(z, "labels", source), source,
                                             _class_names(z, source))
        offsets = np.asarray(_read_array(z, "offsets", source))
        fields = _event_fields(z, source)
        size = (tuple(int(s) for s in np.ravel(_read_array(z, "sensor_size", source)))
                if "sensor_size" in z.files else None)
        duration = (int(_read_array(z, "duration_us", source))
                    if "duration_us" in z.files else None)
        predefined = _predefined_split(z, labels.size, source)
        named = _groups_array(z, labels.size, source)
    rule, groups = _resolve_groups(split_by, named, source, "a 'groups' array (n,)")
    n_ev = fields["t"].size
    if (offsets.ndim != 1 or offsets.dtype.kind not in "iu" or offsets.size != labels.size + 1
            or (offsets.size and (offsets[0] != 0 or offsets[-1] != n_ev))
            or np.any(np.diff(offsets) < 0)):
        raise ConfigError(
            f"{source}: 'offsets' must be {labels.size + 1} non-decreasing integers from 0 to "
            f"the number of events ({n_ev}), one more than the labels. Got shape "
            f"{offsets.shape}" + (f", from {offsets[0]} to {offsets[-1]}." if offsets.size
                                  else "."))
    make = make_image_events if "y" in fields else make_audio_events
    try:
        events = make(**fields)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if size is None:
        size = (int(events["x"].max()) + 1 if n_ev else 1,
                (int(events["y"].max()) + 1 if n_ev else 1) if "y" in fields else 1,
                max(2, int(events["p"].max()) + 1 if n_ev else 2))
    try:
        size = check_events(events, size)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    sample_of = np.repeat(np.arange(labels.size), np.diff(offsets))
    if n_ev > 1 and np.any((np.diff(events["t"]) < 0) & (np.diff(sample_of) == 0)):
        events = events[np.lexsort((events["t"], sample_of))]  # stable within each sample
    idx = _split_indices(labels, split, seed, split_fractions, source, predefined=predefined,
                         groups=groups)
    idx = _take(idx, n_samples, split, "load_events")
    samples = [events[offsets[i]:offsets[i + 1]] for i in idx]
    meta = {"source": "events .npz", "path": source, "seed": seed, "class_names": class_names,
            "source_index": idx, "split_fractions": tuple(float(f) for f in split_fractions),
            **_split_meta(rule, named, idx, predefined, "group")}
    if duration is not None:
        meta["duration_us"] = duration
    return EventDataset(events=tuple(samples), labels=labels[idx], sensor_size=size,
                        n_classes=len(class_names), name=f"events:{path.name}", split=split,
                        metadata=meta)


def _event_fields(z: Any, source: str) -> dict[str, np.ndarray]:
    if "events" in z.files:
        ev = _read_array(z, "events", source)
        names = ev.dtype.names or ()
        want = ("t", "x", "y", "p") if "y" in names else ("t", "x", "p")
        if not set(want) <= set(names) or ev.ndim != 1:
            raise ConfigError(f"{source}: 'events' must be a 1-D structured array with fields "
                              f"t, x, y, p (images) or t, x, p (audio). Got fields {names} and "
                              f"shape {ev.shape}.")
        return {k: np.asarray(ev[k]) for k in want}
    missing = [k for k in ("t", "x", "p") if k not in z.files]
    if missing:
        raise ConfigError(f"{source}: no 'events' array and no {missing}; store the events as "
                          "a structured 'events' array or as separate t, x, [y,] p arrays "
                          "(docs/data.md).")
    keys = ("t", "x", "y", "p") if "y" in z.files else ("t", "x", "p")
    fields = {k: np.asarray(_read_array(z, k, source)).reshape(-1) for k in keys}
    if len({a.size for a in fields.values()}) != 1:
        raise ConfigError(f"{source}: the event arrays differ in length: "
                          f"{ {k: a.size for k, a in fields.items()} }.")
    return fields
