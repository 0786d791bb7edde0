"""Samples/s of the LIF reservoir: dense against event-driven VMMs, and backends, in one run.

The paper's image network: 256 inputs + 200 recurrent rows, 200 neurons, T = 50, batch 256,
inputs drawn at ``--density`` (5 % by default). One core (BLAS threads set to 1 before numpy
loads); rates are samples per CPU second of this process, best of ``--repeats``. glibc's heap
is kept (:func:`~rram_cosim.cosim.tasks.allocator.keep_heap`), as a busy run keeps it.

``--part paths`` (default): for both read schemes (64 rows per read as the board reads, 8
reads a VMM; the whole map in one read) each backend (``ideal`` without read noise, ``ideal``
with 0.1 uS, the ``surrogate`` with its fitted 0.1 uS) runs the same frames with
``vmm="dense"`` and ``vmm="sparse"`` (:mod:`rram_cosim.models.tile.sparse_read`),
alternating; prints samples/s of both, the ratio, whether the spike counts are identical, and
the share of the dense run's CPU time that its matrix products take (timed alone on the drives
the run produced): the most any event-driven product could gain is ``1 / (1 - share)``, since
the TIA, ADC, noise and neuron work of every read is the same on both paths; and the two
paths' products alone on those drives (dense: the reads' BLAS products; event-driven: building
the sparse matrix and multiplying it).
Then the ideal tile again at each input density of ``--densities`` (default 0.01; the
recurrent spikes add their own density, printed as spikes a step).

``--part density``: the table behind ``SPARSE_MAX_DENSITY``: single VMMs of the ideal tile
(batch 256, random drives at each density of ``--drive-densities``, both read schemes), dense
and sparse alternating; prints dense / sparse CPU time.

``--part backends``: ideal vs surrogate-backed weights (dense path, ``--rows-per-read``), and
the surrogate
linearised for this reservoir's drive (``bind_for_workload``: its "bind" time includes the
probe run on 200 samples). Per sample it is the same matrix product, so its rate should match
the tangent's.

The surrogate is fitted on nodal-engine results of the same 456 x 200 tile (no ngspice needed;
``--cal ideal`` fits it on ideal-model currents instead, quicker: the VMM's cost does not depend
on the fitted values, the spiking activity does).

    .venv/bin/python benchmarks/bench_reservoir.py [--part paths|density|backends]
        [--samples 256] [--repeats 3] [--density 0.05] [--densities 0.01]
        [--drive-densities 0.002,0.01,0.03,0.08] [--rows-per-read 64] [--cal nodal|ideal]
"""

from __future__ import annotations

import os

# one core: BLAS and OpenMP pools of one thread, set before numpy loads them
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import dataclasses
import time

import numpy as np
from rram_cosim.cosim.engines.calibrate import (
    bind_for_workload,
    calibration_inputs,
    calibration_maps,
    fit_surrogate,
    simulate,
)
from rram_cosim.cosim.engines.registry import make_backend
from rram_cosim.cosim.tasks.allocator import keep_heap
from rram_cosim.models.device.conductance import differential_pair
from rram_cosim.models.params import DeviceParams, LIFParams, ReadScheme, TileSpec
from rram_cosim.models.snn.lsm import run_reservoir
from rram_cosim.models.tile.backend import BoundTile
from rram_cosim.models.tile.ideal import IdealBackend
from rram_cosim.models.tile.sparse_read import grouped_drives
from rram_cosim.models.tile.surrogate import TileSurrogate

N_IN, HIDDEN, T_STEPS = 256, 200, 50


# the read schemes --part paths and --part density compare: (label, rows per read)
SCHEMES = (("64 rows per read", 64), ("whole map", 0))


def _with_read(spec: TileSpec, rows_per_read: int) -> TileSpec:
    return dataclasses.replace(spec, read=ReadScheme(rows_per_read=rows_per_read))


def _surrogate(spec: TileSpec, cal: str, rng: np.random.Generator) -> TileSurrogate:
    t0 = time.perf_counter()
    maps = calibration_maps((spec.rows, spec.cols), 2, rng, DeviceParams(), spec)
    ref = make_backend("nodal", spec) if cal == "nodal" else IdealBackend(spec)
    samples = simulate(ref, maps, [calibration_inputs(spec.rows, 8, rng) for _ in maps], rng)
    sur = fit_surrogate(spec, samples, read_noise_sigma_us=0.1, provenance={})
    print(f"surrogate fitted on {cal} results: {time.perf_counter() - t0:.1f} s")
    return sur


