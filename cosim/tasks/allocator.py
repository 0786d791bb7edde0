"""glibc allocator settings of a sweep's worker processes.

A Dask nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes
glibc's mmap threshold at 128 KiB: every array above it (a 456-row map's vectors and matrices)
is then a fresh ``mmap``, zero-filled page by page, and freed back at once. A nodal
calibration solve measured 3x slower so (10.4 s against 3.5 s for the same 3 vectors of the
456x201 macro, in one process with and without the variable; 11.0 s on a Dask worker). A
``LocalCluster`` also leaves the variable in the environment of the process that started it,
so processes started from there later (a local pool's workers, a sweep computing its units
itself, ngspice) inherit it. :func:`relax_malloc_trim` sets the thresholds to values under
which large arrays are reused from the heap (3.4 s with the variable set) and removes the
variable from the environment, so that programs this process starts do not inherit it. A
value other than Dask's own default is the user's choice and is left alone.

A Dask worker runs its tasks in a thread, and glibc gives a thread that first allocates an
arena of its own while there are fewer arenas than its limit. A reservoir run (many arrays of
about a megabyte) measured 1.19x the CPU time on a Dask worker of what it took in a pool
process's main thread at the same time, and 1.07x once the worker's plugin had called
:func:`one_arena` (one measurement of three runs each, on 2 shared cores). Set at run time,
the limit stops glibc from making new arenas; a thread that allocates afterwards shares an
existing one (a free one first, else the next in turn from the main arena), which arena
depends on the threads started before it.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["DASK_TRIM_THRESHOLD", "MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES", "keep_heap",
           "one_arena", "relax_malloc_trim"]

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


def keep_heap() -> bool:
    """Fix glibc's thresholds at :data:`MMAP_THRESHOLD_BYTES` and :data:`TRIM_THRESHOLD_BYTES`
    (True when set): arrays up to 32 MiB come from the heap, and its free top is kept instead
    of going back to the system after every large temporary, as in a long-running process
    whose heap stays busy."""
    return _mallopt((_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
                    (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


def relax_malloc_trim() -> bool:
    """Undo Dask's ``MALLOC_TRIM_THRESHOLD_`` in this process (glibc only) and drop it from
    the environment its children inherit; True when it did."""
    if os.environ.get("MALLOC_TRIM_THRESHOLD_") != DASK_TRIM_THRESHOLD:
        return False
    done = keep_heap()
    if done:
        del os.environ["MALLOC_TRIM_THRESHOLD_"]
    return done


def one_arena() -> bool:
    """Stop glibc from making new arenas in this process: threads that allocate for the first
    time from now on share the existing ones (True when set)."""
    return _mallopt((_M_ARENA_MAX, 1))
