"""Event datasets: the embedded N-MNIST-like default and the dataset container.

``load_dataset("digits-events", split, seed=...)`` turns scikit-learn's bundled handwritten
digits (1797 images, 8x8, 10 classes; no download) into saccade-style DVS events the way
N-MNIST was recorded (Orchard et al., Front. Neurosci. 9:437, 2015): the static image sits in
front of an event sensor that makes three short linear saccades (an isosceles triangle, about
100 ms each, ~300 ms in all), and each pixel emits an ON (OFF) event whenever its log intensity
has risen (fallen) by its contrast threshold since its last event. The simulator
(:func:`simulate_saccade_events`) models per-pixel threshold mismatch, a refractory period,
background noise events and sub-pixel placement jitter; all randomness comes from one seeded
:class:`numpy.random.Generator`. The whole set is built on first use (a few seconds) and cached
on disk, keyed by the generator version, its parameters and the seed.

The digits carry no writer IDs, so the split into train / val / test is a seeded stratified
split of images (default 60/20/20), not a split by writer: samples from one writer may sit in
several splits. Nothing downstream should select anything on ``test``.

``load_dataset("spoken-digits", split, seed=...)`` is the audio counterpart (N-TIDIGITS-like):
the words "zero" .. "nine" synthesised by espeak-ng in every English accent and voice variant,
at random speeds, pitches and noise levels, heard by a 64-channel cochlea model with delta
modulation (:mod:`.audio`). Byte-identical recordings are removed before splitting, and the
split is by voice variant (seeded, default 60/20/20 of the variants), so test voices are never
heard in training. The first build takes about a minute on 2 cores (6940 recordings); it is
cached like the digits.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ...models.checks import check_choice, check_int, check_range
from ...models.errors import ConfigError
from ...models.io import CACHE_ENV, atomic_write_stream, cache_root
from ...models.params import to_dict
from ...models.snn.events import (
    AUDIO_EVENT_DTYPE,
    IMAGE_EVENT_DTYPE,
    bin_event_batch,
    check_events,
    is_audio_events,
    is_image_events,
    normalize_sensor_size,
)
from .audio import (
    SPOKEN_DIGITS_VERSION,
    SpokenDigitsParams,
    build_spoken_digits,
    default_workers,
    espeak_variants,
    espeak_version,
    resolve_voices,
)

GENERATOR_VERSION = "digits-events/1"
"""Bumped whenever the simulator's output for the same parameters changes (rebuilds caches)."""

SPLITS = ("train", "val", "test")
DEFAULT_SPLIT_FRACTIONS = (0.6, 0.2, 0.2)


# --------------------------------------------------------------------------------------------
# Container
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class EventDataset:
    """A labelled set of event samples (one split of one dataset).

    Attributes
    ----------
    events : tuple of numpy.ndarray
        One structured event array per sample (:data:`~rram_cosim.models.snn.events.IMAGE_EVENT_DTYPE`
        or ``AUDIO_EVENT_DTYPE``), read-only, time-ordered.
    labels : numpy.ndarray of int64, shape (n,)
        Class index per sample in ``[0, n_classes)``.
    sensor_size : tuple of int
        tonic's ``(width, height, n_polarities)`` (audio: ``(n_channels, 1, n_polarities)``).
    n_classes : int
    name : str
        Dataset name, e.g. ``"digits-events"``.
    split : str
        ``"train"``, ``"val"`` or ``"test"``.
    metadata : Mapping
        Read-only provenance: generator version and parameters, seed, cache key and path,
        ``duration_us`` (recording length, used by :func:`to_frames`), ``source_index`` (row of
        each sample in the source set), build time.
    """

    events: tuple[np.ndarray, ...]
    labels: np.ndarray
    sensor_size: tuple[int, int, int]
    n_classes: int
    name: str
    split: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        events = tuple(self.events)
        labels = np.array(self.labels, dtype=np.int64, copy=True).reshape(-1)
        if len(events) != labels.shape[0]:
            raise ConfigError(
                f"EventDataset needs one label per sample. Got {len(events)} samples and "
                f"{labels.shape[0]} labels."
            )
        check_int("EventDataset", "n_classes", self.n_classes, 1)
        if labels.size and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise ConfigError(
                f"The labels of EventDataset must be in [0, {self.n_classes - 1}]. Got values in "
                f"[{labels.min()}, {labels.max()}]."
            )
        if events:
            kind = _event_kind(events[0])
            bad = next((i for i, ev in enumerate(events)
                        if kind is None or _event_kind(ev) != kind), None)
            if bad is not None:
                raise ConfigError(
                    f"Sample {bad} of EventDataset is not a 1-D event array of the same kind as "
                    "sample 0 (image fields t, x, y, p or audio fields t, x, p); build samples "
                    "with make_image_events or make_audio_events."
                )
            normalize_sensor_size(events[0], self.sensor_size)
        labels.setflags(write=False)
        # Read-only views: the dataset is immutable without changing the caller's arrays.
        events = tuple(ev.view() for ev in events)
        for ev in events:
            ev.setflags(write=False)
        object.__setattr__(self, "events", events)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "sensor_size", tuple(int(s) for s in self.sensor_size))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        """``(events, label)`` of sample ``i``."""
        return self.events[i], int(self.labels[i])

    def __repr__(self) -> str:
        return (f"EventDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"sensor_size={self.sensor_size}, n_classes={self.n_classes})")


