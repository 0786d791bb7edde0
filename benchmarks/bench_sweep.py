"""Sweep speed: 2 workers against 1 on the same sweep, and the README's default example.

Both numbers in one run:

- speed-up: the same sweep (``--icc`` compliance levels x ``--seeds`` seeds of a reduced
  digits-events task, ``--hidden`` neurons, ``--n-train`` training samples) runs on 1 worker
  (in this process) and on a pool of 2 worker processes, each from an empty run folder and
  empty surrogate and SPICE caches; the script prints both wall times, their ratio,
  whether the two tables agree (execution columns aside), and the CPU time with the cores it
  obtained (on a machine shared with other jobs the pool cannot be faster than the cores it
  gets);
- the default example of README.md, ``rram-cosim sweep --icc 5e-6,10e-6,20e-6,40e-6 --task
  digits-events --seeds 3`` (full splits, h = 200, every CPU), from an empty folder: its wall
  time against the limit of 30 minutes on 2 cores.

Usage::

    .venv/bin/python benchmarks/bench_sweep.py [--icc 5e-6,10e-6,20e-6,40e-6] [--seeds 2]
        [--hidden 64] [--n-train 400] [--skip-default] [--keep DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
from rram_cosim.cosim.cli.commands.sweep import run_sweep_cmd
from rram_cosim.cosim.tasks.sweep import EXECUTION_COLUMNS, SweepConfig

LIMIT_S = 30 * 60  # the aim: the default example within 30 minutes on 2 cores


def _table(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    return df.drop(columns=[c for c in EXECUTION_COLUMNS if c in df.columns])


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def timed(cfg: SweepConfig, root: Path) -> tuple[float, float, dict]:
    """Wall time, CPU time (pool workers included) and the run's summary."""
    t0, c0 = time.perf_counter(), _cpu_s()
    summary = run_sweep_cmd(cfg, root, progress=False)
    return time.perf_counter() - t0, _cpu_s() - c0, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--icc", default="5e-6,10e-6,20e-6,40e-6")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--n-train", type=int, default=400)
    ap.add_argument("--skip-default", action="store_true")
    ap.add_argument("--keep", default="", help="keep the run folders under this folder")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"CPUs available: {cpus}; load average {os.getloadavg()[0]:.2f}")
    try:
        icc = tuple(float(x) for x in args.icc.split(","))
        base = SweepConfig(name="speedup", icc=icc, seeds=args.seeds, hidden=args.hidden,
                           n_train=args.n_train, n_val=200, n_test=200, workers=1)
        walls, cpus = {}, {}
        for w in (1, 2):
            t, c, s = timed(dataclasses.replace(base, workers=w,
                                                cache_dir=str(root / f"cache{w}")),
                            root / f"w{w}")
            walls[w], cpus[w] = t, c
            # CPU / wall: how many cores the sweep actually got (other jobs share them)
            print(f"speed-up sweep, {w} worker(s): {s['n_units']} units in {t:.1f} s wall, "
                  f"{c:.1f} s CPU ({c / t:.2f} cores obtained; {s['executor']}, "
                  f"{s['n_failed']} failed; load average now {os.getloadavg()[0]:.2f})")
        same = _table(root / "w1" / "speedup" / "sweep.csv").equals(
            _table(root / "w2" / "speedup" / "sweep.csv"))
        print(f"speed-up of 2 workers over 1: {walls[1] / walls[2]:.2f}x "
              f"(tables identical: {same}); pool overhead in CPU time "
              f"{cpus[2] / cpus[1] - 1:+.0%}; on {cpus[2] / walls[2]:.2f} of 2 cores")
        if not args.skip_default:
            cfg = SweepConfig(name="default", icc=(5e-6, 10e-6, 20e-6, 40e-6),
                              task="digits-events", seeds=3,
                              cache_dir=str(root / "cache_default"))  # cold: nothing cached
            t, _, s = timed(cfg, root / "default")
            print(f"default example (4 compliance levels x 3 seeds, digits-events, h = 200, "
                  f"{s['executor']}): {t:.0f} s = {t / 60:.1f} min "
                  f"({'within' if t <= LIMIT_S else 'OVER'} the 30 min limit); "
                  f"{s['n_failed']} failed; load average now {os.getloadavg()[0]:.2f}")
            print(pd.read_csv(root / "default" / "default" / "sweep_summary.csv")[
                ["icc_a", "val_acc_mean", "test_acc_mean", "e_hybrid_uj_mean",
                 "g_mean_us_mean"]].to_string(index=False))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
