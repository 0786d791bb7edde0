"""The Dask worker plugin of a sweep: every worker's BLAS pools pinned before it runs a unit.

A Dask worker otherwise lets OpenBLAS start one thread per core, so sixteen single-threaded
workers on sixteen cores would run up to 256 BLAS threads; the local pool pins its workers in
their initializer, and this plugin does the same on a cluster (also for workers that join
later). Imported only when a sweep runs on Dask.
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ...models.blas import pin_blas_threads

__all__ = ["BlasThreads"]


class BlasThreads(WorkerPlugin):
    """Pins the worker process's BLAS (and OpenMP) pools to ``n`` threads."""

    name = "rram-cosim-blas-threads"

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def setup(self, worker: Any) -> None:
        pin_blas_threads(self.n)
