"""``neural-sim``: spike trains of a simulated population of visual neurons viewing images.

A second modality that shares structure with the images, in the spirit of the paper's
brain-machine-interface task ([Lin25]: 192-channel recordings of a monkey viewing images).
The population views the image modality's own source images (:func:`source_images`):
scikit-learn's digits upsampled to 16x16 for ``digits-events`` (the default), the images of an
``images:FILE``. Each of ``n_neurons`` model cells has a random Gabor receptive field on the
image (its sizes stated for a 16-pixel image and scaled with the image's smaller side). Per
trial (one sample):

1. the image is shifted by a random fixational offset (``jitter_px``);
2. drive ``d = <RF, image>``, standardised per neuron over the whole source set (so every cell
   has a comparable dynamic range, as recorded units that pass a responsiveness criterion);
3. trial noise: a gain shared by the population (log-normal, ``gain_sigma``) and private
   Gaussian noise (``noise_sigma``, in drive standard deviations);
4. rate ``r = baseline_hz + peak_hz * (max(g d + n, 0) / 2) ** exponent`` (a rectified power
   law, the expansive non-linearity of V1 cells);
5. Poisson spiking over ``duration_us``: the count is Poisson(r T), times uniform.

Samples are audio-like event arrays (``t``, ``x`` = neuron, ``p`` = 0: one polarity), size
``(n_neurons, 1, 1)``, so :func:`rram_cosim.cosim.data.datasets.to_frames` bins them like cochlea
channels: one reservoir input row a neuron.

Disjoint sources: :func:`source_partition` splits the source images into two stratified
halves; the neural population views only the ``"neural"`` half, and a zero-shot run keeps only
the ``"image"`` half of the image modality, so a neural query is never a recording of a
gallery image. An image modality with no source images (events only) cannot be viewed:
:func:`source_images` refuses it, rather than pairing it with responses to other images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ...models.checks import check_choice, check_int, check_range
from ...models.errors import ConfigError
from ...models.params import to_dict
from ...models.snn.events import AUDIO_EVENT_DTYPE
from .datasets import SPLITS, EventDataset, SaccadeDvsParams, digit_images, stratified_split
from .user_data import read_image_file

NEURAL_SIM_VERSION = "neural-sim/1"
# fixed entropy words keep the partition and the population independent of the other streams
_PARTITION_KEY = 0x6E505254
_POPULATION_KEY = 0x6E504F50
_TRIAL_KEY = 0x6E545249
_SPLIT_KEY = 0x6E53504C


@dataclass(frozen=True)
class NeuralSimParams:
    """Parameters of the simulated population (all "assumption" unless a source is given).

    Receptive-field sizes, frequencies and margins are stated in pixels of a 16-pixel image
    (the digits); on other images they scale with the image's smaller side (``side / 16``), so
    a cell covers the same fraction of any image.
    """

    n_neurons: int = 192  # [Lin25] BMI task: 192 recorded channels
    # assumption: Gabor envelope sigma, pixels of the 16x16 image (a stroke is ~2 px wide)
    rf_sigma_min_px: float = 1.5
    rf_sigma_max_px: float = 4.0
    # assumption: carrier spatial frequency, cycles per pixel (a stroke pair is ~5-10 px)
    rf_freq_min_cyc_per_px: float = 0.05
    rf_freq_max_cyc_per_px: float = 0.2
    rf_aspect: float = 0.7  # assumption: envelope aspect ratio (V1 simple cells ~0.5-1)
    rf_margin_px: float = 3.0  # assumption: RF centres at least this far from the image edge
    baseline_hz: float = 5.0  # assumption: spontaneous rate of V1 cells, a few Hz
    peak_hz: float = 60.0  # assumption: rate at a drive of 2 standard deviations
    exponent: float = 2.0  # assumption: expansive power law of V1 (Priebe & Ferster 2008: ~2-3)
    gain_sigma: float = 0.2  # assumption: shared gain fluctuation, log-normal sigma (Goris 2014)
    noise_sigma: float = 0.3  # assumption: private drive noise, in drive std
    jitter_px: float = 0.5  # assumption: fixational eye-position jitter per trial, +- px
    duration_us: int = 300_000  # as digits-events' three saccades (300 ms)

    def __post_init__(self) -> None:
        o = "NeuralSimParams"
        check_int(o, "n_neurons", self.n_neurons, 1, 100_000)
        check_range(o, "rf_sigma_min_px", self.rf_sigma_min_px, 0, 16, lo_open=True, unit="px")
        check_range(o, "rf_sigma_max_px", self.rf_sigma_max_px, self.rf_sigma_min_px, 16,
                    unit="px")
        check_range(o, "rf_freq_min_cyc_per_px", self.rf_freq_min_cyc_per_px, 0, 0.5,
                    unit="cycles/px")
        check_range(o, "rf_freq_max_cyc_per_px", self.rf_freq_max_cyc_per_px,
                    self.rf_freq_min_cyc_per_px, 0.5, unit="cycles/px",
                    hint="Above 0.5 cycles/px the carrier aliases on the pixel grid.")
        check_range(o, "rf_aspect", self.rf_aspect, 0, 10, lo_open=True)
        check_range(o, "rf_margin_px", self.rf_margin_px, 0, 7.5, unit="px")
        check_range(o, "baseline_hz", self.baseline_hz, 0, 1000, unit="Hz")
        check_range(o, "peak_hz", self.peak_hz, 0, 1000, lo_open=True, unit="Hz")
        check_range(o, "exponent", self.exponent, 0.5, 5)
        check_range(o, "gain_sigma", self.gain_sigma, 0, 2)
        check_range(o, "noise_sigma", self.noise_sigma, 0, 10)
        check_range(o, "jitter_px", self.jitter_px, 0, 4, unit="px")
        check_int(o, "duration_us", self.duration_us, 1000, 10_000_000)


class ImageSource(NamedTuple):
    """The images a population views: intensities (n, h, w) in [0, 1], class indices (n,),
    class names, and the image modality they belong to (``digits-events``, ``images:FILE``)."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str


