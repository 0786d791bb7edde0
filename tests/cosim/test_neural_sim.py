"""neural-sim: event format, determinism, disjoint sources, tuning and class information."""

import numpy as np
import pytest
from rram_cosim.cosim.data.datasets import to_frames
from rram_cosim.cosim.data.neural_sim import (
    NeuralSimParams,
    gabor_fields,
    load_neural_sim,
    neural_responses,
    poisson_events,
    simulate_responses,
    source_partition,
)
from rram_cosim.models.errors import ConfigError

SMALL = NeuralSimParams(n_neurons=48)


@pytest.fixture(scope="module")
def train():
    return load_neural_sim("train", seed=0, params=SMALL, n_samples=200)


def test_events_are_audio_like_and_bin_like_cochlea_channels(train):
    assert train.name == "neural-sim" and train.sensor_size == (48, 1, 1)
    assert len(train) == 200 and train.n_classes == 10
    ev = train.events[0]
    assert set(ev.dtype.names) == {"t", "x", "p"}
    assert np.all(np.diff(ev["t"]) >= 0)
    assert ev["t"].min() >= 0 and ev["t"].max() < SMALL.duration_us
    assert ev["x"].max() < 48 and np.all(ev["p"] == 0)
    f = to_frames(train, 50)
    assert f.shape == (200, 50, 48)
    # rates between the baseline (5 Hz) and a few tens of Hz: some, not all, bins hold a spike
    assert 0.01 < f.mean() < 0.5


def test_same_seed_same_spikes_and_sources_are_disjoint(train):
    again = load_neural_sim("train", seed=0, params=SMALL, n_samples=200)
    np.testing.assert_array_equal(again.events[7], train.events[7])
    other = load_neural_sim("train", seed=1, params=SMALL, n_samples=200)
    assert not np.array_equal(other.events[7]["t"], train.events[7]["t"])
    halves = source_partition(0)
    assert np.intersect1d(halves["image"], halves["neural"]).size == 0
    assert halves["image"].size + halves["neural"].size == 1797
    assert np.isin(train.metadata["source_index"], halves["neural"]).all()
    splits = [set(load_neural_sim(s, seed=0, params=SMALL).metadata["source_index"].tolist())
              for s in ("train", "val", "test")]
    assert not (splits[0] & splits[1]) and not (splits[0] & splits[2])
    assert not (splits[1] & splits[2])  # val and test view different source images
    assert all(sp <= set(halves["neural"].tolist()) for sp in splits)
    # classes are balanced in each half (stratified)
    from sklearn.datasets import load_digits

    y = load_digits().target
    assert np.abs(np.bincount(y[halves["image"]]) - np.bincount(y[halves["neural"]])).max() <= 1


def test_receptive_fields_and_rectified_poisson_rates():
    f, _info = gabor_fields(SMALL, 16, np.random.default_rng(0))
    assert f.shape == (48, 256)
    np.testing.assert_allclose(f.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1)
    quiet = NeuralSimParams(n_neurons=48, gain_sigma=0.0, noise_sigma=0.0, jitter_px=0.0)
    # an image that drives neuron 0 with +3 std and neuron 1 with -3 std
    img = (3 * f[0] - 3 * f[1]).reshape(1, 16, 16)
    rates = simulate_responses(img, f, np.zeros(48), np.ones(48), quiet,
                               np.random.default_rng(0))
    assert rates[0, 1] == pytest.approx(quiet.baseline_hz)  # rectified: no negative drive
    assert rates[0, 0] > quiet.baseline_hz + 0.5 * quiet.peak_hz
    counts = np.array([ev.size for ev in poisson_events(np.full((400, 1), 50.0), 200_000,
                                                         np.random.default_rng(1))])
    assert counts.mean() == pytest.approx(10.0, rel=0.1)  # 50 Hz x 0.2 s
    assert counts.var() == pytest.approx(10.0, rel=0.3)  # Poisson: variance = mean


def test_trials_of_one_image_differ_but_carry_its_class():
    rows = np.repeat(np.flatnonzero(np.isin(np.arange(1797), source_partition(0)["neural"]))[:2],
                     30)
    a = neural_responses(rows, seed=0, params=SMALL, stream=0)
    b = neural_responses(rows, seed=0, params=SMALL, stream=1)
    assert not np.array_equal(a.events[0]["t"], b.events[0]["t"])  # trial-to-trial noise
    ca = to_frames(a, 1, binarize=False)[:, 0]
    # the two images' mean responses differ far more than their trial-to-trial spread
    m0, m1 = ca[:30].mean(axis=0), ca[30:].mean(axis=0)
    assert np.linalg.norm(m0 - m1) > 3 * np.linalg.norm(ca[:30].std(axis=0)) / np.sqrt(30)