def _rate(tile: BoundTile, frames: np.ndarray, lif: LIFParams, repeats: int) -> tuple[float, np.ndarray]:
    """Samples per CPU second of this process (one thread; other jobs on the shared cores
    stretch wall time, not this), best of ``repeats``, and the spike counts."""
    best, feats = np.inf, None
    for _ in range(repeats):
        t0 = time.process_time()
        feats, _ = run_reservoir(tile, frames, lif, np.random.default_rng(1))
        best = min(best, time.process_time() - t0)
    return frames.shape[0] / best, feats


class _Recorder:
    """A bound tile that keeps the drives of every VMM it is asked for (the reservoir's own)."""

    def __init__(self, tile: BoundTile) -> None:
        self.tile, self.g_pos_us, self.drives = tile, tile.g_pos_us, []

    def apply(self, x: np.ndarray, rng: np.random.Generator | None):
        self.drives.append(np.array(x))
        return self.tile.apply(x, rng)


def _product_share(tile: BoundTile, frames: np.ndarray, lif: LIFParams, repeats: int
                   ) -> tuple[float, float, float]:
    """CPU seconds of a dense run, of its products alone and of the event-driven products
    alone (best of ``repeats`` each).

    The dense products are the dense reads' own: per step and row group, a batch x
    rows-of-the-group times rows-of-the-group x columns product for the G+ and for the G-
    columns, on the drives the run produced; the event-driven ones build the sparse matrix of
    the same drives and multiply it as the sparse path does. The dense products' share bounds
    what any event-driven product can gain (Amdahl): the TIA, ADC, noise and neuron work of
    every read stays.
    """
    rec = _Recorder(tile)
    run_reservoir(rec, frames, lif, np.random.default_rng(1))
    groups = tile.spec.read.row_groups(tile.g_pos_us.shape[0])
    tp, tn = np.asarray(tile.g_pos_us), np.asarray(tile.g_neg_us)
    t_both = np.concatenate([tp, tn], axis=1)
    total, prod, sparse = np.inf, np.inf, np.inf
    for _ in range(repeats):
        t0 = time.process_time()
        run_reservoir(tile, frames, lif, np.random.default_rng(1))
        total = min(total, time.process_time() - t0)
        t0 = time.process_time()
        for d in rec.drives:
            for start, stop in groups:
                d[:, start:stop] @ tp[start:stop]
                d[:, start:stop] @ tn[start:stop]
        prod = min(prod, time.process_time() - t0)
        t0 = time.process_time()
        for d in rec.drives:
            grouped_drives(d, groups) @ t_both
        sparse = min(sparse, time.process_time() - t0)
    return total, prod, sparse


def _compare(name: str, tile: BoundTile, frames: np.ndarray, lif: LIFParams, repeats: int) -> float:
    """Dense and sparse rates of one bound tile, alternating; returns sparse / dense."""
    rates = {"dense": 0.0, "sparse": 0.0}
    feats: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for path in ("dense", "sparse"):
            tile.vmm = path
            r, feats[path] = _rate(tile, frames, lif, 1)
            rates[path] = max(rates[path], r)
    tile.vmm = "dense"
    same = bool(np.array_equal(feats["dense"], feats["sparse"]))
    spikes = feats["dense"].sum() / (frames.shape[0] * frames.shape[1])
    ratio = rates["sparse"] / rates["dense"]
    total, prod, sparse = _product_share(tile, frames, lif, repeats)
    print(f"{name:26s}: dense {rates['dense']:7.1f}, event-driven {rates['sparse']:7.1f} "
          f"samples/s, ratio {ratio:.2f}x; spike counts identical: {same} "
          f"({spikes:.1f} spikes a step); dense products {prod / total:.0%} of the dense CPU "
          f"time, so at most {total / (total - prod):.2f}x with a product at no cost; "
          f"products alone: dense {prod:.3f} s, event-driven {sparse:.3f} s "
          f"({prod / sparse:.2f}x)", flush=True)
    return ratio


