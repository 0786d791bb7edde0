"""Cost of holding out a task surrogate's corner families beside its calibration (nodal).

Calibrates as ``classify`` does without ``--surrogate`` (3 maps x 24 vectors on the nodal
engine, then the fit) and times :func:`~rram_cosim.cosim.engines.calibrate.check_families` on
the two task families (full-scale and G+ only, 2 maps x 5 vectors), at one tile size.

    .venv/bin/python benchmarks/bench_task_check.py --rows 456 --cols 201
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from rram_cosim.cosim.engines.calibrate import (
    calibration_inputs,
    calibration_maps,
    check_families,
    fit_surrogate,
    simulate,
)
from rram_cosim.cosim.engines.registry import make_backend
from rram_cosim.models.params import DeviceParams, TileSpec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=456)
    ap.add_argument("--cols", type=int, default=201)
    ap.add_argument("--r-wire", type=float, default=1.0)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    spec = TileSpec(rows=args.rows, cols=args.cols, r_wire_ohm=args.r_wire)
    rng = np.random.default_rng(0)
    dev = DeviceParams()
    t0 = time.perf_counter()
    maps = calibration_maps((args.rows, args.cols), 3, rng, dev, spec)
    inputs = [calibration_inputs(args.rows, 24, rng) for _ in maps]
    samples = simulate(make_backend("nodal", spec), maps, inputs, rng)
    sur = fit_surrogate(spec, samples, read_noise_sigma_us=dev.read_noise_sigma_us,
                        provenance={})
    t_cal = time.perf_counter() - t0
    g = np.concatenate([np.concatenate([a.ravel(), b.ravel()]) for a, b in maps])
    t0 = time.perf_counter()
    w = check_families(spec, sur, float(g[g > 0].min()), rng)
    t_chk = time.perf_counter() - t0
    print(f"{args.rows}x{args.cols}, {args.r_wire:g} ohm: calibration (3 maps x 24 vectors, "
          f"fit) {t_cal:.1f} s; check_families (2 maps x 5 vectors) {t_chk:.1f} s; worst "
          f"{w['rms_lsb']:.3g} LSB RMS ({w['rms_family']}), {w['max_lsb']:.3g} LSB max "
          f"({w['max_family']}) over {w['reads_per_vmm']} reads per VMM; bars "
          f"{'met' if w['meets_bars'] else 'missed'}")


if __name__ == "__main__":
    main()
