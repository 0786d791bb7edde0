"""Shared fixtures of the cosim tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rram_cosim.cosim.data.datasets import load_dataset


def _nmnist_folder(root: Path, n_per_split: int) -> None:
    """A tiny N-MNIST-layout folder (Train/Test/<digit>/*.bin) from digits-events samples."""
    for split, src in (("Train", "train"), ("Test", "test")):
        ds = load_dataset("digits-events", src, seed=0, n_samples=n_per_split)
        for i, (ev, label) in enumerate(zip(ds.events, ds.labels)):
            d = root / split / str(int(label))
            d.mkdir(parents=True, exist_ok=True)
            t = ev["t"].astype(np.int64)
            rec = np.stack([ev["x"] + 7, ev["y"] + 7, (ev["p"].astype(np.int64) << 7)
                            | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF], axis=1)
            (d / f"{i:05d}.bin").write_bytes(rec.astype(np.uint8).tobytes())


@pytest.fixture
def nmnist_folder() -> Callable[[Path, int], None]:
    """Writes a tiny N-MNIST-layout folder: ``nmnist_folder(root, n_per_split)``."""
    return _nmnist_folder
