"""Event data types and dense binning, numpy only.

Events are numpy structured arrays in tonic's convention (field names ``t``, ``x``, ``y``,
``p``; ``t`` in microseconds):

- image (DVS) events, :data:`IMAGE_EVENT_DTYPE`: ``t`` int64 us, ``x``, ``y`` int16 pixel
  column and row, ``p`` int8 polarity (1 ON, 0 OFF);
- audio (cochlea) events, :data:`AUDIO_EVENT_DTYPE`: ``t`` int64 us, ``x`` int16 channel,
  ``p`` int8 polarity.

Sensor sizes follow tonic too: ``(width, height, n_polarities)`` for images and
``(n_channels, 1, n_polarities)`` for audio. Shorter forms are accepted: ``(width, height)``
and ``(n_channels,)`` mean two polarities, ``(n_channels, n_polarities)`` is also read for audio.

Binning turns events into a dense ``(n_steps, n_features)`` array (or a batch of them). The
feature index is polarity-major, then row, then column: ``k * h * w + y * w + x`` for the k-th
selected polarity, i.e. a flattened ``(P, H, W)`` frame as tonic's ``ToFrame`` lays it out
(audio: ``k * n_channels + x``).

Time axis: with ``duration_us`` given, the bins split ``[0, duration_us)`` into ``n_steps``
equal windows (events outside are dropped); use this for recordings of a fixed length such as
N-MNIST's 300 ms. With ``duration_us=None`` each sample's own span ``[t_min, t_max]`` is split
into ``n_steps`` bins (tonic's ``ToFrame(n_time_bins=...)`` behaviour), so every sample fills
all bins whatever its length. Bin of an event: ``(t - t0) * n_steps // span`` in exact integer
arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError

IMAGE_EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])
"""Image (DVS) events: t (us), x (column), y (row), p (1 ON, 0 OFF)."""

AUDIO_EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int16), ("p", np.int8)])
"""Audio (cochlea) events: t (us), x (channel), p (1 ON / up, 0 OFF / down)."""

# Temporary int64 buffers of the counting path stay below this many entries (64 MiB).
_COUNT_CHUNK_ENTRIES = 8_000_000


def is_image_events(events: np.ndarray) -> bool:
    """True when ``events`` has the image fields ``t``, ``x``, ``y``, ``p``."""
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    return {"t", "x", "y", "p"} <= set(names)


def is_audio_events(events: np.ndarray) -> bool:
    """True when ``events`` has the audio fields ``t``, ``x``, ``p`` and no ``y``."""
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    return {"t", "x", "p"} <= set(names) and "y" not in names


def make_image_events(t: Any, x: Any, y: Any, p: Any) -> np.ndarray:
    """Build an image event array from equal-length field sequences.

    Parameters
    ----------
    t : array_like of int, shape (n,)
        Timestamps in microseconds.
    x, y : array_like of int, shape (n,)
        Pixel column and row.
    p : array_like of int, shape (n,)
        Polarity, 1 ON and 0 OFF.

    Returns
    -------
    numpy.ndarray, shape (n,), dtype :data:`IMAGE_EVENT_DTYPE`
    """
    return _make(IMAGE_EVENT_DTYPE, t=t, x=x, y=y, p=p)


def make_audio_events(t: Any, x: Any, p: Any) -> np.ndarray:
    """Build an audio event array (``x`` is the channel); see :func:`make_image_events`."""
    return _make(AUDIO_EVENT_DTYPE, t=t, x=x, p=p)


def _make(dtype: np.dtype, **fields: Any) -> np.ndarray:
    arrays = {k: np.asarray(v) for k, v in fields.items()}
    arrays = {k: (a.astype(np.int8) if a.dtype == bool else a) for k, a in arrays.items()}
    lengths = {k: a.shape for k, a in arrays.items()}
    if any(a.ndim != 1 for a in arrays.values()) or len({a.shape for a in arrays.values()}) > 1:
        raise ConfigError(
            f"Event fields must be 1-D arrays of equal length. Got shapes {lengths}."
        )
    out = np.empty(next(iter(arrays.values())).shape[0], dtype=dtype)
    for k, a in arrays.items():
        if a.size and not np.issubdtype(a.dtype, np.integer) and (
                not np.all(np.isfinite(a)) or not np.all(a == np.round(a))):
            raise ConfigError(
                f"Event field '{k}' must hold integers (t in whole microseconds). "
                f"Got dtype {a.dtype} with non-integer values; round the values first."
            )
        info = np.iinfo(dtype[k])
        if a.size and (a.min() < info.min or a.max() > info.max):
            raise ConfigError(
                f"Event field '{k}' must fit {dtype[k]} [{info.min}, {info.max}]. "
                f"Got values in [{a.min()}, {a.max()}]."
            )
        out[k] = a
    return out


def normalize_sensor_size(events: np.ndarray, sensor_size: Sequence[int]) -> tuple[int, int, int]:
    """Return the sensor size as tonic's ``(width, height, n_polarities)`` triple.

    Image events accept ``(w, h)`` (two polarities) or ``(w, h, P)``; audio events accept
    ``(C,)``, ``(C, P)`` or ``(C, 1, P)`` and come back as ``(C, 1, P)``.
    """
    image = _kind(events) == "image"
    try:
        size = tuple(int(s) for s in sensor_size)
        if any(int(s) != s for s in sensor_size):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(
            f"sensor_size must be a tuple of positive integers. Got {sensor_size!r}."
        ) from None
    if image:
        if len(size) == 2:
            size = (size[0], size[1], 2)
        elif len(size) != 3:
            raise ConfigError(
                "sensor_size of image events must be (width, height) or "
                f"(width, height, n_polarities). Got {sensor_size!r}."
            )
    else:
        if len(size) == 1:
            size = (size[0], 1, 2)
        elif len(size) == 2:
            size = (size[0], 1, size[1])
        elif len(size) != 3 or size[1] != 1:
            raise ConfigError(
                "sensor_size of audio events must be (n_channels,), (n_channels, n_polarities) "
                f"or (n_channels, 1, n_polarities). Got {sensor_size!r}."
            )
    if min(size) < 1 or max(size[:2]) > np.iinfo(np.int16).max:
        raise ConfigError(
            f"sensor_size entries must be integers in [1, 32767]. Got {sensor_size!r}."
        )
    return size  # type: ignore[return-value]


def _kind(events: np.ndarray) -> str:
    if is_image_events(events):
        return "image"
    if is_audio_events(events):
        return "audio"
    names = getattr(getattr(events, "dtype", None), "names", None)
    raise ConfigError(
        "Events must be a structured array with fields (t, x, y, p) for images or (t, x, p) "
        f"for audio, e.g. built by make_image_events. Got fields {names!r}."
    )


def check_events(events: np.ndarray, sensor_size: Sequence[int]) -> tuple[int, int, int]:
    """Check that every event lies on the sensor; return the normalised sensor size.

    Raises
    ------
    ConfigError
        If a coordinate or polarity is outside the sensor, naming the first offending event.
    """
    w, h, n_pol = size = normalize_sensor_size(events, sensor_size)
    limits = [("x", w), ("p", n_pol)] + ([("y", h)] if _kind(events) == "image" else [])
    for field, n in limits:
        v = events[field]
        bad = np.flatnonzero((v < 0) | (v >= n))
        if bad.size:
            i = int(bad[0])
            raise ConfigError(
                f"Event {i} has {field}={int(v[i])}, outside the sensor range [0, {n - 1}] of "
                f"sensor_size {size}. Pass the sensor size the events were recorded with, or "
                "crop them first."
            )
    return size


def centre_crop(events: np.ndarray, sensor_size: Sequence[int],
                crop: int | Sequence[int]) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Keep the events inside a centred window and shift them to its origin.

    Parameters
    ----------
    events : numpy.ndarray of :data:`IMAGE_EVENT_DTYPE`
    sensor_size : tuple
        ``(width, height[, n_polarities])``.
    crop : int or (int, int)
        Window ``(width, height)`` in pixels; an int means a square. The window starts at
        ``((W - w) // 2, (H - h) // 2)``, as the paper's 16x16 crop of N-MNIST's 34x34.

    Returns
    -------
    (numpy.ndarray, tuple)
        Cropped events (a new array) and the new sensor size ``(w, h, n_polarities)``.
    """
    size = normalize_sensor_size(events, sensor_size)
    (x0, y0), (cw, ch) = _crop_window(events, size, crop)
    keep = (events["x"] >= x0) & (events["x"] < x0 + cw) & (events["y"] >= y0) \
        & (events["y"] < y0 + ch)
    out = events[keep]
    out["x"] -= x0
    out["y"] -= y0
    return out, (cw, ch, size[2])