_COUNT_CHUNK_EVENTS = 5_000_000  # events counted together by images_from_events (~100 MB)


def images_from_events(recordings: EventDataset) -> np.ndarray:
    """What each image-event recording shows: its events counted per pixel (both polarities,
    the whole recording), scaled to [0, 1] by the sample's largest count; (n, height, width).

    A saccade recording fires where the image has edges, so the count map is the outline of
    the shown digit, smeared along the saccades: the closest to the shown image that an
    events-only set (N-MNIST) keeps. The population then responds to outlines, not to filled
    strokes as with ``digits-events``.
    """
    w, h = recordings.sensor_size[0], recordings.sensor_size[1]
    n = len(recordings)
    img = np.zeros((n, h * w))
    # counted a chunk of recordings at a time (N-MNIST: ~70k recordings, ~1e8 events), on
    # flat (recording, pixel) indices with bincount: vectorised, memory bounded by the chunk
    sizes = np.array([ev.size for ev in recordings.events], dtype=np.int64)
    ends = np.concatenate([[0], np.cumsum(sizes)])  # ends[i]: events before recording i
    start = 0
    while start < n:
        # as many whole recordings as fit in the chunk, at least one
        stop = max(start + 1, int(np.searchsorted(ends, ends[start] + _COUNT_CHUNK_EVENTS,
                                                  side="right")) - 1)
        stop = min(stop, n)
        if ends[stop] > ends[start]:
            ev = np.concatenate(recordings.events[start:stop])
            row = np.repeat(np.arange(stop - start), sizes[start:stop])
            flat = row * (h * w) + ev["y"].astype(np.int64) * w + ev["x"]
            img[start:stop] = np.bincount(flat, minlength=(stop - start) * h * w).reshape(
                stop - start, h * w)
        start = stop
    img = img.reshape(n, h, w)
    return img / np.maximum(img.reshape(n, -1).max(axis=1), 1.0)[:, None, None]


def source_images(image: str = "digits-events",
                  recordings: EventDataset | None = None) -> ImageSource:
    """The source images of an image modality, as the simulated population views them.

    ``"digits-events"``: scikit-learn's 1797 digits upsampled to 16x16 (as that dataset);
    ``"images:FILE"``: the file's images at their own size; ``"nmnist:DIR"``: N-MNIST keeps
    no images, so the population views each recording's event-count image
    (:func:`images_from_events` of ``recordings``, the modality's samples, row i its sample
    i). Any other modality is refused: responses to some other image set, paired by class
    number, would mean nothing.
    """
    if image == "digits-events":
        images, labels = digit_images(SaccadeDvsParams())
        return ImageSource(images, labels, tuple(str(i) for i in range(10)), image)
    kind, _, path = image.partition(":")
    if kind == "images" and path:
        images, labels, names = read_image_file(path)
        return ImageSource(images, labels, names, image)
    if kind == "nmnist" and path:
        if recordings is None or len(recordings) == 0:
            raise ConfigError(
                f"{image}: N-MNIST keeps no images, so the population views the recordings' "
                "event-count images; pass the recordings (source_images(image, recordings)).")
        return ImageSource(images_from_events(recordings), np.asarray(recordings.labels),
                           tuple(str(i) for i in range(10)), image)
    raise ConfigError(
        f"neural-sim simulates a population viewing the image modality's own images, and "
        f"{image!r} has none (its samples are events, not the images behind them). Responses "
        "to other images paired by class number would mean nothing. Use digits-events, "
        "nmnist:DIR or images:FILE (an .npz of the images) as the image modality.")


