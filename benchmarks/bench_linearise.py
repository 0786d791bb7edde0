"""Open-loop error of the surrogate's linearisations on a reservoir's own drive vectors.

The fidelity network of ``bench_fidelity.py`` (32 inputs, 32 LIF neurons, 64 rows x 64
physical columns, the same map): the reservoir runs the test split through the surrogate and
600 of its drive vectors (input rows at level 1, recurrent rows at 0.25; mean level ~0.19,
~28 % of rows driven) are solved by the nodal engine (ngspice's equations, 1e-12). Each
linearisation then predicts the column currents of the last 200 of them; the script prints the
RMS and mean error in ADC LSB and the fraction of identical ADC codes:

- tangent at 0.5 of v_read (the default without a profile) and at the workload's mean level;
- ``workload``: TileSurrogate.with_drive (per-row chord, offset from 16 exact solves);
- the best any linear model can do: least squares on the circuit's own currents of 400 of the
  vectors, scored on the other 200 (a floor, not a usable model: it needs the circuit's answers).

    .venv/bin/python benchmarks/bench_linearise.py
"""

from __future__ import annotations

import numpy as np
from bench_fidelity import pooled_frames
from rram_cosim.cosim.engines.calibrate import (
    calibration_inputs,
    calibration_maps,
    fit_surrogate,
    probe_workload,
    record_drive,
    simulate,
)
from rram_cosim.cosim.engines.registry import make_backend
from rram_cosim.models.device.conductance import differential_pair
from rram_cosim.models.params import DeviceParams, LIFParams, TileSpec
from rram_cosim.models.tile.periphery import adc_codes, current_lsb_ua, dac_volts, tia_out_v
from rram_cosim.models.tile.surrogate import interleave


def main() -> None:
    # the network of bench_fidelity.py: same generator calls in the same order
    rng = np.random.default_rng(0)
    n_in, h = 32, 32
    spec = TileSpec(rows=n_in + h, cols=h)
    maps = calibration_maps((n_in + h, h), 3, rng, DeviceParams(), spec)
    cal = simulate(make_backend("nodal", spec), maps,
                   [calibration_inputs(n_in + h, 24, rng) for _ in maps], rng)
    sur = fit_surrogate(spec, cal, read_noise_sigma_us=0.0, provenance={})
    x_tr, _ = pooled_frames("train", 400, 50)
    x_te, _ = pooled_frames("test", 100, 50)
    gp, gn = differential_pair((n_in + h, h), rng)
    lif = LIFParams(hidden=h, v_th=5.0, rec_level=0.25)
    wl = probe_workload(sur.bind(gp, gn), x_tr, lif, np.random.default_rng(1))
    sur.linearise_level = wl.mean_level
    drive = record_drive(sur.bind(gp, gn), x_te, lif, np.random.default_rng(3))
    drive = drive[np.random.default_rng(5).choice(len(drive), 600, replace=False)]
    sol = make_backend("nodal", spec).bind(gp, gn).solve(drive)
    truth_ua, truth_codes = sol.i_col_ua, adc_codes(sol.v_o, spec)
    lsb = current_lsb_ua(spec)
    held = slice(400, 600)

    def row(name: str, i_ua: np.ndarray) -> None:
        e = (i_ua[held] - truth_ua[held]) / lsb
        same = np.mean(adc_codes(tia_out_v(i_ua[held], spec), spec) == truth_codes[held])
        print(f"| {name} | {np.sqrt(np.mean(e**2)):.4f} | {e.mean():+.4f} | "
              f"{np.abs(e).max():.3f} | {same:.4f} |")

    def currents(s) -> np.ndarray:
        return interleave(*s.bind(gp, gn).currents(drive))

    print(f"drive: {len(drive)} vectors, {drive.mean():.3f} mean level, "
          f"{(drive > 0).mean():.3f} of rows driven; scored on the last 200; "
          f"1 LSB = {lsb * 1e3:.2f} nA\n")
    print("| linearisation | RMS error (LSB) | mean error (LSB) | max (LSB) | identical codes |\n"
          "|---|---|---|---|---|")
    for level in (0.5, wl.mean_level):
        sur.linearise_level = level
        row(f"tangent at {level:.3f} of v_read", currents(sur))
    row("workload (with_drive)", currents(sur.with_drive(wl.drive_profile(
        np.random.default_rng(4)))))
    v = np.hstack([dac_volts(drive, spec), np.ones((len(drive), 1))])
    coef, *_ = np.linalg.lstsq(v[:400], truth_ua[:400], rcond=None)
    row("least squares on the circuit's currents of the first 400 (floor)", v @ coef)


if __name__ == "__main__":
    main()