def _event_kind(ev: Any) -> str | None:
    if not isinstance(ev, np.ndarray) or ev.ndim != 1:
        return None
    return "image" if is_image_events(ev) else "audio" if is_audio_events(ev) else None


def to_frames(dataset: EventDataset, n_steps: int, *, crop: int | Sequence[int] | None = None,
              polarities: Sequence[int] | None = None, duration_us: int | None = None,
              binarize: bool = True, dtype: Any = None) -> np.ndarray:
    """Bin a whole dataset into a dense ``(n_samples, n_steps, n_features)`` array.

    Parameters
    ----------
    dataset : EventDataset
    n_steps : int
        Time bins T (the paper's N-MNIST script: 50).
    crop : int or (int, int), optional
        Centre crop in pixels (the paper: 16x16 of N-MNIST's 34x34). For ``digits-events``
        (20x20 sensor) a 16 crop keeps the digit and drops the saccade margin.
    polarities : sequence of int, optional
        Polarities kept, e.g. ``(1,)`` for ON only (the paper used one polarity).
    duration_us : int, optional
        Bins split ``[0, duration_us)``. None uses the dataset's recording length
        ``metadata["duration_us"]`` when it declares one, else each sample's own time span.
    binarize : bool
        1 where a bin holds an event (True) or event counts (False).
    dtype : numpy dtype, optional
        Output dtype (default uint8 binarised, uint16 counts).

    Returns
    -------
    numpy.ndarray, shape (len(dataset), n_steps, n_features)
    """
    if len(dataset) == 0:
        raise ConfigError(f"{dataset!r} is empty: there is nothing to bin.")
    if duration_us is None and "duration_us" in dataset.metadata:
        duration_us = int(dataset.metadata["duration_us"])
    return bin_event_batch(dataset.events, n_steps, dataset.sensor_size, duration_us=duration_us,
                           polarities=polarities, crop=crop, binarize=binarize, dtype=dtype)


# --------------------------------------------------------------------------------------------
# Saccade DVS simulator
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SaccadeDvsParams:
    """Parameters of the saccade-driven DVS simulator (N-MNIST-like recording).

    Sources: [Orchard15] Orchard et al., "Converting static image datasets to spiking
    neuromorphic datasets using saccades", Front. Neurosci. 9:437 (2015). [v2e] Hu et al.,
    "v2e: from video frames to realistic DVS events", CVPRW 2021 (its default thresholds).
    """

    # [Lin25 scripts] 16x16 image inputs; sklearn's digits are 8x8, so x2 (bilinear).
    upsample_factor: int = 2
    # assumption: margin around the 16x16 digit so the saccades stay on the sensor (20x20).
    pad_px: int = 2
    # assumption: monitor black relative to white (20:1 contrast); sets the log contrast.
    dark_level: float = 0.05
    # assumption: optics point-spread (Gaussian sigma) on the sensor, pixels.
    blur_sigma_px: float = 0.5
    # assumption: side of the triangular saccade path, pixels (N-MNIST moves a 28 px digit by
    # a few pixels [Orchard15]; scaled to our 16 px digit).
    saccade_amplitude_px: float = 2.0
    # [Orchard15] three saccades of about 100 ms each, ~300 ms per sample.
    saccade_duration_us: int = 100_000
    # assumption: simulation step; at the default speed (0.02 px/ms) the log intensity of a
    # pixel changes by < 0.1 per step, below one threshold, so one event per step suffices.
    dt_us: int = 1000
    threshold_on_log: float = 0.2  # [v2e] default ON contrast threshold, log units
    threshold_off_log: float = 0.2  # [v2e] default OFF contrast threshold, log units
    threshold_sigma_log: float = 0.03  # [v2e] default pixel-to-pixel threshold mismatch (std)
    refractory_us: int = 1000  # assumption: pixel dead time after an event (DVS: 0.1-1 ms)
    noise_rate_hz: float = 0.5  # assumption: background activity per pixel (both polarities)
    # assumption: the digit is not aligned to the pixel grid; uniform sub-pixel offset per
    # sample in [-j, j] pixels on each axis.
    position_jitter_px: float = 0.5

    def __post_init__(self) -> None:
        o = "SaccadeDvsParams"
        check_int(o, "upsample_factor", self.upsample_factor, 1, 8)
        check_int(o, "pad_px", self.pad_px, 0, 64)
        check_range(o, "dark_level", self.dark_level, 0, 1, lo_open=True, hi_open=True,
                    hint="It is the black level relative to white; log(0) has no meaning.")
        check_range(o, "blur_sigma_px", self.blur_sigma_px, 0, 10, unit="px")
        check_range(o, "saccade_amplitude_px", self.saccade_amplitude_px, 0, 32, unit="px")
        check_int(o, "saccade_duration_us", self.saccade_duration_us, 1000, 10_000_000)
        check_int(o, "dt_us", self.dt_us, 1, self.saccade_duration_us)
        check_range(o, "threshold_on_log", self.threshold_on_log, 0.01, 10)
        check_range(o, "threshold_off_log", self.threshold_off_log, 0.01, 10)
        check_range(o, "threshold_sigma_log", self.threshold_sigma_log, 0, 1)
        check_int(o, "refractory_us", self.refractory_us, self.dt_us, 10_000_000,
                  hint="The simulator emits at most one event per pixel and step, which is "
                       "exact only when the refractory period is at least dt_us.")
        check_range(o, "noise_rate_hz", self.noise_rate_hz, 0, 1e4, unit="Hz")
        check_range(o, "position_jitter_px", self.position_jitter_px, 0, 0.5, unit="px",
                    hint="Larger offsets than half a pixel belong in pad_px.")

    @property
    def duration_us(self) -> int:
        """Length of one recording: three saccades."""
        return 3 * self.saccade_duration_us


