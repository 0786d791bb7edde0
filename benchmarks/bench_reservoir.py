"""Samples/s of the LIF reservoir with ideal vs surrogate-backed weights, measured in one run.

The paper's image network: 256 inputs + 200 recurrent rows, 200 neurons, T = 50, batch 256.
The surrogate is fitted here on nodal-engine results of the same 456x200 tile (no ngspice
needed, the nodal engine equals ngspice to 1e-12) and bound to the whole map, as on the macro;
``surrogate-wl`` is the same surrogate linearised for this reservoir's drive
(``bind_for_workload``: its "bind" time includes the probe run on 200 samples). Per sample it
is the same matrix product, so its rate should match the tangent's.

    .venv/bin/python benchmarks/bench_reservoir.py [--samples 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
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
from rram_cosim.models.params import DeviceParams, LIFParams, TileSpec
from rram_cosim.models.snn.lsm import run_reservoir
from rram_cosim.models.tile.ideal import IdealBackend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n_in, h, t = 256, 200, 50
    spec = TileSpec(rows=n_in + h, cols=h)
    t0 = time.perf_counter()
    maps = calibration_maps((n_in + h, h), 2, rng, DeviceParams(), spec)
    cal = simulate(make_backend("nodal", spec), maps,
                   [calibration_inputs(n_in + h, 8, rng) for _ in maps], rng)
    sur = fit_surrogate(spec, cal, read_noise_sigma_us=0.1, provenance={})
    print(f"surrogate calibration on the nodal engine: {time.perf_counter() - t0:.1f} s")
    gp, gn = differential_pair((n_in + h, h), rng)
    frames = (rng.random((args.samples, t, n_in)) < 0.05).astype(np.uint8)
    lif = LIFParams(hidden=h, v_th=10.0, rec_level=0.25)
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
        best = np.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run_reservoir(tile, frames, lif, np.random.default_rng(1))
            best = min(best, time.perf_counter() - t0)
        rates[name] = args.samples / best
        print(f"{name:12s}: {rates[name]:8.1f} samples/s (bind {bind_s:.2f} s, "
              f"best of {args.repeats})")
    for name in ("surrogate", "surrogate-wl"):
        print(f"{name} / ideal time per sample: {rates['ideal'] / rates[name]:.2f}x "
              "(target: at most 3x)")


if __name__ == "__main__":
    main()
