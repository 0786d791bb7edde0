"""One exception hierarchy for the whole framework.

Every error raised on purpose derives from :class:`CosimError`; leaves also subclass the
built-in they resemble, so ``except ValueError`` keeps working for callers who do not know
this package. Simulation failures (ngspice) live in :mod:`rram_cosim.cosim.spice.errors` and derive
from the same root.
"""

from __future__ import annotations

from typing import Any


class CosimError(Exception):
    """Root of every error this package raises on purpose.

    Errors cross process boundaries intact (a pool worker's error is raised in the parent as
    the same class, message and attributes): pickling rebuilds them without calling
    ``__init__`` (which may take keyword-only arguments), then restores ``args`` and the
    instance attributes.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args, dict(self.__dict__)))


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
    exc.__dict__.update(state)
    return exc


class ConfigError(CosimError, ValueError):
    """A parameter or input is outside its valid range, or of the wrong shape or type."""


class NotFittedError(CosimError, RuntimeError):
    """A model was used before ``fit`` (or a backend before ``bind``)."""


class DomainWarning(UserWarning):
    """A model is asked for a prediction outside the domain it was calibrated on."""
