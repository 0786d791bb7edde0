"""Simulation errors. All derive from :class:`rram_cosim.models.errors.CosimError`.

Each carries what a user needs to act: the deck path (kept on failure), the exit code and the
last lines ngspice printed.
"""

from __future__ import annotations

from pathlib import Path

from ...models.errors import CosimError


class SimulationError(CosimError, RuntimeError):
    """ngspice ran but did not give a usable result."""

    def __init__(self, message: str, *, deck_path: Path | str | None = None,
                 returncode: int | None = None, output_tail: str = "") -> None:
        self.deck_path = Path(deck_path) if deck_path is not None else None
        self.returncode = returncode
        self.output_tail = output_tail
        parts = [message]
        if deck_path is not None:
            parts.append(f"deck: {deck_path}")
        if returncode is not None:
            parts.append(f"exit code: {returncode}")
        if output_tail:
            parts.append("last ngspice output:\n" + output_tail)
        super().__init__("\n".join(parts))


class NgspiceNotFoundError(SimulationError, FileNotFoundError):
    """The ngspice executable (or libngspice) is not installed or not on PATH."""


class NgspiceVersionError(SimulationError):
    """The installed ngspice is older than the supported version."""


class DeckParseError(SimulationError):
    """ngspice could not parse the deck (unknown element, model or syntax)."""


class ConvergenceError(SimulationError):
    """Newton iteration failed, also after the retries (gmin, source stepping, tolerances)."""


class SingularMatrixError(SimulationError):
    """Singular matrix: usually a floating node (no DC path to ground)."""


class SimulationTimeoutError(SimulationError, TimeoutError):
    """ngspice did not finish within the run's timeout."""