def test_nearest_class_mean_decodes_well_above_chance(train):
    test = load_neural_sim("test", seed=0, params=SMALL, n_samples=100)
    xtr = to_frames(train, 1, binarize=False)[:, 0].astype(float)
    xte = to_frames(test, 1, binarize=False)[:, 0].astype(float)
    means = np.stack([xtr[train.labels == c].mean(axis=0) for c in range(10)])
    pred = np.argmin(((xte[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(pred == test.labels) > 0.5  # chance 0.1


def test_bad_parameters():
    with pytest.raises(ConfigError, match="'rf_freq_max_cyc_per_px'"):
        NeuralSimParams(rf_freq_max_cyc_per_px=0.8)
    with pytest.raises(ConfigError, match="'n_neurons'"):
        NeuralSimParams(n_neurons=0)
    with pytest.raises(ConfigError, match="'split'"):
        load_neural_sim("dev", seed=0)
    with pytest.raises(ConfigError, match=r"got 2 rows, min -1, max 5000"):
        load_neural_sim("val", seed=0, params=SMALL, sources=np.array([-1, 5000]))
    with pytest.raises(ConfigError, match="n_samples"):
        load_neural_sim("val", seed=0, params=SMALL, n_samples=10_000)


def test_the_population_views_any_image_source_at_its_size(tmp_path):
    from rram_cosim.cosim.data.neural_sim import source_images

    # 28x28 images, two classes: a vertical and a horizontal bar at random positions
    rng = np.random.default_rng(0)
    imgs = np.zeros((80, 28, 28), dtype=np.uint8)
    labels = np.repeat([0, 1], 40)
    for i, k in enumerate(rng.integers(8, 20, 80)):
        if labels[i] == 0:
            imgs[i, 4:24, k - 1:k + 2] = 255
        else:
            imgs[i, k - 1:k + 2, 4:24] = 255
    path = tmp_path / "bars.npz"
    np.savez(path, images=imgs, labels=labels, class_names=np.array(["tall", "wide"]))
    src = source_images(f"images:{path}")
    assert src.images.shape == (80, 28, 28) and src.class_names == ("tall", "wide")
    f, info = gabor_fields(SMALL, (28, 28), np.random.default_rng(0))
    assert f.shape == (48, 784)
    assert info["sigma"].min() >= 1.5 * 28 / 16 and info["cx"].max() <= 27 - 3 * 28 / 16
    ds = load_neural_sim("train", seed=0, params=SMALL, source=src)
    assert ds.metadata["viewed"] == f"images:{path}" and ds.n_classes == 2
    np.testing.assert_array_equal(labels[ds.metadata["source_index"]], ds.labels)
    assert np.isin(ds.metadata["source_index"], source_partition(0, labels)["neural"]).all()
    # the responses carry the bars' orientation: nearest class mean of the counts
    counts = to_frames(ds, 1, binarize=False)[:, 0].astype(float)
    test = load_neural_sim("test", seed=0, params=SMALL, source=src)
    tc = to_frames(test, 1, binarize=False)[:, 0].astype(float)
    means = np.stack([counts[ds.labels == c].mean(axis=0) for c in (0, 1)])
    pred = np.argmin(((tc[:, None, :] - means[None]) ** 2).sum(axis=2), axis=1)
    assert np.mean(pred == test.labels) > 0.8
    # blank images drive nothing: only the private noise lifts the baseline, by
    # peak * E[max(n, 0)^2] / 4 = peak * sigma^2 / 8 (exponent 2)
    blank = src._replace(images=np.zeros_like(src.images))
    quiet = load_neural_sim("train", seed=0, params=SMALL, source=blank)
    rate = np.mean([ev.size for ev in quiet.events]) / 48 / (SMALL.duration_us * 1e-6)
    expect = SMALL.baseline_hz + SMALL.peak_hz * SMALL.noise_sigma**2 / 8
    assert rate == pytest.approx(expect, rel=0.05)
    assert np.mean([ev.size for ev in ds.events]) > 1.5 * np.mean([ev.size
                                                                   for ev in quiet.events])


def test_an_image_modality_without_images_is_refused():
    from rram_cosim.cosim.data.neural_sim import source_images

    with pytest.raises(ConfigError, match=r"'spoken-digits' has none.*would mean "
                                          r"nothing.*images:FILE"):
        source_images("spoken-digits")


def test_event_count_images_are_counted_in_bounded_chunks(monkeypatch):
    """Per-recording pixel counts, the same whatever the chunk of events counted together
    (N-MNIST's ~1e8 events never concatenated at once)."""
    from rram_cosim.cosim.data import neural_sim
    from rram_cosim.cosim.data.datasets import EventDataset
    from rram_cosim.models.snn.events import IMAGE_EVENT_DTYPE

    rng = np.random.default_rng(0)
    events = []
    for k in rng.integers(0, 200, 40):
        ev = np.zeros(k, dtype=IMAGE_EVENT_DTYPE)
        ev["x"], ev["y"] = rng.integers(0, 34, k), rng.integers(0, 30, k)
        events.append(ev)
    ds = EventDataset(events=tuple(events), labels=np.zeros(40, dtype=np.int64),
                      sensor_size=(34, 30, 2), n_classes=1, name="nmnist", split="train",
                      metadata={})
    want = np.zeros((40, 30, 34))
    for i, ev in enumerate(events):
        for x, y in zip(ev["x"], ev["y"]):
            want[i, y, x] += 1
    want /= np.maximum(want.reshape(40, -1).max(axis=1), 1)[:, None, None]
    for chunk in (1, 150, 10**9):
        monkeypatch.setattr(neural_sim, "_COUNT_CHUNK_EVENTS", chunk)
        np.testing.assert_allclose(neural_sim.images_from_events(ds), want)
