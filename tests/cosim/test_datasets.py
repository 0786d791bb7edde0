"""The embedded datasets (digits-events, spoken-digits), splits and cache; the N-MNIST reader."""

from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np
import pytest
from rram_cosim.cosim.data.audio import SpokenDigitsParams
from rram_cosim.cosim.data.datasets import (
    EventDataset,
    SaccadeDvsParams,
    cache_key,
    digit_canvas,
    digit_images,
    group_split,
    load_dataset,
    saccade_threshold_maps,
    simulate_saccade_events,
    spoken_digits_cache_key,
    stratified_split,
    to_frames,
)
from rram_cosim.cosim.data.nmnist import decode_nmnist, load_nmnist, read_nmnist_bin
from rram_cosim.models.errors import ConfigError, CosimError
from rram_cosim.models.snn.events import AUDIO_EVENT_DTYPE, IMAGE_EVENT_DTYPE, make_image_events

NAME = "digits-events"
# Coarser steps and thresholds (a fifth of the events) build the whole set in well under a
# second: for tests of caching and determinism, where the event details do not matter.
FAST = SaccadeDvsParams(dt_us=5000, refractory_us=5000, threshold_on_log=0.6,
                        threshold_off_log=0.6)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("data-cache")


@pytest.fixture(scope="module")
def fast_val(tmp_path_factory):
    """The FAST set, seed 3, built once in its own cache folder."""
    ds = load_dataset(NAME, "val", seed=3, cache_dir=tmp_path_factory.mktemp("fast"),
                      params=FAST)
    assert ds.metadata["built"] is True
    return ds


@pytest.fixture(scope="module")
def splits(cache):
    return {s: load_dataset(NAME, s, seed=0, cache_dir=cache) for s in ("train", "val", "test")}


def test_split_sizes_disjoint_stratified(splits):
    tr, va, te = splits["train"], splits["val"], splits["test"]
    assert (len(tr), len(va), len(te)) == (1078, 360, 359)
    idx = [set(d.metadata["source_index"].tolist()) for d in (tr, va, te)]
    assert not (idx[0] & idx[1]) and not (idx[0] & idx[2]) and not (idx[1] & idx[2])
    assert len(idx[0] | idx[1] | idx[2]) == 1797
    _, labels = digit_images(SaccadeDvsParams())
    total = np.bincount(labels, minlength=10)
    for d, frac in ((tr, 0.6), (va, 0.2), (te, 0.2)):
        np.testing.assert_array_equal(labels[d.metadata["source_index"]], d.labels)
        assert np.all(np.abs(np.bincount(d.labels, minlength=10) - frac * total) <= 1)
    # Any prefix is stratified: the first 50 hold five of each class.
    np.testing.assert_array_equal(np.bincount(tr.labels[:50], minlength=10), np.full(10, 5))


def test_events_well_formed(splits):
    va = splits["val"]
    assert va.sensor_size == (20, 20, 2) and va.n_classes == 10
    assert va.metadata["duration_us"] == 300_000
    lengths = np.array([len(e) for e in va.events])
    assert 1000 < lengths.mean() < 5000  # N-MNIST: a few thousand events per 300 ms
    for ev in va.events[:50]:
        assert ev.dtype == IMAGE_EVENT_DTYPE
        assert np.all(np.diff(ev["t"]) >= 0)
        assert ev["t"].min() >= 0 and ev["t"].max() < 300_000
        assert ev["x"].max() < 20 and ev["y"].max() < 20
        assert 0.3 < ev["p"].mean() < 0.7
    with pytest.raises(ValueError):
        va.events[0]["t"][0] = 5  # read-only


