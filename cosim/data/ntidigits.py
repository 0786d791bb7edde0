"""Reader for the real N-TIDIGITS HDF5 file (``n-tidigits.hdf5``).

N-TIDIGITS (Anumula et al., "Feature representations for neuromorphic audio spike streams",
Front. Neurosci. 12:23, 2018) is TIDIGITS played to a CochleaAMS1b silicon cochlea, 64
channels. The published file holds, for ``<split>`` in ``train`` and ``test``::

    <split>_labels        1-D array of byte strings, one per recording,
                          "<gender>-<speaker>-<take>-<digits>", e.g. b"man-ae-a-1"
                          (digits: "z" zero, "1".."9", "o" oh; several for digit strings)
    <split>_timestamps/   one 1-D float dataset per label: event times in seconds
    <split>_addresses/    one 1-D integer dataset per label: channel 0..63 of each event

(the layout tonic's ``NTIDIGITS`` and the tensorflow-datasets builder read). The events carry
no polarity, so every event gets ``p = 0`` and the sensor size is ``(64, 1, 1)`` in tonic's
convention; times become integer microseconds.

:func:`load_ntidigits` reads the single-digit recordings (the usual 11-class task) of one split
into an :class:`~rram_cosim.cosim.data.datasets.EventDataset`: ``test`` is the official test set,
``train`` and ``val`` divide the official training set by speaker (seeded), so no validation
speaker is heard in training.

h5py is needed (``pip install h5py``); without it the reader raises a clear error.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ...models.checks import check_choice, check_int, check_range
from ...models.errors import ConfigError
from ...models.snn.events import AUDIO_EVENT_DTYPE
from .datasets import EventDataset, group_split

NTIDIGITS_SENSOR_SIZE = (64, 1, 1)
"""CochleaAMS1b channels as recorded in N-TIDIGITS; one (absent) polarity."""

DIGIT_CLASSES = {"z": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7, "8": 8,
                 "9": 9, "o": 10}
"""Label character -> class index ("o", oh, is class 10)."""

CLASS_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
               "oh")


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ConfigError("Reading N-TIDIGITS needs h5py, which is not installed. Install it "
                          "with `pip install h5py`.") from None
    return h5py


def _open(path: Path) -> Any:
    h5py = _h5py()
    if not path.is_file():
        raise ConfigError(f"N-TIDIGITS file {path} does not exist. Pass the path of "
                          "n-tidigits.hdf5 (unzipped).")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ConfigError(_describe_open_error(path, exc)) from None


def _describe_open_error(path: Path, exc: OSError) -> str:
    msg = str(exc)
    size = path.stat().st_size
    found = re.search(r"eof = (\d+).*stored_eof = (\d+)", msg)
    if found:
        eof, stored = int(found.group(1)), int(found.group(2))
        return (f"{path}: the HDF5 file is truncated: it is {eof} bytes but its superblock "
                f"records {stored}; everything from byte offset {eof} on is missing. Download "
                "or unzip it again.")
    if "signature" in msg or "not an hdf5 file" in msg.lower():
        with open(path, "rb") as fh:
            head = fh.read(8)
        return (f"{path}: not an HDF5 file (no HDF5 signature at byte offset 0; it starts with "
                f"{head!r}, {size} bytes in all). Unzip n-tidigits.hdf5.zip first.")
    return f"{path}: h5py cannot open this HDF5 file ({size} bytes): {msg}"


def read_ntidigits_labels(path: str | os.PathLike, split: str) -> list[str]:
    """The recording labels of ``split`` (``"train"`` or ``"test"``) in file order."""
    check_choice("read_ntidigits_labels", "split", split, ["train", "test"])
    path = Path(path)
    with _open(path) as f:
        return _labels(f, path, split)


def _labels(f: Any, path: Path, split: str) -> list[str]:
    for group in (f"{split}_labels", f"{split}_timestamps", f"{split}_addresses"):
        if group not in f:
            raise ConfigError(
                f"{path}: no '{group}' in the file. N-TIDIGITS holds {split}_labels (byte "
                f"strings), {split}_timestamps/<label> and {split}_addresses/<label>; found "
                f"{sorted(f.keys())}.")
    try:
        raw = f[f"{split}_labels"][()]
    except (OSError, RuntimeError) as exc:
        raise ConfigError(f"{path}: '{split}_labels' is unreadable ({exc}); the file is "
                          "corrupt.") from None
    return [r.decode() if isinstance(r, bytes) else str(r) for r in np.ravel(raw)]


def parse_label(label: str) -> tuple[str, str, str, str]:
    """Split ``"<gender>-<speaker>-<take>-<digits>"`` into its four parts."""
    parts = label.split("-")
    if len(parts) != 4 or not parts[3] or any(ch not in DIGIT_CLASSES for ch in parts[3]):
        raise ConfigError(
            f"N-TIDIGITS label {label!r} is not '<gender>-<speaker>-<take>-<digits>' with "
            f"digits from {''.join(DIGIT_CLASSES)}.")
    return parts[0], parts[1], parts[2], parts[3]


def read_ntidigits_sample(f: Any, path: Path, split: str, label: str) -> np.ndarray:
    """Events of one recording, time-ordered, AUDIO_EVENT_DTYPE with ``p = 0``.

    ``f`` is an open ``h5py.File``. Raises :class:`ConfigError` naming the file, the dataset
    and, when the data sit in one block, its byte offset, for a missing, unreadable or
    inconsistent recording.
    """
    arrays = []
    for group in ("timestamps", "addresses"):
        name = f"{split}_{group}/{label}"
        dset = None
        try:
            if name not in f:
                raise ConfigError(f"{path}: the label {label!r} has no dataset '{name}'.")
            dset = f[name]
            arrays.append(np.asarray(dset[()]).reshape(-1))
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            if isinstance(exc, ConfigError):
                raise
            where = _where(dset)
            raise ConfigError(f"{path}: the dataset '{name}'{where} is unreadable ({exc}); the "
                              "file is corrupt. Download it again.") from None
    ts, addr = arrays
    if ts.shape != addr.shape:
        raise ConfigError(f"{path}: '{split}_timestamps/{label}' holds {ts.size} times but "
                          f"'{split}_addresses/{label}' {addr.size} addresses.")
    n_ch = NTIDIGITS_SENSOR_SIZE[0]
    if ts.size and (not np.all(np.isfinite(ts)) or ts.min() < 0):
        raise ConfigError(f"{path}: '{split}_timestamps/{label}' holds negative or non-finite "
                          "times; N-TIDIGITS times are seconds from the recording's start.")
    if addr.size and (addr.min() < 0 or addr.max() >= n_ch
                      or not np.all(addr == np.round(addr))):
        i = int(np.flatnonzero((addr < 0) | (addr >= n_ch) | (addr != np.round(addr)))[0])
        raise ConfigError(f"{path}: '{split}_addresses/{label}' event {i} has channel "
                          f"{addr[i].item()!r}, outside the integers 0..{n_ch - 1}.")
    t_us = np.round(ts.astype(np.float64) * 1e6).astype(np.int64)
    order = np.argsort(t_us, kind="stable")  # recordings are time-ordered; make sure
    events = np.zeros(t_us.size, dtype=AUDIO_EVENT_DTYPE)
    events["t"] = t_us[order]
    events["x"] = addr[order].astype(np.int16)
    return events


def _where(dset: Any) -> str:
    """Where a dataset's data sit in the file, for error messages."""
    if dset is None:
        return ""
    try:
        offset = dset.id.get_offset()
        if offset is not None:
            return f" at byte offset {offset}"
        n_chunks = dset.id.get_num_chunks()
        if n_chunks:
            return (f" (in {n_chunks} chunks, the first at byte offset "
                    f"{dset.id.get_chunk_info(0).byte_offset})")
    except Exception:  # noqa: BLE001 - the location is a courtesy; the error stands without it
        return ""
    return ""


