"""The sweep's task graph: dependencies, priorities, bookkeeping and failures on a recording
executor; a calibration cut into tasks equals the one run in a row."""

from __future__ import annotations

import concurrent.futures as cf
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rram_cosim.cosim.engines.calibrate import simulate_with_energy
from rram_cosim.cosim.engines.registry import make_backend
from rram_cosim.cosim.tasks.sweep_calibration import (
    CHUNK_VECTORS,
    calibrate,
    fit_calibration,
    plan_calibration,
    solve_chunk,
)
from rram_cosim.cosim.tasks.sweep_graph import MAX_TRIES, Executor, local_executor, run_graph
from rram_cosim.models.params import ReadScheme, TileSpec


@dataclass(frozen=True)
class _Unit:
    point: dict
    key: str
    chip: int = 0
    seed: int = 0
    index: int = 0


@dataclass(frozen=True)
class _Plan:
    key: str
    n: int
    spec: Any = None

    @property
    def maps(self):
        return [(None, None)]

    @property
    def inputs(self):
        return [np.arange(self.n)]

    def chunks(self):
        return [(0, i, i + 1) for i in range(self.n)]


@dataclass(frozen=True)
class _Solved:
    wall_s: float


class _Recording(Executor):
    """Runs a task only when the coordinator waits, oldest first, and logs every event."""

    def __init__(self, capacity: int) -> None:
        self.cap, self.queue, self.log, self.peak = capacity, [], [], 0

    def submit(self, fn, *args, key=""):
        fut = cf.Future()
        self.queue.append((fut, fn, args, key))
        self.log.append(("submit", key))
        self.peak = max(self.peak, len(self.queue))
        return fut

    def wait(self, futures):
        fut, fn, args, key = self.queue.pop(0)
        try:
            fut.set_result(fn(*args))
        except Exception as e:  # noqa: BLE001
            fut.set_exception(e)
        self.log.append(("done", key))
        return {fut}

    def capacity(self):
        return self.cap


def _prepare(unit, cache):
    key = unit.point.get("shared", f"s{unit.point['p']}")
    return {"key": key, "domain": (1.0, 2.0, 1.5, 0.1), "surrogate": None,
            "plan": _Plan(key, 3), "wall_s": 1.0}


def _solve(spec, gp, gn, x):
    if x[0] == 2 and spec == "bad":
        raise RuntimeError("singular matrix")
    return _Solved(wall_s=2.0 + float(x[0]))  # 2, 3, 4 s


def _fit(plan, solves, cache):
    assert all(s is not None for s in solves)
    return {"key": plan.key, "surrogate": f"text of {plan.key}", "wall_s": 0.5}


def _run_unit(unit, cache, calibrated):
    assert calibrated["surrogate"] == f"text of {calibrated['key']}"
    return {"key": unit.key, "wall_s": 10.0, "status": "ok"}


def _failed(unit, error, tb):
    return {"key": unit.key, "status": "failed", "error": error}


def _units(points: list[dict], per_point: int = 3) -> list[_Unit]:
    return [_Unit(p, f"u{i}{j}", seed=j, index=per_point * i + j)
            for i, p in enumerate(points) for j in range(per_point)]


def _graph(units, ex, **kw):
    tasks = {"prepare": _prepare, "solve": _solve, "fit": _fit, "unit": _run_unit,
             "failed": _failed, **kw}
    return list(run_graph(units, "", ex, **tasks))


def test_units_wait_for_their_fit_and_calibrations_go_first():
    ex = _Recording(capacity=2)
    rows = _graph(_units([{"p": 0}, {"p": 1}]), ex)
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)
    assert ex.peak <= 2  # never more in flight than workers
    kinds = [(ev, key.split("-")[1]) for ev, key in ex.log]
    submits = [k for ev, k in kinds if ev == "submit"]
    # every solve of both points before any unit: no worker idles on a calibration
    assert max(i for i, k in enumerate(submits) if k == "solve") < submits.index("sweep")
    for point in ("s0", "s1"):
        fit_done = ex.log.index(("done", f"rram-fit-{point}"))
        first_unit = min(ex.log.index(("submit", f"rram-sweep-u{point[1]}{j}"))
                         for j in range(3))
        assert fit_done < first_unit
    # bookkeeping: the calibration's work charged once per point, the critical path
    # through each unit (prepare 1 + slowest solve 4 + fit 0.5 + unit 10)
    for p in ("0", "1"):
        mine = [r for r in rows if r["key"].startswith(f"u{p}")]
        assert sorted(r["calibration_s"] for r in mine) == [0.0, 0.0, 1.0 + 9.0 + 0.5]
        assert sum(r["surrogate_calibrated"] for r in mine) == 1
        assert all(r["critical_path_s"] == pytest.approx(15.5) for r in mine)