def test_events_follow_the_strokes(splits):
    """Event counts per pixel track the log-image gradient magnitude of the same digit."""
    va = splits["val"]
    params = SaccadeDvsParams()
    images, _ = digit_images(params)
    n = 100
    canvas = digit_canvas(images[va.metadata["source_index"][:n]], params)
    gy, gx = np.gradient(np.log(canvas), axis=(1, 2))
    grad = np.hypot(gx, gy).reshape(n, -1)
    counts = np.zeros((n, 400))
    for i in range(n):
        np.add.at(counts[i], va.events[i]["y"].astype(int) * 20 + va.events[i]["x"], 1)
    own = np.array([np.corrcoef(counts[i], grad[i])[0, 1] for i in range(n)])
    other = np.array([np.corrcoef(counts[i], grad[(i + 1) % n])[0, 1] for i in range(n)])
    assert np.median(own) > 0.8
    assert np.median(own) - np.median(other) > 0.2


def test_logistic_regression_on_counts_beats_70_percent(splits):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    cache_dir = os.path.dirname(splits["train"].metadata["cache_path"])
    tr = load_dataset(NAME, "train", seed=0, cache_dir=cache_dir, n_samples=300)
    va = load_dataset(NAME, "val", seed=0, cache_dir=cache_dir, n_samples=200)
    assert tr.metadata["built"] is False
    # Counts in three windows (one per saccade), 16x16 centre crop, both polarities.
    x_tr = to_frames(tr, 3, crop=16, binarize=False).reshape(len(tr), -1).astype(float)
    x_va = to_frames(va, 3, crop=16, binarize=False).reshape(len(va), -1).astype(float)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    # One BLAS thread: on a busy 2-core machine threaded BLAS made this fit 30x slower.
    with threadpool_limits(1):
        acc = clf.fit(x_tr, tr.labels).score(x_va, va.labels)
    print(f"logistic regression on binned counts: val accuracy {acc:.3f}")
    assert acc > 0.70


def test_to_frames_paper_layout(splits):
    va = splits["val"]
    frames = to_frames(va, 50, crop=16, polarities=(1,))
    assert frames.shape == (360, 50, 256) and frames.dtype == np.uint8
    assert set(np.unique(frames)) <= {0, 1}
    # Activity is spread over the 50 steps, not piled in a few.
    assert (frames.sum(axis=(0, 2)) > 0).all()


def test_cache_round_trip(fast_val):
    folder = os.path.dirname(fast_val.metadata["cache_path"])
    assert not [f for f in os.listdir(folder) if f.endswith(".tmp")]
    again = load_dataset(NAME, "val", seed=3, cache_dir=folder, params=FAST)
    assert again.metadata["built"] is False
    assert again.metadata["cache_path"] == fast_val.metadata["cache_path"]
    _assert_same_events(fast_val, again)
    with pytest.raises(ConfigError, match="n_samples"):
        load_dataset(NAME, "val", seed=3, cache_dir=folder, params=FAST, n_samples=10_000)


def test_corrupt_cache_is_rebuilt(fast_val, tmp_path):
    path = tmp_path / os.path.basename(fast_val.metadata["cache_path"])
    shutil.copyfile(fast_val.metadata["cache_path"], path)
    with open(path, "r+b") as fh:  # garbage in the middle of the archive
        fh.seek(100)
        fh.write(b"\x00garbage" * 50)
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        rebuilt = load_dataset(NAME, "val", seed=3, cache_dir=tmp_path, params=FAST)
    assert rebuilt.metadata["built"] is True
    _assert_same_events(fast_val, rebuilt)
    assert load_dataset(NAME, "val", seed=3, cache_dir=tmp_path,
                        params=FAST).metadata["built"] is False
    path.write_bytes(b"")  # truncated to nothing
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        load_dataset(NAME, "val", seed=3, cache_dir=tmp_path, params=FAST)


