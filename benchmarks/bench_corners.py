"""Where the surrogate is worst inside its domain: corner families, and a TIA driven past its range.

Two measurements against the nodal engine (equal to ngspice to 1e-9), read noise 0:

``--part families``: calibrate (nodal reference) and print the surrogate's held-out error per
family (formed maps and the structured corner cases of ``cosim/engines/held_out.py``) and the
worst case against the bars, for each tile size and wire resistance asked for, at the default
operating point and at a legal but strongly nonlinear one (0.5 V reads, 0.7 V word line).

``--part saturation``: 32x32 weights, 1 ohm wires, G+ a column gradient 5 -> 100 uS, G- at
5 uS, full scale calibrated on the 30 uS corner. All rows on, the columns above ~33 uS drive
their TIAs out of their linear range; the columns whose own conductances are inside the domain
are then scored three ways: the linear model alone (``BoundSurrogate.currents``, which does
not look at the TIA range), the surrogate's apply (reads past the range solved exactly), and, as the
reference for what the linear model does without clipping, the same map behind a feedback
resistor small enough that no TIA clips.

    .venv/bin/python benchmarks/bench_corners.py --part saturation
    .venv/bin/python benchmarks/bench_corners.py --part families --sizes 32,64 --r-wire 1,5
    .venv/bin/python benchmarks/bench_corners.py --part families --sizes 456x201 --ops default \
        --rows-per-read 0
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from rram_cosim.cosim.engines.calibrate import calibrate_tile, with_full_scale
from rram_cosim.cosim.engines.nodal import NodalBackend
from rram_cosim.models.errors import DomainWarning
from rram_cosim.models.params import ReadScheme, TileSpec
from rram_cosim.models.tile.periphery import (
    adc_codes,
    current_lsb_ua,
    tia_linear_range_ua,
    tia_out_v,
)


def families(sizes: list[tuple[int, int]], r_wires: list[float], n_maps: int, n_vectors: int,
             ops: str, rows_per_read: int | None) -> None:
    print("| tile | r_wire (ohm) | operating point | family | RMS (LSB) | max (LSB) | max % FS |")
    print("|---|---|---|---|---|---|---|")
    worst_rows = []
    points = [("0.2 V / 1.1 V", {})]
    if ops == "both":
        points.append(("0.5 V / 0.7 V", {"v_read_v": 0.5, "v_gate_read_v": 0.7}))
    read = {} if rows_per_read is None else {"read": ReadScheme(rows_per_read=rows_per_read)}
    for n, k in sizes:
        for r in r_wires:
            for op, kw in points:
                t0 = time.perf_counter()
                spec = TileSpec(rows=n, cols=k, r_wire_ohm=r, **kw, **read)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DomainWarning)
                    res = calibrate_tile(spec, reference="nodal", n_maps=n_maps, n_test_maps=2,
                                         n_vectors=n_vectors, seed=0)
                for f in res.families.itertuples():
                    print(f"| {n}x{k} | {r:g} | {op} | {f.family} | {f.rms_lsb:.3g} | "
                          f"{f.max_lsb:.3g} | {f.max_pct_fs:.3g} |")
                w = res.worst
                worst_rows.append(
                    f"| {n}x{k} | {r:g} | {op} | {w['rms_lsb']:.3g} ({w['rms_family']}) | "
                    f"{w['max_lsb']:.3g} = {w['max_pct_fs']:.3g} % FS ({w['max_family']}) | "
                    f"{'yes' if w['meets_bars'] else 'no'} | {time.perf_counter() - t0:.0f} s |")
                print(worst_rows[-1], flush=True)
    print("\n| tile | r_wire (ohm) | operating point | worst RMS (LSB) | worst max | meets "
          "bars | time |\n|---|---|---|---|---|---|---|")
    print("\n".join(worst_rows))


def saturation(n: int, r_wire: float) -> None:
    spec = TileSpec(rows=n, cols=n, r_wire_ohm=r_wire)
    t0 = time.perf_counter()
    res = calibrate_tile(spec, reference="nodal", n_maps=2, n_test_maps=0, n_vectors=8,
                         structured=False)
    spec, sur = res.spec, res.surrogate.with_noise(0.0)
    print(f"calibrated {n}x{n}, {r_wire:g} ohm in {time.perf_counter() - t0:.1f} s: full "
          f"scale {res.i_full_scale_ua:.1f} uA, R_f {spec.r_f_ohm:.0f} ohm, TIA linear up to "
          f"{tia_linear_range_ua(spec)[1]:.1f} uA")
    gp = np.tile(np.linspace(5.0, 100.0, n), (n, 1))
    gn = np.full_like(gp, 5.0)
    x = np.ones((3, n))
    x[1, n // 2:] = 0.0
    x[2] = (np.random.default_rng(0).random(n) < 0.5)
    names = ["all rows on", f"rows 0-{n // 2 - 1} on", "half the rows at random"]
    # physical columns inside the calibrated domain: the G+ columns up to full scale, every
    # G- column (5 uS)
    in_dom = np.concatenate([gp[0] <= spec.g_full_scale_us, np.ones(n, dtype=bool)])
    rng = np.random.default_rng(0)

    def score(s: TileSpec, label: str) -> None:
        model = sur.with_adc(s.adc)
        model.spec = s
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DomainWarning)
            bound = model.bind(gp, gn)
        ref = NodalBackend(s).bind(gp, gn).apply(x, rng)
        ip, i_n = bound.currents(x)  # the linear model alone
        lin = np.concatenate([adc_codes(tia_out_v(ip, s), s), adc_codes(tia_out_v(i_n, s), s)],
                             axis=1)
        ref_c = np.concatenate([ref.codes_pos, ref.codes_neg], axis=1)
        ref_i = np.concatenate([ref.i_pos_ua, ref.i_neg_ua], axis=1)
        t1 = time.perf_counter()
        out = bound.apply(x, rng)
        t_apply = time.perf_counter() - t1
        lsb = current_lsb_ua(s)
        hi = tia_linear_range_ua(s)[1]
        for k, name in enumerate(names):
            clipped = int((ref.i_pos_ua[k] > hi).sum())
            now_c = np.concatenate([out.codes_pos[k], out.codes_neg[k]])
            now_i = np.concatenate([out.i_pos_ua[k], out.i_neg_ua[k]])
            e_lin = np.abs(lin[k] - ref_c[k])[in_dom].max()
            e_now = np.abs(now_c - ref_c[k])[in_dom].max()
            e_i = np.abs(now_i - ref_i[k])[in_dom].max() / lsb
            print(f"| {label} | {name} | {clipped} | {e_lin} | {e_now} ({e_i:.2g} LSB of "
                  f"current) | {'yes' if out.resolved[k] else 'no'} |")
        print(f"(apply of {len(x)} vectors: {t_apply * 1e3:.0f} ms, {out.n_resolved} solved "
              f"exactly)")

    print("\n| R_f | vector | TIAs past their range (circuit) | in-domain columns, max code "
          "error: linear model alone | apply | solved exactly |\n|---|---|---|---|---|---|")
    score(spec, f"calibrated ({spec.r_f_ohm:.0f} ohm)")
    # a feedback resistor for the gradient's ideal largest current (an upper bound of the
    # circuit's, which loses some to IR drop): nothing clips
    i_max = n * spec.v_read_v * float(gp.max())
    lo_rf = with_full_scale(spec, i_max)
    score(lo_rf, f"small ({lo_rf.r_f_ohm:.0f} ohm, no clipping)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["families", "saturation"], default="saturation")
    ap.add_argument("--sizes", default="32",
                    help="families: tile sizes, N (N x N weights) or RxK, comma-separated")
    ap.add_argument("--ops", choices=["default", "both"], default="both",
                    help="families: the default operating point, or also 0.5 V reads on a "
                         "0.7 V word line")
    ap.add_argument("--rows-per-read", type=int, default=None,
                    help="families: rows per read (default: the tile's, the board's 64; 0 "
                         "for whole-map reads, as the README's error table)")
    ap.add_argument("--r-wire", default="1,5", help="families: wire resistances (ohm)")
    ap.add_argument("--n-maps", type=int, default=3)
    ap.add_argument("--n-vectors", type=int, default=16)
    args = ap.parse_args()
    if args.part == "families":
        sizes = [tuple(int(p) for p in (v.split("x") if "x" in v else (v, v)))
                 for v in args.sizes.split(",")]
        families(sizes, [float(v) for v in args.r_wire.split(",")], args.n_maps,
                 args.n_vectors, args.ops, args.rows_per_read)
    else:
        saturation(32, 1.0)


if __name__ == "__main__":
    main()
