"""One exception hierarchy for the whole framework.

Every error raised on purpose derives from :class:`CosimError`; leaves also subclass the
built-in they resemble, so ``except ValueError`` keeps working for callers who do not know
this package. Simulation failures (ngspice) live in :mod:`rram_cosim.cosim.spice.errors` and derive
from the same root.
"""

from __future__ import annotations

import errno
from typing import Any


class CosimError(Exception):
    """Root of every error this package raises on purpose.

    Errors cross process boundaries intact (a pool worker's error is raised in the parent as
    the same class, message and attributes): pickling rebuilds them without calling
    ``__init__`` (which may take keyword-only arguments), then restores ``args`` and the
    instance attributes.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        state = dict(self.__dict__)
        if isinstance(self, OSError):  # errno, strerror and filename are slots, not __dict__
            state.update(_os_slots={k: getattr(self, k) for k in
                                    ("errno", "strerror", "filename", "filename2")
                                    if getattr(self, k) is not None})
        return (_restore, (type(self), self.args, state))


def _restore(cls: type[BaseException], args: tuple[Any, ...],
             state: dict[str, Any]) -> BaseException:
    """Unpickle a :class:`CosimError`: ``__new__`` of the first built-in base whose instance
    layout fits ``cls`` (an error that is also an ``OSError`` needs ``OSError.__new__``)."""
    exc = None
    for base in cls.__mro__:
        if base.__module__ != "builtins" or base is object:
            continue
        try:
            exc = base.__new__(cls, *args)  # type: ignore[call-overload]
            break
        except TypeError:
            continue
    if exc is None:  # pragma: no cover - every exception class has a built-in base
        raise TypeError(f"cannot rebuild {cls.__name__}")
    exc.args = args
    for k, v in state.pop("_os_slots", {}).items():
        setattr(exc, k, v)
    exc.__dict__.update(state)
    return exc


class ConfigError(CosimError, ValueError):
    """A parameter or input is outside its valid range, or of the wrong shape or type."""


class NotFittedError(CosimError, RuntimeError):
    """A model was used before ``fit`` (or a backend before ``bind``)."""


class OutputError(CosimError, OSError):
    """A file could not be written: the disk is full, the folder is read-only, or a part of
    the path is a file. The message names the path and the reason."""

    @classmethod
    def of(cls, path: object, err: OSError) -> OutputError:
        why = err.strerror or str(err)
        hint = {errno.ENOSPC: " The disk is full: free space or write elsewhere.",
                errno.EDQUOT: " The disk quota is exhausted: free space or write elsewhere.",
                errno.EFBIG: " The file exceeds the size this process may write.",
                errno.EROFS: " The file system is read-only: write elsewhere.",
                errno.EACCES: " No permission: write elsewhere.",
                errno.ENOTDIR: " A part of the path is a file, not a folder.",
                errno.EISDIR: " It is a folder: name a file."}.get(err.errno or 0, "")
        out = cls(f"Cannot write {path}: {why}.{hint}")
        out.errno = err.errno
        return out


class DomainWarning(UserWarning):
    """A model is asked for a prediction outside the domain it was calibrated on."""


class AccuracyWarning(UserWarning):
    """A model is used although its measured error misses the accuracy bars (a surrogate
    calibrated with ``--accept-error``)."""
