"""Files: atomic writes and the cache folder.

Atomic writes go to a temporary file in the same folder, then rename it onto the target: a
reader never sees a partial file, and an interrupted run leaves the previous version intact.
Every file the framework writes for later reading (run folders, caches, parameter files) goes
through :func:`atomic_write` or one of its variants.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["CACHE_ENV", "atomic_save_npy", "atomic_write", "atomic_write_bytes",
           "atomic_write_stream", "atomic_write_text", "cache_root"]

#: Environment variable that moves the cache folder (:func:`cache_root`).
CACHE_ENV = "RRAM_COSIM_CACHE"


def cache_root() -> Path:
    """The framework's cache folder: ``$RRAM_COSIM_CACHE`` or ``~/.cache/rram-cosim``.

    SPICE results live in its ``spice/`` subfolder, ngspice run folders in ``runs/``, sweep
    surrogates and decks in ``sweep/``, embedded datasets in ``data/`` (directly in
    ``$RRAM_COSIM_CACHE`` when that is set).
    """
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rram-cosim"


def _atomic(path: str | Path, fill: Callable[[int, Path], None]) -> Path:
    """Create a temporary file next to ``path``, ``fill(fd, tmp_path)`` it (``fill`` closes
    ``fd``), rename it onto ``path``; on any error remove it and re-raise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        fill(fd, Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path``."""

    def fill(fd: int, tmp: Path) -> None:
        os.close(fd)
        write(tmp)

    return _atomic(path, fill)


def atomic_write_stream(path: str | Path, write: Callable[[BinaryIO], None], *,
                        fsync: bool = False) -> Path:
    """Call ``write(f)`` on a binary file object and rename the result onto ``path``.

    For writers that change a file name they are given (``numpy.savez`` appends ``.npz``).
    ``fsync``: flush the data to disk before the rename (for large caches expensive to
    rebuild).
    """

    def fill(fd: int, tmp: Path) -> None:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())

    return _atomic(path, fill)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write_stream(path, lambda f: f.write(data))


def atomic_save_npy(path: str | Path, a: np.ndarray) -> Path:
    """Write ``a`` to ``path`` as ``.npy`` (no pickled objects), atomically."""
    # a file object: np.save would append .npy to the temporary file's name
    return atomic_write_stream(path, lambda f: np.save(f, np.asarray(a), allow_pickle=False))
