"""The sweep as a task graph on a local process pool, a Dask cluster, or this process.

Per point: a *prepare* task (the point's spec, conductance domain and surrogate key; the
surrogate's text when the cache holds it, else the calibration's plan), then one *solve* task
per chunk of calibration vectors (:mod:`~rram_cosim.cosim.tasks.sweep_calibration`), a *fit*
task, and the point's *units* (chip x seed), which need the fitted surrogate. Points whose
prepare tasks give the same key share one calibration.

The coordinator keeps at most as many tasks in flight as the executor has workers and hands the
next one out as soon as a worker frees, most urgent first: fits (each unlocks a point's units),
then prepares, then solves, then units. So no worker ever waits on another one's calibration
while a task is ready, a point's solves spread over all workers, and the critical path of a
sweep is one prepare, the slowest solve of a calibration, one fit and one unit, not a whole
calibration run in series inside a unit.

Each unit's row records the path it ended: ``critical_path_s`` (its point's prepare, the
slowest solve and the fit of its surrogate, and its own ``wall_s``), and the first unit of a
point to finish carries its point's task time in ``calibration_s`` (``surrogate_calibrated``
when that included a calibration). Summed, they are the sweep's total work.
"""

from __future__ import annotations

import concurrent.futures as cf
import heapq
import itertools
import json
import multiprocessing
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from ...models.blas import pin_blas_threads, using_blas_threads
from ...models.errors import ConfigError
from ..spice.processes import stop_workers, worker_signals
from .allocator import relax_malloc_trim
from .sweep_calibration import solve_chunk

__all__ = ["DASK_CONNECT_TIMEOUT_S", "Executor", "dask_executor", "local_executor",
           "run_graph"]

#: Seconds to wait for a Dask scheduler before the sweep gives up with an error.
DASK_CONNECT_TIMEOUT_S = 30

# order in which ready tasks are handed out (lower first): a fit unlocks a point's units, a
# prepare its solves
_FIT, _PREPARE, _SOLVE, _UNIT = range(4)


# -- executors -------------------------------------------------------------------------------
class Executor:
    """Where tasks run: ``submit`` a function, ``wait`` for the first of some futures."""

    name = "this process"
    #: A worker's death loses every task in flight, not only its own (a process pool): the
    #: coordinator then cannot tell which task killed it.
    shared_fate = False

    def submit(self, fn: Callable[..., Any], *args: Any, key: str = "") -> Any:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args))
        except Exception as e:  # noqa: BLE001 - handed to the coordinator like a worker's
            fut.set_exception(e)
        return fut

    def wait(self, futures: list[Any]) -> set[Any]:
        return cf.wait(futures, return_when=cf.FIRST_COMPLETED).done

    def capacity(self) -> int:
        return 1

    def lost(self, err: BaseException) -> bool:
        """True when ``err`` says the task was lost with its worker (not the task's own
        error): the coordinator then runs it again."""
        return False

    def close(self, interrupted: bool) -> None:
        pass


class _Serial(Executor):
    """Tasks run in this process when submitted, under the sweep's BLAS thread count."""

    name = "this process, 1 worker"

    def __init__(self, blas_threads: int) -> None:
        self._blas = using_blas_threads(blas_threads)
        self._blas.__enter__()
        relax_malloc_trim()  # this process may have inherited Dask's setting, as pool workers

    def close(self, interrupted: bool) -> None:
        self._blas.__exit__(None, None, None)


def _init_local_worker(blas_threads: int = 1) -> None:
    # one BLAS thread per worker process by default: N workers on N cores, no oversubscription
    pin_blas_threads(blas_threads)
    relax_malloc_trim()  # a LocalCluster started in the coordinator leaves Dask's setting
    worker_signals()  # SIGTERM from the coordinator also stops this worker's ngspice runs


