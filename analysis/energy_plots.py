"""Figures of an energy report: per-component stacked bars and the ADC-resolution sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import energy as en

_GROUPS = [("input DACs", "input DACs"), ("array", "array"), ("TIA", "TIA"), ("ADC", "ADC"),
           ("reservoir", "reservoir MACs / accumulations"), ("weight memory", "weight memory"),
           ("input/spike", "event handling"), ("digital adds", "partial-sum adds"),
           ("LIF", "LIF"), ("membrane", "state memory"), ("spike counters", "counters"),
           ("head", "head MACs + memory")]


def _group(component: str) -> str:
    for key, label in _GROUPS:
        if component.startswith(key):
            return label
    return component


def breakdown_figure(rep: en.EnergyReport):
    """Stacked bars per system (uJ per inference): physical (left) and paper mode (right)."""
    import matplotlib.pyplot as plt

    comp = rep.components.assign(group=lambda d: d.component.map(_group))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8),
                             gridspec_kw={"width_ratios": [3, 2]})
    labels = list(dict.fromkeys(lbl for _, lbl in _GROUPS))
    cmap = plt.get_cmap("tab20")
    colours = {lbl: cmap(i) for i, lbl in enumerate(labels)}
    for ax, mode in zip(axes, ("physical", "paper")):
        sub = comp[(comp["mode"] == mode) & ~comp.system.str.contains("board")]
        systems = list(dict.fromkeys(sub.system))
        piv = (sub.groupby(["system", "group"])["energy_j"].sum().unstack(fill_value=0.0)
               .reindex(systems) * 1e6)
        bottom = np.zeros(len(systems))
        for g in [lbl for lbl in labels if lbl in piv.columns]:
            ax.bar(range(len(systems)), piv[g].to_numpy(), bottom=bottom, label=g,
                   color=colours[g])
            bottom += piv[g].to_numpy()
        for i, v in enumerate(bottom):
            ax.text(i, v, f"{v:.3g}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(systems)),
                      [s.replace(" (", "\n(") for s in systems], fontsize=8)
        ax.set_ylabel("energy per inference (uJ)")
        ax.set_title(f"{rep.network.name}: {mode} mode")
        ax.grid(axis="y", alpha=0.3)
    handles, names = [], []
    for ax in axes:
        for hnd, nm in zip(*ax.get_legend_handles_labels()):
            if nm not in names:
                handles.append(hnd)
                names.append(nm)
    fig.legend(handles, names, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def adc_sweep_figure(sweep: pd.DataFrame, name: str):
    """Energy per inference against ADC bits (log scale) and accuracy where measured."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    ax.semilogy(sweep.bits, sweep.hybrid_uj, "o-", label="hybrid (physical)")
    ax.semilogy(sweep.bits, sweep.adc_uj, "s--", label="of which ADCs")
    ax.semilogy(sweep.bits, sweep.digital_dense_uj, "k-", label="digital dense")
    ax.semilogy(sweep.bits, sweep.digital_event_uj, "k:", label="digital event-driven")
    ax.set_xlabel("ADC resolution (bits)")
    ax.set_ylabel("energy per inference (uJ)")
    ax.set_title(f"{name}: energy vs ADC resolution")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax = axes[1]
    if "test_acc" in sweep and sweep["test_acc"].notna().any():
        ax.plot(sweep.bits, sweep.val_acc * 100, "o-", label="validation")
        ax.plot(sweep.bits, sweep.test_acc * 100, "s-", label="test")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "accuracy not measured", ha="center", transform=ax.transAxes)
    ax.set_xlabel("ADC resolution (bits)")
    ax.set_ylabel("accuracy, surrogate-backed (%)")
    ax.set_title("accuracy vs ADC resolution")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