def test_ready_units_go_out_by_chip_and_seed_across_points():
    ex = _Recording(capacity=1)
    _graph(_units([{"p": 0}, {"p": 1}]), ex)
    order = [k[len("rram-sweep-"):] for ev, k in ex.log
             if ev == "submit" and k.startswith("rram-sweep-")]
    assert order == ["u00", "u10", "u01", "u11", "u02", "u12"]


class _Lost(Exception):
    pass


class _Flaky(_Recording):
    """Loses the first ``n`` submissions of the unit ``victim`` with their worker."""

    def __init__(self, capacity, victim, n):
        super().__init__(capacity)
        self.victim, self.n = victim, n

    def submit(self, fn, *args, key=""):
        if key.startswith(f"rram-sweep-{self.victim}") and self.n > 0:
            self.n -= 1
            fn = _lose
        return super().submit(fn, *args, key=key)

    def lost(self, err):
        return isinstance(err, _Lost)


def _lose(*args):
    raise _Lost("worker died")


def test_a_task_lost_with_its_worker_runs_again_then_fails():
    ex = _Flaky(2, "u01", 2)
    rows = {r["key"]: r for r in _graph(_units([{"p": 0}]), ex)}
    assert all(r["status"] == "ok" for r in rows.values())
    # each try under a key of its own (Dask would hand back the lost future for an old one)
    assert [k for ev, k in ex.log if ev == "submit" and k.startswith("rram-sweep-u01")] == \
        ["rram-sweep-u01", "rram-sweep-u01-try2", "rram-sweep-u01-try3"]
    ex = _Flaky(2, "u01", MAX_TRIES)  # lost every time: recorded, and the sweep goes on
    rows = {r["key"]: r for r in _graph(_units([{"p": 0}]), ex)}
    assert rows["u01"]["status"] == "failed" and "worker died" in rows["u01"]["error"]
    assert rows["u00"]["status"] == rows["u02"]["status"] == "ok"


def _unit_dies_once(unit, cache, calibrated):
    mark = Path(cache) / f"{unit.key}.died"
    if unit.seed == 1 and not mark.exists():
        mark.touch()
        os._exit(1)  # the worker process dies: the pool breaks
    return {"key": unit.key, "wall_s": 1.0, "status": "ok", "pid": os.getpid()}


def test_a_dead_pool_worker_costs_its_tasks_a_rerun_not_the_sweep(tmp_path):
    ex = local_executor(2)
    try:
        rows = list(run_graph(_units([{"p": 0}, {"p": 1}]), str(tmp_path), ex,
                              prepare=_prepare, solve=_solve, fit=_fit, unit=_unit_dies_once,
                              failed=_failed))
    finally:
        ex.close(False)
    assert sorted(r["key"] for r in rows) == sorted(u.key for u in _units([{}, {}]))
    assert all(r["status"] == "ok" for r in rows), rows
    assert len(list(tmp_path.glob("*.died"))) == 2  # each seed-1 unit killed a worker once


def _marks(cache: str, kind: str) -> dict[str, int]:
    return {p.stem: len(p.read_text()) for p in Path(cache).glob(f"*.{kind}")}


def _unit_always_dies(unit, cache, calibrated):
    def mark(kind: str) -> None:
        with open(Path(cache) / f"{unit.key}.{kind}", "a") as f:
            f.write("x")

    mark("started")
    if unit.key == "u01":
        # while another unit runs (started more often than done), so that it is lost with
        # this one; alone, after 0.8 s
        for _ in range(80):
            done = _marks(cache, "done")
            if any(n > done.get(k, 0) for k, n in _marks(cache, "started").items()
                   if k != "u01"):
                break
            time.sleep(0.01)
        os._exit(1)  # this unit kills its worker every time, and the pool with it
    time.sleep(1.0)
    mark("done")
    return {"key": unit.key, "wall_s": 1.0, "status": "ok"}