class _Pool(Executor):
    shared_fate = True  # a dead worker breaks the pool

    def __init__(self, workers: int, blas_threads: int) -> None:
        self.workers, self._blas = workers, blas_threads
        self.name = f"local pool, {workers} worker(s)"
        self._pool = self._start()

    def _start(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_local_worker, initargs=(self._blas,))

    def submit(self, fn: Callable[..., Any], *args: Any, key: str = "") -> Any:
        try:
            return self._pool.submit(fn, *args)
        except BrokenProcessPool:
            # a worker died (killed, out of memory): the pool is unusable, start another;
            # the tasks it had are lost and the coordinator submits them again (lost())
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            return self._pool.submit(fn, *args)

    def lost(self, err: BaseException) -> bool:
        return isinstance(err, BrokenProcessPool)

    def capacity(self) -> int:
        return self.workers

    def close(self, interrupted: bool) -> None:
        if interrupted:
            # the tasks in flight are lost anyway: stop this pool's workers (and their ngspice
            # runs) now rather than wait for them
            stop_workers(list(getattr(self._pool, "_processes", {}).values()))
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Dask(Executor):
    def __init__(self, address: str, blas_threads: int) -> None:
        from dask.distributed import Client

        try:
            self._client = Client(address, timeout=f"{DASK_CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError) as e:
            raise ConfigError(
                f"Cannot reach the Dask scheduler at --scheduler {address} within "
                f"{DASK_CONNECT_TIMEOUT_S} s ({type(e).__name__}: {e}). Start it (dask "
                "scheduler) or check the address; without --scheduler the sweep runs on local "
                "processes.") from None
        from .dask_plugin import BlasThreads

        # every worker, also one that joins later, pins its BLAS pools before it runs a task
        self._client.register_plugin(BlasThreads(blas_threads))
        threaded = {w: n for w, n in self._client.nthreads().items() if n > 1}
        if threaded:
            warnings.warn(
                f"{len(threaded)} Dask worker(s) run several threads (e.g. {next(iter(threaded))}"
                f": {next(iter(threaded.values()))}): units in threads of one process share its "
                "read tallies and warning counts, so those columns may differ from a local "
                "run's, and they compete for one interpreter. Start the workers with "
                "`dask worker ... --nthreads 1`.", RuntimeWarning, stacklevel=3)
        self.name = f"dask {address}"
        self._inflight: set[Any] = set()

    def submit(self, fn: Callable[..., Any], *args: Any, key: str = "") -> Any:
        fut = self._client.submit(fn, *args, pure=False, key=key or None)
        self._inflight.add(fut)
        return fut

    def wait(self, futures: list[Any]) -> set[Any]:
        from dask.distributed import wait

        while True:
            # a cancelled future (a scheduler restart, a lost connection) makes wait() raise:
            # it is done too, and lost() sends its task again
            done = {f for f in futures if f.status in ("finished", "error", "cancelled")}
            if done:
                self._inflight -= done  # the cluster may forget their results
                return done
            try:
                wait(futures, return_when="FIRST_COMPLETED")
            except Exception:  # noqa: BLE001 - FuturesCancelledError and kin: see above
                time.sleep(0.05)  # never a busy loop, whatever wait() raises

    def lost(self, err: BaseException) -> bool:
        # a KilledWorker is final: the scheduler has already retried that task
        return isinstance(err, cf.CancelledError)

    def capacity(self) -> int:
        # workers that join (or leave) during the sweep change it
        return max(1, sum(self._client.nthreads().values()))

    def close(self, interrupted: bool) -> None:
        if interrupted:
            self._client.cancel(list(self._inflight))
        self._client.close()


def local_executor(workers: int, blas_threads: int = 1) -> Executor:
    """This process for one worker, else a pool of ``workers`` spawned processes."""
    return _Serial(blas_threads) if workers == 1 else _Pool(workers, blas_threads)


def dask_executor(address: str, blas_threads: int = 1) -> Executor:
    """A client of the Dask scheduler at ``address`` (ConfigError when unreachable)."""
    return _Dask(address, blas_threads)


# -- the graph -------------------------------------------------------------------------------
#: Tries a task lost with its worker (not failed by its own error) is charged before it fails
#: (runs lost together with others in a broken pool are not charged: ``run_graph``).
MAX_TRIES = 3


@dataclass
class _Calibration:
    """What the coordinator knows of one surrogate key."""

    domain: tuple[float, ...]
    text: str | None = None  # the fitted surrogate
    plan: Any = None
    solves: list[Any] = field(default_factory=list)
    left: int = 0
    error: BaseException | None = None
    start_s: float = 0.0  # the set-up task that planned it
    work_s: float = 0.0  # solves and fit (the plan is part of the set-up task)
    path_s: float = 0.0  # slowest solve + fit
    fresh: bool = False  # calibrated in this run
    charged: bool = False  # its work already in a row
    units: list[tuple[Any, str]] = field(default_factory=list)  # waiting (unit, point id)


def _point_id(unit: Any) -> str:
    return json.dumps(unit.point, sort_keys=True)


def _error_text(err: BaseException, stage: str) -> str:
    first = str(err).splitlines()[0] if str(err) else ""
    return f"{stage}{type(err).__name__}: {first}"


def run_graph(todo: list[Any], cache: str, ex: Executor, *,
              prepare: Callable[..., dict[str, Any]], solve: Callable[..., Any] = solve_chunk,
              fit: Callable[..., dict[str, Any]], unit: Callable[..., dict[str, Any]],
              failed: Callable[[Any, str, str], dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Run ``todo`` (units with ``point``, ``key``, ``chip``, ``seed`` and ``index``) as the
    task graph on ``ex``; yield each unit's row as it finishes. The caller closes ``ex``.

    ``prepare(unit, cache)``, ``solve(spec, g_pos_us, g_neg_us, x)`` (one chunk of the plan:
    a result with ``wall_s``), ``fit(plan, solves, cache)`` and ``unit(unit, cache,
    calibrated)`` are the point's tasks (module-level functions: they travel to workers);
    ``failed(unit, error, traceback)`` makes the row of a unit that its point's set-up or
    calibration took with it. Ready units go out by chip, seed and grid position, so the
    first chip and seed of every fitted point come first.

    A task lost with its worker runs again until it has been charged :data:`MAX_TRIES` tries.
    Where one worker's death loses every task in flight (``ex.shared_fate``), tasks lost
    together are not charged a try: they run again one at a time, each alone on the executor,
    and a task lost alone is charged and tried again alone; so a task that kills its worker
    is charged its own tries, and its neighbours lose at most the one run they shared with it.
    """
    points: dict[str, list[Any]] = {}
    for u in todo:
        points.setdefault(_point_id(u), []).append(u)
    ready: list[tuple[int, tuple, int, tuple]] = []
    order = itertools.count()

    def push(priority: int, job: tuple, rank: tuple = ()) -> None:
        heapq.heappush(ready, (priority, rank, next(order), job))

    for pid, units in points.items():
        push(_PREPARE, ("prepare", pid, units[0]))
    prep_s: dict[str, float] = {}  # point id -> its set-up task's wall time
    charged_points: set[str] = set()
    cals: dict[str, _Calibration] = {}
    inflight: dict[Any, tuple] = {}  # future -> (priority, rank, job, job key)
    tries: dict[str, int] = {}
    # lost together in a broken pool, or lost alone and charged there: each runs again alone
    # (a heap by priority and rank, as ``ready``)
    suspects: list[tuple[int, tuple, int, tuple]] = []
    alone: dict[Any, bool] = {}  # future -> nothing else was in flight during its whole run

    def release(key: str) -> Iterator[dict[str, Any]]:
        """The units waiting on ``key``'s calibration: queued, or failed with it."""
        cal = cals[key]
        waiting, cal.units = cal.units, []
        for u, pid in waiting:
            if cal.error is not None:
                yield failed(u, _error_text(cal.error, "surrogate calibration: "),
                             "".join(traceback.format_exception(cal.error, limit=8)))
            else:
                push(_UNIT, ("unit", pid, u, key), (u.chip, u.seed, u.index))

    def job_args(job: tuple) -> tuple[Callable[..., Any], tuple, str]:
        kind = job[0]
        if kind == "prepare":
            return prepare, (job[2], cache), f"rram-prepare-{job[2].key}"
        if kind == "solve":
            cal, (m, a, b) = cals[job[1]], job[2]
            p = cal.plan
            return (solve, (p.spec, *p.maps[m], p.inputs[m][a:b]),
                    f"rram-solve-{job[1]}-{m}-{a}")
        if kind == "fit":
            cal = cals[job[1]]
            return fit, (cal.plan, cal.solves, cache), f"rram-fit-{job[1]}"
        cal = cals[job[3]]
        calibrated = {"key": job[3], "domain": cal.domain, "surrogate": cal.text}
        return unit, (job[2], cache, calibrated), f"rram-sweep-{job[2].key}"

    def send(priority: int, rank: tuple, job: tuple) -> None:
        fn, args, key = job_args(job)  # the key names the job: its tries count under it
        n = tries.get(key, 1)
        # a resubmitted task gets a key of its own: Dask hands back the lost future for a key
        # it still holds
        fut = ex.submit(fn, *args, key=key if n == 1 else f"{key}-try{n}")
        for other in inflight:
            alone[other] = False
        alone[fut] = not inflight
        inflight[fut] = (priority, rank, job, key)

    while ready or inflight or suspects:
        # a suspect runs alone (a break now is its own), before anything else goes out
        heap, room = (suspects, 1) if suspects else (ready, ex.capacity())
        while heap and len(inflight) < room:
            priority, rank, _, job = heapq.heappop(heap)
            if job[0] == "solve" and cals[job[1]].error is not None:
                continue  # another chunk of this calibration failed: its units are gone
            send(priority, rank, job)
        if not inflight:  # what was ready were solves of a failed calibration
            continue
        for fut in ex.wait(list(inflight)):
            priority, rank, job, key = inflight.pop(fut)
            ran_alone = alone.pop(fut)
            kind = job[0]
            try:
                res = fut.result()
            except Exception as e:  # noqa: BLE001 - a task's failure fails its units
                lost = ex.lost(e)
                # lost with others in one break: not charged, as it may not be the one that
                # killed the worker
                if not (lost and ex.shared_fate and not ran_alone):
                    tries[key] = tries.get(key, 1) + 1
                if lost and tries.get(key, 1) <= MAX_TRIES:
                    if ex.shared_fate:  # after a break, each lost task runs again alone
                        heapq.heappush(suspects, (priority, rank, next(order), job))
                    else:
                        push(priority, job, rank)  # lost with its worker: run it again
                else:
                    yield from _on_failure(job, e, points, cals, release, failed)
                continue
            if kind == "prepare":
                pid = job[1]
                skey, prep_s[pid] = res["key"], res["wall_s"]
                cal = cals.get(skey)
                if cal is None:
                    cal = cals[skey] = _Calibration(domain=tuple(res["domain"]),
                                                   start_s=res["wall_s"])
                    if res["surrogate"] is not None:
                        cal.text = res["surrogate"]
                    else:
                        cal.plan, cal.fresh = res["plan"], True
                        chunks = cal.plan.chunks()
                        cal.solves, cal.left = [None] * len(chunks), len(chunks)
                        for i, c in enumerate(chunks):
                            push(_SOLVE, ("solve", skey, c, i))
                cal.units += [(u, pid) for u in points[pid]]
                if cal.text is not None or cal.error is not None:
                    yield from release(skey)
            elif kind == "solve":
                cal = cals[job[1]]
                if cal.error is not None:  # another chunk failed: its units are gone
                    continue
                cal.solves[job[3]] = res
                cal.work_s += res.wall_s
                cal.path_s = max(cal.path_s, res.wall_s)
                cal.left -= 1
                if cal.left == 0:
                    push(_FIT, ("fit", job[1]))
            elif kind == "fit":
                cal = cals[job[1]]
                cal.text, cal.plan, cal.solves = res["surrogate"], None, []
                cal.work_s += res["wall_s"]
                cal.path_s += res["wall_s"]
                yield from release(job[1])
            else:
                pid, cal = job[1], cals[job[3]]
                # the unit starts when its own set-up and its surrogate's fit are done
                res["critical_path_s"] = (max(prep_s.get(pid, 0.0), cal.start_s + cal.path_s)
                                          + float(res.get("wall_s", 0.0)))
                work = 0.0
                if pid not in charged_points:
                    charged_points.add(pid)
                    work += prep_s.get(pid, 0.0)
                res["surrogate_calibrated"] = cal.fresh and not cal.charged
                if res["surrogate_calibrated"]:
                    cal.charged = True
                    work += cal.work_s
                res["calibration_s"] = work
                yield res


def _on_failure(job: tuple, err: BaseException, points: dict[str, list[Any]],
                cals: dict[str, _Calibration], release: Callable[[str], Iterator],
                failed: Callable[[Any, str, str], dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rows for the units a failed task takes with it (its own error, or lost too often)."""
    tb = "".join(traceback.format_exception(err, limit=8))
    kind = job[0]
    if kind == "prepare":
        for u in points[job[1]]:
            yield failed(u, _error_text(err, "point set-up: "), tb)
    elif kind in ("solve", "fit"):
        cal = cals[job[1]]
        if cal.error is None:
            cal.error = err
            yield from release(job[1])
    else:
        yield failed(job[2], _error_text(err, ""), tb)
