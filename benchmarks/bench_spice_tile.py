"""VMM/s of the ngspice tile backend: one ``.op`` per ngspice process vs the index ``.dc`` sweep.

For each tile size (rows x weight columns, i.e. 2x physical columns) it builds the canonical
differential 1T1R tile (:func:`rram_cosim.netlists.tile.tile_deck`, level-1 access device,
default wires and periphery) with random conductances (uniform 5-30 uS) and inputs, and times:

- ``op``: ``--ops`` decks with one vector each (a plain ``.op``), one ngspice process each,
  run one after the other in this process;
- ``sweep``: one deck carrying ``--vectors`` vectors as a ``.dc`` sweep of the batch index;
- ``backend`` (with ``--backend``): ``SpiceBackend(n_workers=--workers).apply`` on the same
  ``--vectors`` vectors, split into one deck per worker and run on the process pool.

Caching is off, so every deck really runs. Prints VMM/s per mode and the sweep/op ratio.

Usage::

    .venv/bin/python benchmarks/bench_spice_tile.py [--sizes 16 32 64] [--vectors 64]
        [--ops 4] [--backend] [--workers 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from rram_cosim.cosim.spice.backend import SpiceBackend
from rram_cosim.cosim.spice.runner import RunOptions, run_deck
from rram_cosim.models.params import TileSpec
from rram_cosim.netlists.tile import tile_deck


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_size(size: int, n_vectors: int, n_ops: int, backend: bool, workers: int,
               seed: int, run_dir: str) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    spec = TileSpec(rows=size, cols=size)
    gp = rng.uniform(5, 30, (size, size))
    gn = rng.uniform(5, 30, (size, size))
    x = rng.uniform(0, 1, (n_vectors, size))
    opts = RunOptions(run_dir=run_dir, retry=False)
    out: dict[str, float] = {}
    op_decks = [tile_deck(spec, gp, gn, x[k]) for k in range(n_ops)]
    t_op = _time(lambda: [run_deck(d, opts) for d in op_decks])
    out["op"] = n_ops / t_op
    sweep = tile_deck(spec, gp, gn, x)
    t_build = _time(lambda: tile_deck(spec, gp, gn, x))
    t_sweep = _time(lambda: run_deck(sweep, opts))
    out["sweep"] = n_vectors / t_sweep
    out["build_s"] = t_build
    if backend:
        bound = SpiceBackend(spec, opts, n_workers=workers, cache=False).bind(gp, gn)
        out["backend"] = n_vectors / _time(lambda: bound.apply(x))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--vectors", type=int, default=64)
    ap.add_argument("--ops", type=int, default=4,
                    help="single-vector decks per size (at most 2 for sizes >= 64)")
    ap.add_argument("--backend", action="store_true",
                    help="also time SpiceBackend.apply on the process pool")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"{'tile':>8} {'op VMM/s':>10} {'sweep VMM/s':>12} {'sweep/op':>9} "
          f"{'deck build s':>13}" + (f" {'backend VMM/s':>14}" if args.backend else ""))
    with tempfile.TemporaryDirectory(prefix="bench-spice-tile-") as run_dir:
        for size in args.sizes:
            n_ops = min(args.ops, 2) if size >= 64 else args.ops
            r = bench_size(size, args.vectors, n_ops, args.backend, args.workers, args.seed,
                           run_dir)
            line = (f"{size:>3}x{size:<4} {r['op']:>10.3f} {r['sweep']:>12.3f} "
                    f"{r['sweep'] / r['op']:>9.1f} {r['build_s']:>13.3f}")
            if args.backend:
                line += f" {r['backend']:>14.3f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
