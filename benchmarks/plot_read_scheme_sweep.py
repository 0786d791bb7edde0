"""Accuracy, energy and latency against compliance current, one line per read scheme.

Reads the ``sweep.csv`` of one or more sweep run folders (e.g. a sweep over ``--rows-per-read
0,64`` and another over ``--sense differential``), groups the finished units by read scheme
(rows per read, sensing), prints one markdown table (test accuracy mean +- std over seeds per
compliance current, hybrid energy range, latency) and saves a two-panel plot::

    .venv/bin/python benchmarks/plot_read_scheme_sweep.py runs/schemes runs/schemes_diff \
        --only-sense single,differential --out docs/img/read_scheme_sweep.png

``--only-sense`` lists, per folder, which sensing to take from it (when a later folder reran
one sensing, the earlier folder's rows of it are left out).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

NAMES = {(0, "single"): "whole map, single-ended",
         (64, "single"): "board: 64 rows/read, single-ended",
         (64, "differential"): "board, differential (offset-calibrated)",
         (0, "differential"): "whole map, differential (offset-calibrated)"}


def load(folders: list[Path], senses: list[str] | None) -> pd.DataFrame:
    parts = []
    for k, folder in enumerate(folders):
        df = pd.read_csv(folder / "sweep.csv")
        if senses:
            df = df[df["sense"] == senses[k]]
        parts.append(df[df["status"] == "ok"])
    return pd.concat(parts, ignore_index=True)


def table(df: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    g = df.groupby(["rows_per_read", "sense", "icc_a"])
    # the population std over seeds (ddof 0), as the README's table states it
    per = g.agg(acc=("test_acc", "mean"), acc_std=("test_acc", lambda x: x.std(ddof=0)),
                n=("test_acc", "size"),
                energy=("e_hybrid_uj", "mean"), latency=("latency_us", "first")).reset_index()
    lines = ["| scheme | n | test accuracy at " + " / ".join(
        f"{i * 1e6:g}" for i in sorted(df["icc_a"].unique())) + " uA (mean +- std over seeds) "
             "| hybrid energy (uJ, physical) | latency (us) |", "|---|---|---|---|---|"]
    for (rp, sense), s in per.groupby(["rows_per_read", "sense"]):
        s = s.sort_values("icc_a")
        acc = " / ".join(f"{a:.3f} +- {sd:.3f}" for a, sd in zip(s["acc"], s["acc_std"].fillna(0)))
        lines.append(f"| {NAMES.get((rp, sense), f'{rp} rows/read, {sense}')} | "
                     f"{s['n'].min()}-{s['n'].max()} | {acc} | {s['energy'].min():.2f}-"
                     f"{s['energy'].max():.2f} | {s['latency'].iloc[0]:g} |")
    return "\n".join(lines), per


def plot(per: pd.DataFrame, out: Path) -> None:
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    for (rp, sense), s in per.groupby(["rows_per_read", "sense"]):
        s = s.sort_values("icc_a")
        label = NAMES.get((rp, sense), f"{rp} rows/read, {sense}")
        ax[0].errorbar(s["icc_a"] * 1e6, s["acc"], yerr=s["acc_std"].fillna(0), marker="o",
                       capsize=3, label=label)
        ax[1].plot(s["icc_a"] * 1e6, s["energy"], marker="o", label=label)
    for a in ax:
        a.set_xscale("log")
        a.set_xlabel("compliance current (uA)")
    ax[1].set_yscale("log")
    ax[0].set_ylabel("test accuracy (digits-events)")
    ax[1].set_ylabel("hybrid energy per inference (uJ)")
    ax[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="sweep run folders")
    ap.add_argument("--only-sense", default="", help="comma list, one sensing per folder")
    ap.add_argument("--out", type=Path, default=Path("read_scheme_sweep.png"))
    args = ap.parse_args()
    senses = args.only_sense.split(",") if args.only_sense else None
    if senses and len(senses) != len(args.folders):
        raise SystemExit("--only-sense needs one sensing per folder")
    text, per = table(load(args.folders, senses))
    print(text)
    plot(per, args.out)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
