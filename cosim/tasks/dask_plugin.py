"""The Dask worker plugin of a sweep: every worker's BLAS pools pinned and glibc's allocator
given back its working settings before it runs a task.

A Dask worker otherwise lets OpenBLAS start one thread per core, so sixteen single-threaded
workers on sixteen cores would run up to 256 BLAS threads; the local pool pins its workers in
their initializer, and this plugin does the same on a cluster (also for workers that join
later). The allocator settings, and what they were measured to cost, are in
:mod:`~rram_cosim.cosim.tasks.allocator`. Imported only when a sweep runs on Dask.
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ...models.blas import pin_blas_threads
from .allocator import one_arena, relax_malloc_trim

__all__ = ["BlasThreads"]


class BlasThreads(WorkerPlugin):
    """Pins the worker process's BLAS (and OpenMP) pools to ``n`` threads, relaxes the
    allocator's trim threshold (:func:`~rram_cosim.cosim.tasks.allocator.relax_malloc_trim`)
    and, on a one-thread worker, stops glibc from giving its task thread a new arena
    (:func:`~rram_cosim.cosim.tasks.allocator.one_arena`)."""

    name = "rram-cosim-blas-threads"

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def setup(self, worker: Any) -> None:
        pin_blas_threads(self.n)
        relax_malloc_trim()
        if getattr(worker, "nthreads", 0) == 1:
            one_arena()
