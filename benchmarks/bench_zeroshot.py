"""Zero-shot benchmark: the full 5-seed protocol on both modality pairs, printed as one table.

Runs ``rram-cosim zeroshot`` with the defaults (seen 1-7, unseen 8 and 9, ideal and surrogate
backends, 5 seeds, honest selection on held-out seen classes, the paper protocol and the
seen-pair selection beside it) on

- ``digits-events`` + ``neural-sim`` (instance pairs, the BMI-like task), and
- ``digits-events`` + ``spoken-digits`` (class pairs, the paper's audio-image task),

then prints unseen top-1 mean, 95 % interval, chance and permutation p-value per model and
selection rule. About 15-25 minutes on 2 shared cores (the surrogate calibration of the
648x200 and 520x200 maps on the nodal engine is ~3 minutes each); pass ``--seeds 2`` for a
quicker look. Usage::

    python benchmarks/bench_zeroshot.py [--out runs/bench] [--seeds 5] [--backends ideal,surrogate]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from rram_cosim.cosim.cli.commands.zeroshot import run_zeroshot
from rram_cosim.cosim.tasks.zeroshot import ZeroshotConfig

PAIRS = {"neural-sim": "digits-events + neural-sim",
         "spoken-digits": "digits-events + spoken-digits"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench-zeroshot")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--backends", default="ideal,surrogate")
    args = ap.parse_args()
    rows = []
    for other, label in PAIRS.items():
        cfg = ZeroshotConfig(name=other, other=other, seeds=args.seeds,
                             backends=tuple(args.backends.split(",")))
        t0 = time.perf_counter()
        out = run_zeroshot(cfg, args.out, progress=True)
        wall = time.perf_counter() - t0
        for r in out["summary"]:
            rows.append({"pair": label, "model": r["model"], "selection": r["selection"],
                         "unseen_top1": r["unseen_top1_mean"], "std": r["unseen_top1_std"],
                         "ci95": f"[{r['unseen_top1_ci_low']:.3f}, "
                                 f"{r['unseen_top1_ci_high']:.3f}]",
                         "chance": r["chance_top1"], "p": r["p_value_top1"],
                         "seen_top1": r["seen_test_top1_mean"], "wall_s": round(wall)})
    pd.set_option("display.width", 220)
    pd.set_option("display.max_colwidth", 70)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