def part_paths(args: argparse.Namespace, spec: TileSpec) -> None:
    rng = np.random.default_rng(0)
    gp, gn = differential_pair((spec.rows, spec.cols), rng)
    lif = LIFParams(hidden=HIDDEN, v_th=10.0, rec_level=0.25)
    frames = (rng.random((args.samples, T_STEPS, N_IN)) < args.density).astype(np.uint8)
    by_density = {d: (rng.random((args.samples, T_STEPS, N_IN)) < d).astype(np.uint8)
                  for d in (float(v) for v in args.densities.split(",") if v)}
    print(f"batch {args.samples}, best of {args.repeats}, samples per CPU second")
    for label, rows_per_read in SCHEMES:
        sp = _with_read(spec, rows_per_read)
        sur = _surrogate(sp, args.cal, np.random.default_rng(0))
        print(f"-- {label}, input density {args.density:g}")
        _compare("ideal", IdealBackend(sp).bind(gp, gn), frames, lif, args.repeats)
        _compare("ideal, 0.1 uS noise", IdealBackend(sp, read_noise_sigma_us=0.1).bind(gp, gn),
                 frames, lif, args.repeats)
        _compare("surrogate (0.1 uS)", sur.bind(gp, gn), frames, lif, args.repeats)
        tile = IdealBackend(sp).bind(gp, gn)
        for dens, fr in by_density.items():
            _compare(f"ideal, input density {dens:g}", tile, fr, lif, args.repeats)


def part_density(args: argparse.Namespace, spec: TileSpec) -> None:
    rng = np.random.default_rng(0)
    gp, gn = differential_pair((spec.rows, spec.cols), rng)
    densities = [float(v) for v in args.drive_densities.split(",")]
    print(f"ideal {spec.rows} x {spec.cols} tile, batch {args.samples}, random binary drives, "
          f"one VMM, best of {args.repeats}: dense / sparse CPU time")
    for label, rows_per_read in SCHEMES:
        tile = IdealBackend(_with_read(spec, rows_per_read)).bind(gp, gn)
        ratios = []
        for dens in densities:
            x = (rng.random((args.samples, spec.rows)) < dens).astype(float)
            best = {"dense": np.inf, "sparse": np.inf}
            for _ in range(args.repeats):
                for path in ("dense", "sparse"):
                    tile.vmm = path
                    t0 = time.process_time()
                    for _ in range(20):
                        tile.apply(x, rng)
                    best[path] = min(best[path], time.process_time() - t0)
            ratios.append(best["dense"] / best["sparse"])
        print(f"{label:18s}: " + ", ".join(f"{r:.2f} at {d:g}" for d, r in zip(densities, ratios)),
              flush=True)


def part_backends(args: argparse.Namespace, spec: TileSpec) -> None:
    rng = np.random.default_rng(0)
    sur = _surrogate(spec, args.cal, rng)
    gp, gn = differential_pair((spec.rows, spec.cols), rng)
    frames = (rng.random((args.samples, T_STEPS, N_IN)) < args.density).astype(np.uint8)
    lif = LIFParams(hidden=HIDDEN, v_th=10.0, rec_level=0.25)
    rates = {}
    binders = {
        "ideal": lambda: IdealBackend(spec).bind(gp, gn),
        "surrogate": lambda: sur.bind(gp, gn),
        "surrogate-wl": lambda: bind_for_workload(sur, gp, gn, frames[:200], lif,
                                                  np.random.default_rng(2)),
    }
    for name, bind in binders.items():
        t0 = time.perf_counter()
        tile = bind()
        bind_s = time.perf_counter() - t0
        rates[name], _ = _rate(tile, frames, lif, args.repeats)
        print(f"{name:12s}: {rates[name]:8.1f} samples/s (bind {bind_s:.2f} s, "
              f"best of {args.repeats})")
    for name in ("surrogate", "surrogate-wl"):
        print(f"{name} / ideal time per sample: {rates['ideal'] / rates[name]:.2f}x "
              "(target: at most 3x)")


def main() -> None:
    # A reservoir run keeps its heap busy, so glibc keeps the heap's top; a loop of single
    # VMMs (--part density) does not, and returned the sparse path's product array (6.5 MB
    # at 8 row groups) to the system after every VMM, to fault it in again on the next: 13 ms
    # against 5.9 ms a VMM at density 0.08 (measured). Keep the heap in every part, as a run.
    keep_heap()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["paths", "density", "backends"], default="paths")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--density", type=float, default=0.05, help="input events per row and step")
    ap.add_argument("--densities", default="0.01",
                    help="comma list: input densities of the ideal tile (--part paths)")
    ap.add_argument("--drive-densities", default="0.002,0.01,0.03,0.08",
                    help="comma list: drive densities of --part density")
    ap.add_argument("--rows-per-read", type=int, default=64,
                    help="--part backends: rows per read, 0: the whole map at once")
    ap.add_argument("--cal", choices=["nodal", "ideal"], default="nodal")
    args = ap.parse_args()
    spec = TileSpec(rows=N_IN + HIDDEN, cols=HIDDEN)
    spec = _with_read(spec, args.rows_per_read)
    parts = {"paths": part_paths, "density": part_density, "backends": part_backends}
    parts[args.part](args, spec)


if __name__ == "__main__":
    main()