def load_ntidigits(path: str | os.PathLike, split: str, *, seed: int = 0,
                   val_fraction: float = 0.2, n_samples: int | None = None,
                   include_oh: bool = True) -> EventDataset:
    """Read the single-digit recordings of one split of N-TIDIGITS.

    Parameters
    ----------
    path : path
        ``n-tidigits.hdf5``.
    split : str
        ``"test"``: the official test set. ``"train"`` and ``"val"``: the official training
        set divided by speaker with a seeded split (``val_fraction`` of the speakers).
    seed : int
        Seeds the train / val split only.
    val_fraction : float
        Share of the training speakers used for validation, in (0, 0.5].
    n_samples : int, optional
        Read only the first ``n_samples`` recordings of the split (classes interleaved).
    include_oh : bool
        Keep "oh" as class 10 (11 classes, the usual N-TIDIGITS task); False drops those
        recordings and leaves the ten digits.

    Returns
    -------
    EventDataset
        Sensor ``(64, 1, 1)``; ``metadata`` holds ``labels`` (the file's label strings),
        ``speakers``, ``class_names`` and the file path.
    """
    check_choice("load_ntidigits", "split", split, ["train", "val", "test"])
    check_int("load_ntidigits", "seed", seed, 0)
    check_range("load_ntidigits", "val_fraction", val_fraction, 0, 0.5, lo_open=True)
    path = Path(path)
    source = "test" if split == "test" else "train"
    with _open(path) as f:
        names = _labels(f, path, source)
        parsed = [parse_label(n) for n in names]
        keep = [i for i, p in enumerate(parsed)
                if len(p[3]) == 1 and (include_oh or p[3] != "o")]
        if not keep:
            raise ConfigError(f"{path}: '{source}_labels' holds no single-digit recordings.")
        labels = np.array([DIGIT_CLASSES[parsed[i][3]] for i in keep], dtype=np.int64)
        speakers = np.array([f"{parsed[i][0]}-{parsed[i][1]}" for i in keep])
        rng = np.random.default_rng(seed)
        fr = (1.0, 0.0, 0.0) if split == "test" else (1.0 - val_fraction, val_fraction, 0.0)
        part = group_split(speakers, labels, rng, fr)["train" if split == "test" else split]
        if part.size == 0:
            raise ConfigError(f"The '{split}' split of {path} is empty: too few speakers for "
                              f"val_fraction={val_fraction}.")
        if n_samples is not None:
            check_int("load_ntidigits", "n_samples", n_samples, 1, part.size,
                      hint=f"The '{split}' split holds {part.size} recordings.")
            part = part[:n_samples]
        events = tuple(read_ntidigits_sample(f, path, source, names[keep[i]]) for i in part)
    meta = {"source": "N-TIDIGITS (Anumula et al., 2018)", "path": str(path), "seed": seed,
            "val_fraction": float(val_fraction), "labels": tuple(names[keep[i]] for i in part),
            "speakers": tuple(str(s) for s in speakers[part]),
            "class_names": CLASS_NAMES if include_oh else CLASS_NAMES[:10]}
    return EventDataset(events=events, labels=labels[part], sensor_size=NTIDIGITS_SENSOR_SIZE,
                        n_classes=11 if include_oh else 10, name="ntidigits", split=split,
                        metadata=meta)
