"""Datasets a user brings: WAV folder, images .npz, events .npz."""

from __future__ import annotations

import numpy as np
import pytest
from rram_cosim.cosim.data.audio import CochleaParams, channel_frequencies_hz
from rram_cosim.cosim.data.datasets import SaccadeDvsParams, to_frames
from rram_cosim.cosim.data.user_data import load_events, load_images, load_wav
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.snn.events import AUDIO_EVENT_DTYPE, IMAGE_EVENT_DTYPE, make_audio_events
from scipy.io import wavfile

TONE_HZ = {0: 300.0, 1: 1200.0, 2: 4000.0}


@pytest.fixture(scope="module")
def wav_folder(tmp_path_factory):
    """Three classes of tone bursts at mixed sample rates and encodings, 4 speakers x 2."""
    folder = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(0)
    for label, f0 in TONE_HZ.items():
        for spk in range(4):
            for take in range(2):
                rate = (16000, 44100, 8000 if f0 < 4000 else 22050)[(spk + take) % 3]
                t = np.arange(int(0.3 * rate)) / rate
                x = np.sin(2 * np.pi * f0 * t) * (np.abs(t - 0.15) < 0.08)
                x = x + 0.003 * rng.standard_normal(t.size)
                data = (x * 20000).astype(np.int16) if take == 0 else x.astype(np.float32)
                if spk == 3:
                    data = np.stack([data, data], axis=1)  # stereo
                wavfile.write(folder / f"{label}_spk{spk}_{take}.wav", rate, data)
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_wav_folder_split_and_events(wav_folder):
    tr = load_wav(wav_folder, "train", seed=0, split_by="sample")
    va = load_wav(wav_folder, "val", seed=0, split_by="sample")
    te = load_wav(wav_folder, "test", seed=0, split_by="sample")
    assert (len(tr), len(va), len(te)) == (15, 3, 6)  # per class 8 files: 5 / 1 / 2
    assert tr.metadata["split_by"] == "sample"
    # the speakers are still recorded: a split by file shares them between the splits
    assert set(tr.metadata["groups"]) & set(te.metadata["groups"])
    files = [set(d.metadata["files"]) for d in (tr, va, te)]
    assert not (files[0] & files[1] or files[0] & files[2] or files[1] & files[2])
    assert tr.metadata["class_names"] == ("0", "1", "2") and tr.n_classes == 3
    assert tr.sensor_size == (64, 1, 2)
    fc = channel_frequencies_hz(CochleaParams())
    for ds in (tr, te):
        for ev, label, name in zip(ds.events, ds.labels, ds.metadata["files"]):
            assert ev.dtype == AUDIO_EVENT_DTYPE and name.startswith(f"{label}_")
            # The burst's onset (70 ms) is an ON volley within half an octave of the tone.
            onset = ev[(ev["p"] == 1) & (ev["t"] >= 60_000) & (ev["t"] < 110_000)]
            mode = np.argmax(np.bincount(onset["x"], minlength=64))
            assert abs(np.log2(fc[mode] / TONE_HZ[int(label)])) < 0.5, name
    # Same seed, same events; the sensor (threshold map) is shared by the splits.
    again = load_wav(wav_folder, "val", seed=0, split_by="sample")
    for a, b in zip(va.events, again.events):
        np.testing.assert_array_equal(a, b)
    frames = to_frames(te, 20, binarize=False)
    assert frames.shape == (6, 20, 128)