def test_same_seed_same_events_other_seed_or_params_differ(fast_val, tmp_path, monkeypatch):
    same = load_dataset(NAME, "val", seed=3, cache_dir=tmp_path / "b", params=FAST)
    assert same.metadata["built"] is True
    _assert_same_events(fast_val, same)
    # Other seed (cache folder from the environment): other split and other events.
    monkeypatch.setenv("RRAM_COSIM_CACHE", str(tmp_path / "env"))
    other = load_dataset(NAME, "val", seed=4, params=FAST)
    assert other.metadata["cache_path"].startswith(str(tmp_path / "env"))
    assert not np.array_equal(fast_val.metadata["source_index"], other.metadata["source_index"])
    pos = {int(k): i for i, k in enumerate(other.metadata["source_index"])}
    common = [(i, pos[int(k)]) for i, k in enumerate(fast_val.metadata["source_index"])
              if int(k) in pos]
    assert common
    assert not any(np.array_equal(fast_val.events[i], other.events[j]) for i, j in common)
    # Same seed, other parameters: the split stays, the events change.
    noisier = load_dataset(NAME, "val", seed=3, cache_dir=tmp_path / "b",
                           params=dataclasses.replace(FAST, noise_rate_hz=2.0))
    assert noisier.metadata["built"] is True
    np.testing.assert_array_equal(fast_val.metadata["source_index"],
                                  noisier.metadata["source_index"])
    assert not np.array_equal(fast_val.events[0], noisier.events[0])
    assert cache_key(4, FAST) != cache_key(5, FAST)
    assert cache_key(4, FAST) != cache_key(4, dataclasses.replace(FAST, noise_rate_hz=1.0))
    # A prefix of a split is stratified.
    few = load_dataset(NAME, "test", seed=4, params=FAST, n_samples=10)
    assert few.metadata["built"] is False
    np.testing.assert_array_equal(np.bincount(few.labels, minlength=10), np.ones(10))


def test_simulator_determinism_and_seed_dependence():
    params = SaccadeDvsParams()
    images, _ = digit_images(params)
    images = images[:20]
    e1, o1 = simulate_saccade_events(images, params, np.random.default_rng(1))
    e2, o2 = simulate_saccade_events(images, params, np.random.default_rng(1))
    e3, _ = simulate_saccade_events(images, params, np.random.default_rng(2))
    np.testing.assert_array_equal(e1, e2)
    np.testing.assert_array_equal(o1, o2)
    assert not np.array_equal(e1[: min(e1.size, e3.size)], e3[: min(e1.size, e3.size)])


def test_simulator_physics_by_case():
    """A blank image gives only noise; a moving step edge gives the hand-counted events."""
    params = SaccadeDvsParams(noise_rate_hz=0.0, threshold_sigma_log=0.0, position_jitter_px=0,
                              blur_sigma_px=0.0)
    blank = np.zeros((2, 16, 16))
    ev, off = simulate_saccade_events(blank, params, np.random.default_rng(0))
    assert ev.size == 0 and off.tolist() == [0, 0, 0]
    noisy = dataclasses.replace(params, noise_rate_hz=100.0)
    ev, off = simulate_saccade_events(blank, noisy, np.random.default_rng(0))
    expect = 100.0 * 400 * 0.3 * 2
    assert abs(ev.size - expect) < 5 * np.sqrt(expect)

    # Bright right half reaching past the sensor (no pad: the canvas edge repeats), so the
    # one edge sits between columns 7 and 8. Leg 1 moves the image from dx = -1 to dx = 0:
    # pixel 7 goes from seeing canvas column 8 (bright) to column 7 (dark), its log intensity
    # falls by log(1 / 0.05) = 3.0, i.e. 15 thresholds of 0.2 (14 or 15 events, as the start
    # reference sits within one threshold); nothing else changes.
    edge = dataclasses.replace(params, pad_px=0)
    half = np.zeros((1, 16, 16))
    half[:, :, 8:] = 1.0
    ev, _ = simulate_saccade_events(half, edge, np.random.default_rng(0))
    first_leg = ev[ev["t"] < edge.saccade_duration_us]
    assert np.all(first_leg["p"] == 0) and np.all(first_leg["x"] == 7)
    per_pixel = np.bincount(first_leg["y"], minlength=16)
    assert set(per_pixel.tolist()) <= {14, 15}
    # The refractory period holds per pixel.
    key = ev["y"].astype(int) * 16 + ev["x"]
    order = np.lexsort((ev["t"], key))
    same = key[order][1:] == key[order][:-1]
    assert np.all(np.diff(ev["t"][order])[same] >= params.refractory_us)


