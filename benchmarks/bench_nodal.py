"""The nodal DC engine: its fast path against the plain Newton path, and its speed against ngspice.

``--part paths`` (default): the calibration workload on one core. Calibration maps of
``--rows x --cols`` weights (default 456 x 201, the paper's map on the macro; the board read
scheme, 64 rows per read, so one VMM is 8 reads) with ``--vectors`` calibration inputs each go
through ``NodalBackend.bind(...).apply`` as calibration runs them, once with
``solve_path="plain"`` and once with ``"fast"``, map by map and in alternating order (the
machine is shared, so both paths see the same load). Prints wall and CPU seconds per path,
their ratio, Newton fallbacks, and the largest relative difference between the two paths' TIA
outputs over every read (and whether the ADC codes are identical).

``--part profile``: cProfile of the fast path on one calibration map of ``--rows x --cols``
(``--vectors``, default 4): the own time of the engine's functions, grouped into the cell and
device evaluations, GMRES's vector work, the preconditioner, the sparse matrix products and the
topology (built once per map), with the Newton steps per solve; then the same map with the
vectors solved one at a time (the default block size) and all in one block-diagonal block.

``--part sizes``: sizes are **physical**: ``N`` means N rows x N physical columns, i.e. N/2 weight columns (each
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

    .venv/bin/python benchmarks/bench_nodal.py [--rows 456] [--cols 201] [--maps 2]
        [--vectors 16] [--seed 0]
    .venv/bin/python benchmarks/bench_nodal.py --part profile [--vectors 4]
    .venv/bin/python benchmarks/bench_nodal.py --part sizes [--sizes 64 128 256 512]
        [--vectors 4] [--r-wire 1.0] [--solvers auto] [--spice-max 64] [--seed 0]
"""

from __future__ import annotations

import os

# one core: BLAS and OpenMP pools of one thread, set before numpy loads them
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import shutil
import tempfile
import time

import numpy as np
from rram_cosim.cosim.engines.calibrate import calibration_inputs, calibration_maps
from rram_cosim.cosim.engines.nodal import NodalBackend, NodalSolution
from rram_cosim.models.params import DeviceParams, TileSpec
from rram_cosim.models.tile.periphery import adc_codes


def _run_path(spec: TileSpec, path: str, gp: np.ndarray, gn: np.ndarray, x: np.ndarray
              ) -> tuple[float, float, list[NodalSolution], int]:
    """Bind and apply as calibration does; wall s, CPU s, the reads' solutions, fallbacks."""
    w0, c0 = time.perf_counter(), time.process_time()
    bound = NodalBackend(spec, solve_path=path).bind(gp, gn)
    bound.apply(x, np.random.default_rng(0))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return wall, cpu, list(bound.last_reads), bound.fallbacks_


