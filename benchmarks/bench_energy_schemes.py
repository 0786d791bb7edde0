"""Energy per inference and latency of the paper's networks under each read scheme.

For N-MNIST, N-TIDIGITS, the zero-shot pair and the BMI variant (the paper's sizes, the preset
activity of :func:`rram_cosim.analysis.energy.preset_activity`, the whole map on one macro):
the paper-mode hybrid and digital totals (a dense count: no read scheme enters them) and the
physical hybrid with the integrated periphery, for the whole-map read, the board's 64-row reads
single-ended, and the same reads differential; its ADC share and latency.

Usage::

    .venv/bin/python benchmarks/bench_energy_schemes.py [--csv out.csv]
"""

from __future__ import annotations

import argparse

import pandas as pd
from rram_cosim.analysis import energy as en
from rram_cosim.models.params import ReadScheme

SCHEMES = {
    "whole map": ReadScheme.whole_map(),
    "board (64 rows/read)": ReadScheme(),
    "board, differential": ReadScheme(sense="differential"),
}


def table() -> pd.DataFrame:
    rows = []
    for net in ("nmnist", "ntidigits", "zeroshot", "bmi"):
        for name, read in SCHEMES.items():
            rep = en.energy_report(net, read=read, include_board=False)
            t = rep.totals.set_index("system")
            comp = rep.components
            hyb = comp[comp.system == "hybrid (physical)"]
            adc = hyb.loc[hyb.component.str.startswith("ADC"), "energy_j"].sum() * 1e6
            rows.append({
                "network": net, "scheme": name,
                "paper_hybrid_uj": t.loc["hybrid (paper mode)", "energy_uj"],
                "paper_digital_uj": t.loc["digital (paper mode)", "energy_uj"],
                "physical_hybrid_uj": t.loc["hybrid (physical)", "energy_uj"],
                "adc_share": adc / t.loc["hybrid (physical)", "energy_uj"],
                "dense_digital_uj": t.loc["digital dense (physical)", "energy_uj"],
                "event_digital_uj": t.loc["digital event-driven (physical)", "energy_uj"],
                "hybrid_latency_us": t.loc["hybrid (physical)", "latency_s"] * 1e6,
            })
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default=None)
    a = ap.parse_args()
    df = table()
    with pd.option_context("display.width", 200, "display.precision", 3):
        print(df.to_string(index=False))
    if a.csv:
        df.to_csv(a.csv, index=False)


if __name__ == "__main__":
    main()
