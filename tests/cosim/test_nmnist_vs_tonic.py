"""The N-MNIST reader against tonic's on the same bytes (tonic is a test-only dependency).

tonic's package ``__init__`` imports its whole dataset zoo (rosbag readers, librosa...), so
set-up installs it without dependencies and this test loads only its ``io`` module, which
needs nothing but numpy.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from rram_cosim.cosim.data.nmnist import OVERFLOW_Y, decode_nmnist


def _tonic_io():
    spec = importlib.util.find_spec("tonic")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tonic is not installed (scripts/setup.sh installs it for the tests)")
    path = Path(next(iter(spec.submodule_search_locations))) / "io.py"
    mod_spec = importlib.util.spec_from_file_location("_tonic_io", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


def _random_file(rng: np.random.Generator, n: int, n_overflow: int) -> bytes:
    t = np.sort(rng.integers(0, 2**23, n))
    rec = np.stack([rng.integers(0, 34, n), rng.integers(0, 34, n),
                    (rng.integers(0, 2, n) << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF,
                    t & 0xFF], axis=1)
    # overflow markers (y = 240) somewhere in the stream; timestamps after them wrap, as the
    # sensor's 23-bit counter does
    at = np.sort(rng.choice(np.arange(1, n), n_overflow, replace=False))
    marker = np.array([[0, OVERFLOW_Y, 0, 0, 0]])
    rec = np.insert(rec, at, marker, axis=0)
    return rec.astype(np.uint8).tobytes()


@pytest.mark.parametrize("n_overflow", [0, 3])
def test_same_events_as_tonic(tmp_path, n_overflow):
    tio = _tonic_io()
    rng = np.random.default_rng(n_overflow)
    data = _random_file(rng, 500, n_overflow)
    f = tmp_path / "sample.bin"
    f.write_bytes(data)
    ref = tio.read_mnist_file(str(f), dtype=np.dtype([("x", int), ("y", int), ("t", int),
                                                      ("p", int)]))
    # tonic keeps file order; with overflow markers the wrapped timestamps still increase
    ours = decode_nmnist(data, check_order=False)
    assert ours.size == ref.size == 500
    for k in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(ours[k].astype(np.int64), ref[k].astype(np.int64), k)
