"""The Dask worker plugin of a sweep: every worker's BLAS pools pinned and glibc's allocator
given back its working thresholds before it runs a task.

A Dask worker otherwise lets OpenBLAS start one thread per core, so sixteen single-threaded
workers on sixteen cores would run up to 256 BLAS threads; the local pool pins its workers in
their initializer, and this plugin does the same on a cluster (also for workers that join
later).

Allocator: a Dask nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also
fixes glibc's mmap threshold at 128 KiB: every array above it (a 456-row map's vectors and
matrices) is then a fresh ``mmap``, zero-filled page by page, and freed back at once. A nodal
calibration solve measured 3x slower so (10.4 s against 3.6 s for the same 3 vectors of the
456x201 macro, in one process with and without the variable; 11.0 s on a Dask worker).
:func:`relax_malloc_trim` sets the thresholds to values under which large arrays are reused
from the heap (3.4 s with the variable set). Imported only when a sweep runs on Dask.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ...models.blas import pin_blas_threads

__all__ = ["BlasThreads", "relax_malloc_trim"]

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Arrays up to this size come from the heap: glibc's own upper bound for its dynamic mmap
#: threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX).
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
#: Free memory at the top of the heap kept before it goes back to the system: twice the above,
#: as glibc's dynamic rule keeps it.
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES


def relax_malloc_trim() -> bool:
    """Undo ``MALLOC_TRIM_THRESHOLD_`` in this process (glibc only); True when it did."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to undo
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


class BlasThreads(WorkerPlugin):
    """Pins the worker process's BLAS (and OpenMP) pools to ``n`` threads and relaxes the
    allocator's trim threshold (:func:`relax_malloc_trim`)."""

    name = "rram-cosim-blas-threads"

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def setup(self, worker: Any) -> None:
        pin_blas_threads(self.n)
        relax_malloc_trim()
