"""Reader for the real N-MNIST (and N-Caltech101) ``.bin`` event files.

Format (Orchard et al., Front. Neurosci. 9:437, 2015, and the dataset's own description):
each event is a 40-bit record of five bytes, most significant first::

    byte 0        bits 39-32   x address (pixel column)
    byte 1        bits 31-24   y address (pixel row)
    byte 2 bit 7  bit  23      polarity (1 ON, 0 OFF)
    bytes 2-4     bits 22-0    timestamp, microseconds (23 bits, big-endian)

The authors' reference loader also treats records with ``y == 240`` as timestamp-overflow
markers that add 2**13 us to every later timestamp; we do the same and drop the markers (the
published N-MNIST files are short enough that they do not occur there).

N-MNIST's sensor is 34x34 pixels; the files sit in ``Train/<digit>/*.bin`` and
``Test/<digit>/*.bin`` (60,000 and 10,000 files). :func:`load_nmnist` reads such a folder into
an :class:`~rram_cosim.cosim.data.datasets.EventDataset`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...models.checks import check_choice, check_int, check_range
from ...models.errors import ConfigError
from ...models.snn.events import IMAGE_EVENT_DTYPE
from .datasets import EventDataset, stratified_split

NMNIST_SENSOR_SIZE = (34, 34, 2)
"""N-MNIST's ATIS crop: 34x34 pixels, two polarities (tonic's ``(width, height, P)``)."""

RECORD_BYTES = 5
OVERFLOW_Y = 240  # y address of a timestamp-overflow marker in the reference loader
OVERFLOW_INCREMENT_US = 2 ** 13  # added to later timestamps per marker (reference loader)


def decode_nmnist(data: bytes | bytearray | memoryview | np.ndarray, *,
                  sensor_size: Sequence[int] = NMNIST_SENSOR_SIZE, source: str = "<bytes>",
                  check_order: bool = True) -> np.ndarray:
    """Decode the bytes of one N-MNIST ``.bin`` file into image events.

    Parameters
    ----------
    data : bytes-like or numpy.ndarray of uint8
        The file's content.
    sensor_size : (width, height[, n_polarities])
        Coordinates must lie inside; N-MNIST is 34x34 (N-Caltech101: up to 240x180).
    source : str
        Name used in error messages (the file path).
    check_order : bool
        Require non-decreasing timestamps (a sensor emits events in time order). With False,
        events are sorted by time (stable) instead.

    Returns
    -------
    numpy.ndarray of IMAGE_EVENT_DTYPE, shape (n_events,)

    Raises
    ------
    ConfigError
        Truncated data (length not a multiple of 5), a coordinate outside the sensor, or a
        timestamp that goes backwards; the message names ``source`` and the byte offset.
    """
    raw = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) \
        else np.asarray(data, dtype=np.uint8).reshape(-1)
    width, height = int(sensor_size[0]), int(sensor_size[1])
    rest = raw.size % RECORD_BYTES
    if rest:
        start = raw.size - rest
        raise ConfigError(
            f"{source}: {raw.size} bytes is not a whole number of {RECORD_BYTES}-byte events; "
            f"the record at byte offset {start} is truncated ({rest} of {RECORD_BYTES} bytes). "
            "The file is incomplete: extract or download it again."
        )
    rec = raw.reshape(-1, RECORD_BYTES).astype(np.int64)
    x = rec[:, 0]
    y = rec[:, 1]
    p = rec[:, 2] >> 7
    t = ((rec[:, 2] & 0x7F) << 16) | (rec[:, 3] << 8) | rec[:, 4]

    overflow = y == OVERFLOW_Y
    if overflow.any():
        t = t + OVERFLOW_INCREMENT_US * np.cumsum(overflow)
    for name, v, lim in (("x", x, width), ("y", y, height)):
        bad = np.flatnonzero((v >= lim) & ~overflow)
        if bad.size:
            i = int(bad[0])
            raise ConfigError(
                f"{source}: the event at byte offset {RECORD_BYTES * i} has {name}={int(v[i])}, "
                f"outside [0, {lim - 1}] of the {width}x{height} sensor. Pass the sensor_size "
                "of the dataset (N-MNIST 34x34; N-Caltech101 up to 240x180) or check that this "
                "is an N-MNIST .bin file."
            )
    keep = np.flatnonzero(~overflow)
    t = t[keep]
    if t.size > 1:
        back = np.flatnonzero(np.diff(t) < 0)
        if back.size:
            if check_order:
                i = int(keep[back[0] + 1])
                raise ConfigError(
                    f"{source}: the event at byte offset {RECORD_BYTES * i} has timestamp "
                    f"{int(t[back[0] + 1])} us, earlier than the event before it "
                    f"({int(t[back[0]])} us). Event files are time-ordered; pass "
                    "check_order=False to sort the events instead."
                )
            order = np.argsort(t, kind="stable")
            keep = keep[order]
            t = t[order]
    events = np.empty(keep.size, dtype=IMAGE_EVENT_DTYPE)
    events["t"] = t
    events["x"] = x[keep]
    events["y"] = y[keep]
    events["p"] = p[keep]
    return events


def read_nmnist_bin(path: str | os.PathLike, *,
                    sensor_size: Sequence[int] = NMNIST_SENSOR_SIZE,
                    check_order: bool = True) -> np.ndarray:
    """Read one N-MNIST ``.bin`` file; see :func:`decode_nmnist` for the format and errors."""
    path = Path(path)
    return decode_nmnist(path.read_bytes(), sensor_size=sensor_size, source=str(path),
                         check_order=check_order)


def load_nmnist(root: str | os.PathLike, split: str, *, seed: int = 0,
                val_fraction: float = 1 / 6, n_samples: int | None = None,
                check_order: bool = True) -> EventDataset:
    """Read a split of the real N-MNIST from its extracted folder.

    Parameters
    ----------
    root : path
        Folder holding ``Train/<digit>/*.bin`` and ``Test/<digit>/*.bin``.
    split : str
        ``"test"`` is the official test set. ``"train"`` and ``"val"`` divide the official
        training set by a seeded stratified split (``val_fraction`` goes to val; default 1/6,
        10,000 samples, the size of the test set). MNIST publishes no writer IDs with the
        images, so train and val are not writer-disjoint.
    seed : int
        Seeds the train / val split only.
    val_fraction : float
        Share of the official training set used for validation, in [0, 0.5].
    n_samples : int, optional
        Read only the first ``n_samples`` files of the split (stratified to within one per
        class), to keep a quick run quick.
    check_order : bool
        Passed to :func:`decode_nmnist`.

    Returns
    -------
    EventDataset
        ``sensor_size`` (34, 34, 2); ``metadata["files"]`` lists the paths relative to root.
    """
    check_choice("load_nmnist", "split", split, ["train", "val", "test"])
    check_int("load_nmnist", "seed", seed, 0)
    check_range("load_nmnist", "val_fraction", val_fraction, 0, 0.5)
    root = Path(root)
    folder = root / ("Test" if split == "test" else "Train")
    files, labels = _list_files(folder)
    if split != "test":
        rng = np.random.default_rng(seed)
        parts = stratified_split(labels, rng, (1.0 - val_fraction, val_fraction, 0.0))
        idx = parts[split]
    else:
        idx = np.arange(labels.size)
    if idx.size == 0:
        raise ConfigError(
            f"The '{split}' split of {folder} is empty (val_fraction={val_fraction}). Raise "
            "val_fraction above 0 to get a validation split."
        )
    if n_samples is not None:
        check_int("load_nmnist", "n_samples", n_samples, 1, idx.size,
                  hint=f"The '{split}' split holds {idx.size} samples.")
        idx = idx[:n_samples]
    events = tuple(read_nmnist_bin(files[i], check_order=check_order) for i in idx)
    meta = {"source": "N-MNIST (Orchard et al., 2015)", "root": str(root), "seed": seed,
            "val_fraction": float(val_fraction),
            "files": tuple(str(files[i].relative_to(root)) for i in idx)}
    return EventDataset(events=events, labels=labels[idx], sensor_size=NMNIST_SENSOR_SIZE,
                        n_classes=10, name="nmnist", split=split, metadata=meta)


def _list_files(folder: Path) -> tuple[list[Path], np.ndarray]:
    if not folder.is_dir():
        raise ConfigError(
            f"N-MNIST folder {folder} does not exist. Pass as root the folder that holds the "
            "extracted Train/ and Test/ folders, each with one subfolder per digit 0-9."
        )
    files: list[Path] = []
    labels: list[int] = []
    for digit in range(10):
        found = sorted((folder / str(digit)).glob("*.bin"))
        files.extend(found)
        labels.extend([digit] * len(found))
    if not files:
        raise ConfigError(
            f"No .bin files in {folder}/0 ... {folder}/9. Extract the N-MNIST archives so that "
            "each digit has its own subfolder of .bin files."
        )
    return files, np.asarray(labels, dtype=np.int64)
