"""N-TIDIGITS HDF5 reader on small files written here with the published layout."""

from __future__ import annotations

import numpy as np
import pytest
from rram_cosim.cosim.data.ntidigits import (
    NTIDIGITS_SENSOR_SIZE,
    load_ntidigits,
    parse_label,
    read_ntidigits_labels,
)
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.snn.events import AUDIO_EVENT_DTYPE

h5py = pytest.importorskip("h5py")

DIGITS = "z123456789o"


def _write(path, splits, *, bad=None):
    """Write the N-TIDIGITS layout; each recording's channels encode its class and speaker.

    Every event of speaker k and class c sits on channel (c * 5 + k) % 64, so a test can tell
    from the events alone which recording it got.
    """
    rng = np.random.default_rng(0)
    truth = {}
    with h5py.File(path, "w") as f:
        for split, speakers in splits.items():
            labels = []
            for k, spk in enumerate(speakers):
                for take in "ab":
                    for digits in [*DIGITS, "z1o"]:  # ten digits, oh, one digit string
                        label = f"{'man' if k % 2 else 'woman'}-{spk}-{take}-{digits}"
                        n = int(rng.integers(20, 60))
                        t = np.sort(rng.uniform(0, 1.2, n)).astype(np.float32)
                        chan = (DIGITS.index(digits[0]) * 5 + k) % 64
                        addr = np.full(n, chan, dtype=np.uint8)
                        if bad == "address" and label.endswith("a-3") and k == 0:
                            addr[4] = 70
                        if bad == "length" and label.endswith("a-3") and k == 0:
                            addr = addr[:-1]
                        f.create_dataset(f"{split}_timestamps/{label}", data=t)
                        f.create_dataset(f"{split}_addresses/{label}", data=addr)
                        labels.append(label.encode())
                        truth[(split, label)] = (t, addr)
            f.create_dataset(f"{split}_labels", data=np.array(labels))
    return truth


@pytest.fixture(scope="module")
def ntfile(tmp_path_factory):
    path = tmp_path_factory.mktemp("nt") / "n-tidigits.hdf5"
    train_speakers = [f"s{i:02d}" for i in range(10)]
    truth = _write(path, {"train": train_speakers, "test": ["t1", "t2", "t3"]})
    return path, truth


def test_layout_and_labels(ntfile):
    path, _ = ntfile
    labels = read_ntidigits_labels(path, "test")
    assert len(labels) == 3 * 2 * 12 and labels[0] == "woman-t1-a-z"
    assert parse_label("man-ae-b-z1o") == ("man", "ae", "b", "z1o")
    with pytest.raises(ConfigError, match="not '<gender>-<speaker>-<take>-<digits>'"):
        parse_label("man-ae-x")


def test_splits_by_speaker_with_correct_events(ntfile):
    path, truth = ntfile
    tr = load_ntidigits(path, "train", seed=1)
    va = load_ntidigits(path, "val", seed=1)
    te = load_ntidigits(path, "test", seed=1)
    # 11 single-digit classes x 2 takes per speaker; the digit string is left out.
    assert (len(tr), len(va), len(te)) == (8 * 22, 2 * 22, 3 * 22)
    assert not set(tr.metadata["speakers"]) & set(va.metadata["speakers"])
    assert tr.n_classes == 11 and tr.sensor_size == NTIDIGITS_SENSOR_SIZE
    np.testing.assert_array_equal(np.bincount(te.labels, minlength=11), np.full(11, 6))
    for ds, source in ((tr, "train"), (te, "test")):
        for ev, label, name in zip(ds.events, ds.labels, ds.metadata["labels"]):
            t, addr = truth[(source, name)]
            assert ev.dtype == AUDIO_EVENT_DTYPE and np.all(ev["p"] == 0)
            np.testing.assert_array_equal(ev["t"], np.round(t.astype(np.float64) * 1e6))
            np.testing.assert_array_equal(ev["x"], addr)
            assert label == "z123456789o".index(name.split("-")[3])
    # Seeded: the same seed gives the same split, another seed another one.
    again = load_ntidigits(path, "val", seed=1)
    assert again.metadata["labels"] == va.metadata["labels"]
    other = load_ntidigits(path, "val", seed=2)
    assert set(other.metadata["speakers"]) != set(va.metadata["speakers"])
    ten = load_ntidigits(path, "test", include_oh=False, n_samples=20)
    assert ten.n_classes == 10 and len(ten) == 20 and ten.labels.max() < 10
    np.testing.assert_array_equal(np.bincount(ten.labels, minlength=10), np.full(10, 2))


def test_truncated_and_foreign_files(ntfile, tmp_path):
    path, _ = ntfile
    data = path.read_bytes()
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match=rf"cut\.hdf5: the HDF5 file is truncated: it is "
                                          rf"{len(data) // 2} bytes but its superblock records "
                                          rf"{len(data)}; everything from byte offset "
                                          rf"{len(data) // 2} on is missing"):
        load_ntidigits(cut, "train")
    zipped = tmp_path / "n-tidigits.hdf5.zip"
    zipped.write_bytes(b"PK\x03\x04" + data[:100])
    with pytest.raises(ConfigError, match=r"n-tidigits\.hdf5\.zip: not an HDF5 file .*Unzip"):
        load_ntidigits(zipped, "test")
    with pytest.raises(ConfigError, match="does not exist"):
        load_ntidigits(tmp_path / "missing.hdf5", "test")


def test_corrupt_dataset_names_file_dataset_and_offset(tmp_path):
    path = tmp_path / "broken.hdf5"
    label = "man-ae-a-3"
    with h5py.File(path, "w") as f:
        f.create_dataset("test_labels", data=np.array([label.encode()]))
        f.create_dataset(f"test_timestamps/{label}", data=np.linspace(0, 1, 5000),
                         compression="gzip", chunks=(5000,))
        f.create_dataset(f"test_addresses/{label}", data=np.zeros(5000, dtype=np.uint8))
    with h5py.File(path, "r") as f:
        chunk = f[f"test_timestamps/{label}"].id.get_chunk_info(0)
    with open(path, "r+b") as fh:  # garbage in the compressed chunk
        fh.seek(chunk.byte_offset + 10)
        fh.write(b"\x00garbage" * 20)
    with pytest.raises(ConfigError, match=rf"broken\.hdf5: the dataset 'test_timestamps/{label}' "
                                          rf"\(in 1 chunks, the first at byte offset "
                                          rf"{chunk.byte_offset}\) is unreadable.*corrupt"):
        load_ntidigits(path, "test")


def test_inconsistent_recordings_and_layout(tmp_path):
    bad = tmp_path / "bad_address.hdf5"
    _write(bad, {"test": ["t1"]}, bad="address")
    with pytest.raises(ConfigError, match=r"'test_addresses/woman-t1-a-3' event 4 has channel "
                                          r"70, outside the integers 0\.\.63"):
        load_ntidigits(bad, "test")
    short = tmp_path / "bad_length.hdf5"
    _write(short, {"test": ["t1"]}, bad="length")
    with pytest.raises(ConfigError, match=r"holds \d+ times but 'test_addresses/woman-t1-a-3'"):
        load_ntidigits(short, "test")
    other = tmp_path / "other.hdf5"
    with h5py.File(other, "w") as f:
        f.create_dataset("data", data=np.zeros(3))
    with pytest.raises(ConfigError, match=r"no 'train_labels' in the file.*found \['data'\]"):
        load_ntidigits(other, "train")
    with pytest.raises(ConfigError, match="val_fraction"):
        load_ntidigits(other, "val", val_fraction=0.0)
