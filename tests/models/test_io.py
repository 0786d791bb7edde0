"""Atomic writes, the cache folder and device parameter files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rram_cosim.cosim.data.datasets import default_cache_dir as data_cache_dir
from rram_cosim.cosim.spice.pool import default_cache_dir as spice_cache_dir
from rram_cosim.models.device.io import load_device_params, save_device_params
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.io import (
    atomic_save_npy,
    atomic_write,
    atomic_write_bytes,
    atomic_write_stream,
    atomic_write_text,
    cache_root,
)
from rram_cosim.models.params import BreakdownParams


def test_atomic_writes_leave_the_target_or_nothing(tmp_path):
    assert atomic_write_text(tmp_path / "a" / "t.txt", "x\n").read_text() == "x\n"
    assert atomic_write_bytes(tmp_path / "b.bin", b"\0\1").read_bytes() == b"\0\1"
    npz = atomic_write_stream(tmp_path / "c.npz", lambda f: np.savez(f, v=np.arange(3)),
                              fsync=True)
    with np.load(npz) as z:
        np.testing.assert_array_equal(z["v"], [0, 1, 2])
    atomic_write(tmp_path / "d.txt", lambda p: p.write_text("old"))
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(np.load(atomic_save_npy(tmp_path / "e.npy", a)), a)

    def fail(p: Path) -> None:
        p.write_text("partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(tmp_path / "d.txt", fail)
    assert (tmp_path / "d.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b.bin", "c.npz", "d.txt",
                                                             "e.npy"]


def test_cache_root_and_its_users(tmp_path, monkeypatch):
    monkeypatch.delenv("RRAM_COSIM_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home = tmp_path / "home" / ".cache" / "rram-cosim"
    assert cache_root() == home
    assert spice_cache_dir() == home / "spice"
    assert data_cache_dir() == home / "data"
    monkeypatch.setenv("RRAM_COSIM_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert spice_cache_dir() == tmp_path / "env" / "spice"
    assert data_cache_dir() == tmp_path / "env"  # datasets sit at the top of the variable's folder


def test_device_param_files_round_trip(tmp_path):
    p = BreakdownParams(v_hold_v=0.42, a_vt_mv_um=4.0)
    path = save_device_params(tmp_path / "dev.json", p, {"note": "test"})
    assert load_device_params(path) == p
    (tmp_path / "bad.json").write_text('{"v_hold": 0.4}')
    with pytest.raises(ConfigError, match="Unknown parameter"):
        load_device_params(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="not a device parameter file"):
        load_device_params(tmp_path / "list.json")