def test_a_task_that_kills_its_pool_worker_fails_alone(tmp_path):
    """Each break loses every task in flight; those lost together run again one at a time
    and a task lost alone is tried again alone, so the killer is charged its own tries and
    its neighbours lose only the run they shared with it."""
    ex = local_executor(2)
    try:
        rows = list(run_graph(_units([{"p": 0}, {"p": 1}]), str(tmp_path), ex,
                              prepare=_prepare, solve=_solve, fit=_fit,
                              unit=_unit_always_dies, failed=_failed))
    finally:
        ex.close(False)
    by = {r["key"]: r for r in rows}
    assert sorted(by) == sorted(u.key for u in _units([{}, {}]))
    assert by["u01"]["status"] == "failed" and "BrokenProcessPool" in by["u01"]["error"]
    assert all(r["status"] == "ok" for k, r in by.items() if k != "u01"), rows
    starts = _marks(str(tmp_path), "started")
    # once beside a neighbour (not charged), then MAX_TRIES times alone
    assert starts.pop("u01") == 1 + MAX_TRIES
    # a neighbour loses at most the run it shared with the killer (lost before it started,
    # on a busy machine, it shows no second start)
    assert len(starts) == 5 and max(starts.values()) <= 2, starts


def test_points_with_one_key_share_one_calibration():
    ex = _Recording(capacity=4)
    rows = _graph(_units([{"p": 0, "shared": "k"}, {"p": 1, "shared": "k"}]), ex)
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)
    assert [k for ev, k in ex.log if ev == "submit"].count("rram-fit-k") == 1
    assert sum(r["surrogate_calibrated"] for r in rows) == 1


def test_a_failed_solve_fails_its_points_units_only():
    def prepare(unit, cache):
        out = _prepare(unit, cache)
        if unit.point["p"] == 1:
            out["plan"] = _Plan(out["key"], 3, spec="bad")
        return out

    rows = _graph(_units([{"p": 0}, {"p": 1}]), _Recording(capacity=3), prepare=prepare)
    by = {r["key"]: r for r in rows}
    assert len(by) == 6
    assert all(by[f"u0{j}"]["status"] == "ok" for j in range(3))
    for j in range(3):
        assert by[f"u1{j}"]["status"] == "failed"
        assert by[f"u1{j}"]["error"] == "surrogate calibration: RuntimeError: singular matrix"


def test_a_first_chunk_failing_with_later_ones_queued_ends_the_graph():
    def prepare(unit, cache):
        out = _prepare(unit, cache)
        out["plan"] = _Plan(out["key"], 3, spec="bad0")
        return out

    def solve(spec, gp, gn, x):
        if spec == "bad0" and x[0] == 0:
            raise RuntimeError("no convergence")
        return _Solved(wall_s=1.0)

    rows = _graph(_units([{"p": 0}], per_point=2), _Recording(capacity=1), prepare=prepare,
                  solve=solve)
    why = "surrogate calibration: RuntimeError: no convergence"
    assert [r["error"] for r in rows] == [why] * 2


def test_a_failed_set_up_fails_its_units_with_the_reason():
    def prepare(unit, cache):
        raise ValueError("no compliance")

    rows = _graph(_units([{"p": 0}], per_point=2), Executor(), prepare=prepare)
    assert [r["error"] for r in rows] == ["point set-up: ValueError: no compliance"] * 2


