"""Child processes end with their parent: ngspice runs and pool workers.

ngspice runs in its own process group (so a terminal's Ctrl-C does not reach it half-way
through a raw file); every run this process starts is registered here until it ends, and
whatever ends the run early (its timeout, Ctrl-C, SIGTERM, an error) kills it first. Pool
workers ignore SIGINT (the parent decides what an interrupt stops) and on SIGTERM kill their
own ngspice runs and exit; a parent that stops (an error, Ctrl-C or SIGTERM) stops its workers
with :func:`stop_workers`. A command-line process turns SIGTERM into :class:`Terminated` (a
``KeyboardInterrupt``), so that the same clean-up runs for both
(:func:`raise_on_termination`).

A parent killed with SIGKILL cannot clean up; on Linux its workers still get SIGTERM from the
kernel (``PR_SET_PDEATHSIG``) and take their ngspice runs with them, and on Linux and macOS a
worker's thread sees within :data:`PARENT_POLL_S` that its parent is gone and does the same
(the one-shot signal can be missed).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["Terminated", "child", "kill_children", "raise_on_termination", "stop_workers",
           "worker_signals"]

_live: dict[int, subprocess.Popen] = {}
# reentrant: the SIGTERM handler (kill_children) runs on the main thread, which may be inside
# child()'s registration when the signal arrives
_live_lock = threading.RLock()
# set once this worker is ending because its parent is gone: a run registered from then on is
# killed at once (the watching thread may already have killed the others)
_orphaned = threading.Event()


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) arrived: raised in the main thread so that clean-up runs."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


def _raise(signum: int, frame: Any) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def raise_on_termination() -> Iterator[None]:
    """While the block runs (in the main thread): SIGTERM and SIGHUP raise
    :class:`Terminated` instead of ending the process at once (children would outlive it).
    The previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGTERM, signal.SIGHUP)
    before = {sig: signal.signal(sig, _raise) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def kill_children() -> None:
    """Kill every ngspice run of this process (its whole process group) and reap it."""
    with _live_lock:
        procs = list(_live.values())
    for proc in procs:
        _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    _killpg(proc)
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)


def _killpg(proc: subprocess.Popen) -> None:
    """SIGKILL the process group we started for ``proc`` (ngspice only), gone or not."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _worker_exit(signum: int, frame: Any) -> None:
    kill_children()
    os._exit(128 + signum)


def worker_signals() -> None:
    """Pool worker initialiser: ignore SIGINT, and on SIGTERM kill this worker's ngspice runs
    and exit (the parent stops its workers with SIGTERM). On Linux the kernel also sends
    SIGTERM when the parent dies without clean-up (SIGKILL), and a thread of the worker checks
    for that death itself: an orphaned worker would otherwise wait forever on a queue whose
    other end it holds itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_exit)
    signal.signal(signal.SIGHUP, _worker_exit)
    _die_with_parent()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if os.getppid() != parent.pid:  # it died before prctl took hold
        _worker_exit(signal.SIGTERM, None)
    # The kernel's signal is one-shot, and a handler can be kept from running (a main thread
    # stuck in C, or inside code that turns SIGTERM into an exception); an orphaned worker
    # then waits forever on a task queue whose other end it holds itself, keeping the
    # parent's stderr and its resource tracker alive. So a thread also checks, twice a second,
    # that the parent is still this worker's parent.
    threading.Thread(target=_watch_parent, args=(parent.pid,), daemon=True,
                     name="rram-cosim-parent-watch").start()


def _watch_parent(parent_pid: int) -> None:
    try:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        _orphaned.set()
        with contextlib.suppress(Exception):
            sys.stderr.write(f"rram-cosim: worker {os.getpid()}: its parent {parent_pid} is "
                             "gone; ending it and its ngspice runs\n")
            sys.stderr.flush()
        # not kill_children(): its lock may be held by a main thread that never lets it go,
        # and its reaping is the main thread's (a dying process needs none)
        for proc in list(_live.values()):
            _killpg(proc)
    finally:
        os._exit(128 + signal.SIGTERM)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
#: Seconds between a worker's checks that its parent is alive (the kernel's signal aside).
PARENT_POLL_S = 0.5


@contextlib.contextmanager
def child(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Register ``proc`` (started with ``start_new_session=True``) while the block runs; if
    the block is left by an exception, kill its process group first."""
    with _live_lock:
        _live[proc.pid] = proc
    if _orphaned.is_set():  # started while this worker's parent-watch was killing the others
        _kill_group(proc)
    try:
        yield proc
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        with _live_lock:
            _live.pop(proc.pid, None)


def stop_workers(processes: Iterable[Any], grace_s: float = 5.0) -> None:
    """SIGTERM each worker process (``multiprocessing.Process``), then SIGKILL those still
    alive after ``grace_s``; their ngspice runs go with them (:func:`worker_signals`)."""
    procs = [p for p in processes if p.is_alive()]
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            with contextlib.suppress(Exception):
                p.kill()
                p.join(5.0)
