"""Samples/s of the LIF reservoir: dense against event-driven VMMs, and backends, in one run.

The paper's image network: 256 inputs + 200 recurrent rows, 200 neurons, T = 50, batch 256,
inputs drawn at ``--density`` (5 % by default); the tile reads as the board does (64 rows per
read, 8 reads a VMM) unless ``--rows-per-read`` says otherwise. One core (BLAS threads set to
1 before numpy loads).

``--part paths`` (default): each backend (``ideal`` without read noise, ``ideal`` with 0.1 uS,
the ``surrogate`` with its fitted 0.1 uS) runs the same frames with ``vmm="dense"`` and
``vmm="sparse"`` (:mod:`rram_cosim.models.tile.sparse_read`), alternating, best of
``--repeats``; prints samples per CPU second, the ratio, and whether the spike counts are
identical.
``--densities 0.05,0.2,...`` repeats the ideal tile's comparison over input densities (how
``SPARSE_MAX_DENSITY`` was chosen; the recurrent spikes add their own density, printed).

``--part backends``: ideal vs surrogate-backed weights (dense path), and the surrogate
linearised for this reservoir's drive (``bind_for_workload``: its "bind" time includes the
probe run on 200 samples). Per sample it is the same matrix product, so its rate should match
the tangent's.

The surrogate is fitted on nodal-engine results of the same 456 x 200 tile (no ngspice needed;
``--cal ideal`` fits it on ideal-model currents instead, quicker: the VMM's cost does not depend
on the fitted values, the spiking activity does).

    .venv/bin/python benchmarks/bench_reservoir.py [--part paths] [--samples 256] [--repeats 3]
        [--density 0.05] [--densities 0.05,0.1,0.2,0.3,0.4] [--cal nodal|ideal]
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
from rram_cosim.models.device.conductance import differential_pair
from rram_cosim.models.params import DeviceParams, LIFParams, ReadScheme, TileSpec
from rram_cosim.models.snn.lsm import run_reservoir
from rram_cosim.models.tile.ideal import IdealBackend

N_IN, HIDDEN, T_STEPS = 256, 200, 50


def _surrogate(spec: TileSpec, cal: str, rng: np.random.Generator):
    t0 = time.perf_counter()
    maps = calibration_maps((spec.rows, spec.cols), 2, rng, DeviceParams(), spec)
    ref = make_backend("nodal", spec) if cal == "nodal" else IdealBackend(spec)
    samples = simulate(ref, maps, [calibration_inputs(spec.rows, 8, rng) for _ in maps], rng)
    sur = fit_surrogate(spec, samples, read_noise_sigma_us=0.1, provenance={})
    print(f"surrogate fitted on {cal} results: {time.perf_counter() - t0:.1f} s")
    return sur


def _rate(tile, frames: np.ndarray, lif: LIFParams, repeats: int) -> tuple[float, np.ndarray]:
    """Samples per CPU second of this process (one thread; other jobs on the shared cores
    stretch wall time, not this), best of ``repeats``, and the spike counts."""
    best, feats = np.inf, None
    for _ in range(repeats):
        t0 = time.process_time()
        feats, _ = run_reservoir(tile, frames, lif, np.random.default_rng(1))
        best = min(best, time.process_time() - t0)
    return frames.shape[0] / best, feats


def _compare(name: str, tile, frames: np.ndarray, lif: LIFParams, repeats: int) -> float:
    """Dense and sparse rates of one bound tile, alternating; returns sparse / dense."""
    rates, feats = {"dense": 0.0, "sparse": 0.0}, {}
    for _ in range(repeats):
        for path in ("dense", "sparse"):
            tile.vmm = path
            r, feats[path] = _rate(tile, frames, lif, 1)
            rates[path] = max(rates[path], r)
    tile.vmm = "dense"
    same = bool(np.array_equal(feats["dense"], feats["sparse"]))
    spikes = feats["dense"].sum() / (frames.shape[0] * frames.shape[1])
    ratio = rates["sparse"] / rates["dense"]
    print(f"{name:22s}: dense {rates['dense']:7.1f}, event-driven {rates['sparse']:7.1f} "
          f"samples/s, ratio {ratio:.2f}x; spike counts identical: {same} "
          f"({spikes:.1f} spikes a step)", flush=True)
    return ratio


def part_paths(args: argparse.Namespace, spec: TileSpec) -> None:
    rng = np.random.default_rng(0)
    sur = _surrogate(spec, args.cal, rng)
    gp, gn = differential_pair((spec.rows, spec.cols), rng)
    lif = LIFParams(hidden=HIDDEN, v_th=10.0, rec_level=0.25)
    frames = (rng.random((args.samples, T_STEPS, N_IN)) < args.density).astype(np.uint8)
    print(f"input density {args.density:g}, batch {args.samples}, {spec.read.rows_per_read or 'all'}"
          f" rows per read, best of {args.repeats}")
    _compare("ideal", IdealBackend(spec).bind(gp, gn), frames, lif, args.repeats)
    _compare("ideal, 0.1 uS noise", IdealBackend(spec, read_noise_sigma_us=0.1).bind(gp, gn),
             frames, lif, args.repeats)
    _compare("surrogate (0.1 uS)", sur.bind(gp, gn), frames, lif, args.repeats)
    if args.densities:
        tile = IdealBackend(spec).bind(gp, gn)
        for dens in (float(d) for d in args.densities.split(",")):
            fr = (rng.random((args.samples, T_STEPS, N_IN)) < dens).astype(np.uint8)
            _compare(f"ideal, input {dens:g}", tile, fr, lif, args.repeats)


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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["paths", "backends"], default="paths")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--density", type=float, default=0.05, help="input events per row and step")
    ap.add_argument("--densities", default="", help="comma list: ideal-tile density sweep")
    ap.add_argument("--rows-per-read", type=int, default=64, help="0: the whole map at once")
    ap.add_argument("--cal", choices=["nodal", "ideal"], default="nodal")
    args = ap.parse_args()
    spec = TileSpec(rows=N_IN + HIDDEN, cols=HIDDEN)
    spec = dataclasses.replace(spec, read=ReadScheme(rows_per_read=args.rows_per_read))
    (part_paths if args.part == "paths" else part_backends)(args, spec)


if __name__ == "__main__":
    main()
