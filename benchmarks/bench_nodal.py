"""Time per vector of the nodal DC engine, and its speed-up over ngspice on the same tile.

Sizes are **physical**: ``N`` means N rows x N physical columns, i.e. N/2 weight columns (each
weight column is a G+ and a G- column); 512 is the paper's full macro. Each size gets a
canonical tile (:class:`rram_cosim.models.params.TileSpec` defaults: 1 ohm wire segments,
1 ohm DAC output, level-1 access transistor, R_f sized for the tile's rows) with random
conductances (uniform 5-40 uS) and random binary inputs, and is timed for:

- ``bind``: building the circuit topology (once per conductance map);
- ``solve``: ``BoundNodal.solve`` on ``--vectors`` vectors (per vector, wall time), with the
  Newton iteration count and the linear solver the steps used.

For sizes up to ``--spice-max`` the same tile and vectors also run in ngspice
(:func:`rram_cosim.cosim.spice.runner.run_deck` on :func:`rram_cosim.netlists.tile.tile_deck`, one
``.dc`` sweep over the vectors): the table shows ngspice's time per vector, the ratio, and the
largest relative difference of the TIA outputs.

Usage::

    .venv/bin/python benchmarks/bench_nodal.py [--sizes 64 128 256 512] [--vectors 4]
        [--r-wire 1.0] [--solvers auto] [--spice-max 64] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
from rram_cosim.cosim.engines.nodal import NodalBackend
from rram_cosim.models.params import TileSpec


def _spice(spec: TileSpec, gp: np.ndarray, gn: np.ndarray, x: np.ndarray,
           run_dir: str) -> tuple[float, np.ndarray]:
    from rram_cosim.cosim.spice.runner import RunOptions, run_deck
    from rram_cosim.netlists.tile import tile_deck

    deck = tile_deck(spec, gp, gn, x)
    t0 = time.perf_counter()
    res = run_deck(deck, RunOptions(run_dir=run_dir, retry=False, keep="never"))
    el = time.perf_counter() - t0
    v_o = np.stack([res.vectors[f"v(o{j})"] for j in range(2 * gp.shape[1])], axis=1)
    return el / x.shape[0], v_o


def bench_size(size: int, n_vectors: int, r_wire_ohm: float, solver: str, seed: int,
               spice: bool, run_dir: str) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    rows, cols = size, size // 2
    spec = TileSpec(rows=rows, cols=cols, r_wire_ohm=r_wire_ohm)
    gp = rng.uniform(5.0, 40.0, (rows, cols))
    gn = rng.uniform(5.0, 40.0, (rows, cols))
    x = rng.integers(0, 2, (n_vectors, rows)).astype(float)
    t0 = time.perf_counter()
    bound = NodalBackend(spec, linear_solver=solver).bind(gp, gn)
    t_bind = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = bound.solve(x)
    t_vec = (time.perf_counter() - t0) / n_vectors
    out: dict[str, object] = {
        "size": size, "weights": f"{rows}x{cols}", "unknowns": bound.topology_.n,
        "bind_s": t_bind, "vec_s": t_vec, "iters": sol.iterations,
        "solver": "+".join(sorted(set(sol.linear_solvers))),
    }
    if spice:
        t_sp, v_o = _spice(spec, gp, gn, x, run_dir)
        out["spice_vec_s"] = t_sp
        out["ratio"] = t_sp / t_vec
        out["max_rel_dvo"] = float(np.max(np.abs(sol.v_o - v_o) / np.abs(v_o)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512],
                    help="physical sizes N (N rows x N physical columns = N/2 weight columns)")
    ap.add_argument("--vectors", type=int, default=4)
    ap.add_argument("--r-wire", type=float, default=1.0, help="ohm per wire segment")
    ap.add_argument("--solvers", nargs="+", default=["auto"],
                    choices=["auto", "direct", "krylov"])
    ap.add_argument("--spice-max", type=int, default=64,
                    help="also run ngspice for sizes up to this (0: never)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    have_spice = shutil.which("ngspice") is not None
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}, "
          f"r_wire {args.r_wire:g} ohm, {args.vectors} vectors per size")
    print(f"{'physical':>9} {'weights':>9} {'unknowns':>9} {'solver':>13} {'bind s':>7} "
          f"{'s/vector':>9} {'newton':>6} {'spice s/vec':>11} {'ratio':>7} {'max rel dv(o)':>13}")
    with tempfile.TemporaryDirectory(prefix="bench-nodal-") as run_dir:
        for size in args.sizes:
            for solver in args.solvers:
                spice = have_spice and size <= args.spice_max
                r = bench_size(size, args.vectors, args.r_wire, solver, args.seed, spice,
                               run_dir)
                sp = (f"{r['spice_vec_s']:>11.3f} {r['ratio']:>7.1f} {r['max_rel_dvo']:>13.1e}"
                      if spice else f"{'-':>11} {'-':>7} {'-':>13}")
                print(f"{size:>4}x{size:<4} {r['weights']:>9} {r['unknowns']:>9} "
                      f"{r['solver']:>13} {r['bind_s']:>7.2f} {r['vec_s']:>9.3f} "
                      f"{r['iters']:>6} {sp}", flush=True)


if __name__ == "__main__":
    main()