def bench_paths(rows: int, cols: int, n_maps: int, n_vectors: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    spec = TileSpec(rows=rows, cols=cols)
    maps = calibration_maps((rows, cols), n_maps, rng, DeviceParams(), spec)
    inputs = [calibration_inputs(rows, n_vectors, rng) for _ in maps]
    n_reads = len(spec.read.row_groups(rows))
    print(f"{rows}x{cols} weights ({2 * cols} physical columns), {n_maps} maps x {n_vectors} "
          f"vectors, {n_reads} reads per VMM ({spec.read.rows_per_read} rows per read), "
          f"r_wire {spec.r_row_ohm:g} ohm; cpus {os.cpu_count()}, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    tot = {"plain": [0.0, 0.0], "fast": [0.0, 0.0]}
    worst, same_codes, fallbacks = 0.0, True, 0
    for m, ((gp, gn), x) in enumerate(zip(maps, inputs)):
        order = ("plain", "fast") if m % 2 == 0 else ("fast", "plain")
        reads = {}
        for path in order:
            wall, cpu, reads[path], fb = _run_path(spec, path, gp, gn, x)
            tot[path][0] += wall
            tot[path][1] += cpu
            fallbacks += fb if path == "fast" else 0
            print(f"  map {m} {path:5s}: {wall:7.1f} s wall, {cpu:7.1f} s CPU", flush=True)
        for a, b in zip(reads["plain"], reads["fast"]):
            worst = max(worst, float(np.max(np.abs(b.v_o - a.v_o)
                                            / np.maximum(np.abs(a.v_o), 1e-6))))
            same_codes &= bool(np.array_equal(adc_codes(a.v_o, spec), adc_codes(b.v_o, spec)))
    (pw, pc), (fw, fc) = tot["plain"], tot["fast"]
    print(f"plain: {pw:.1f} s wall, {pc:.1f} s CPU; fast: {fw:.1f} s wall, {fc:.1f} s CPU")
    print(f"speed-up fast vs plain: {pw / fw:.2f}x wall, {pc / fc:.2f}x CPU; fast-path "
          f"fallbacks {fallbacks}")
    print(f"max relative TIA-output difference fast vs plain: {worst:.2e} (every read); "
          f"ADC codes identical: {same_codes}")


# the engine's functions by the share of a solve they stand for (cProfile's own time of each)
_PROFILE_GROUPS = {
    "cell and device evaluations": ("_evaluate", "cell_solve", "level1_channel", "level1_ids",
                                    "junction", "_kcl_scale", "_predict_v_m"),
    "GMRES vector work": ("_gmres", "lstsq", "norm"),
    "preconditioner (layer sweeps)": ("prec", "factor"),
    "sparse matrix products": ("csr_matvec", "csr_matvecs"),
    "topology (once per map)": ("_build_topology", "_unique1d", "_unique_hash", "argsort",
                                "cumsum", "flatten"),
}


def bench_profile(rows: int, cols: int, n_vectors: int, seed: int) -> None:
    """cProfile of the fast path on one calibration map: where a solve's time goes."""
    import cProfile
    import pstats

    rng = np.random.default_rng(seed)
    spec = TileSpec(rows=rows, cols=cols)
    (gp, gn), = calibration_maps((rows, cols), 1, rng, DeviceParams(), spec)[:1]
    x = calibration_inputs(rows, n_vectors, rng)
    prof = cProfile.Profile()
    c0 = time.process_time()
    prof.enable()
    bound = NodalBackend(spec, solve_path="fast").bind(gp, gn)
    bound.apply(x, np.random.default_rng(0))
    prof.disable()
    cpu = time.process_time() - c0
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, ...)
    own = {g: 0.0 for g in _PROFILE_GROUPS}
    total = sum(v[2] for v in stats.values())
    rest: dict[str, float] = {}
    for (_, _, name), v in stats.items():
        # a builtin's name is "<built-in method module.name>" or "<method 'name' of ...>"
        short = name.strip("<>").split()[-1].split(".")[-1] if name.startswith("<built-in") \
            else name.split("'")[1] if name.startswith("<method") else name
        for g, names in _PROFILE_GROUPS.items():
            if short in names:
                own[g] += v[2]
                break
        else:
            rest[short] = rest.get(short, 0.0) + v[2]
    calls = {name: v[1] for (_, _, name), v in stats.items()
             if name in ("_newton", "_solve_linear", "_evaluate", "prec")}
    solves = max(calls.get("_newton", 0), 1)
    print(f"{rows}x{cols} weights, one calibration map, {n_vectors} vectors, "
          f"{len(spec.read.row_groups(rows))} reads per VMM; fast path, one core: {cpu:.1f} s "
          f"CPU ({total:.1f} s under the profiler); {solves} Newton solves, per solve "
          f"{calls.get('_solve_linear', 0) / solves:.1f} Newton steps, "
          f"{calls.get('_evaluate', 0) / solves:.1f} residual evaluations; "
          f"{calls.get('prec', 0) / max(calls.get('_solve_linear', 0), 1):.1f} preconditioner "
          "applications (GMRES iterations) per step")
    for g, t in own.items():
        print(f"  {g:32s} {t:6.2f} s  {t / total:5.1%}")
    left = total - sum(own.values())
    top = ", ".join(f"{k} {t:.2f} s" for k, t in sorted(rest.items(), key=lambda kv: -kv[1])[:6])
    print(f"  {'everything else':32s} {left:6.2f} s  {left / total:5.1%}  (largest: {top})")
    # the engine's batching: vectors stacked as one block-diagonal Newton system share the
    # topology and the Python overhead, not the factorisations (each vector's Jacobian differs)
    one_block = (n_vectors + 1) * bound.topology_.n
    best = {}
    for _ in range(2):
        for blk in (NodalBackend.max_block_unknowns, one_block):
            c0 = time.process_time()
            NodalBackend(spec, max_block_unknowns=blk).bind(gp, gn).apply(
                x, np.random.default_rng(0))
            best[blk] = min(best.get(blk, np.inf), time.process_time() - c0)
    default, block = best[NodalBackend.max_block_unknowns], best[one_block]
    print(f"vectors one at a time (max_block_unknowns {NodalBackend.max_block_unknowns:,}): "
          f"{default:.1f} s CPU; all {n_vectors} of a read in one block ({one_block:,}): "
          f"{block:.1f} s CPU ({default / block:.2f}x), best of 2, alternating")


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
    ap.add_argument("--part", choices=["paths", "sizes", "profile"], default="paths")
    ap.add_argument("--rows", type=int, default=456, help="weight rows (--part paths)")
    ap.add_argument("--cols", type=int, default=201, help="weight columns (--part paths)")
    ap.add_argument("--maps", type=int, default=2, help="calibration maps (--part paths)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512],
                    help="physical sizes N (N rows x N physical columns = N/2 weight columns)")
    ap.add_argument("--vectors", type=int, default=None,
                    help="vectors per map (default 16 for paths, 4 for sizes)")
    ap.add_argument("--r-wire", type=float, default=1.0, help="ohm per wire segment")
    ap.add_argument("--solvers", nargs="+", default=["auto"],
                    choices=["auto", "direct", "krylov"])
    ap.add_argument("--spice-max", type=int, default=64,
                    help="also run ngspice for sizes up to this (0: never)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.part == "paths":
        bench_paths(args.rows, args.cols, args.maps, args.vectors or 16, args.seed)
        return
    if args.part == "profile":
        bench_profile(args.rows, args.cols, args.vectors or 4, args.seed)
        return
    args.vectors = args.vectors or 4
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
