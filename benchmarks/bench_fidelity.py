"""Fidelity in the loop: surrogate-backed vs circuit-backed reservoir on the same network.

A reduced network that circuit-level backends can run: 32 inputs (digits-events ON events,
16x16 crop max-pooled to 8x4) and 32 LIF neurons on a 64x32 differential map (64 rows x 64
physical columns), every VMM of every step through the backend. The readout is trained on
surrogate features of the training split; the test split then runs through the surrogate and
through the circuit (ngspice by default, or the nodal engine, which equals ngspice to 1e-12),
and the script prints the fraction of test samples with the same predicted class and the
fraction of (sample, neuron) spike counts that agree exactly.

    .venv/bin/python benchmarks/bench_fidelity.py [--circuit spice|nodal] [--n-test 100]
        [--linearise workload|mean|LEVEL] [--floor]

``--linearise workload`` (default) linearises the surrogate for the reservoir's measured drive
(per-row chord, offset from exact solves of its own drive vectors: TileSurrogate.with_drive);
``mean`` the tangent at the mean drive level; a number, the tangent at that level.

``--floor`` adds two circuits perturbed far below any model error the surrogate could be
blamed for (wires 0.1 % more resistive, 0.1 C warmer) and compares them with the unperturbed
one: the fraction of class flips they cause is the sensitivity of the network itself.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from rram_cosim.cosim.data.datasets import load_dataset, to_frames
from rram_cosim.cosim.engines.calibrate import (
    calibration_inputs,
    calibration_maps,
    fit_surrogate,
    probe_workload,
    simulate,
)
from rram_cosim.cosim.engines.registry import make_backend
from rram_cosim.models.device.conductance import differential_pair
from rram_cosim.models.params import DeviceParams, LIFParams, TileSpec
from rram_cosim.models.snn.heads import SoftmaxReadout
from rram_cosim.models.snn.lsm import run_reservoir
from scipy.stats import binomtest


def pooled_frames(split: str, n: int, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    ds = load_dataset("digits-events", split, seed=0, n_samples=n)
    f = to_frames(ds, n_steps, crop=16, polarities=(1,)).reshape(len(ds), n_steps, 16, 16)
    # 2 rows x 4 columns max-pooling: 16x16 -> 8x4 = 32 inputs
    f = f.reshape(len(ds), n_steps, 8, 2, 4, 4).max(axis=(3, 5))
    return f.reshape(len(ds), n_steps, 32), np.asarray(ds.labels)


def _agreement(name: str, f_a: np.ndarray, f_b: np.ndarray, clf: SoftmaxReadout) -> str:
    same = clf.predict(f_a) == clf.predict(f_b)
    ci = binomtest(int(same.sum()), same.size).proportion_ci(method="wilson")
    return (f"| {name} | {same.mean():.4f} [{ci.low:.3f}, {ci.high:.3f}] | "
            f"{np.mean(f_a == f_b):.4f} | {np.mean(np.abs(f_a - f_b)):.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuit", choices=["spice", "nodal"], default="spice")
    ap.add_argument("--n-train", type=int, default=400)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--test-offset", type=int, default=0,
                    help="skip this many test samples (to extend an earlier run with new ones)")
    ap.add_argument("--n-steps", type=int, default=50)
    ap.add_argument("--linearise", default="workload",
                    help="'workload' (drive profile measured on the training split), 'mean' "
                         "(tangent at its mean level) or a level in (0, 1] (tangent there)")
    ap.add_argument("--floor", action="store_true",
                    help="also run the nodal engine with r_wire x 1.001 and T + 0.1 C and compare "
                         "it with the unperturbed circuit: how sensitive the network itself is")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n_in, h = 32, 32
    spec = TileSpec(rows=n_in + h, cols=h)
    t0 = time.perf_counter()
    maps = calibration_maps((n_in + h, h), 3, rng, DeviceParams(), spec)
    cal = simulate(make_backend("nodal", spec), maps,
                   [calibration_inputs(n_in + h, 24, rng) for _ in maps], rng)
    sur = fit_surrogate(spec, cal, read_noise_sigma_us=0.0, provenance={})
    print(f"surrogate fitted on nodal results in {time.perf_counter() - t0:.1f} s")
    x_tr, y_tr = pooled_frames("train", args.n_train, args.n_steps)
    x_te, y_te = pooled_frames("test", args.test_offset + args.n_test, args.n_steps)
    x_te, y_te = x_te[args.test_offset:], y_te[args.test_offset:]
    if len(y_te) < args.n_test:
        raise SystemExit(f"the test split has {args.test_offset + len(y_te)} samples; lower "
                         "--n-test or --test-offset")
    gp, gn = differential_pair((n_in + h, h), rng)
    lif = LIFParams(hidden=h, v_th=5.0, rec_level=0.25)
    if args.linearise in ("workload", "mean"):
        wl = probe_workload(sur.bind(gp, gn), x_tr, lif, np.random.default_rng(1))
        sur.linearise_level = wl.mean_level
        if args.linearise == "workload":
            sur = sur.with_drive(wl.drive_profile(np.random.default_rng(4)))
            print(f"linearised for the measured drive ({len(wl.drives)} drive vectors kept, "
                  f"{len(sur.drive_.samples)} solved exactly)")
    else:
        sur.linearise_level = float(args.linearise)
    if sur.drive_ is None:
        print(f"tangent at level {sur.linearise_level:.3f} of v_read ({args.linearise})")
    st = sur.bind(gp, gn)
    f_tr, _ = run_reservoir(st, x_tr, lif, np.random.default_rng(1))
    clf = SoftmaxReadout(epochs=80).fit(f_tr, y_tr, rng=np.random.default_rng(2), n_classes=10)
    t0 = time.perf_counter()
    f_sur, _ = run_reservoir(st, x_te, lif, np.random.default_rng(3))
    t_sur = time.perf_counter() - t0
    circuit = make_backend(args.circuit, spec).bind(gp, gn)
    t0 = time.perf_counter()
    f_cir, _ = run_reservoir(circuit, x_te, lif, np.random.default_rng(3),
                             batch_size=args.n_test)
    t_cir = time.perf_counter() - t0
    print(f"test samples: {args.n_test} (from #{args.test_offset}), steps: {args.n_steps}, "
          f"VMMs through {args.circuit}: {args.n_test * args.n_steps}")
    print(f"\n| compared with {args.circuit} | same class [95 % Wilson] | identical counts | "
          "mean abs count diff |\n|---|---|---|---|")
    print(_agreement("surrogate", f_sur, f_cir, clf))
    if args.floor:
        for name, sp in (("nodal, r_wire x 1.001", replace(spec, r_wire_ohm=spec.r_wire_ohm
                                                           * 1.001)),
                         ("nodal, T + 0.1 C", replace(spec, temperature_c=spec.temperature_c
                                                      + 0.1))):
            f_p, _ = run_reservoir(make_backend("nodal", sp).bind(gp, gn), x_te, lif,
                                   np.random.default_rng(3), batch_size=args.n_test)
            print(_agreement(name, f_p, f_cir, clf))
    print(f"\n(target: same class >= 0.99; mean count {f_cir.mean():.2f} spikes)")
    print(f"test accuracy: surrogate {np.mean(clf.predict(f_sur) == y_te):.3f}, {args.circuit} "
          f"{np.mean(clf.predict(f_cir) == y_te):.3f}")
    print(f"time: surrogate {t_sur:.2f} s, {args.circuit} {t_cir:.1f} s "
          f"({t_cir / t_sur:.0f}x)")


if __name__ == "__main__":
    main()
