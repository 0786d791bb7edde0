"""Batch (``ngspice -b`` subprocess) vs shared (libngspice in this process) ngspice backends.

Runs the same N small decks (default 200 operating points of a 16-row tile, each with its own
random conductances and inputs) four ways: each mode in this process, and each mode on a
local pool of worker processes; prints runs/s and the shared/batch ratios, and checks that
both modes give the same vectors. Caching is off, so every deck really runs.

Usage::

    .venv/bin/python benchmarks/bench_ngspice_backends.py [--n 200] [--size 16]
        [--kind tile|resistive] [--workers 2] [--seed 0]

``--kind tile``: the canonical differential 1T1R tile (:func:`rram_cosim.netlists.tile.
tile_deck`: DAC rows, wires, level-1 access NMOS, TIAs, ADCs), size rows x size/2 weight
columns (size physical columns). ``--kind resistive``: a bare resistive crossbar of the same
size (rows driven by voltage sources, columns held at 0 V), the cheapest deck per cell.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Callable

import numpy as np
from rram_cosim.cosim.spice.pool import run_decks
from rram_cosim.cosim.spice.runner import RunOptions, SimResult, ngspice_version, run_deck
from rram_cosim.models.params import TileSpec
from rram_cosim.netlists.deck import Deck


def tile_decks(n: int, size: int, rng: np.random.Generator) -> list[Deck]:
    from rram_cosim.netlists.tile import tile_deck

    spec = TileSpec(rows=size, cols=size // 2)
    decks = []
    for _ in range(n):
        # Formed-cell statistics of the paper's macro (DeviceParams defaults, [ESGNN]).
        gp = np.clip(rng.normal(14.2, 2.46, (size, size // 2)), 0.1, None)
        gn = np.clip(rng.normal(14.2, 2.46, (size, size // 2)), 0.1, None)
        decks.append(tile_deck(spec, gp, gn, rng.uniform(0.0, 1.0, size)))
    return decks


def resistive_decks(n: int, size: int, rng: np.random.Generator) -> list[Deck]:
    decks = []
    for k in range(n):
        g = np.clip(rng.normal(14.2, 2.46, (size, size)), 0.1, None)
        v = rng.uniform(0.0, 0.2, size)
        lines = [f"resistive crossbar {k}"]
        lines += [f"vr{i} r{i} 0 {v[i]:.17g}" for i in range(size)]
        lines += [f"vc{j} c{j} 0 0" for j in range(size)]
        lines += [f"rc{i}_{j} r{i} c{j} {1e6 / g[i, j]:.17g}"
                  for i in range(size) for j in range(size)]
        lines += [".op", ".end"]
        decks.append(Deck("\n".join(lines) + "\n"))
    return decks


def _cpu_s() -> float:
    """CPU time of this process and every child it has reaped (ngspice runs, pool workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--kind", choices=["tile", "resistive"], default="tile")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=4,
                    help="interleave the four ways over this many chunks of the decks, so a "
                         "change in machine load hits all of them alike")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    make = tile_decks if args.kind == "tile" else resistive_decks
    decks = make(args.n, args.size, rng)
    n_lines = len(decks[0].text.splitlines())
    major, minor = ngspice_version()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"ngspice {major}.{minor}; {args.n} {args.kind} decks, {args.size}x{args.size} "
          f"({n_lines} lines each), .op; pool of {args.workers} workers; "
          f"{args.chunks} interleaved chunks")

    with tempfile.TemporaryDirectory(prefix="bench-ngspice-") as tmp:
        batch = RunOptions(mode="batch", run_dir=tmp)
        shared = RunOptions(mode="shared", run_dir=tmp)
        ways: dict[str, Callable[[list[Deck]], list[SimResult]]] = {
            "batch, 1 process": lambda ds: [run_deck(d, batch) for d in ds],
            "shared, 1 process": lambda ds: [run_deck(d, shared) for d in ds],
            f"batch, pool of {args.workers}": lambda ds: run_decks(
                ds, batch, n_workers=args.workers, cache=False, progress=False),
            f"shared, pool of {args.workers}": lambda ds: run_decks(
                ds, shared, n_workers=args.workers, cache=False, progress=False),
        }
        # Warm-up outside the clock: the version query and loading libngspice happen once.
        run_deck(decks[0], batch)
        run_deck(decks[0], shared)
        wall = dict.fromkeys(ways, 0.0)
        cpu = dict.fromkeys(ways, 0.0)
        results: dict[str, list[SimResult]] = {k: [] for k in ways}
        names = list(ways)
        for c, chunk in enumerate(np.array_split(np.arange(len(decks)), args.chunks)):
            ds = [decks[i] for i in chunk]
            for name in names[c % 4:] + names[:c % 4]:  # rotate who goes first
                c0, t0 = _cpu_s(), time.perf_counter()
                results[name].extend(ways[name](ds))
                wall[name] += time.perf_counter() - t0
                cpu[name] += _cpu_s() - c0

    n = len(decks)
    rate = {k: n / wall[k] for k in ways}
    for k in ways:
        print(f"  {k:<22s} {rate[k]:7.1f} runs/s  ({wall[k]:6.2f} s wall, "
              f"{1e3 * cpu[k] / n:6.1f} ms CPU per run)")
    ref = results[names[0]]
    worst = 0.0
    for k in names[1:]:
        for a, b in zip(ref, results[k]):
            assert a.plots[0].names == b.plots[0].names
            for v in a.vectors:
                worst = max(worst, float(np.max(np.abs(a.vectors[v] - b.vectors[v]))))
    print(f"  largest difference between the four ways' vectors: {worst:.3g}")
    b1, s1, bp, sp = (rate[k] for k in names)
    print(f"  shared / batch, 1 process:   {s1 / b1:6.2f}x")
    print(f"  shared / batch, pool:        {sp / bp:6.2f}x")
    print(f"  pool / 1 process, batch:     {bp / b1:6.2f}x")
    print(f"  pool / 1 process, shared:    {sp / s1:6.2f}x")


if __name__ == "__main__":
    main()