def saccade_path_px(t_us: np.ndarray, params: SaccadeDvsParams) -> tuple[np.ndarray, np.ndarray]:
    """Image displacement ``(dx, dy)`` on the sensor at times ``t_us`` (pixels).

    Three linear legs around an equilateral triangle centred on the origin (so the digit stays
    centred on average), one leg per ``saccade_duration_us``, starting and ending at the first
    vertex.
    """
    a = params.saccade_amplitude_px
    h = a * np.sqrt(3.0) / 2.0
    vx = np.array([-a / 2, 0.0, a / 2, -a / 2])
    vy = np.array([h / 3, -2 * h / 3, h / 3, h / 3])
    knots = np.arange(4) * params.saccade_duration_us
    t = np.clip(np.asarray(t_us, dtype=np.float64), 0, knots[-1])
    return np.interp(t, knots, vx), np.interp(t, knots, vy)


def simulate_saccade_events(images: np.ndarray, params: SaccadeDvsParams,
                            rng: np.random.Generator, *,
                            threshold_maps: tuple[np.ndarray, np.ndarray] | None = None
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Turn static images into DVS events by simulated saccades.

    Vectorised over all images and pixels; the only loop runs over the
    ``3 * saccade_duration_us / dt_us`` time steps.

    Model, per pixel: intensity ``I = dark + (1 - dark) * image`` (blurred, shifted along the
    saccade path with bilinear interpolation), ``L = log I``. The pixel keeps a reference
    ``L_ref`` (initially ``L(0)`` plus a uniform offset within one threshold, as a sensor
    starts in an arbitrary state). When ``L - L_ref >= theta_on`` (``<= -theta_off``) and the
    pixel is not refractory, it emits one ON (OFF) event and moves ``L_ref`` by one threshold;
    a remaining excess fires in later steps. Event times interpolate the threshold crossing
    within the step and respect the refractory period. Thresholds are drawn once per sensor
    pixel (``N(theta, sigma)``, floored at 0.01): a fixed mismatch map shared by all samples,
    as a real sensor's. Background noise events (Poisson, uniform in time and pixel, random
    polarity) are added on top.

    Parameters
    ----------
    images : numpy.ndarray, shape (n, h, w)
        Intensities in [0, 1] at sensor resolution (1 = white stroke).
    params : SaccadeDvsParams
    rng : numpy.random.Generator
    threshold_maps : (numpy.ndarray, numpy.ndarray), optional
        ON and OFF threshold maps of the sensor, each shape (h + 2 pad, w + 2 pad), from
        :func:`saccade_threshold_maps`; pass them to give several calls (chunks of a large
        image set) the same sensor. None draws them from ``rng``.

    Returns
    -------
    events : numpy.ndarray of IMAGE_EVENT_DTYPE
        All samples' events concatenated, each sample time-ordered.
    offsets : numpy.ndarray of int64, shape (n + 1,)
        Sample ``i`` is ``events[offsets[i]:offsets[i + 1]]``.
    """
    canvas = digit_canvas(images, params, rng)
    n, hh, ww = canvas.shape
    n_pix = hh * ww
    dt = params.dt_us
    n_steps = params.duration_us // dt

    if threshold_maps is None:
        th_on, th_off = saccade_threshold_maps(params, (hh, ww), rng)
    else:
        th_on, th_off = (np.asarray(m, dtype=np.float64) for m in threshold_maps)
        if th_on.shape != (hh, ww) or th_off.shape != (hh, ww):
            raise ConfigError(
                f"threshold_maps must be two ({hh}, {ww}) arrays for this sensor. Got shapes "
                f"{th_on.shape} and {th_off.shape}.")
    th_on, th_off = th_on.reshape(-1), th_off.reshape(-1)
    # Flat (sample-major) copies of the per-pixel maps: every hot-loop op is 1-D and in place.
    th_on = np.tile(th_on.astype(np.float32), n)
    neg_th_off = -np.tile(th_off.astype(np.float32), n)

    t_steps = np.arange(n_steps + 1, dtype=np.int64) * dt
    dx, dy = saccade_path_px(t_steps, params)
    margin = int(np.ceil(max(np.abs(dx).max(), np.abs(dy).max()))) + 1
    big = np.pad(canvas, ((0, 0), (margin, margin), (margin, margin)), mode="edge")
    buf_a = np.empty((n, hh, ww), dtype=np.float32)
    buf_b = np.empty((n, hh, ww), dtype=np.float32)

    def log_frame(k: int, out: np.ndarray) -> np.ndarray:
        # The image moves by +d on the sensor, so pixel (x, y) sees canvas point (x - dx, y - dy).
        ux, uy = -dx[k], -dy[k]
        ix, iy = int(np.floor(ux)), int(np.floor(uy))
        fx, fy = np.float32(ux - ix), np.float32(uy - iy)
        r0, c0 = margin + iy, margin + ix
        a = big[:, r0:r0 + hh, c0:c0 + ww]
        b = big[:, r0:r0 + hh, c0 + 1:c0 + 1 + ww]
        c = big[:, r0 + 1:r0 + 1 + hh, c0:c0 + ww]
        d = big[:, r0 + 1:r0 + 1 + hh, c0 + 1:c0 + 1 + ww]
        top, bottom = buf_a, buf_b
        np.subtract(b, a, out=top)  # a + fx (b - a)
        np.multiply(top, fx, out=top)
        np.add(top, a, out=top)
        np.subtract(d, c, out=bottom)  # c + fx (d - c)
        np.multiply(bottom, fx, out=bottom)
        np.add(bottom, c, out=bottom)
        np.subtract(bottom, top, out=bottom)  # top + fy (bottom - top)
        np.multiply(bottom, fy, out=bottom)
        np.add(bottom, top, out=bottom)
        return np.log(bottom.reshape(-1), out=out)

    size = n * n_pix
    l_prev = log_frame(0, np.empty(size, dtype=np.float32))
    l_now = np.empty(size, dtype=np.float32)
    start = rng.uniform(-1.0, 1.0, size=size).astype(np.float32)
    l_ref = l_prev + start * np.minimum(th_on, -neg_th_off)
    t_last = np.full(size, -(2 ** 40), dtype=np.int64)
    diff = np.empty(size, dtype=np.float32)
    on = np.empty(size, dtype=bool)
    off = np.empty(size, dtype=bool)

    chunks_idx, chunks_t, chunks_p = [], [], []
    for k in range(1, n_steps + 1):
        log_frame(k, l_now)
        t_end = int(t_steps[k])
        np.subtract(l_now, l_ref, out=diff)
        np.greater_equal(diff, th_on, out=on)
        np.less_equal(diff, neg_th_off, out=off)
        np.logical_or(on, off, out=off)
        idx = np.flatnonzero(off)
        # Refractory pixels hold their excess until they are ready. Event times stay inside
        # [t_end - dt, t_end - 1], so every event falls in a bin of [0, duration_us).
        idx = idx[t_last[idx] + params.refractory_us < t_end]
        if idx.size:
            pol = on[idx]
            th = np.where(pol, th_on[idx], neg_th_off[idx])
            lp = l_prev[idx]
            ln = l_now[idx]
            level = l_ref[idx] + th
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = np.where(ln != lp, (level - lp) / (ln - lp), 1.0)
            t_ev = (t_end - dt) + np.floor(np.clip(frac, 0.0, 1.0) * (dt - 1)).astype(np.int64)
            t_ev = np.maximum(t_ev, t_last[idx] + params.refractory_us)
            l_ref[idx] = level
            t_last[idx] = t_ev
            chunks_idx.append(idx)
            chunks_t.append(t_ev)
            chunks_p.append(pol.astype(np.int8))
        l_prev, l_now = l_now, l_prev

    sig = np.concatenate(chunks_idx) if chunks_idx else np.zeros(0, dtype=np.int64)
    chunks_s = [sig // n_pix]
    chunks_px = [sig % n_pix]

    # Background activity: Poisson count per sample, uniform in time, pixel and polarity.
    lam = params.noise_rate_hz * n_pix * params.duration_us * 1e-6
    n_noise = rng.poisson(lam, size=n)
    total_noise = int(n_noise.sum())
    chunks_s.append(np.repeat(np.arange(n), n_noise))
    chunks_px.append(rng.integers(0, n_pix, size=total_noise))
    chunks_t.append(rng.integers(0, params.duration_us, size=total_noise, dtype=np.int64))
    chunks_p.append(rng.integers(0, 2, size=total_noise, dtype=np.int8))

    s_all = np.concatenate(chunks_s).astype(np.int64)
    px_all = np.concatenate(chunks_px).astype(np.int64)
    t_all = np.concatenate(chunks_t)
    p_all = np.concatenate(chunks_p)
    # One int64 key (sample, time) sorts faster than lexsort; the signal part arrives almost
    # in order already (step by step), which the stable sort exploits. Ties keep step order.
    order = np.argsort(s_all * (params.duration_us + 1) + t_all, kind="stable")
    px_sorted = px_all[order]
    events = np.empty(order.size, dtype=IMAGE_EVENT_DTYPE)
    events["t"] = t_all[order]
    events["x"] = px_sorted % ww
    events["y"] = px_sorted // ww
    events["p"] = p_all[order]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(s_all, minlength=n), out=offsets[1:])
    return events, offsets


def saccade_threshold_maps(params: SaccadeDvsParams, shape: tuple[int, int],
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """ON and OFF contrast-threshold maps of one sensor, each ``shape`` (log units).

    ``N(threshold, threshold_sigma_log)`` per pixel, floored at 0.01.
    """
    n_pix = int(shape[0]) * int(shape[1])
    th_floor = 0.01
    th_on = np.maximum(params.threshold_on_log
                       + params.threshold_sigma_log * rng.standard_normal(n_pix), th_floor)
    th_off = np.maximum(params.threshold_off_log
                        + params.threshold_sigma_log * rng.standard_normal(n_pix), th_floor)
    return th_on.reshape(shape), th_off.reshape(shape)


def digit_canvas(images: np.ndarray, params: SaccadeDvsParams,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """Intensity frames the sensor looks at before motion, float32 ``(n, h + 2 pad, w + 2 pad)``.

    ``dark + (1 - dark) * image``, padded with the dark level, blurred by the optics and, when
    ``rng`` is given, shifted by each sample's sub-pixel placement jitter (this draws
    ``2 * n`` uniform numbers from ``rng``).
    """
    from scipy import ndimage

    img = np.asarray(images, dtype=np.float64)
    if img.ndim != 3 or not np.all(np.isfinite(img)) or (img.size and (img.min() < 0
                                                                         or img.max() > 1)):
        raise ConfigError(
            "images must be a finite (n, height, width) array of intensities in [0, 1]. "
            f"Got shape {img.shape}" + (f", values in [{img.min():g}, {img.max():g}]."
                                        if img.size else ".")
        )
    dark = params.dark_level
    pad = params.pad_px
    canvas = np.pad(dark + (1.0 - dark) * img, ((0, 0), (pad, pad), (pad, pad)),
                    constant_values=dark)
    if params.blur_sigma_px > 0:
        canvas = ndimage.gaussian_filter(canvas, sigma=(0, params.blur_sigma_px,
                                                        params.blur_sigma_px), mode="nearest")
    if rng is not None:
        n, hh, ww = canvas.shape
        j = rng.uniform(-params.position_jitter_px, params.position_jitter_px, size=(2, n))
        grid_s, grid_y, grid_x = np.meshgrid(np.arange(n), np.arange(hh), np.arange(ww),
                                             indexing="ij")
        coords = np.stack([grid_s.astype(np.float64),
                           grid_y - j[1][:, None, None], grid_x - j[0][:, None, None]])
        canvas = ndimage.map_coordinates(canvas, coords, order=1, mode="nearest")
    return canvas.astype(np.float32)


def digit_images(params: SaccadeDvsParams) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits upsampled to sensor resolution.

    Returns
    -------
    images : numpy.ndarray of float64, shape (1797, 8 * f, 8 * f)
        Intensities in [0, 1] (the source's 0-16 grey levels / 16), bilinear upsampling by
        ``f = params.upsample_factor`` with pixels treated as areas.
    labels : numpy.ndarray of int64, shape (1797,)
    """
    from scipy import ndimage
    from sklearn.datasets import load_digits

    digits = load_digits()
    img = digits.images.astype(np.float64) / 16.0
    f = params.upsample_factor
    if f > 1:
        img = ndimage.zoom(img, (1, f, f), order=1, grid_mode=True, mode="nearest")
    return np.clip(img, 0.0, 1.0), digits.target.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Split
