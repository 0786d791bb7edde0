"""Fidelity in the loop: surrogate-backed vs circuit-backed reservoir on the same network.

A reduced network that circuit-level backends can run: 32 inputs (digits-events ON events,
16x16 crop max-pooled to 8x4) and 32 LIF neurons on a 64x32 differential map (64 rows x 64
physical columns), every VMM of every step through the backend. The readout is trained on
surrogate features of the training split; the test split then runs through the surrogate and
through the circuit (ngspice by default, or the nodal engine, which equals ngspice to 1e-12),
and the script prints the fraction of test samples with the same predicted class and the
fraction of (sample, neuron) spike counts that agree exactly.

    .venv/bin/python benchmarks/bench_fidelity.py [--circuit spice|nodal] [--n-test 100]
        [--linearise workload|mean|LEVEL] [--floor] [--n-in 32|64] [--rows-per-read R]
    .venv/bin/python benchmarks/bench_fidelity.py --task zeroshot [--circuit nodal] ...
    .venv/bin/python benchmarks/bench_fidelity.py --smoke [--task zeroshot]   # seconds

Read scheme: the tile's default (the board's, 64 rows per read) unless ``--rows-per-read``
says otherwise. The 32-input network's map has 64 rows, one read per VMM; ``--n-in 64``
(16x16 pooled 2x2 to 8x8) makes it 96 rows, so every VMM is two reads whose codes add.

``--task zeroshot``: the image + neural-sim pair on one shared map (image encoder: an 8x8
centre crop, 64 inputs; a 16-channel simulated population; 32 shared recurrent neurons: 112
rows x 64 physical columns, two reads per VMM on the board scheme). The heads are trained on
surrogate features of the seen classes; the unseen-class queries (neural) and gallery
(images) then run through the surrogate and through the circuit, and the script prints the
fraction of queries whose retrieved class (nearest gallery image's) is the same (target
>= 0.99), with the retrieval accuracy of both.

``--linearise workload`` (default) linearises the surrogate for the reservoir's measured drive
(per-row chord, offset from exact solves of its own drive vectors: TileSurrogate.with_drive);
``mean`` the tangent at the mean drive level; a number, the tangent at that level.

``--floor`` adds two circuits perturbed far below any model error the surrogate could be
blamed for (wires 0.1 % more resistive, 0.1 C warmer) and compares them with the unperturbed
one: the fraction of class (or retrieval) flips they cause is the sensitivity of the network
itself.
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
from rram_cosim.models.params import DeviceParams, LIFParams, ReadScheme, TileSpec
from rram_cosim.models.snn.heads import SoftmaxReadout
from rram_cosim.models.snn.lsm import run_reservoir
from scipy.stats import binomtest


def pooled_frames(split: str, n: int, n_steps: int,
                  n_in: int = 32) -> tuple[np.ndarray, np.ndarray]:
    ds = load_dataset("digits-events", split, seed=0, n_samples=n)
    f = to_frames(ds, n_steps, crop=16, polarities=(1,)).reshape(len(ds), n_steps, 16, 16)
    # max-pooling 2 rows x 4 columns (16x16 -> 8x4 = 32 inputs) or 2 x 2 (8x8 = 64)
    pc = 4 if n_in == 32 else 2
    f = f.reshape(len(ds), n_steps, 8, 2, 16 // pc, pc).max(axis=(3, 5))
    return f.reshape(len(ds), n_steps, n_in), np.asarray(ds.labels)


def _surrogate(spec: TileSpec, rng: np.random.Generator) -> object:
    """A noise-free surrogate calibrated on the nodal engine for ``spec``."""
    t0 = time.perf_counter()
    shape = (spec.rows, spec.cols)
    maps = calibration_maps(shape, 3, rng, DeviceParams(), spec)
    cal = simulate(make_backend("nodal", spec), maps,
                   [calibration_inputs(spec.rows, 24, rng) for _ in maps], rng)
    sur = fit_surrogate(spec, cal, read_noise_sigma_us=0.0, provenance={})
    print(f"surrogate fitted on nodal results in {time.perf_counter() - t0:.1f} s; read "
          f"scheme: {spec.rows_per_read} rows per read, "
          f"{len(spec.read.row_groups(spec.rows))} read(s) per VMM")
    return sur


def _wilson(same: np.ndarray) -> str:
    ci = binomtest(int(same.sum()), same.size).proportion_ci(method="wilson")
    return f"{same.mean():.4f} [{ci.low:.3f}, {ci.high:.3f}] ({int(same.sum())}/{same.size})"


def zeroshot_fidelity(args: argparse.Namespace) -> None:
    """The zero-shot pair in the loop: same retrieved class, surrogate vs circuit."""
    from rram_cosim.cosim.tasks.zeroshot import (
        EncoderView,
        MapLayout,
        ZeroshotConfig,
        bind_shared_map,
        draw_shared_map,
        lif_grid,
        load_modalities,
        retrieval_sets,
        train_heads,
    )
    from rram_cosim.models.snn.contrastive import nearest_labels

    cfg = ZeroshotConfig(crop=8, neurons=args.zs_neurons, hidden=32, v_th=(5.0,),
                         rec_level=(0.25,), temperature=(0.3,), epochs=args.zs_epochs,
                         eval_every=args.zs_epochs, n_train=args.n_train, n_val=args.n_val,
                         n_test=args.n_test, n_steps=args.n_steps, backends=("surrogate",),
                         linearise="workload" if args.linearise == "workload" else "tangent")
    image, other = load_modalities(cfg)
    lay = MapLayout(image.n_in, other.n_in, cfg.hidden)
    spec = TileSpec(rows=lay.shape[0], cols=lay.shape[1], read=_scheme(args))
    sur = _surrogate(spec, np.random.default_rng(0))
    gp, gn = draw_shared_map(lay, 0)
    bound = bind_shared_map(cfg, "surrogate", sur, gp, gn, lay, image, other, 0)
    print(f"shared map {lay.shape[0]} x {lay.shape[1]} ({image.n_in} image + {other.n_in} "
          f"neural + {cfg.hidden} recurrent rows); surrogate linearised: "
          f"{'workload (both encoders)' if bound.model.drive_ is not None else 'tangent'}")
    lif_i, lif_o = lif_grid(cfg, other.audio)[0]

    splits = ["train", "val", "test", "seen_test"]

    def feats(tile: object, mod: object, lif: LIFParams, enc: str, which: list[str]
              ) -> dict[str, np.ndarray]:
        # one generator stream per split, the same for the surrogate and the circuit
        view = EncoderView(tile, lay.rows_of(enc))
        return {s: run_reservoir(view, mod.frames[s], lif,
                                 np.random.default_rng([3, splits.index(s)]),
                                 batch_size=max(len(mod.frames[s]), 1))[0]
                for s in which}

    fi, fo = feats(bound, image, lif_i, "image", splits), feats(bound, other, lif_o, "other",
                                                               splits)
    data = retrieval_sets(fi, fo, image.labels, other.labels, (), cfg.pairing_mode ==
                          "instance")["full"]
    heads = train_heads(cfg, data["train"], {"temperature": 0.3, "activation": "linear",
                                             "positives": "pair"}, np.random.default_rng(4))
    t0 = time.perf_counter()
    circuit = make_backend(args.circuit, spec).bind(gp, gn)
    ci = feats(circuit, image, lif_i, "image", ["test"])["test"]
    co = feats(circuit, other, lif_o, "other", ["test"])["test"]
    t_cir = time.perf_counter() - t0
    gl = image.labels["test"]

    def retrieved(q: np.ndarray, g: np.ndarray) -> np.ndarray:
        return nearest_labels(heads.transform_b(q), heads.transform_a(g), gl, 1)[:, 0]

    r_sur, r_cir = retrieved(fo["test"], fi["test"]), retrieved(co, ci)
    ql = other.labels["test"]
    n_vmm = len(ci) * image.frames["test"].shape[1] + len(co) * other.frames["test"].shape[1]
    print(f"unseen queries: {len(ql)}, gallery images: {len(gl)}; VMMs through "
          f"{args.circuit}: {n_vmm} ({t_cir:.1f} s)")
    print(f"\n| compared with {args.circuit} | same retrieved class [95 % Wilson] | "
          "identical spike counts (queries, gallery) |\n|---|---|---|")
    print(f"| surrogate | {_wilson(r_sur == r_cir)} | {np.mean(fo['test'] == co):.4f}, "
          f"{np.mean(fi['test'] == ci):.4f} |")
    if args.floor:  # the circuit against itself after a tiny change: the network's sensitivity
        for name, sp in _perturbed(spec):
            perturbed = make_backend("nodal", sp).bind(gp, gn)
            pi = feats(perturbed, image, lif_i, "image", ["test"])["test"]
            po = feats(perturbed, other, lif_o, "other", ["test"])["test"]
            print(f"| {name} | {_wilson(retrieved(po, pi) == r_cir)} | "
                  f"{np.mean(po == co):.4f}, {np.mean(pi == ci):.4f} |")
    print(f"\n(target: same retrieved class >= 0.99)\nunseen top-1: surrogate "
          f"{np.mean(r_sur == ql):.3f}, {args.circuit} {np.mean(r_cir == ql):.3f}")


def _perturbed(spec: TileSpec) -> list[tuple[str, TileSpec]]:
    """The circuit after changes far below any model error: wires 0.1 % more resistive (the
    override, or both lines' sheet resistance), and 0.1 C warmer."""
    if spec.r_wire_ohm is not None:
        wires = replace(spec, r_wire_ohm=spec.r_wire_ohm * 1.001)
    else:
        wires = replace(spec, row_wire=replace(spec.row_wire, sheet_ohm_per_sq=1.001
                                               * spec.row_wire.sheet_ohm_per_sq),
                        col_wire=replace(spec.col_wire, sheet_ohm_per_sq=1.001
                                         * spec.col_wire.sheet_ohm_per_sq))
    return [("nodal, wires x 1.001", wires),
            ("nodal, T + 0.1 C", replace(spec, temperature_c=spec.temperature_c + 0.1))]


def _scheme(args: argparse.Namespace) -> ReadScheme:
    """The tile's default read scheme (the board's), with ``--rows-per-read`` if given."""
    rs = ReadScheme()
    return rs if args.rows_per_read is None else replace(rs, rows_per_read=args.rows_per_read)


def _agreement(name: str, f_a: np.ndarray, f_b: np.ndarray, clf: SoftmaxReadout) -> str:
    same = clf.predict(f_a) == clf.predict(f_b)
    ci = binomtest(int(same.sum()), same.size).proportion_ci(method="wilson")
    return (f"| {name} | {same.mean():.4f} [{ci.low:.3f}, {ci.high:.3f}] | "
            f"{np.mean(f_a == f_b):.4f} | {np.mean(np.abs(f_a - f_b)):.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=["classify", "zeroshot"], default="classify")
    ap.add_argument("--circuit", choices=["spice", "nodal"], default=None,
                    help="circuit reference (default: spice for classify, nodal for zeroshot, "
                         "whose 112-row map costs ngspice minutes a vector)")
    ap.add_argument("--n-train", type=int, default=400)
    ap.add_argument("--n-val", type=int, default=0, help="zeroshot: validation samples (0: all)")
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--n-in", type=int, choices=[32, 64], default=32,
                    help="classify: network inputs (64: a 96-row map, two board reads a VMM)")
    ap.add_argument("--rows-per-read", type=int, default=None,
                    help="rows driven per read (default: the tile's default read scheme, "
                         "the board's 64)")
    ap.add_argument("--zs-neurons", type=int, default=16, help="zeroshot: neural-sim channels")
    ap.add_argument("--zs-epochs", type=int, default=60, help="zeroshot: head training epochs")
    ap.add_argument("--smoke", action="store_true",
                    help="a run of seconds on the nodal engine with a few samples: checks the "
                         "script, measures nothing")
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
    if args.smoke:
        args.circuit, args.n_train, args.n_test, args.n_steps = "nodal", 40, 6, 8
        if args.task == "zeroshot":  # every seen class needs test samples: a larger split
            args.n_train, args.n_test = 60, 60
        args.n_val, args.zs_epochs = 40, 10
    if args.circuit is None:
        args.circuit = "spice" if args.task == "classify" else "nodal"
    if args.task == "zeroshot":
        zeroshot_fidelity(args)
        return
    rng = np.random.default_rng(0)
    n_in, h = args.n_in, 32
    spec = TileSpec(rows=n_in + h, cols=h, read=_scheme(args))
    sur = _surrogate(spec, rng)
    x_tr, y_tr = pooled_frames("train", args.n_train, args.n_steps, n_in)
    x_te, y_te = pooled_frames("test", args.test_offset + args.n_test, args.n_steps, n_in)
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
        for name, sp in _perturbed(spec):
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