def _crop_window(events: np.ndarray, size: tuple[int, int, int],
                 crop: int | Sequence[int]) -> tuple[tuple[int, int], tuple[int, int]]:
    if _kind(events) != "image":
        raise ConfigError("crop applies to image events only; audio events have no (x, y) plane.")
    try:
        cw, ch = (int(crop), int(crop)) if np.ndim(crop) == 0 else (int(crop[0]), int(crop[1]))
        if np.ndim(crop) == 1 and len(crop) != 2:
            raise ValueError
    except (TypeError, ValueError, IndexError):
        raise ConfigError(f"crop must be an int or (width, height). Got {crop!r}.") from None
    w, h, _ = size
    if not (1 <= cw <= w and 1 <= ch <= h):
        raise ConfigError(
            f"crop (width, height) must lie in [1, {w}] x [1, {h}] for sensor_size {size}. "
            f"Got {(cw, ch)}."
        )
    return ((w - cw) // 2, (h - ch) // 2), (cw, ch)


def select_polarities(events: np.ndarray, polarities: Sequence[int]) -> np.ndarray:
    """Keep only events whose polarity is in ``polarities`` (e.g. ``(1,)`` for ON only)."""
    return events[np.isin(events["p"], np.asarray(polarities, dtype=np.int64))]


def n_features(sensor_size: tuple[int, int, int], polarities: Sequence[int] | None = None,
               crop: int | Sequence[int] | None = None) -> int:
    """Length of the feature axis that :func:`bin_events` returns for these options.

    ``sensor_size`` must already be a full ``(width, height, n_polarities)`` triple.
    """
    w, h, n_pol = sensor_size
    if crop is not None:
        w, h = (int(crop), int(crop)) if np.ndim(crop) == 0 else (int(crop[0]), int(crop[1]))
    n_p = n_pol if polarities is None else len(polarities)
    return n_p * w * h


def bin_events(events: np.ndarray, n_steps: int, sensor_size: Sequence[int], *,
               duration_us: int | None = None, polarities: Sequence[int] | None = None,
               crop: int | Sequence[int] | None = None, binarize: bool = True,
               dtype: Any = None) -> np.ndarray:
    """Bin one sample's events into a dense ``(n_steps, n_features)`` array.

    Parameters
    ----------
    events : numpy.ndarray of :data:`IMAGE_EVENT_DTYPE` or :data:`AUDIO_EVENT_DTYPE`
    n_steps : int
        Number of time bins T.
    sensor_size : tuple
        See the module docstring.
    duration_us : int, optional
        Bins split ``[0, duration_us)``; None splits the sample's own ``[t_min, t_max]``.
    polarities : sequence of int, optional
        Polarity values to keep, in feature-block order; None keeps all ``0..P-1``. The
        paper's N-MNIST script used one polarity: pass ``(1,)`` for ON events.
    crop : int or (int, int), optional
        Centre crop ``(width, height)`` applied before binning (images only).
    binarize : bool
        True: 1 where a bin holds at least one event. False: event counts.
    dtype : numpy dtype, optional
        Output dtype; default uint8 when binarised, uint16 for counts.

    Returns
    -------
    numpy.ndarray, shape (n_steps, n_features)
    """
    return bin_event_batch([events], n_steps, sensor_size, duration_us=duration_us,
                           polarities=polarities, crop=crop, binarize=binarize, dtype=dtype)[0]


def bin_event_batch(events_list: Sequence[np.ndarray], n_steps: int, sensor_size: Sequence[int],
                    *, duration_us: int | None = None, polarities: Sequence[int] | None = None,
                    crop: int | Sequence[int] | None = None, binarize: bool = True,
                    dtype: Any = None) -> np.ndarray:
    """Bin many samples at once into a dense ``(n_samples, n_steps, n_features)`` array.

    All samples are concatenated and scattered in one vectorised pass (no Python loop over
    events or samples). Options as in :func:`bin_events`.

    Raises
    ------
    ConfigError
        On a bad option, events off the sensor, or counts that overflow ``dtype``.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ConfigError(f"n_steps must be a positive integer. Got {n_steps!r}.")
    n_steps = int(n_steps)
    n = len(events_list)
    if n == 0:
        raise ConfigError("events_list is empty: pass at least one sample's events.")
    first = events_list[0]
    kind = _kind(first)
    size = normalize_sensor_size(first, sensor_size)
    for i, ev in enumerate(events_list):
        if _kind(ev) != kind:
            raise ConfigError(f"Sample {i} holds {_kind(ev)} events but sample 0 {kind} events.")
    lengths = np.fromiter((len(ev) for ev in events_list), dtype=np.int64, count=n)
    t = np.concatenate([ev["t"] for ev in events_list]).astype(np.int64, copy=False)
    x = np.concatenate([ev["x"] for ev in events_list]).astype(np.int64)
    y = (np.concatenate([ev["y"] for ev in events_list]).astype(np.int64) if kind == "image"
         else np.zeros_like(x))
    p = np.concatenate([ev["p"] for ev in events_list]).astype(np.int64)
    sample = np.repeat(np.arange(n, dtype=np.int64), lengths)

    w, h, n_pol = size
    for field, v, lim in (("x", x, w), ("y", y, h), ("p", p, n_pol)):
        bad = np.flatnonzero((v < 0) | (v >= lim))
        if bad.size:
            j = int(bad[0])
            s = int(sample[j])
            raise ConfigError(
                f"Sample {s} has an event with {field}={int(v[j])}, outside [0, {lim - 1}] of "
                f"sensor_size {size}. Pass the sensor size the events were recorded with."
            )

    keep = np.ones(t.shape, dtype=bool)
    if crop is not None:
        (x0, y0), (w, h) = _crop_window(first, size, crop)
        x = x - x0
        y = y - y0
        keep &= (x >= 0) & (x < w) & (y >= 0) & (y < h)
    if polarities is None:
        pol_list = list(range(n_pol))
    else:
        pol_list = [int(v) for v in polarities]
        if not pol_list or len(set(pol_list)) != len(pol_list) or \
                any(v < 0 or v >= n_pol for v in pol_list):
            raise ConfigError(
                f"polarities must be distinct values in [0, {n_pol - 1}] (1 ON, 0 OFF). "
                f"Got {polarities!r}."
            )
    # Lookup from polarity value to feature block; -1 marks dropped polarities.
    block = np.full(n_pol, -1, dtype=np.int64)
    block[pol_list] = np.arange(len(pol_list))
    pb = block[p]
    keep &= pb >= 0

    if duration_us is None:
        t0, span = _sample_spans(t, lengths)
        t0 = t0[sample]
        span = span[sample]
    else:
        if isinstance(duration_us, bool) or not isinstance(duration_us, (int, np.integer)) \
                or duration_us < 1:
            raise ConfigError(
                f"duration_us must be a positive integer (microseconds) or None. "
                f"Got {duration_us!r}."
            )
        t0 = np.int64(0)
        span = np.int64(duration_us)
        keep &= (t >= 0) & (t < duration_us)
    bins = (t - t0) * n_steps // span

    n_feat = len(pol_list) * h * w
    feat = (pb * h + y) * w + x
    flat = (sample * n_steps + bins) * n_feat + feat
    flat = flat[keep]

    out_dtype = np.dtype(dtype) if dtype is not None else np.dtype(
        np.uint8 if binarize else np.uint16)
    total = n * n_steps * n_feat
    if binarize:
        out = np.zeros(total, dtype=out_dtype)
        out[flat] = 1
        return out.reshape(n, n_steps, n_feat)
    return _counts(flat, total, out_dtype).reshape(n, n_steps, n_feat)


def _sample_spans(t: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample start time and span (t_max - t_min + 1, at least 1) without a sample loop."""
    n = lengths.shape[0]
    t0 = np.zeros(n, dtype=np.int64)
    span = np.ones(n, dtype=np.int64)
    nonempty = lengths > 0
    if t.size:
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[nonempty]
        t0[nonempty] = np.minimum.reduceat(t, starts)
        span[nonempty] = np.maximum.reduceat(t, starts) - t0[nonempty] + 1
    return t0, span


def _counts(flat: np.ndarray, total: int, out_dtype: np.dtype) -> np.ndarray:
    """Histogram of flat indices, in chunks so the int64 buffer stays small."""
    out = np.zeros(total, dtype=out_dtype)
    if flat.size == 0:
        return out
    limit = np.iinfo(out_dtype).max if np.issubdtype(out_dtype, np.integer) else np.inf
    if total <= _COUNT_CHUNK_ENTRIES:
        c = np.bincount(flat, minlength=total)
        _check_limit(int(c.max()), limit, out_dtype)
        return c.astype(out_dtype)
    order = np.sort(flat)
    for lo in range(0, total, _COUNT_CHUNK_ENTRIES):
        hi = min(total, lo + _COUNT_CHUNK_ENTRIES)
        a, b = np.searchsorted(order, [lo, hi])
        if a == b:
            continue
        c = np.bincount(order[a:b] - lo, minlength=hi - lo)
        _check_limit(int(c.max()), limit, out_dtype)
        out[lo:hi] = c
    return out


def _check_limit(peak: int, limit: float, out_dtype: np.dtype) -> None:
    if peak > limit:
        raise ConfigError(
            f"A bin holds {peak} events, more than dtype {out_dtype} can count ({limit}). "
            "Pass dtype=numpy.uint32, more n_steps, or binarize=True."
        )
