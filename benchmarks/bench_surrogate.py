"""The tile surrogate's error table and speeds, measured in one run.

Error table. For each tile size and wire resistance a surrogate is calibrated
(:func:`rram_cosim.cosim.engines.calibrate.calibrate_tile`: TIA full scale from the corner map, every
cell at ``g_full_scale_us`` with all rows on; calibration maps; held-out formed maps with
fresh spike inputs of densities 0 to 1) and its held-out error is printed next to the ideal
G.V model's, in LSB of the 14-bit ADC (current before quantisation, and codes after it) and
in % of full scale:

- ngspice reference: 32 x 32 and 64 x 64 weight tiles (64 and 128 physical columns);
- 128 rows (128 x 64 weights): ngspice is ~100x slower there, so the calibration and the
  held-out maps run on the nodal engine (equal to ngspice to 1e-12) and ``--spot-vectors``
  held-out vectors also run in ngspice: the row shows the surrogate's error against those
  and the largest nodal-ngspice difference;
- nodal reference: 256 x 128, 512 x 256 (the 512 x 512 macro) and the paper's 456 x 201 map.

Speeds (batch 256, bound once, median of repeated applies): the surrogate on a 64 x 64 tile;
the surrogate against the ideal backend on the paper's 456 x 201 map; ngspice (one uncached
``.dc`` sweep deck, and the 2-worker backend) and the nodal engine per vector; ratios. BLAS
threads: the defaults, and 1 thread (other jobs on a 2-core machine make multithreaded BLAS
erratic).

Usage::

    .venv/bin/python benchmarks/bench_surrogate.py [--wires 1 5] [--vectors 16]
        [--sizes 32 64 128 256 456 512] [--spot-vectors 2] [--csv results.csv] [--quick]

``--quick`` runs 32 and 64 rows (nodal only) and the speeds, in about a minute.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from rram_cosim.cosim.engines.calibrate import calibrate_tile
from rram_cosim.cosim.engines.nodal import NodalBackend
from rram_cosim.cosim.spice.backend import SpiceBackend
from rram_cosim.cosim.spice.runner import RunOptions, run_deck
from rram_cosim.models.device.conductance import differential_pair
from rram_cosim.models.errors import DomainWarning
from rram_cosim.models.params import DeviceParams, TileSpec, to_dict
from rram_cosim.models.tile.ideal import IdealBackend
from rram_cosim.models.tile.periphery import current_lsb_ua
from rram_cosim.models.tile.surrogate import TileSurrogate
from rram_cosim.netlists.tile import tile_deck
from threadpoolctl import threadpool_limits

# rows -> (weight columns, reference): the sizes of the tile error table (docs/tile.md)
SIZES = {32: (32, "spice"), 64: (64, "spice"), 128: (64, "nodal+spice"), 256: (128, "nodal"),
         456: (201, "nodal"), 512: (256, "nodal")}


def _spice_backend(spec: TileSpec, workers: int = 2) -> SpiceBackend:
    return SpiceBackend(spec, RunOptions(timeout_s=None), n_workers=workers, cache=True,
                        max_vectors_per_deck=64)


def error_row(rows: int, r_wire: float, n_vectors: int, n_maps: int, n_test: int,
              spot_vectors: int, seed: int, quick: bool) -> dict:
    cols, ref = SIZES[rows]
    if quick:
        ref = "nodal"
    spec = TileSpec(rows=rows, cols=cols, r_wire_ohm=r_wire)
    engine = "spice" if ref == "spice" else "nodal"
    opts = {"n_workers": 2, "cache": True, "run_options": RunOptions(timeout_s=None)} \
        if engine == "spice" else {}
    t0 = time.perf_counter()
    res = calibrate_tile(spec, reference=engine, n_maps=n_maps, n_test_maps=n_test,
                         n_vectors=n_vectors, seed=seed, reference_options=opts)
    el = time.perf_counter() - t0
    e = res.errors.set_index("backend")
    sur, ide = e.loc["surrogate"], e.loc["ideal"]
    bound = res.surrogate.with_noise(0.0)
    t1 = time.perf_counter()
    held0 = res.held_out[0]
    b0 = bound.bind(held0.g_pos_us, held0.g_neg_us)
    t_bind = time.perf_counter() - t1
    row = {
        "rows": rows, "weight_cols": cols, "phys_cols": 2 * cols, "r_wire_ohm": r_wire,
        "reference": ref, "held_out_vmm": n_test * n_vectors,
        "i_fs_ua": res.i_full_scale_ua, "lsb_na": current_lsb_ua(res.spec) * 1e3,
        "sur_rms_lsb": sur["rms_lsb"], "sur_max_lsb": sur["max_lsb"],
        "sur_rms_code": sur["rms_code_lsb"], "sur_max_code": sur["max_code_lsb"],
        "sur_rms_pct_fs": sur["rms_pct_fs"], "sur_max_pct_fs": sur["max_pct_fs"],
        "ideal_rms_lsb": ide["rms_lsb"], "ideal_max_lsb": ide["max_lsb"],
        "ideal_over_sur": ide["rms_lsb"] / sur["rms_lsb"],
        "bind_s": t_bind, "calibration_s": el,
    }
    if ref == "nodal+spice" and spot_vectors > 0:
        # ngspice on a few held-out vectors: the densest (all rows on) and spread ones
        idx = np.unique(np.linspace(len(held0.levels) - 1, len(held0.levels) // 2,
                                    spot_vectors).astype(int))
        x = held0.levels[idx]
        t2 = time.perf_counter()
        sp = _spice_backend(res.spec).bind(held0.g_pos_us, held0.g_neg_us).apply(x)
        row["spice_spot_s_per_vmm"] = (time.perf_counter() - t2) / len(idx)
        i_sp = np.concatenate([sp.i_pos_ua, sp.i_neg_ua], axis=1)
        i_no = np.concatenate([held0.i_pos_ua[idx], held0.i_neg_ua[idx]], axis=1)
        i_su = np.concatenate(b0.currents(x), axis=1)
        lsb = current_lsb_ua(res.spec)
        row["spot_vmm"] = len(idx)
        row["spot_sur_max_lsb"] = float(np.abs(i_su - i_sp).max() / lsb)
        row["spot_nodal_vs_spice_rel"] = float(np.abs(i_no - i_sp).max() / np.abs(i_sp).max())
    return row


def _median_time(fn, n: int) -> float:
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def speeds(seed: int, spice_vectors: int, quick: bool) -> dict:
    out: dict[str, float] = {}
    rng = np.random.default_rng(seed)
    dev = DeviceParams()
    for rows, cols, tag in ((64, 64, "64x64"), (456, 201, "456x201")):
        spec = TileSpec(rows=rows, cols=cols)
        gp, gn = differential_pair((rows, cols), rng, dev)
        # the level-1 surrogate uses the card as it is (no fit): calibrate a small tile and
        # carry it to this size (domain widened: speed, not accuracy, is measured here)
        small = calibrate_tile(TileSpec(rows=8, cols=4), reference="nodal", n_maps=1,
                               n_test_maps=1, n_vectors=4, seed=seed).surrogate.to_dict()
        small["spec"] = to_dict(spec)
        small["domain"] = dict(small["domain"], rows_max=rows, cols_max=cols)
        sur = TileSurrogate.from_dict(small)
        x = (rng.random((256, rows)) < 0.3).astype(np.float64)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DomainWarning)
            bs = sur.bind(gp, gn)
        out[f"surrogate_bind_s_{tag}"] = time.perf_counter() - t0
        bi = IdealBackend(spec, read_noise_sigma_us=dev.read_noise_sigma_us).bind(gp, gn)
        r = np.random.default_rng(1)
        for threads, label in ((None, ""), (1, "_1thread")):
            with threadpool_limits(limits=threads, user_api="blas"):
                ts, ti = [], []
                for _ in range(5):  # interleaved, so both see the same machine load
                    ts.append(_median_time(lambda b=bs, x=x, r=r: b.apply(x, r), 10))
                    ti.append(_median_time(lambda b=bi, x=x, r=r: b.apply(x, r), 10))
            out[f"surrogate_vmm_s_{tag}{label}"] = 256 / float(np.median(ts))
            out[f"ideal_vmm_s_{tag}{label}"] = 256 / float(np.median(ti))
            out[f"surrogate_over_ideal_time_{tag}{label}"] = float(np.median(ts) /
                                                                   np.median(ti))
    if not quick:
        # ngspice: one uncached deck of spice_vectors vectors (one process), 64 x 64
        spec = TileSpec(rows=64, cols=64)
        gp, gn = differential_pair((64, 64), rng, dev)
        x = (rng.random((spice_vectors, 64)) < 0.5).astype(np.float64)
        deck = tile_deck(spec, gp, gn, x)
        t0 = time.perf_counter()
        run_deck(deck, RunOptions(timeout_s=None, keep="never"))
        out["ngspice_vmm_s_64x64_one_deck"] = spice_vectors / (time.perf_counter() - t0)
        be = SpiceBackend(spec, RunOptions(timeout_s=None, keep="never"), n_workers=2,
                          cache=False)
        t0 = time.perf_counter()
        be.bind(gp, gn).apply(x)
        out["ngspice_vmm_s_64x64_2workers"] = spice_vectors / (time.perf_counter() - t0)
    # nodal engine, 512 x 256 (the macro), a few vectors
    spec = TileSpec(rows=512, cols=256) if not quick else TileSpec(rows=64, cols=64)
    gp, gn = differential_pair((spec.rows, spec.cols), rng, dev)
    x = (rng.random((4, spec.rows)) < 0.5).astype(np.float64)
    t0 = time.perf_counter()
    NodalBackend(spec).bind(gp, gn).solve(x)
    out[f"nodal_vmm_s_{spec.rows}x{spec.cols}"] = 4 / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256, 456, 512],
                    choices=sorted(SIZES))
    ap.add_argument("--wires", type=float, nargs="+", default=[1.0, 5.0])
    ap.add_argument("--vectors", type=int, default=16, help="input vectors per map")
    ap.add_argument("--cal-maps", type=int, default=2)
    ap.add_argument("--test-maps", type=int, default=2)
    ap.add_argument("--spot-vectors", type=int, default=2,
                    help="ngspice vectors checked at 128 rows")
    ap.add_argument("--spice-vectors", type=int, default=16,
                    help="vectors of the uncached ngspice speed deck (64 x 64)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--csv", type=Path, default=None, help="also write the error table here")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--speeds-only", action="store_true", help="skip the error table")
    args = ap.parse_args()
    sizes = [] if args.speeds_only else [32, 64] if args.quick else args.sizes
    rows = []
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 40)
    for size in sizes:
        for r_wire in args.wires:
            t0 = time.perf_counter()
            rows.append(error_row(size, r_wire, args.vectors, args.cal_maps, args.test_maps,
                                  args.spot_vectors, args.seed, args.quick))
            print(f"[{size} rows, {r_wire} ohm: {time.perf_counter() - t0:.0f} s]", flush=True)
    table = pd.DataFrame(rows)
    if rows:
        print("\nHeld-out error of the surrogate and of the ideal G.V model (LSB of the 14-bit ADC "
              "whose full scale is the calibration set's largest column current):")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.csv and rows:
        table.to_csv(args.csv, index=False)
    sp = speeds(args.seed, args.spice_vectors, args.quick)
    if "ngspice_vmm_s_64x64_2workers" in sp:
        sp["surrogate_over_ngspice_speed_64x64"] = (sp["surrogate_vmm_s_64x64"] /
                                                    sp["ngspice_vmm_s_64x64_2workers"])
    nodal_key = next(k for k in sp if k.startswith("nodal_vmm_s_"))
    sp["surrogate_over_nodal_speed"] = sp["surrogate_vmm_s_456x201"] / sp[nodal_key]
    print("\nSpeeds (batch 256; VMM/s unless a ratio):")
    print(json.dumps({k: float(f"{v:.4g}") for k, v in sp.items()}, indent=1))


if __name__ == "__main__":
    main()
