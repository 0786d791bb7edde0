"""How many BLAS threads the library's solvers and the sweep's workers use.

One by default: the solvers' BLAS calls are short products and mid-sized factorisations, and
on cores that other processes share a second OpenBLAS thread spins against them (measured:
the surrogate network's factorisation took 7.5 s instead of 1.3 s at 456 x 402 sites with two
threads on two busy cores; the nodal solve 0.05-0.27 s instead of 0.03 s per 128 x 128
vector). A workstation running one process on many idle cores may do better with more: set
``RRAM_COSIM_BLAS_THREADS`` (or ``sweep --blas-threads``, which also sets every worker).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from .errors import ConfigError

__all__ = ["BLAS_THREADS_ENV", "DEFAULT_BLAS_THREADS", "blas_limit", "blas_threads",
           "pin_blas_threads", "using_blas_threads"]

BLAS_THREADS_ENV = "RRAM_COSIM_BLAS_THREADS"
DEFAULT_BLAS_THREADS = 1  # see the module docstring for the measurement
_MAX = 1024


def blas_threads() -> int:
    """BLAS threads for the library's solvers: ``$RRAM_COSIM_BLAS_THREADS`` or 1."""
    raw = os.environ.get(BLAS_THREADS_ENV, "").strip()
    if not raw:
        return DEFAULT_BLAS_THREADS
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if not 1 <= n <= _MAX:
        raise ConfigError(f"{BLAS_THREADS_ENV}={raw!r} is not a thread count in [1, {_MAX}]. "
                          f"Set it to a whole number such as 1 (the default) or unset it.")
    return n


def _checked(n: int) -> int:
    n = int(n)
    if not 1 <= n <= _MAX:
        raise ConfigError(f"blas threads={n} is not in [1, {_MAX}]; use 1 on shared cores.")
    return n


@contextlib.contextmanager
def blas_limit() -> Iterator[None]:
    """Run the enclosed BLAS calls on :func:`blas_threads` threads."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads(), user_api="blas"):
        yield


def pin_blas_threads(n: int | None = None) -> None:
    """Limit this whole process's BLAS (and OpenMP) pools to ``n`` threads (default
    :func:`blas_threads`) and export the setting, so library calls in it agree: what a sweep
    worker does once when it starts."""
    from threadpoolctl import threadpool_limits

    n = blas_threads() if n is None else _checked(n)
    os.environ[BLAS_THREADS_ENV] = str(n)
    threadpool_limits(limits=n)


@contextlib.contextmanager
def using_blas_threads(n: int) -> Iterator[None]:
    """Within the block, this process's BLAS pools and the library's solvers use ``n``
    threads; the setting before is restored after."""
    from threadpoolctl import threadpool_limits

    n = _checked(n)
    before = os.environ.get(BLAS_THREADS_ENV)
    os.environ[BLAS_THREADS_ENV] = str(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        if before is None:
            os.environ.pop(BLAS_THREADS_ENV, None)
        else:
            os.environ[BLAS_THREADS_ENV] = before