# --------------------------------------------------------------------------------------------

def stratified_split(labels: np.ndarray, rng: np.random.Generator,
                     fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS) -> dict[str, np.ndarray]:
    """Seeded stratified split of sample indices into ``train``, ``val`` and ``test``.

    Per class, the shuffled indices are cut at ``round(f_train * n_c)`` and
    ``round((f_train + f_val) * n_c)``. Within a split the order interleaves the classes
    (round robin over the shuffled per-class lists), so any prefix is stratified to within one
    sample per class.
    """
    fr = _check_fractions(fractions)
    labels = np.asarray(labels, dtype=np.int64)
    classes = np.unique(labels)
    split_of = np.empty(labels.shape[0], dtype=np.int64)
    rank = np.empty(labels.shape[0], dtype=np.int64)
    cuts = np.cumsum(fr)[:2]
    for c in classes:  # ten classes: cheap
        idx = rng.permutation(np.flatnonzero(labels == c))
        a, b = np.round(cuts * idx.size).astype(int)
        part = np.zeros(idx.size, dtype=np.int64)
        part[a:b] = 1
        part[b:] = 2
        split_of[idx] = part
        # Rank within (class, split) makes the round-robin order.
        starts = np.array([0, a, b])
        rank[idx] = np.arange(idx.size) - starts[part]
    out = {}
    for k, name in enumerate(SPLITS):
        members = np.flatnonzero(split_of == k)
        out[name] = members[np.lexsort((labels[members], rank[members]))]
    return out