def test_wav_folder_splits_by_speaker_by_default(wav_folder, tmp_path):
    tr = load_wav(wav_folder, "train", seed=3, split_fractions=(0.5, 0.25, 0.25))
    te = load_wav(wav_folder, "test", seed=3, split_fractions=(0.5, 0.25, 0.25), n_samples=4)
    speakers = [{f.split("_")[1] for f in d.metadata["files"]} for d in (tr, te)]
    assert len(speakers[0]) == 2 and len(speakers[1]) == 1 and not speakers[0] & speakers[1]
    assert len(te) == 4
    assert tr.metadata["split_by"] == "group" and tr.metadata["group_name"] == "speaker"
    assert set(tr.metadata["groups"]) == speakers[0]
    # every seed keeps each speaker within one split
    for seed in range(4):
        parts = [set(load_wav(wav_folder, s, seed=seed, n_samples=1).metadata["groups"])
                 for s in ("train", "val", "test")]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    # the speaker is a field followed by another: the take (the last field) is no speaker
    with pytest.raises(ConfigError, match=r"speaker in field 2 followed by at least one more"):
        load_wav(wav_folder, "train", seed=0, group_field=2, split_by="group")
    # Names as labels, numbered in sorted order; <label>_<speaker>_<take>.wav splits by speaker
    rate = 16000
    tone = (np.sin(np.arange(4000) * 0.3) * 10000).astype(np.int16)
    spoken = tmp_path / "spoken"
    spoken.mkdir()
    for word in ("yes", "no"):
        for spk in "abcde":
            wavfile.write(spoken / f"{word}_{spk}_1.wav", rate, tone)
    ds = load_wav(spoken, "train", seed=0)
    assert ds.metadata["class_names"] == ("no", "yes")
    assert sorted(ds.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert ds.metadata["split_by"] == "group"  # the second field: a, b, ... e
    # two-field names (the older <label>_<anything>.wav form): the second field is a take,
    # not a speaker, so auto splits by file and says so; group refuses
    takes = tmp_path / "takes"
    takes.mkdir()
    for word in ("yes", "no"):
        for take in range(5):
            wavfile.write(takes / f"{word}_{take:03d}.wav", rate, tone)
    ds = load_wav(takes, "train", seed=0)
    assert ds.metadata["split_by"] == "sample" and "split by file" in ds.metadata["split_note"]
    assert "groups" not in ds.metadata
    with pytest.raises(ConfigError, match=r"split_by='group' needs every name to carry a "
                                          r"speaker in field 1.*--split-by sample"):
        load_wav(takes, "train", split_by="group")
    # the group field is an option: <label>_<session>_<speaker>_<take>.wav with field 2
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    for word in ("yes", "no"):
        for spk in "abcd":
            for day in ("mon", "tue"):
                wavfile.write(sessions / f"{word}_{day}_{spk}_1.wav", rate, tone)
    by_speaker = load_wav(sessions, "train", seed=0, group_field=2,
                          split_fractions=(0.5, 0.25, 0.25))
    assert set(by_speaker.metadata["groups"]) <= set("abcd")
    assert len(set(by_speaker.metadata["groups"])) == 2
    by_day = load_wav(sessions, "train", seed=0, split_fractions=(0.5, 0.0, 0.5))
    assert set(by_day.metadata["groups"]) in ({"mon"}, {"tue"})


def test_speaker_split_keeps_each_class_in_each_split(tmp_path):
    """Speakers that each say one word: the split by speaker is stratified by class, so
    every class has speakers in train, val and test whatever the seed."""
    tone = (np.sin(np.arange(2000) * 0.3) * 10000).astype(np.int16)
    for word in ("up", "down", "left"):
        for spk in range(5):
            wavfile.write(tmp_path / f"{word}_{word}{spk}_1.wav", 16000, tone)
    for seed in range(6):
        for split in ("train", "val", "test"):
            ds = load_wav(tmp_path, split, seed=seed)
            assert ds.metadata["split_by"] == "group"
            assert sorted(set(ds.labels.tolist())) == [0, 1, 2], (seed, split)


def test_wav_folder_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_wav(tmp_path / "nope", "train")
    with pytest.raises(ConfigError, match="No .wav files"):
        load_wav(tmp_path, "train")
    tone = (np.sin(np.arange(4000) * 0.3) * 10000).astype(np.int16)
    for k in range(5):
        wavfile.write(tmp_path / f"1_{k}.wav", 16000, tone)
    wavfile.write(tmp_path / "nolabel.wav", 16000, tone)
    with pytest.raises(ConfigError, match=r"nolabel\.wav: the name does not start with"):
        load_wav(tmp_path, "train")
    (tmp_path / "nolabel.wav").unlink()
    wavfile.write(tmp_path / "2_0.wav", 16000, tone)
    data = (tmp_path / "2_0.wav").read_bytes()
    (tmp_path / "2_0.wav").write_bytes(data[:1000])  # truncated
    for split in ("train", "val", "test"):
        ds_files = []
        try:
            ds_files = load_wav(tmp_path, split, seed=0, split_fractions=(0.4, 0.2, 0.4),
                                split_by="sample")
        except ConfigError as exc:
            assert "2_0.wav" in str(exc) and "truncated" in str(exc)
            break
        assert "2_0.wav" not in ds_files.metadata["files"]
    else:
        pytest.fail("the truncated file was never read")
    with pytest.raises(ConfigError, match="split_by"):
        load_wav(tmp_path, "train", split_by="voice")


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------

def _images(n_per_class: int = 12):
    """Class 0: a vertical bar, class 1: a horizontal bar (12x12, uint8)."""
    rng = np.random.default_rng(0)
    imgs, labels = [], []
    for label in (0, 1):
        for _ in range(n_per_class):
            img = np.zeros((12, 12), dtype=np.uint8)
            k = int(rng.integers(4, 8))
            if label == 0:
                img[2:10, k] = 255
            else:
                img[k, 2:10] = 255
            imgs.append(img)
            labels.append(label)
    return np.array(imgs), np.array(labels)


def test_images_npz(tmp_path):
    images, labels = _images()
    path = tmp_path / "bars.npz"
    np.savez(path, images=images, labels=labels, class_names=np.array(["vertical", "flat"]))
    tr = load_images(path, "train", seed=0)
    te = load_images(path, "test", seed=0)
    assert (len(tr), len(te)) == (14, 4)  # per class 12: 7 / 3 / 2
    assert tr.sensor_size == (16, 16, 2) and tr.metadata["class_names"] == ("vertical", "flat")
    assert tr.metadata["duration_us"] == SaccadeDvsParams().duration_us
    for ev, label in zip(tr.events, tr.labels):
        assert ev.dtype == IMAGE_EVENT_DTYPE and ev.size > 20
        # A vertical bar spreads its events over rows, a horizontal one over columns.
        sig = ev[(ev["x"] >= 2) & (ev["x"] < 14) & (ev["y"] >= 2) & (ev["y"] < 14)]
        spread_x, spread_y = np.ptp(np.percentile(sig["x"], [10, 90])), np.ptp(
            np.percentile(sig["y"], [10, 90]))
        assert (spread_y > spread_x) == (label == 0)
    # A split given in the file wins over the seeded one.
    split = np.array(["train"] * 20 + ["val"] * 2 + ["test"] * 2)
    np.savez(path, images=images / 255.0, labels=labels, split=split)
    va = load_images(path, "val", seed=5)
    np.testing.assert_array_equal(np.sort(va.metadata["source_index"]), [20, 21])
    again = load_images(path, "val", seed=5)
    for a, b in zip(va.events, again.events):
        np.testing.assert_array_equal(a, b)


def test_images_npz_errors(tmp_path):
    images, labels = _images(3)
    path = tmp_path / "bad.npz"
    np.savez(path, images=images.astype(float), labels=labels)  # floats 0-255
    with pytest.raises(ConfigError, match=r"bad\.npz: 'images' of dtype float64 must hold "
                                          r"intensities in \[0, 1\]"):
        load_images(path, "train")
    np.savez(path, pictures=images, labels=labels)
    with pytest.raises(ConfigError, match=r"bad\.npz: no array 'images'"):
        load_images(path, "train")
    np.savez(path, images=images, labels=labels, split=np.array(["train"] * 5 + ["dev"]))
    with pytest.raises(ConfigError, match=r"'split' values must be .*Got \['dev'\]"):
        load_images(path, "train")
    np.savez(path, images=images, labels=labels)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match=r"bad\.npz: .*truncated or corrupt"):
        load_images(path, "train")


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------

