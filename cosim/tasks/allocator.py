"""glibc allocator settings of a sweep's worker processes.

A Dask nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes
glibc's mmap threshold at 128 KiB: every array above it (a 456-row map's vectors and matrices)
is then a fresh ``mmap``, zero-filled page by page, and freed back at once. A nodal
calibration solve measured 3x slower so (10.4 s against 3.6 s for the same 3 vectors of the
456x201 macro, in one process with and without the variable; 11.0 s on a Dask worker). A
``LocalCluster`` also leaves the variable in the environment of the process that started it,
so processes started from there later (a local pool's workers) inherit it.
:func:`relax_malloc_trim` sets the thresholds to values under which large arrays are reused
from the heap (3.4 s with the variable set). A value other than Dask's own default is the
user's choice and is left alone.

A Dask worker runs its tasks in a thread, and glibc gives each thread an arena of its own;
with the thresholds above, a reservoir run (many arrays of about a megabyte) measured 1.19x
the CPU time of the same run in a pool process's main thread, started at the same time
(1.07x with :func:`one_arena`, which a one-thread worker's plugin sets).
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["DASK_TRIM_THRESHOLD", "MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES", "one_arena",
           "relax_malloc_trim"]

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
#: Arrays up to this size come from the heap: glibc's own upper bound for its dynamic mmap
#: threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX).
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
#: Free memory at the top of the heap kept before it goes back to the system: twice the above,
#: as glibc's dynamic rule keeps it.
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES
#: The value a Dask nanny gives ``MALLOC_TRIM_THRESHOLD_`` (distributed's
#: ``distributed.nanny.pre-spawn-environ`` default).
DASK_TRIM_THRESHOLD = "65536"


def _mallopt(*settings: tuple[int, int]) -> bool:
    """glibc's mallopt for each (parameter, value); False where there is no glibc."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return all(bool(mallopt(p, v)) for p, v in settings)


def relax_malloc_trim() -> bool:
    """Undo Dask's ``MALLOC_TRIM_THRESHOLD_`` in this process (glibc only); True when it did."""
    if os.environ.get("MALLOC_TRIM_THRESHOLD_") != DASK_TRIM_THRESHOLD:
        return False
    return _mallopt((_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
                    (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


def one_arena() -> bool:
    """Let threads that allocate for the first time from now on use glibc's main arena (True
    when set)."""
    return _mallopt((_M_ARENA_MAX, 1))
