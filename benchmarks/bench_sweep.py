"""How far a sweep scales: the task graph's work and critical path, and measured speed-ups.

Printed from one run, each sweep from an empty run folder and empty caches:

- the 16-unit sweep (``--icc`` 4 compliance levels x ``--seeds`` 4, digits-events with
  400/150/200 samples, h = 200 on the 456x201 macro, no SPICE spot check) on 1 worker: its wall
  time, and from the tasks' own timings (``wall_s``, ``calibration_s`` and
  ``critical_path_s`` of ``sweep.csv``) the total work, the critical path (the longest chain:
  a point's set-up, its slowest calibration solve, the fit, one unit) and the available
  parallelism, total / critical path: the most workers the sweep can keep busy;
- the same sweep on a local pool of 2 workers: the speed-up over 1 worker, and whether the
  tables agree (execution columns aside);
- the same sweep on a Dask ``LocalCluster`` of 2 single-threaded worker processes: time per
  unit and per calibration solve against the local pool's;
- ``--parts pair``: the fair form of that comparison on a shared machine: the same sweep
  (``--dask-seeds`` seeds) run at the same time by two processes, one computing its tasks
  itself (``--workers 1``) and one on a one-worker Dask ``LocalCluster``, so both see the same
  load; time per unit and per point's calibration work, Dask / local;
- the README's default example (``sweep --icc 5e-6,10e-6,20e-6,40e-6 --task digits-events
  --seeds 3``, full splits) on 2 workers: wall time, total work, critical path, parallelism.

The CPU time each run obtained is printed beside it: on a machine shared with other jobs a pool
cannot be faster than the cores it gets.

Usage::

    .venv/bin/python benchmarks/bench_sweep.py [--seeds 4] [--parts pool,dask,default]
        [--dask-seeds N] [--keep DIR]    # parts: pool, dask, pair, default

``--parts`` picks what runs; the Dask part compares with the pool run in the same ``--keep``
folder when it exists there. ``--dask-seeds`` runs the Dask sweep on fewer seeds (its time per
unit is compared, not its wall time).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from rram_cosim.cosim.cli.commands.sweep import run_sweep_cmd
from rram_cosim.cosim.tasks.sweep import EXECUTION_COLUMNS, SweepConfig


def _table(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    return df.drop(columns=[c for c in EXECUTION_COLUMNS if c in df.columns])


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def timed(cfg: SweepConfig, root: Path) -> tuple[float, float, pd.DataFrame]:
    """Wall time, CPU time (pool workers included) and the run's table."""
    t0, c0 = time.perf_counter(), _cpu_s()
    s = run_sweep_cmd(cfg, root, progress=False)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    df = pd.read_csv(root / cfg.name / "sweep.csv")
    print(f"  {cfg.name}: {s['n_units']} units, {s['n_failed']} failed, {s['executor']}: "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU in this process tree ({cpu / wall:.2f} cores; "
          f"load average now {os.getloadavg()[0]:.2f})", flush=True)
    return wall, cpu, df


def graph_figures(df: pd.DataFrame) -> tuple[float, float, float]:
    """Total work, critical path (s) and their ratio, from the tasks' timings in a table."""
    total = float(df["wall_s"].sum() + df["calibration_s"].sum())
    critical = float(df["critical_path_s"].max())
    return total, critical, total / critical


def _say_graph(name: str, df: pd.DataFrame) -> None:
    total, critical, par = graph_figures(df)
    units = float(df["wall_s"].mean())
    print(f"  {name}: total work {total:.0f} s (units {df['wall_s'].sum():.0f} s, mean "
          f"{units:.1f} s; set-up and calibration tasks {df['calibration_s'].sum():.0f} s), "
          f"critical path {critical:.0f} s: parallelism {par:.1f} (workers it can keep busy)",
          flush=True)


def _sweep_args(cfg: SweepConfig, out: Path) -> list[str]:
    """The ``rram-cosim sweep`` command line of the benchmark's sweep ``cfg``."""
    return [str(Path(sys.executable).with_name("rram-cosim")), "sweep",
            "--icc", ",".join(f"{i:g}" for i in cfg.icc), "--seeds", str(cfg.seeds),
            "--spot-cells", "0", "--n-train", str(cfg.n_train), "--n-val", str(cfg.n_val),
            "--n-test", str(cfg.n_test), "--name", cfg.name, "--out", str(out),
            "--cache-dir", str(out / "cache"), "--no-progress"]


def pair(cfg: SweepConfig, root: Path, env: dict[str, str]) -> None:
    """The same sweep at the same time on this machine's two executors (see the docstring);
    ``env``: the environment this script started with (a LocalCluster leaves Dask's
    MALLOC_TRIM_THRESHOLD_ in its starter's)."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        t0 = time.perf_counter()
        args = {"local": ["--workers", "1"], "dask": ["--scheduler", cluster.scheduler_address]}
        runs = {k: subprocess.Popen([*_sweep_args(cfg, root / f"pair_{k}"), *a], env=env,
                                    stdout=subprocess.DEVNULL) for k, a in args.items()}
        try:  # until both end or one fails
            while (codes := [p.poll() for p in runs.values()]).count(None) and not any(codes):
                time.sleep(1.0)
        finally:
            stopped = [k for k, p in runs.items() if p.poll() is None]
            for k in stopped:  # a failure or an interrupt: stop the other one too
                runs[k].terminate()
                runs[k].wait()
        failed = [k for k, p in runs.items() if p.returncode != 0 and k not in stopped]
        if failed:
            raise SystemExit(f"the {failed[0]} sweep of the pair failed (exit "
                             f"{runs[failed[0]].returncode})")
    wall = time.perf_counter() - t0
    df = {k: pd.read_csv(root / f"pair_{k}" / cfg.name / "sweep.csv").set_index("key")
          for k in runs}
    unit = {k: d["wall_s"].mean() for k, d in df.items()}
    cal = {k: d["calibration_s"].sum() / len(cfg.icc) for k, d in df.items()}
    same = _table(root / "pair_local" / cfg.name / "sweep.csv").equals(
        _table(root / "pair_dask" / cfg.name / "sweep.csv"))
    print(f"  at the same time, {len(df['local'])} units each ({wall:.0f} s wall; load average "
          f"now {os.getloadavg()[0]:.2f}): time per unit, Dask / local "
          f"{unit['dask']:.1f} / {unit['local']:.1f} s = {unit['dask'] / unit['local']:.2f}; "
          f"calibration work per point {cal['dask']:.0f} / {cal['local']:.0f} s = "
          f"{cal['dask'] / cal['local']:.2f}; tables identical: {same}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--icc", default="5e-6,10e-6,20e-6,40e-6")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--parts", default="pool,dask,default",
                    help="comma list of pool (1 and 2 workers), dask, pair, default")
    ap.add_argument("--dask-seeds", type=int, default=0, help="seeds of the Dask sweep "
                    "(0: --seeds)")
    ap.add_argument("--keep", default="", help="keep the run folders under this folder")
    args = ap.parse_args()
    env = dict(os.environ)  # before any LocalCluster of this script changes it
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"CPUs available: {cpus}; load average {os.getloadavg()[0]:.2f}")
    try:
        icc = tuple(float(x) for x in args.icc.split(","))
        base = SweepConfig(name="s16", icc=icc, seeds=args.seeds, n_train=400, n_val=150,
                           n_test=200, spot_cells=0, workers=1)
        print(f"{len(icc) * args.seeds}-unit sweep ({len(icc)} I_cc x {args.seeds} seeds, "
              "400/150/200 samples, h = 200, --spot-cells 0):")
        parts = set(args.parts.split(","))
        runs = {}
        if "pool" in parts:
            for w in (1, 2):
                runs[w] = timed(dataclasses.replace(base, workers=w,
                                                    cache_dir=str(root / f"cache{w}")),
                                root / f"w{w}")
            _say_graph("from the 1-worker run's task timings", runs[1][2])
            same = _table(root / "w1" / "s16" / "sweep.csv").equals(
                _table(root / "w2" / "s16" / "sweep.csv"))
            print(f"  speed-up of 2 workers over 1: {runs[1][0] / runs[2][0]:.2f}x (tables "
                  f"identical: {same}); CPU time of the pool {runs[2][1] / runs[1][1] - 1:+.0%}")
        if "dask" in parts:
            from dask.distributed import LocalCluster

            seeds = args.dask_seeds or args.seeds
            t0 = time.perf_counter()
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster:
                s = run_sweep_cmd(dataclasses.replace(
                    base, seeds=seeds, scheduler=cluster.scheduler_address, workers=0,
                    cache_dir=str(root / "cache_dask")), root / "dask", progress=False)
            wall = time.perf_counter() - t0
            dask_df = pd.read_csv(root / "dask" / "s16" / "sweep.csv")
            print(f"  Dask (LocalCluster, 2 worker processes x 1 thread), {s['n_units']} units: "
                  f"{wall:.1f} s wall; {s['n_failed']} failed", flush=True)
            pool_csv = root / "w2" / "s16" / "sweep.csv"
            if pool_csv.is_file():
                pool_df = pd.read_csv(pool_csv)
                mine = pool_df[pool_df["key"].isin(dask_df["key"])]
                def rows(d: pd.DataFrame) -> pd.DataFrame:  # grid positions differ
                    d = d[d["key"].isin(dask_df["key"])].drop(columns="index")
                    return d.sort_values("key").reset_index(drop=True)

                same = rows(_table(root / "dask" / "s16" / "sweep.csv")).equals(
                    rows(_table(pool_csv)))
                # the same units on both (the Dask sweep may run fewer seeds)
                print(f"  time per unit, Dask vs local pool (2 workers each, the same "
                      f"{len(mine)} units): {dask_df['wall_s'].mean():.2f} vs "
                      f"{mine['wall_s'].mean():.2f} s "
                      f"({dask_df['wall_s'].mean() / mine['wall_s'].mean() - 1:+.0%}); "
                      f"calibration work per point {dask_df['calibration_s'].sum() / len(icc):.0f}"
                      f" vs {pool_df['calibration_s'].sum() / len(icc):.0f} s; the same units' "
                      f"rows identical: {same}", flush=True)
        if "pair" in parts:
            print("Dask and local, the same sweep at the same time:")
            pair(dataclasses.replace(base, seeds=args.dask_seeds or args.seeds), root, env)
        if "default" in parts:
            print("README default example (4 I_cc x 3 seeds, digits-events, full splits):")
            cfg = SweepConfig(name="default", icc=(5e-6, 10e-6, 20e-6, 40e-6),
                              task="digits-events", seeds=3, workers=2,
                              cache_dir=str(root / "cache_default"))
            _, _, df = timed(cfg, root / "default")
            _say_graph("its task timings (2 workers)", df)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