def group_split(groups: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS, *,
                stratify: bool = False) -> dict[str, np.ndarray]:
    """Seeded split of sample indices by group (voice, speaker) into ``train``, ``val``, ``test``.

    Whole groups go to one split: the shuffled distinct groups are cut at
    ``round(f_train * n_groups)`` and ``round((f_train + f_val) * n_groups)``, so the fractions
    count groups, not samples. Within a split the samples are shuffled and the classes
    interleaved (round robin), so a prefix is stratified as far as the split's classes allow.

    ``stratify``: groups that mostly (more than half their samples) hold one class are cut
    per class (the same rule over that class's groups, in the shuffled order, each split
    keeping at least one group of a class that has three or more), so each class reaches each
    split where its groups allow; groups of mixed classes (a speaker saying
    every word) are cut together. When every group is mixed the split is the unstratified
    one, and the generator draws the same numbers either way. Should the per-class cut leave
    a split empty that the plain cut fills, the plain cut is used.
    """
    fr = _check_fractions(fractions)
    groups = np.asarray(groups)
    labels = np.asarray(labels, dtype=np.int64)
    if groups.shape != labels.shape:
        raise ConfigError(f"groups and labels must have the same shape. Got {groups.shape} and "
                          f"{labels.shape}.")
    names, group_of = np.unique(groups, return_inverse=True)
    group_of = group_of.reshape(-1)
    order = rng.permutation(names.size)

    def cut(members: np.ndarray, part: np.ndarray, every_split: bool = False) -> None:
        n = members.size
        a, b = np.round(np.cumsum(fr)[:2] * n).astype(int)
        if every_split and n >= 3 and fr.min() > 0:
            # one class's few groups: rounding each cut alone can leave a split without the
            # class (3 groups at 0.6 / 0.2 / 0.2 round to 2 / 0 / 1), so each split keeps one
            a = int(np.clip(a, 1, n - 2))
            b = int(np.clip(b, a + 1, n - 1))
        part[members[:a]], part[members[a:b]], part[members[b:]] = 0, 1, 2

    part_of_group = np.empty(names.size, dtype=np.int64)
    cut(order, part_of_group)
    if stratify and labels.size:
        counts = np.zeros((names.size, int(labels.max()) + 1), dtype=np.int64)
        np.add.at(counts, (group_of, labels), 1)
        main = counts.argmax(axis=1)
        # -1: a group of mixed classes
        bucket = np.where(2 * counts.max(axis=1) > counts.sum(axis=1), main, -1)
        strat = np.empty(names.size, dtype=np.int64)
        for c in np.unique(bucket):
            cut(order[bucket[order] == c], strat, every_split=c >= 0)
        if np.unique(strat).size >= np.unique(part_of_group).size:
            part_of_group = strat
    split_of = part_of_group[group_of]
    out = {}
    for k, name in enumerate(SPLITS):
        members = rng.permutation(np.flatnonzero(split_of == k))
        lab = labels[members]
        by_class = np.argsort(lab, kind="stable")
        first = np.searchsorted(lab[by_class], lab[by_class])
        rank = np.empty(members.size, dtype=np.int64)
        rank[by_class] = np.arange(members.size) - first
        out[name] = members[np.lexsort((lab, rank))]
    return out


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.shape != (3,) or np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise ConfigError(
            f"Split fractions must be three non-negative numbers (train, val, test) summing to "
            f"1. Got {fractions!r}."
        )
    return fr