def test_events_npz_round_trip_and_sorting(tmp_path):
    rng = np.random.default_rng(0)
    samples = [make_audio_events(np.sort(rng.integers(0, 10_000, n)), rng.integers(0, 32, n),
                                 rng.integers(0, 2, n)) for n in rng.integers(5, 30, 20)]
    labels = np.repeat([0, 1], 10)
    offsets = np.concatenate([[0], np.cumsum([s.size for s in samples])])
    events = np.concatenate(samples)
    path = tmp_path / "ev.npz"
    np.savez(path, events=events, offsets=offsets, labels=labels,
             sensor_size=np.array([32, 1, 2]))
    tr = load_events(path, "train", seed=1)
    assert len(tr) == 12 and tr.sensor_size == (32, 1, 2)
    for ev, i in zip(tr.events, tr.metadata["source_index"]):
        np.testing.assert_array_equal(ev, samples[i])
    # Separate arrays, one sample out of time order, sensor size inferred.
    t = events["t"].copy()
    t[offsets[3]:offsets[4]] = t[offsets[3]:offsets[4]][::-1]
    np.savez(path, t=t, x=events["x"], p=events["p"], offsets=offsets, labels=labels,
             split=np.array([0] * 16 + [1] * 2 + [2] * 2))
    tr = load_events(path, "train")
    assert tr.sensor_size[1:] == (1, 2) and tr.sensor_size[0] == events["x"].max() + 1
    k = list(tr.metadata["source_index"]).index(3)
    np.testing.assert_array_equal(tr.events[k]["t"], np.sort(t[offsets[3]:offsets[4]]))
    assert all(np.all(np.diff(ev["t"]) >= 0) for ev in tr.events)


