"""One exception hierarchy for the whole framework.

Every error raised on purpose derives from :class:`CosimError`; leaves also subclass the
built-in they resemble, so ``except ValueError`` keeps working for callers who do not know
this package. Simulation failures (ngspice) live in :mod:`rram_cosim.cosim.spice.errors` and derive
from the same root.
"""

from __future__ import annotations


class CosimError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(CosimError, ValueError):
    """A parameter or input is outside its valid range, or of the wrong shape or type."""


class NotFittedError(CosimError, RuntimeError):
    """A model was used before ``fit`` (or a backend before ``bind``)."""


class DomainWarning(UserWarning):
    """A model is asked for a prediction outside the domain it was calibrated on."""
