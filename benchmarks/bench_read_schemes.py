"""Read schemes at the macro's full size: what the circuit delivers, and the surrogate's error.

Part 1, IR drop (nodal engine). The paper's 456 x 200 map (400 physical columns) with formed
conductances of the sweep's compliance currents (mean 9.5 / 18.9 / 37.6 / 75.2 uS, CV 0.17),
inputs with 10 % of the rows on. For each read scheme: the circuit's column current over the
ideal G.V current (mean), and the correlation of the differential currents (G+ - G-) with the
ideal ones. Row groups alone cannot change these (the array is close to linear at read
voltages: a VMM read in groups sums to the whole-map read); floating unsensed columns and
two-ended rows can.

Part 2, surrogate error (nodal reference). For each scheme a surrogate is calibrated on the
456 x 201 and 512 x 256 maps and its held-out error printed (RMS / max LSB of one read's 14-bit
ADC, max % of full scale), as in the README's error table.

Usage::

    .venv/bin/python benchmarks/bench_read_schemes.py [--part ir|surrogate|both]
        [--schemes whole,board,both-ends,float64,differential] [--vectors 8]
        [--shapes 456x201,512x256] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from rram_cosim.cosim.engines.calibrate import calibrate_tile
from rram_cosim.cosim.engines.nodal import NodalBackend
from rram_cosim.models.errors import DomainWarning
from rram_cosim.models.params import ReadScheme, TileSpec
from rram_cosim.models.tile.ideal import IdealBackend

SCHEMES = {
    "whole": ReadScheme.whole_map(),
    "board": ReadScheme(),
    "both-ends": ReadScheme(drive="both"),
    "float64": ReadScheme(cols_per_read=64, unsensed="float"),
    "differential": ReadScheme(sense="differential"),
}
MEANS_US = (9.5, 18.9, 37.6, 75.2)  # the sweep's formed means at 5 / 10 / 20 / 40 uA


def ir_drop(schemes: list[str], n_vectors: int, seed: int = 0) -> pd.DataFrame:
    rows = []
    for mean in MEANS_US:
        rng = np.random.default_rng(seed)
        gp = np.clip(rng.normal(mean, 0.17 * mean, (456, 200)), 0.1, None)
        gn = np.clip(rng.normal(mean, 0.17 * mean, (456, 200)), 0.1, None)
        x = (rng.random((n_vectors, 456)) < 0.1).astype(float)
        for name in schemes:
            spec = TileSpec(rows=456, cols=200, read=SCHEMES[name],
                            g_full_scale_us=max(30.0, 2.5 * mean))
            t0 = time.perf_counter()
            out = NodalBackend(spec).bind(gp, gn).apply(x, np.random.default_rng(1))
            wall = time.perf_counter() - t0
            ideal = IdealBackend(spec).bind(gp, gn).apply(x, np.random.default_rng(1))
            d_c = (out.i_pos_ua - out.i_neg_ua).ravel()
            d_i = (ideal.i_pos_ua - ideal.i_neg_ua).ravel()
            rows.append({"g_mean_us": mean, "scheme": name,
                         "current_ratio": float(out.i_pos_ua.sum() / ideal.i_pos_ua.sum()),
                         "diff_corr": float(np.corrcoef(d_c, d_i)[0, 1]),
                         "nodal_s": round(wall, 1)})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def surrogate_error(schemes: list[str], n_vectors: int,
                    shapes: tuple[tuple[int, int], ...] = ((456, 201), (512, 256))
                    ) -> pd.DataFrame:
    rows = []
    for shape in shapes:
        for name in schemes:
            spec = TileSpec(rows=shape[0], cols=shape[1], read=SCHEMES[name])
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DomainWarning)
                res = calibrate_tile(spec, reference="nodal", n_maps=2, n_test_maps=2,
                                     n_vectors=n_vectors, seed=0)
            e = res.errors.set_index("backend")
            rows.append({"shape": f"{shape[0]}x{shape[1]}", "scheme": name,
                         "sur_rms_lsb": e.loc["surrogate", "rms_lsb"],
                         "sur_max_lsb": e.loc["surrogate", "max_lsb"],
                         "sur_max_pct_fs": e.loc["surrogate", "max_pct_fs"],
                         "ideal_rms_lsb": e.loc["ideal", "rms_lsb"],
                         "wall_s": round(time.perf_counter() - t0, 1)})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("ir", "surrogate", "both"), default="both")
    ap.add_argument("--schemes", default=",".join(SCHEMES))
    ap.add_argument("--vectors", type=int, default=8)
    ap.add_argument("--shapes", default="456x201,512x256", help="map shapes (rows x weight "
                                                                  "columns) of part 2")
    ap.add_argument("--csv", default=None)
    a = ap.parse_args()
    schemes = [s for s in a.schemes.split(",") if s]
    frames = []
    if a.part in ("ir", "both"):
        ir = ir_drop(schemes, a.vectors)
        print(ir.to_string(index=False))
        frames.append(ir.assign(part="ir"))
    if a.part in ("surrogate", "both"):
        shapes = tuple(tuple(int(v) for v in s.split("x")) for s in a.shapes.split(","))
        se = surrogate_error(schemes, a.vectors, shapes)
        print(se.to_string(index=False))
        frames.append(se.assign(part="surrogate"))
    if a.csv:
        pd.concat(frames, ignore_index=True).to_csv(a.csv, index=False)


if __name__ == "__main__":
    main()