# --------------------------------------------------------------------------------------------
# Loading and caching
# --------------------------------------------------------------------------------------------

def default_cache_dir() -> Path:
    """``$RRAM_COSIM_CACHE`` itself when set, else ``~/.cache/rram-cosim/data``
    (:func:`~rram_cosim.models.io.cache_root`)."""
    root = cache_root()
    return root if os.environ.get(CACHE_ENV) else root / "data"


def load_dataset(name: str, split: str, *, seed: int, cache_dir: str | os.PathLike | None = None,
                 n_samples: int | None = None, params: Any = None,
                 split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS) -> EventDataset:
    """Load one split of an embedded event dataset, building and caching it on first use.

    Parameters
    ----------
    name : str
        ``"digits-events"`` (N-MNIST-like saccade events from scikit-learn's digits) or
        ``"spoken-digits"`` (N-TIDIGITS-like cochlea events of espeak-ng speech).
    split : str
        ``"train"``, ``"val"`` or ``"test"``. digits-events: a seeded stratified split of
        images (the digits carry no writer IDs). spoken-digits: a seeded split of the voice
        variants, so no voice of one split is heard in another.
    seed : int
        Seeds the generator and, independently, the split. Same seed and parameters give the
        same events and the same split.
    cache_dir : path, optional
        Where the built set is cached; default :func:`default_cache_dir`.
    n_samples : int, optional
        Return only the first ``n_samples`` of the split (stratified to within one per class).
    params : optional
        The generator's parameters: a :class:`SaccadeDvsParams` for digits-events, a
        :class:`~rram_cosim.cosim.data.audio.SpokenDigitsParams` for spoken-digits (defaults when
        None).
    split_fractions : (float, float, float)
        Train, val and test fractions (of samples, or of voice variants for spoken-digits).

    Returns
    -------
    EventDataset
        ``metadata`` holds the provenance, ``source_index`` (row of each sample in the whole
        set) and, for spoken-digits, ``groups`` (variant index per sample; names in
        ``metadata["variants"]``) and ``sample_info`` (per-sample ``accent`` index,
        ``speed_wpm``, ``pitch``, ``snr_db``, ``duration_us``).
    """
    check_choice("load_dataset", "name", name, list(_BUILDERS))
    check_choice("load_dataset", "split", split, list(SPLITS))
    check_int("load_dataset", "seed", seed, 0)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    full = _BUILDERS[name](seed=seed, params=params, cache_dir=cache)

    split_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    if "groups" in full:
        idx = group_split(full["groups"], full["labels"], split_rng, split_fractions)[split]
    else:
        idx = stratified_split(full["labels"], split_rng, split_fractions)[split]
    if idx.size == 0:
        raise ConfigError(
            f"The '{split}' split of {name} is empty with split_fractions {split_fractions!r} "
            f"({full['meta'].get('n_total')} samples"
            + (f" in {np.unique(full['groups']).size} voice variants" if "groups" in full
               else "") + "). Give that split a larger fraction or the set more voices.")
    if n_samples is not None:
        check_int("load_dataset", "n_samples", n_samples, 1, idx.size,
                  hint=f"The '{split}' split of {name} holds {idx.size} samples.")
        idx = idx[:n_samples]
    events, offsets = full["events"], full["offsets"]
    samples = tuple(events[offsets[i]:offsets[i + 1]] for i in idx)
    meta = dict(full["meta"])
    meta["source_index"] = full["source_index"][idx]
    if "groups" in full:
        meta["groups"] = full["groups"][idx]
    if full.get("info"):
        meta["sample_info"] = MappingProxyType({k: v[idx] for k, v in full["info"].items()})
        for v in meta["sample_info"].values():
            v.setflags(write=False)
    for k in ("source_index", "groups"):
        if k in meta:
            meta[k].setflags(write=False)
    meta["split_fractions"] = tuple(float(f) for f in split_fractions)
    return EventDataset(events=samples, labels=full["labels"][idx],
                        sensor_size=tuple(meta["sensor_size"]), n_classes=int(meta["n_classes"]),
                        name=name, split=split, metadata=meta)