def source_partition(seed: int, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Split the source images (default scikit-learn's 1797 digits; else one label per image)
    into two disjoint, class-stratified halves.

    Returns ``{"image": indices, "neural": indices}`` (sorted source rows). Same seed, same
    halves.
    """
    check_int("source_partition", "seed", seed, 0)
    labels = _digit_labels() if labels is None else np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng([seed, _PARTITION_KEY])
    half = np.zeros(labels.size, dtype=bool)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        half[idx[: idx.size // 2]] = True
    return {"image": np.flatnonzero(~half), "neural": np.flatnonzero(half)}


def _digit_labels() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().target.astype(np.int64)


def gabor_fields(params: NeuralSimParams, size: int | tuple[int, int],
                 rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Random Gabor receptive fields, zero mean and unit L2 norm, on a ``size`` (square side
    or ``(height, width)``) image; sizes scale with the smaller side over 16 pixels.

    Returns ``(fields, info)``: fields (n_neurons, height * width) and the drawn parameters.
    """
    hh, ww = (size, size) if np.ndim(size) == 0 else (int(size[0]), int(size[1]))
    scale = min(hh, ww) / 16.0
    n = params.n_neurons
    margin = params.rf_margin_px * scale
    info = {"cx": rng.uniform(margin, ww - 1 - margin, n),
            "cy": rng.uniform(margin, hh - 1 - margin, n),
            "theta": rng.uniform(0, np.pi, n), "phase": rng.uniform(0, 2 * np.pi, n),
            "sigma": scale * rng.uniform(params.rf_sigma_min_px, params.rf_sigma_max_px, n),
            "freq": rng.uniform(params.rf_freq_min_cyc_per_px,
                                params.rf_freq_max_cyc_per_px, n) / scale}
    yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float64)
    dx = xx[None] - info["cx"][:, None, None]
    dy = yy[None] - info["cy"][:, None, None]
    c, s = np.cos(info["theta"])[:, None, None], np.sin(info["theta"])[:, None, None]
    u, v = c * dx + s * dy, -s * dx + c * dy
    sig = info["sigma"][:, None, None]
    env = np.exp(-(u**2 + (params.rf_aspect * v) ** 2) / (2 * sig**2))
    car = np.cos(2 * np.pi * info["freq"][:, None, None] * u + info["phase"][:, None, None])
    f = (env * car).reshape(n, -1)
    f -= f.mean(axis=1, keepdims=True)
    f /= np.linalg.norm(f, axis=1, keepdims=True) + 1e-12
    return f, info


def simulate_responses(images: np.ndarray, fields: np.ndarray, drive_mean: np.ndarray,
                       drive_std: np.ndarray, params: NeuralSimParams,
                       rng: np.random.Generator) -> np.ndarray:
    """Firing rates (Hz, n_images x n_neurons) of one trial per image: steps 1-4 of the module
    docstring. ``drive_mean``/``drive_std`` standardise each neuron's drive."""
    from scipy import ndimage

    n = images.shape[0]
    if params.jitter_px > 0:
        shifts = rng.uniform(-params.jitter_px, params.jitter_px, (n, 2))
        # a few hundred 16x16 images: the per-image shift is cheap next to the binning
        images = np.stack([ndimage.shift(im, sh, order=1, mode="constant")
                           for im, sh in zip(images, shifts)])
    d = (images.reshape(n, -1) @ fields.T - drive_mean) / drive_std
    gain = np.exp(rng.normal(0.0, params.gain_sigma, (n, 1)) - 0.5 * params.gain_sigma**2)
    drive = gain * d + rng.normal(0.0, params.noise_sigma, d.shape)
    return params.baseline_hz + params.peak_hz * (np.maximum(drive, 0.0) / 2.0) ** params.exponent


def poisson_events(rates_hz: np.ndarray, duration_us: int,
                   rng: np.random.Generator) -> list[np.ndarray]:
    """Poisson spike trains as one time-ordered event array per sample (``x`` = neuron)."""
    n, m = rates_hz.shape
    counts = rng.poisson(rates_hz * duration_us * 1e-6)
    flat = counts.ravel()
    sample = np.repeat(np.arange(n), counts.sum(axis=1))
    neuron = np.repeat(np.tile(np.arange(m), n), flat)
    t = rng.integers(0, duration_us, sample.size)
    order = np.lexsort((neuron, t, sample))
    ev = np.empty(sample.size, dtype=AUDIO_EVENT_DTYPE)
    ev["t"], ev["x"], ev["p"] = t[order], neuron[order], 0
    offsets = np.concatenate([[0], np.cumsum(counts.sum(axis=1))])
    return [ev[offsets[i]:offsets[i + 1]] for i in range(n)]


def load_neural_sim(split: str, *, seed: int, params: NeuralSimParams | None = None,
                    n_samples: int | None = None, sources: np.ndarray | None = None,
                    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
                    source: ImageSource | None = None) -> EventDataset:
    """One split of the ``neural-sim`` dataset.

    Parameters
    ----------
    split : {"train", "val", "test"}
        A seeded stratified split of the source images.
    seed : int
        Fixes the partition, the population (receptive fields), the trials and the split.
    params : NeuralSimParams, optional
    n_samples : int, optional
        Only the first ``n_samples`` of the split (stratified to within one per class).
    sources : ndarray of int, optional
        Source image rows the population views; default ``source_partition(seed,
        labels)["neural"]``.
    source : ImageSource, optional
        The images viewed (:func:`source_images`); default the digits of ``digits-events``.

    Returns
    -------
    EventDataset
        ``name="neural-sim"``, sensor size ``(n_neurons, 1, 1)``, the source's classes;
        metadata holds ``duration_us``, ``source_index`` (image row per sample), ``viewed``
        (the image modality viewed), ``class_names`` and the parameters.
    """
    params = NeuralSimParams() if params is None else params
    if not isinstance(params, NeuralSimParams):
        raise ConfigError(f"params of 'neural-sim' must be a NeuralSimParams. Got "
                          f"{type(params).__name__}.")
    check_choice("load_neural_sim", "split", split, list(SPLITS))
    check_int("load_neural_sim", "seed", seed, 0)
    source = source_images() if source is None else source
    labels = source.labels
    src = (source_partition(seed, labels)["neural"] if sources is None
           else np.asarray(sources, int))
    if src.size == 0 or src.min() < 0 or src.max() >= labels.size:
        got = (f"min {src.min()}, max {src.max()}" if src.size else "an empty array")
        raise ConfigError(
            f"sources must be a non-empty array of image rows in [0, {labels.size - 1}] (rows "
            f"of {source.name}); got {src.size} rows, {got}. Pass e.g. "
            f"source_partition(seed, labels)['neural'], or leave sources at None.")
    idx = stratified_split(labels[src], np.random.default_rng([seed, _SPLIT_KEY]),
                           split_fractions)[split]
    if n_samples is not None:
        check_int("load_neural_sim", "n_samples", n_samples, 1, idx.size,
                  hint=f"The '{split}' split of neural-sim holds {idx.size} samples.")
        idx = idx[:n_samples]
    # one trial stream per split, so a split's trials do not depend on the others' sizes
    return neural_responses(src[idx], seed=seed, params=params, stream=SPLITS.index(split),
                            split=split, source=source)


def neural_responses(rows: np.ndarray, *, seed: int, params: NeuralSimParams | None = None,
                     stream: int = 0, split: str = "train",
                     source: ImageSource | None = None) -> EventDataset:
    """One trial of the population (of ``seed``) on each image row in ``rows`` of ``source``
    (default the digits of ``digits-events``).

    ``stream`` selects an independent trial-noise stream (different streams give different
    trials of the same images).
    """
    params = NeuralSimParams() if params is None else params
    source = source_images() if source is None else source
    images, labels = source.images, source.labels
    rows = np.asarray(rows, dtype=np.int64)
    fields, _ = gabor_fields(params, images.shape[1:],
                             np.random.default_rng([seed, _POPULATION_KEY]))
    # per-neuron standardisation over the whole source set: a property of the population,
    # not of a split (no split's statistics leak into another's)
    all_drive = images.reshape(labels.size, -1) @ fields.T
    mean, std = all_drive.mean(axis=0), all_drive.std(axis=0) + 1e-12
    trial_rng = np.random.default_rng([seed, _TRIAL_KEY, stream])
    rates = simulate_responses(images[rows], fields, mean, std, params, trial_rng)
    events = poisson_events(rates, params.duration_us, trial_rng)
    meta = {"generator": NEURAL_SIM_VERSION, "params": to_dict(params), "seed": seed,
            "duration_us": params.duration_us, "source_index": rows, "viewed": source.name,
            "class_names": source.class_names,
            "source": ("sklearn.datasets.load_digits" if source.name == "digits-events"
                       else source.name)}
    return EventDataset(events=tuple(events), labels=labels[rows],
                        sensor_size=(params.n_neurons, 1, 1),
                        n_classes=max(len(source.class_names), int(labels.max()) + 1),
                        name="neural-sim", split=split, metadata=meta)