def test_events_npz_errors(tmp_path):
    path = tmp_path / "bad.npz"
    ev = make_audio_events([0, 5, 9], [1, 2, 3], [0, 1, 1])
    np.savez(path, events=ev, offsets=np.array([0, 2]), labels=np.array([0, 1]))
    with pytest.raises(ConfigError, match=r"bad\.npz: 'offsets' must be 3 non-decreasing"):
        load_events(path, "train")
    np.savez(path, events=ev, offsets=np.array([0, 1, 3]), labels=np.array([0, 1]),
             sensor_size=np.array([2, 1, 2]))
    with pytest.raises(ConfigError, match=r"bad\.npz: Event 1 has x=2, outside the sensor"):
        load_events(path, "train")
    np.savez(path, t=np.array([0.5, 1.0]), x=np.array([0, 1]), p=np.array([0, 1]),
             offsets=np.array([0, 1, 2]), labels=np.array([0, 1]))
    with pytest.raises(ConfigError, match=r"bad\.npz: Event field 't' must hold integers"):
        load_events(path, "train")
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = ev[:1], ev[1:]
    np.savez(path, events=ragged, labels=np.array([0, 1]), offsets=np.array([0, 1, 3]))
    with pytest.raises(ConfigError, match=r"'events' is an object array"):
        load_events(path, "train")
    with pytest.raises(ConfigError, match="does not exist"):
        load_events(tmp_path / "none.npz", "train")


# --------------------------------------------------------------------------------------------
# Groups in an .npz
# --------------------------------------------------------------------------------------------

def test_images_and_events_split_by_their_groups_array(tmp_path):
    images, labels = _images(10)  # 20 images, 2 classes
    groups = np.tile(np.arange(5), 4)  # five writers, each with both classes
    path = tmp_path / "bars.npz"
    np.savez(path, images=images, labels=labels, groups=groups)
    parts = {s: load_images(path, s, seed=2) for s in ("train", "val", "test")}
    writers = {s: set(d.metadata["groups"]) for s, d in parts.items()}
    assert parts["train"].metadata["split_by"] == "group"
    assert [len(w) for w in writers.values()] == [3, 1, 1]  # 60/20/20 of five writers
    assert not (writers["train"] & writers["test"] or writers["train"] & writers["val"])
    for d in parts.values():  # the groups the metadata names are the rows' own
        np.testing.assert_array_equal(d.metadata["groups"],
                                      groups[d.metadata["source_index"]].astype(str))
    # by sample, the writers are still recorded and now shared between train and test
    by_sample = [load_images(path, s, seed=2, split_by="sample") for s in ("train", "test")]
    assert by_sample[0].metadata["split_by"] == "sample"
    assert set(by_sample[0].metadata["groups"]) & set(by_sample[1].metadata["groups"])
    # events: the same option and rule
    rng = np.random.default_rng(0)
    samples = [make_audio_events(np.sort(rng.integers(0, 1000, 6)), rng.integers(0, 8, 6),
                                 rng.integers(0, 2, 6)) for _ in range(20)]
    ev_path = tmp_path / "ev.npz"
    np.savez(ev_path, events=np.concatenate(samples), labels=labels, groups=groups,
             offsets=np.concatenate([[0], np.cumsum([s.size for s in samples])]))
    tr, te = (load_events(ev_path, s, seed=2) for s in ("train", "test"))
    assert not set(tr.metadata["groups"]) & set(te.metadata["groups"])
    # split_by="group" without groups is refused with the fix
    np.savez(path, images=images, labels=labels)
    with pytest.raises(ConfigError, match=r"split_by='group' needs a 'groups' array.*"
                                          r"--split-by sample"):
        load_images(path, "train", split_by="group")
    assert load_images(path, "train", seed=2).metadata["split_by"] == "sample"
    np.savez(path, images=images, labels=labels, groups=groups[:5])
    with pytest.raises(ConfigError, match=r"'groups' must hold one integer or string a sample"):
        load_images(path, "train")