def cache_key(seed: int, params: SaccadeDvsParams) -> str:
    """Hex digest over generator version, parameters and seed: any change rebuilds."""
    blob = json.dumps({"generator": GENERATOR_VERSION, "params": to_dict(params), "seed": seed,
                       "source": "sklearn.datasets.load_digits"}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _digits_events(*, seed: int, params: SaccadeDvsParams | None,
                   cache_dir: Path) -> dict[str, Any]:
    params = SaccadeDvsParams() if params is None else params
    if not isinstance(params, SaccadeDvsParams):
        raise ConfigError(
            f"params of 'digits-events' must be a SaccadeDvsParams. Got {type(params).__name__}."
        )
    key = cache_key(seed, params)

    def build() -> dict[str, Any]:
        t_start = time.perf_counter()
        images, labels = digit_images(params)
        sim_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
        events, offsets = simulate_saccade_events(images, params, sim_rng)
        build_s = time.perf_counter() - t_start
        hh, ww = images.shape[1] + 2 * params.pad_px, images.shape[2] + 2 * params.pad_px
        meta = {
            "generator": GENERATOR_VERSION, "params": to_dict(params), "seed": seed,
            "cache_key": key, "source": "sklearn.datasets.load_digits",
            "sensor_size": [ww, hh, 2], "n_classes": 10, "duration_us": params.duration_us,
            "build_time_s": build_s, "n_total": int(labels.size),
        }
        return {"events": events, "offsets": offsets, "labels": labels,
                "source_index": np.arange(labels.size, dtype=np.int64), "meta": meta}

    return _cached(cache_dir / f"digits-events-{key[:20]}.npz", key, build)


def spoken_digits_cache_key(seed: int, params: SpokenDigitsParams) -> str:
    """Hex digest over generator version, parameters, seed, espeak-ng version and its variants.

    The installed variants enter the key only when ``params.variants`` is empty (all of them).
    """
    blob = json.dumps({"generator": SPOKEN_DIGITS_VERSION, "params": to_dict(params),
                       "seed": seed, "espeak": espeak_version(),
                       "variants": list(params.variants or espeak_variants())}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _spoken_digits(*, seed: int, params: SpokenDigitsParams | None,
                   cache_dir: Path) -> dict[str, Any]:
    params = SpokenDigitsParams() if params is None else params
    if not isinstance(params, SpokenDigitsParams):
        raise ConfigError(f"params of 'spoken-digits' must be a SpokenDigitsParams. Got "
                          f"{type(params).__name__}.")
    key = spoken_digits_cache_key(seed, params)

    def build() -> dict[str, Any]:
        t_start = time.perf_counter()
        voices = resolve_voices(params, n_workers=default_workers())
        full = build_spoken_digits(params, seed, voices=voices)
        full["source_index"] = np.arange(full["labels"].size, dtype=np.int64)
        full["meta"].update(cache_key=key, build_time_s=time.perf_counter() - t_start)
        return full

    return _cached(cache_dir / f"spoken-digits-{key[:20]}.npz", key, build)


def _cached(path: Path, key: str, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Read the cache at ``path`` if it holds ``key``; otherwise build, write and return."""
    if path.exists():
        try:
            return _read_cache(path, key)
        # A cache is disposable: whatever a damaged file raises (zip, header parse, shape or
        # key errors, even SyntaxError from numpy's header reader) means rebuild it.
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"Dataset cache {path} is unreadable ({exc}); rebuilding it.",
                          RuntimeWarning, stacklevel=4)
    full = build()
    try:
        _write_cache(path, key, full)
    except OSError as exc:  # read-only or full: the built set is still good for this run
        warnings.warn(f"Dataset cache {path} cannot be written ({exc}); the set is used "
                      "without caching and will be built again next time.", RuntimeWarning,
                      stacklevel=4)
        full["meta"] = dict(full["meta"], cache_path=None, built=True)
        return full
    full["meta"] = dict(full["meta"], cache_path=str(path), built=True)
    return full


def _write_cache(path: Path, key: str, full: dict[str, Any]) -> None:
    events = full["events"]
    x = events["x"]
    # Narrow on-disk types (t < 2**31 us; small sensors): a third of the size.
    arrays = {"t": events["t"].astype(np.int32),
              "x": x.astype(np.uint8 if x.size == 0 or x.max() < 256 else np.int16),
              "p": events["p"], "offsets": full["offsets"], "labels": full["labels"],
              "source_index": full["source_index"], "key": np.array(key),
              "meta": np.array(json.dumps(full["meta"]))}
    if "y" in (events.dtype.names or ()):
        y = events["y"]
        arrays["y"] = y.astype(np.uint8 if y.size == 0 or y.max() < 256 else np.int16)
    if "groups" in full:
        arrays["groups"] = full["groups"]
    for k, v in (full.get("info") or {}).items():
        arrays[f"info_{k}"] = v
    atomic_write_stream(path, lambda f: np.savez(f, **arrays), fsync=True)


def _read_cache(path: Path, key: str) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        if str(z["key"]) != key:
            raise ValueError("its key does not match the requested parameters")
        offsets = z["offsets"].astype(np.int64)
        labels = z["labels"].astype(np.int64)
        source_index = z["source_index"].astype(np.int64)
        meta = json.loads(str(z["meta"]))
        image = "y" in z.files
        fields = ("t", "x", "y", "p") if image else ("t", "x", "p")
        n_ev = z["t"].shape[0]
        if not (offsets[0] == 0 and offsets[-1] == n_ev and np.all(np.diff(offsets) >= 0)
                and labels.shape[0] == offsets.shape[0] - 1 == source_index.shape[0]
                and all(z[f].shape[0] == n_ev for f in fields)):
            raise ValueError("its arrays are inconsistent")
        events = np.empty(n_ev, dtype=IMAGE_EVENT_DTYPE if image else AUDIO_EVENT_DTYPE)
        for f in fields:
            events[f] = z[f]
        extra: dict[str, Any] = {}
        if "groups" in z.files:
            extra["groups"] = z["groups"].astype(np.int64)
        info = {k[5:]: z[k] for k in z.files if k.startswith("info_")}
        if info:
            extra["info"] = info
        if any(v.shape != labels.shape for v in info.values()) or (
                "groups" in extra and extra["groups"].shape != labels.shape):
            raise ValueError("its per-sample arrays are inconsistent")
    check_events(events, meta["sensor_size"])
    meta = dict(meta, cache_path=str(path), built=False)
    return {"events": events, "offsets": offsets, "labels": labels,
            "source_index": source_index, "meta": meta, **extra}


# name -> builder(seed=, params=, cache_dir=) returning the whole set: "events" (concatenated),
# "offsets" (n + 1), "labels", "source_index" and "meta" (with "sensor_size", "n_classes" and,
# for fixed-length recordings, "duration_us"); optionally "groups" (split unit per sample:
# load_dataset then splits by group) and "info" (per-sample arrays). load_dataset does the
# split on top.
_BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {"digits-events": _digits_events,
                                                       "spoken-digits": _spoken_digits}
