"""Files: atomic writes and the cache folder.

Atomic writes go to a temporary file in the same folder, then rename it onto the target: a
reader never sees a partial file, and an interrupted run leaves the previous version intact.
Every file the framework writes for later reading (run folders, caches, parameter files) goes
through :func:`atomic_write` or one of its variants.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import ConfigError, OutputError

__all__ = ["CACHE_ENV", "atomic_save_npy", "atomic_write", "atomic_write_bytes",
           "atomic_write_stream", "atomic_write_text", "cache_root", "load_npy", "probe_writable",
           "writable_cache"]

#: Environment variable that moves the cache folder (:func:`cache_root`).
CACHE_ENV = "RRAM_COSIM_CACHE"


def cache_root() -> Path:
    """The framework's cache folder: ``$RRAM_COSIM_CACHE`` or ``~/.cache/rram-cosim``.

    SPICE results live in its ``spice/`` subfolder, ngspice run folders in ``runs/``, sweep
    surrogates and decks in ``sweep/``, embedded datasets in ``data/`` (directly in
    ``$RRAM_COSIM_CACHE`` when that is set).

    A cache only saves time: when the folder cannot be written (read-only, a path under a
    file, no home folder), a folder under the system's temporary folder is used instead, with
    one :class:`RuntimeWarning` per process (:func:`writable_cache`).
    """
    env = os.environ.get(CACHE_ENV)
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "rram-cosim"
    return writable_cache(root, f"The cache folder (${CACHE_ENV})" if env
                          else "The cache folder")


_fallbacks: dict[str, Path] = {}


def probe_writable(folder: Path) -> None:
    """Make ``folder`` if missing and create and remove a file in it; OSError when either
    fails (permissions, a read-only or full disk, a file in the way)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
    os.close(fd)
    os.unlink(probe)


def writable_cache(folder: str | Path, what: str = "The cache folder") -> Path:
    """``folder`` if files can be created in it (it is made if missing), else a fallback
    under the temporary folder, with a warning naming ``folder`` and the reason (once per
    folder and process)."""
    folder = Path(folder)
    key = str(folder)
    if key in _fallbacks:
        return _fallbacks[key]
    try:
        probe_writable(folder)
        return folder
    except OSError as e:
        why = e.strerror or str(e)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    fallback = Path(tempfile.gettempdir()) / f"rram-cosim-cache-{os.getuid()}" / digest
    fallback.mkdir(parents=True, exist_ok=True)
    _fallbacks[key] = fallback
    warnings.warn(f"{what} {folder} cannot be written ({why}); caching in {fallback} "
                  "instead for this run.", RuntimeWarning, stacklevel=3)
    return fallback


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The process's umask, read once at import (reading it means setting it, which is not
#: thread-safe): files written here get ``0o666 & ~umask``, like files opened with ``open``.
_UMASK = _umask()


def _atomic(path: str | Path, fill: Callable[[int, Path], None]) -> Path:
    """Create a temporary file next to ``path``, ``fill(fd, tmp_path)`` it (``fill`` closes
    ``fd``), rename it onto ``path``; on any error remove it and re-raise (a file-system error
    as :class:`~rram_cosim.models.errors.OutputError` naming ``path``)."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600: follow the umask instead
        fill(fd, Path(tmp))
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, OutputError):
            raise OutputError.of(path, e) from e
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


def load_npy(path: str | Path, what: str) -> Any:
    """The array in a ``.npy`` file, or one :class:`~rram_cosim.models.errors.ConfigError`
    naming ``what`` (the option or role of the file) and the file: missing, empty (0 bytes),
    truncated, or not written by ``numpy.save`` (pickled objects are refused)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {path} does not exist (or is not a file).")
    if p.stat().st_size == 0:
        raise ConfigError(f"{what} {path} is empty (0 bytes): the file was not written "
                          "completely. Write it again with numpy.save.")
    try:
        return np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ConfigError(f"Cannot read {what} {path}: {e}. Give a .npy array written by "
                          "numpy.save.") from e
