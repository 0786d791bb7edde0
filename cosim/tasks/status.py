"""Status lines on the console for a task's long steps, and its warnings.

A step that runs for more than a few seconds without a progress bar of its own (simulating
events, calibrating the surrogate, binding a map) announces itself and says how long it took,
so a run is never silent for a minute. Lines go to standard error through tqdm, so they do not
break a progress bar that is drawing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from tqdm.auto import tqdm

__all__ = ["Status"]


@dataclass
class Status:
    """Console status of one run: ``step`` lines when ``enabled``, warnings always.

    ``warnings`` collects every warning given, for the run's report.
    """

    task: str
    enabled: bool = True
    stream: TextIO | None = None  # None: standard error at the time of writing
    warnings: list[str] = field(default_factory=list)

    def _write(self, text: str) -> None:
        tqdm.write(f"[{self.task}] {text}", file=self.stream or sys.stderr)

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Announce ``what`` before it runs and its duration after."""
        t0 = time.perf_counter()
        if self.enabled:
            self._write(f"{what} ...")
        yield
        if self.enabled:
            self._write(f"{what}: done in {time.perf_counter() - t0:.1f} s")

    def note(self, text: str) -> None:
        """A line of information (shown when enabled)."""
        if self.enabled:
            self._write(text)

    def warn(self, text: str) -> None:
        """A warning: printed whether or not status lines are enabled, and kept."""
        if text not in self.warnings:
            self.warnings.append(text)
            self._write(f"warning: {text}")