def test_stratified_split_is_seeded():
    labels = np.repeat(np.arange(4), 25)
    a = stratified_split(labels, np.random.default_rng(0))
    b = stratified_split(labels, np.random.default_rng(0))
    c = stratified_split(labels, np.random.default_rng(1))
    for k in ("train", "val", "test"):
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["train"], c["train"])
    assert [len(a[k]) for k in ("train", "val", "test")] == [60, 20, 20]
    with pytest.raises(ConfigError, match="fractions"):
        stratified_split(labels, np.random.default_rng(0), (0.5, 0.2, 0.2))


def test_bad_arguments():
    with pytest.raises(ConfigError, match="digits-events"):
        load_dataset("mnist", "train", seed=0)
    with pytest.raises(ConfigError, match="split"):
        load_dataset(NAME, "validation", seed=0)
    with pytest.raises(ConfigError, match="refractory_us"):
        SaccadeDvsParams(dt_us=2000, refractory_us=1000)
    with pytest.raises(ConfigError, match="one label per sample"):
        EventDataset(events=[make_image_events([0], [0], [0], [0])], labels=[0, 1],
                     sensor_size=(2, 2, 2), n_classes=2, name="x", split="train")
    with pytest.raises(ConfigError, match="Sample 1"):
        EventDataset(events=[make_image_events([0], [0], [0], [0]), np.zeros(3)], labels=[0, 1],
                     sensor_size=(2, 2, 2), n_classes=2, name="x", split="train")
    mine = make_image_events([0], [0], [0], [0])
    ds = EventDataset(events=[mine], labels=[1], sensor_size=(2, 2), n_classes=2, name="x",
                      split="train")
    assert mine.flags.writeable and not ds.events[0].flags.writeable
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        EventDataset(events=[make_image_events([0], [0], [0], [0])], labels=[2],
                     sensor_size=(2, 2, 2), n_classes=2, name="x", split="train")


def _assert_same_events(a: EventDataset, b: EventDataset) -> None:
    np.testing.assert_array_equal(a.labels, b.labels)
    assert len(a) == len(b)
    for ea, eb in zip(a.events, b.events):
        np.testing.assert_array_equal(ea, eb)


# --------------------------------------------------------------------------------------------
# N-MNIST .bin reader
# --------------------------------------------------------------------------------------------

