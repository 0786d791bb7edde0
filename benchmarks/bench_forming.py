"""Forming speed: the numpy twin on a whole array, and ngspice cells per second.

Both numbers in one run:

- twin: :func:`rram_cosim.models.device.breakdown.form_array` on ``--rows x --cols`` cells (default
  512 x 512, the paper's macro) at the default forming conditions; best of ``--repeats`` runs
  (draws included), the aim being under 2 s;
- SPICE: ``--cells`` cells formed in ngspice by :func:`rram_cosim.cosim.spice.forming.simulate_cells`
  (``--cells-per-deck`` cells a deck, ``--workers`` processes, cache off), reported as cells per
  second of wall time, with the per-cell SPICE-vs-twin agreement on the same cells.

Usage::

    .venv/bin/python benchmarks/bench_forming.py [--rows 512] [--cols 512] [--cells 64]
        [--cells-per-deck 1 4 8] [--workers 0] [--icc 7.5e-6] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import numpy as np
from rram_cosim.cosim.spice.forming import compare_with_twin, sample_indices, simulate_cells
from rram_cosim.models.device.breakdown import cell_values, draw_cells, form_array, form_cells
from rram_cosim.models.params import BreakdownParams, FormingConditions


def bench_twin(rows: int, cols: int, cond: FormingConditions, repeats: int,
               seed: int) -> tuple[float, dict[str, float]]:
    form_array((8, 8), np.random.default_rng(seed), BreakdownParams(), cond)  # warm-up
    best = np.inf
    res = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = form_array((rows, cols), np.random.default_rng(seed), BreakdownParams(), cond)
        best = min(best, time.perf_counter() - t0)
    assert res is not None
    g = res.g_us[res.formed]
    return best, {"mean_us": float(g.mean()), "std_us": float(g.std()),
                  "unformed": res.n_unformed}


def bench_spice(n_cells: int, per_deck: int, workers: int | None, cond: FormingConditions,
                seed: int) -> dict[str, float]:
    p = BreakdownParams()
    draws = draw_cells((64, 64), np.random.default_rng(seed))
    idx = sample_indices(draws.shape, n_cells, np.random.default_rng(seed + 1))
    vals = cell_values(draws.take(idx), p, cond.mosfet)
    sp = simulate_cells(vals, p, cond, cells_per_deck=per_deck, n_workers=workers, cache=False)
    twin = form_cells(vals, p, cond)
    cmp = compare_with_twin(sp, twin.g_us, twin.formed)
    return {"cells_per_deck": per_deck, "wall_s": sp.wall_time_s,
            "cells_per_s": n_cells / sp.wall_time_s, "failed": cmp["n_failed"],
            "median_rel_diff": cmp["median_rel_diff"], "p90_rel_diff": cmp["p90_rel_diff"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--cols", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cells", type=int, default=64, help="cells formed in ngspice")
    ap.add_argument("--cells-per-deck", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--workers", type=int, default=0, help="0: every available CPU")
    ap.add_argument("--icc", type=float, default=FormingConditions().i_cc_a,
                    help="compliance current, A")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cond = FormingConditions(i_cc_a=args.icc)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"forming benchmark: {cpus} CPU(s), I_cc = {args.icc * 1e6:g} uA, "
          f"{cond.v_form_v} V for {cond.t_pulse_s:g} s")
    t, st = bench_twin(args.rows, args.cols, cond, args.repeats, args.seed)
    print(f"twin  {args.rows}x{args.cols}: {t:.3f} s (best of {args.repeats}; "
          f"{args.rows * args.cols / t:,.0f} cells/s); mean {st['mean_us']:.2f} uS, "
          f"std {st['std_us']:.2f} uS, unformed {st['unformed']}")
    if shutil.which("ngspice") is None:
        print("spice: ngspice not found, skipped")
        return
    best = 0.0
    for per_deck in args.cells_per_deck:
        r = bench_spice(args.cells, per_deck, args.workers or None, cond, args.seed)
        best = max(best, r["cells_per_s"])
        print(f"spice {args.cells} cells, {per_deck:>2} a deck: {r['wall_s']:.2f} s, "
              f"{r['cells_per_s']:.1f} cells/s; vs twin median {r['median_rel_diff']:.1e}, "
              f"p90 {r['p90_rel_diff']:.1e}, failed {r['failed']}")
    print(f"twin speed-up per cell over ngspice (best deck size): "
          f"{args.rows * args.cols / t / best:,.0f}x")

if __name__ == "__main__":
    main()