def test_a_calibration_in_tasks_equals_one_in_a_row():
    spec = TileSpec(rows=24, cols=6, read=ReadScheme(rows_per_read=8))
    domain = (2.0, 40.0, 15.0, 3.0)
    plan = plan_calibration(spec, domain, 2, 9, "key")
    chunks = plan.chunks()
    # every vector of every map once, in chunks of at most CHUNK_VECTORS
    assert [(m, b - a) for m, a, b in chunks] == [(m, n) for m in range(3)
                                                  for n in (3, 3, 3)]
    assert all(b - a <= CHUNK_VECTORS for _, a, b in chunks)
    solves = [solve_chunk(plan.spec, *plan.maps[m], plan.inputs[m][a:b])
              for m, a, b in reversed(chunks)][::-1]  # solved in any order
    tasks = fit_calibration(plan, solves)
    row, _ = calibrate(spec, domain, 2, 9, "key")
    assert tasks.to_json() == row.to_json()
    assert tasks.energy_["n_vmm"] == 3 * 9
    # against one batch a map, as calibrations ran before they were cut into tasks: on a map
    # this small several vectors share a Newton block, so equal to the solver's tolerance
    whole, _ = simulate_with_energy(make_backend("nodal", plan.spec), list(plan.maps),
                                    list(plan.inputs), np.random.default_rng(0))
    for m, w in enumerate(whole):
        mine = [s for (mi, _, _), s in zip(chunks, solves) if mi == m]
        got = np.concatenate([s.i_pos_ua for s in mine])
        np.testing.assert_allclose(got, w.i_pos_ua, rtol=1e-12, atol=1e-9)
    # one vector a block (as on the macro): bitwise
    one = make_backend("nodal", plan.spec, max_block_unknowns=1)
    (m0,), _ = simulate_with_energy(one, [plan.maps[0]], [plan.inputs[0]],
                                    np.random.default_rng(0))
    parts, _ = simulate_with_energy(one, [plan.maps[0]] * 3,
                                    [plan.inputs[0][a:b] for _, a, b in chunks[:3]],
                                    np.random.default_rng(0))
    np.testing.assert_array_equal(np.concatenate([p.i_pos_ua for p in parts]), m0.i_pos_ua)
    with pytest.raises(ValueError, match="chunks"):
        fit_calibration(plan, solves[:-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
@pytest.mark.parametrize(("env", "expect"),
                         [({"MALLOC_TRIM_THRESHOLD_": "65536"}, "True None"),
                          ({"MALLOC_TRIM_THRESHOLD_": "1048576"}, "False 1048576"),
                          ({}, "False None")])
def test_dask_workers_get_their_allocator_thresholds_back(env, expect):
    """A Dask nanny's MALLOC_TRIM_THRESHOLD_ makes every large array an mmap (3x slower nodal
    solves, measured): the sweep's worker plugin resets glibc's thresholds where the nanny set
    them and drops the variable, which ngspice runs would inherit (a value of the user's own
    is kept)."""
    import subprocess

    base = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    code = ("import os; from rram_cosim.cosim.tasks.allocator import relax_malloc_trim as r; "
            "print(r(), os.environ.get('MALLOC_TRIM_THRESHOLD_'))")
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, **env}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expect


def test_local_pool_workers_undo_an_inherited_dask_allocator_setting(monkeypatch):
    """A LocalCluster leaves MALLOC_TRIM_THRESHOLD_ in its starter's environment, and pool
    workers started from there inherit it: their initializer resets the thresholds too, as
    does a sweep that computes its units in its own process."""
    from rram_cosim.cosim.tasks import sweep_graph

    calls: list[str] = []
    monkeypatch.setattr(sweep_graph, "pin_blas_threads", lambda n: calls.append(f"blas {n}"))
    monkeypatch.setattr(sweep_graph, "worker_signals", lambda: calls.append("signals"))
    monkeypatch.setattr(sweep_graph, "relax_malloc_trim", lambda: calls.append("allocator"))
    sweep_graph._init_local_worker(2)
    assert calls == ["blas 2", "allocator", "signals"]
    # a sweep computing its units in this process (--workers 1) does the same
    sweep_graph.local_executor(1).close(interrupted=False)
    assert calls[-1] == "allocator"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_one_thread_dask_worker_gets_no_new_arena():
    """The plugin of a one-thread worker sets glibc's arena limit to 1; a worker of several
    threads (whose task threads would then share arenas) or without a thread count is left
    alone."""
    import subprocess

    code = ("from unittest import mock; from rram_cosim.cosim.tasks import dask_plugin as d\n"
            "with mock.patch.object(d, 'one_arena') as one:\n"
            "    d.BlasThreads(1).setup(worker=None); print(one.call_count)\n"
            "    d.BlasThreads(1).setup(worker=mock.Mock(nthreads=2)); print(one.call_count)\n"
            "    d.BlasThreads(1).setup(worker=mock.Mock(nthreads=1)); print(one.call_count)\n"
            "from rram_cosim.cosim.tasks.allocator import one_arena; print(one_arena())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["0", "0", "1", "True"]