def _encode_nmnist(events: np.ndarray) -> bytes:
    """Independent writer of the published 40-bit layout (x, y, p|t[22:16], t[15:8], t[7:0])."""
    out = bytearray()
    for e in events:
        t = int(e["t"])
        out += bytes([int(e["x"]), int(e["y"]), (int(e["p"]) << 7) | (t >> 16) & 0x7F,
                      (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def test_nmnist_hand_computed_bytes():
    data = bytes([5, 33, 0x81, 0x02, 0x03,  # x 5, y 33, ON, t = 0x010203 = 66051
                  0, 0, 0x7F, 0xFF, 0xFF])  # x 0, y 0, OFF, t = 2**23 - 1
    ev = decode_nmnist(data, check_order=True)
    assert ev.dtype == IMAGE_EVENT_DTYPE
    assert ev["x"].tolist() == [5, 0] and ev["y"].tolist() == [33, 0]
    assert ev["p"].tolist() == [1, 0]
    assert ev["t"].tolist() == [66051, 8388607]


def test_nmnist_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    n = 500
    ev = make_image_events(np.sort(rng.integers(0, 2 ** 23, n)), rng.integers(0, 34, n),
                           rng.integers(0, 34, n), rng.integers(0, 2, n))
    path = tmp_path / "00001.bin"
    path.write_bytes(_encode_nmnist(ev))
    np.testing.assert_array_equal(read_nmnist_bin(path), ev)


def test_nmnist_truncated_and_impossible(tmp_path):
    good = _encode_nmnist(make_image_events([1, 2], [3, 4], [5, 6], [1, 0]))
    path = tmp_path / "bad.bin"
    path.write_bytes(good + b"\x01\x02")
    with pytest.raises(ConfigError, match=r"bad\.bin.*byte offset 10.*truncated"):
        read_nmnist_bin(path)
    path.write_bytes(good + bytes([34, 0, 0, 0, 9]))
    with pytest.raises(CosimError, match=r"bad\.bin.*byte offset 10 has x=34"):
        read_nmnist_bin(path)
    path.write_bytes(bytes([0, 0, 0, 0, 9]) + bytes([1, 99, 0, 0, 10]))
    with pytest.raises(ConfigError, match=r"byte offset 5 has y=99"):
        read_nmnist_bin(path)
    path.write_bytes(bytes([0, 0, 0, 0, 9]) + bytes([1, 1, 0, 0, 4]))
    with pytest.raises(ConfigError, match=r"byte offset 5 has timestamp 4 us"):
        read_nmnist_bin(path)
    ev = read_nmnist_bin(path, check_order=False)
    assert ev["t"].tolist() == [4, 9] and ev["x"].tolist() == [1, 0]


def test_nmnist_overflow_marker():
    data = bytes([1, 1, 0, 0, 10]) + bytes([0, 240, 0, 0, 0]) + bytes([2, 2, 0x80, 0, 5])
    ev = decode_nmnist(data)
    assert ev["t"].tolist() == [10, 8192 + 5] and ev["x"].tolist() == [1, 2]


def test_load_nmnist_folder(tmp_path):
    rng = np.random.default_rng(0)
    for split, per_class in (("Train", 6), ("Test", 2)):
        for digit in range(10):
            folder = tmp_path / split / str(digit)
            folder.mkdir(parents=True)
            for k in range(per_class):
                n = 20
                ev = make_image_events(np.sort(rng.integers(0, 300_000, n)),
                                       rng.integers(0, 34, n), np.full(n, digit), np.ones(n))
                (folder / f"{k:05d}.bin").write_bytes(_encode_nmnist(ev))
    tr = load_nmnist(tmp_path, "train", seed=0)
    va = load_nmnist(tmp_path, "val", seed=0)
    te = load_nmnist(tmp_path, "test")
    assert (len(tr), len(va), len(te)) == (50, 10, 20)
    assert not set(tr.metadata["files"]) & set(va.metadata["files"])
    for ds in (tr, va, te):
        assert ds.sensor_size == (34, 34, 2)
        for ev, label in zip(ds.events, ds.labels):
            assert np.all(ev["y"] == label)  # each file was written with y = its digit
    assert to_frames(te, 10, crop=16, polarities=(1,)).shape == (20, 10, 256)
    with pytest.raises(ConfigError, match="does not exist"):
        load_nmnist(tmp_path / "nowhere", "train")


def test_shared_threshold_maps_make_chunks_one_sensor():
    params = SaccadeDvsParams()
    images, _ = digit_images(params)
    maps = saccade_threshold_maps(params, (20, 20), np.random.default_rng(9))
    whole, _ = simulate_saccade_events(images[:6], params, np.random.default_rng(1),
                                         threshold_maps=maps)
    # Without shared maps each call draws its own sensor; with them the result only depends
    # on the maps and the rng stream, which the caller controls.
    again, _ = simulate_saccade_events(images[:6], params, np.random.default_rng(1),
                                          threshold_maps=maps)
    np.testing.assert_array_equal(whole, again)
    other, _ = simulate_saccade_events(
        images[:6], params, np.random.default_rng(1),
        threshold_maps=saccade_threshold_maps(params, (20, 20), np.random.default_rng(10)))
    assert not np.array_equal(whole[:min(whole.size, other.size)],
                              other[:min(whole.size, other.size)])
    with pytest.raises(ConfigError, match=r"threshold_maps must be two \(20, 20\) arrays"):
        simulate_saccade_events(images[:2], params, np.random.default_rng(1),
                                threshold_maps=(maps[0][:5], maps[1]))


# --------------------------------------------------------------------------------------------
# Group split and spoken-digits
# --------------------------------------------------------------------------------------------

def test_group_split_keeps_groups_whole():
    groups = np.repeat(np.arange(10), 6)
    labels = np.tile(np.arange(3), 20)
    a = group_split(groups, labels, np.random.default_rng(0))
    b = group_split(groups, labels, np.random.default_rng(0))
    for k in ("train", "val", "test"):
        np.testing.assert_array_equal(a[k], b[k])
    owners = [set(groups[a[k]].tolist()) for k in ("train", "val", "test")]
    assert [len(o) for o in owners] == [6, 2, 2]  # fractions count groups
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert sorted(np.concatenate([a[k] for k in a]).tolist()) == list(range(60))
    # Classes interleave: every prefix of three holds each class once.
    assert all(sorted(labels[a["train"]][i:i + 3].tolist()) == [0, 1, 2]
               for i in range(0, 36, 3))
    c = group_split(groups, labels, np.random.default_rng(1))
    assert set(groups[c["test"]].tolist()) != owners[2]
    with pytest.raises(ConfigError, match="fractions"):
        group_split(groups, labels, np.random.default_rng(0), (0.5, 0.5, 0.5))


SPOKEN = "spoken-digits"
# Five variants in two accents: ten voices, 100 recordings, built in a few seconds.
TINY = SpokenDigitsParams(accents=("en-us", "en-gb-scotland"),
                          variants=("m1", "f2", "m3", "f4", "croak"))


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("spoken")
    first = load_dataset(SPOKEN, "train", seed=0, cache_dir=cache_dir, params=TINY)
    assert first.metadata["built"] is True
    rest = {s: load_dataset(SPOKEN, s, seed=0, cache_dir=cache_dir, params=TINY)
            for s in ("val", "test")}
    return {"train": first, **rest}


def test_spoken_digits_split_by_voice(spoken):
    tr, va, te = spoken["train"], spoken["val"], spoken["test"]
    assert (len(tr), len(va), len(te)) == (60, 20, 20)  # 3 / 1 / 1 variants x 2 accents x 10
    assert va.metadata["built"] is False and te.metadata["built"] is False
    names = tr.metadata["variants"]
    used = [{names[g] for g in d.metadata["groups"]} for d in (tr, va, te)]
    assert [len(u) for u in used] == [3, 1, 1]
    assert not (used[0] & used[1] or used[0] & used[2] or used[1] & used[2])
    for d in (tr, va, te):
        np.testing.assert_array_equal(np.bincount(d.labels, minlength=10),
                                      np.full(10, len(d) // 10))
        assert d.n_classes == 10 and d.sensor_size == (64, 1, 2)
        assert d.metadata["class_names"][:2] == ["zero", "one"]
        accents = d.metadata["sample_info"]["accent"]
        assert set(accents.tolist()) == {0, 1}
    assert tr.metadata["n_total"] == 100 and tr.metadata["build_time_s"] < 60
    print(f"tiny spoken-digits build: {tr.metadata['build_time_s']:.1f} s")


def test_spoken_digits_events_well_formed(spoken):
    tr = spoken["train"]
    info = tr.metadata["sample_info"]
    lengths = np.array([len(e) for e in tr.events])
    assert 100 < np.median(lengths) < 3000
    for ev, dur in zip(tr.events, info["duration_us"]):
        assert ev.dtype == AUDIO_EVENT_DTYPE
        assert np.all(np.diff(ev["t"]) >= 0) and ev["t"].min() >= 0 and ev["t"].max() < dur
        assert ev["x"].max() < 64 and 0.3 < ev["p"].mean() < 0.8
    p = TINY
    assert np.all((info["speed_wpm"] >= p.speed_wpm_min) & (info["speed_wpm"] <= p.speed_wpm_max))
    assert np.all((info["snr_db"] >= p.snr_db_min) & (info["snr_db"] <= p.snr_db_max))
    # Recordings last the word (0.15-1 s) plus 2 x 50-150 ms of padding.
    assert np.all((info["duration_us"] > 200_000) & (info["duration_us"] < 1_500_000))
    with pytest.raises(ValueError):
        tr.events[0]["x"][0] = 1  # read-only


def test_spoken_digits_carry_the_word(spoken):
    """Nearest class mean of per-channel counts in 4 windows, trained on 3 voices: a new
    voice's words are recognised far above chance (10 %)."""
    tr, va = spoken["train"], spoken["val"]
    x_tr = np.log1p(to_frames(tr, 4, binarize=False).reshape(len(tr), -1).astype(float))
    x_va = np.log1p(to_frames(va, 4, binarize=False).reshape(len(va), -1).astype(float))
    means = np.stack([x_tr[tr.labels == c].mean(axis=0) for c in range(10)])
    pred = np.argmin(((x_va[:, None, :] - means[None]) ** 2).sum(axis=2), axis=1)
    acc = float(np.mean(pred == va.labels))
    print(f"spoken-digits tiny: nearest-mean val accuracy {acc:.2f}")
    assert acc >= 0.4


def test_spoken_digits_duplicates_oh_and_cache(spoken, tmp_path):
    # Fixed prosody: the second reading of every word is byte-identical and removed.
    fixed = SpokenDigitsParams(accents=("en-us",), variants=("m1", "f2", "m3"), renditions=2,
                               speed_wpm_min=160, speed_wpm_max=160, pitch_min=50,
                               pitch_max=50, include_oh=True)
    ds = load_dataset(SPOKEN, "train", seed=0, cache_dir=tmp_path, params=fixed)
    assert ds.metadata["n_duplicates_removed"] == 33 and ds.metadata["n_total"] == 33
    assert ds.n_classes == 11 and ds.metadata["class_names"][10] == "oh" and len(ds) == 22
    # The cache key follows parameters and seed; a damaged cache is rebuilt.
    assert spoken_digits_cache_key(0, TINY) != spoken_digits_cache_key(1, TINY)
    assert spoken_digits_cache_key(0, TINY) != spoken_digits_cache_key(0, fixed)
    path = ds.metadata["cache_path"]
    with open(path, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00garbage" * 40)
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        again = load_dataset(SPOKEN, "train", seed=0, cache_dir=tmp_path, params=fixed)
    assert again.metadata["built"] is True
    for a, b in zip(ds.events, again.events):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="SpokenDigitsParams"):
        load_dataset(SPOKEN, "train", seed=0, cache_dir=tmp_path, params=SaccadeDvsParams())
    with pytest.raises(ConfigError, match="'val' split of spoken-digits is empty"):
        load_dataset(SPOKEN, "val", seed=0, cache_dir=tmp_path,
                     params=dataclasses.replace(fixed, variants=("m1",)))


def test_group_split_stratified_by_class_where_groups_hold_one_class():
    # speakers of mixed words: stratifying changes nothing (same draws, same split)
    g, lab = np.repeat(np.arange(8), 6), np.tile(np.arange(3), 16)
    plain = group_split(g, lab, np.random.default_rng(1))
    strat = group_split(g, lab, np.random.default_rng(1), stratify=True)
    for s in plain:
        np.testing.assert_array_equal(plain[s], strat[s])
    # one word a speaker, 5 speakers a word: every word in every split, every seed
    g, lab = np.repeat(np.arange(15), 2), np.repeat(np.arange(3), 10)
    for seed in range(8):
        out = group_split(g, lab, np.random.default_rng(seed), stratify=True)
        assert all(set(lab[out[s]].tolist()) == {0, 1, 2} for s in out), seed
        assert sorted(np.concatenate(list(out.values())).tolist()) == list(range(30))
    # three speakers a word: 0.6 / 0.2 / 0.2 of 3 would round to 2 / 0 / 1; each split keeps one
    g, lab = np.repeat(np.arange(12), 2), np.repeat(np.arange(4), 6)
    for seed in range(8):
        out = group_split(g, lab, np.random.default_rng(seed), stratify=True)
        assert all(set(lab[out[s]].tolist()) == {0, 1, 2, 3} for s in out), seed
