"""Operation counts for inference and training: LSM + trained head against trained baselines.

Conventions (per sample, one training iteration; an operation is an add or a multiply, so a
MAC is 2 ops):

- forward of a layer with ``a`` inputs and ``b`` outputs: ``2 a b`` ops;
- backward: twice the forward (weight gradients and input gradients), so training a layer
  costs ``6 a b`` ([Lin25]'s ~13 K for N-TIDIGITS is 6 x 200 x 11);
- a recurrent layer over ``T`` steps: the forward above every step, and backpropagation
  through time twice that, every step;
- a LIF neuron step: ``lif_ops`` forward (decay multiply, reset, add, compare: 4) and
  ``lif_bwd_ops`` backward (surrogate gradient and the membrane chain: 6, assumption);
- an ANN (tanh) recurrent neuron: 1 op forward, 2 backward (assumption).

LSM + head: the reservoir is fixed (in hardware its VMMs are analogue; counted apart, as
``reservoir_equiv_ops``); only the head is trained: ``6 h C``.
Baselines: the same network trained end to end through time (RNN with tanh units,
"SRNN-ANN"; spiking RNN with LIF units and surrogate gradients, "SRNN-SNN"); for zero-shot,
two SRNN encoders trained with a CLIP loss ([Lin25]: 22.7 M MACs).

Two ways of counting the baselines are reported:

- ``paper-compatible``: the baseline's forward ops (2 per MAC, plus neuron ops), against the
  LSM's ``6 h C``. This is the rule that lands within 10 % of the N-MNIST, N-TIDIGITS and
  image-audio zero-shot ratios [Lin25] gives, and reproduces the 22.7 M of the SRNN CLIP pair;
  it is evidently how the paper counted (:func:`differences` gives the measured gaps). For
  the BMI variant it gives less than half the paper's 393.07x, and full BPTT a quarter more;
- ``full BPTT``: forward plus backward (3x the forward) plus neuron forward and backward ops,
  which is what training the baseline actually costs; ratios are about 3x the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..models.checks import check_choice, check_int
from .energy import PRESETS, Network, NetworkSize

__all__ = ["PAPER_TRAINING", "TrainingConstants", "differences", "lsm_counts",
           "recurrent_counts", "training_table"]


@dataclass(frozen=True)
class TrainingConstants:
    """Operations a neuron costs per step (assumptions, see the module docstring)."""

    lif_ops: int = 4
    lif_bwd_ops: int = 6
    tanh_ops: int = 1
    tanh_bwd_ops: int = 2

    def __post_init__(self) -> None:
        for f in ("lif_ops", "lif_bwd_ops", "tanh_ops", "tanh_bwd_ops"):
            check_int("TrainingConstants", f, getattr(self, f), 0, 1000)


#: [Lin25]'s training-cost figures: (task, baseline) -> (ratio or None, absolute ops or None,
#: what the paper says).
PAPER_TRAINING: dict[tuple[str, str], tuple[float | None, float | None, str]] = {
    ("nmnist", "SRNN-ANN"): (802.18, None, "802.18x below SRNN-ANN"),
    ("nmnist", "SRNN-SNN"): (817.95, None, "817.95x below SRNN-SNN"),
    ("ntidigits", "LSM + readout"): (None, 13e3, "about 13 K training operations"),
    ("ntidigits", "SRNN-ANN"): (1061.60, None, "1061.60x below SRNN-ANN"),
    ("ntidigits", "SRNN-SNN"): (1102.92, None, "1102.92x below SRNN-SNN"),
    ("zeroshot", "SRNN CLIP"): (152.83, 22.7e6, "152.83x below SRNN CLIP (22.7 M MACs)"),
    ("zeroshot", "prototypical"): (None, 0.678e6, "prototypical network 0.678 M"),
    ("bmi", "prototypical"): (393.07, None, "393.07x below prototypical networks"),
}


def lsm_counts(size: NetworkSize, c: TrainingConstants = TrainingConstants()) -> dict:
    """LSM + trained head: digital inference ops, training ops, analogue reservoir equivalent."""
    h, t, k = size.hidden, size.n_steps, size.n_out
    return {
        "inference_ops": c.lif_ops * h * t + h * t + 2 * h * k,
        "inference_formula": "lif_ops*h*T + h*T (counters) + 2*h*C",
        "training_ops": 6 * h * k,
        "training_formula": "6*h*C (head only: forward 2hC, backward 4hC)",
        "reservoir_equiv_ops": 2 * size.reservoir_macs,
    }


def recurrent_counts(size: NetworkSize, kind: str,
                     c: TrainingConstants = TrainingConstants()) -> dict:
    """A recurrent network of the same size trained through time (``kind``: ann or snn)."""
    check_choice("recurrent_counts", "kind", kind, ["ann", "snn"])
    h, t, k, n = size.hidden, size.n_steps, size.n_out, size.n_in
    f_n, b_n = (c.tanh_ops, c.tanh_bwd_ops) if kind == "ann" else (c.lif_ops, c.lif_bwd_ops)
    fwd_mac = 2 * ((n + h) * h * t + h * k)
    fwd = fwd_mac + f_n * h * t
    return {
        "inference_ops": fwd,
        "inference_formula": f"2*((n_in+h)*h*T + h*C) + {f_n}*h*T",
        "paper_ops": fwd,
        "paper_formula": f"forward: 2*((n_in+h)*h*T + h*C) + {f_n}*h*T",
        "training_ops": 3 * fwd_mac + (f_n + b_n) * h * t,
        "training_formula": f"3*2*((n_in+h)*h*T + h*C) + ({f_n}+{b_n})*h*T (BPTT)",
    }


def _pair(net: Network, kind: str, c: TrainingConstants) -> dict:
    parts = [recurrent_counts(s, kind, c) for _, s in net.encoders]
    return {k: sum(p[k] for p in parts) for k in ("inference_ops", "paper_ops", "training_ops")}


def training_table(c: TrainingConstants = TrainingConstants()) -> pd.DataFrame:
    """Our counts and ratios for every preset next to the paper's figures.

    Columns: task, model, inference_ops, training_ops (full BPTT for baselines),
    paper_compatible_ops, ratio_paper_compatible, ratio_full_bptt, paper_ratio, paper_ops,
    diff_pct (our paper-compatible ratio against the paper's), formula.
    """
    rows = []
    for task, net in PRESETS.items():
        lsm = [lsm_counts(s, c) for _, s in net.encoders]
        lsm_train = sum(x["training_ops"] for x in lsm)
        rows.append({"task": task, "model": "LSM + readout" if len(lsm) == 1
                     else "LSM + projection heads",
                     "inference_ops": sum(x["inference_ops"] for x in lsm),
                     "reservoir_equiv_ops": sum(x["reservoir_equiv_ops"] for x in lsm),
                     "training_ops": lsm_train, "paper_compatible_ops": lsm_train,
                     "formula": lsm[0]["training_formula"]
                     + (" per encoder" if len(lsm) > 1 else "")})
        if len(net.encoders) == 1:
            size = net.encoders[0][1]
            baselines = [("SRNN-ANN", recurrent_counts(size, "ann", c)),
                         ("SRNN-SNN", recurrent_counts(size, "snn", c))]
        else:
            # two SRNN encoders with projection heads, trained with a contrastive loss
            b = _pair(net, "snn", c)
            b["paper_formula"] = "sum over both encoders of the SRNN forward"
            b["training_formula"] = "sum over both encoders of the SRNN BPTT"
            baselines = [("SRNN CLIP" if task == "zeroshot" else "SRNN prototypical", b)]
        if task == "zeroshot":
            # the paper's prototypical count, whose network the paper does not size
            baselines.append(("prototypical (paper's count)",
                              {"inference_ops": float("nan"), "training_ops": float("nan"),
                               "paper_ops": PAPER_TRAINING[(task, "prototypical")][1],
                               "paper_formula": "the paper's 0.678 M (network not given)",
                               "training_formula": "unknown"}))
        for name, b in baselines:
            rows.append({"task": task, "model": name, "inference_ops": b["inference_ops"],
                         "reservoir_equiv_ops": 0, "training_ops": b["training_ops"],
                         "paper_compatible_ops": b["paper_ops"],
                         "ratio_paper_compatible": b["paper_ops"] / lsm_train,
                         "ratio_full_bptt": b["training_ops"] / lsm_train,
                         "formula": f"{b['paper_formula']}; full: {b['training_formula']}"})
    df = pd.DataFrame(rows)
    paper_ratio, paper_ops, paper_note = [], [], []
    for task, model in zip(df.task, df.model):
        key = ((task, "prototypical") if model.startswith(("SRNN prototypical", "prototypical"))
               else (task, model))
        r, o, note = PAPER_TRAINING.get(key, (None, None, ""))
        paper_ratio.append(r)
        paper_ops.append(o)
        paper_note.append(note)
    df["paper_ratio"] = pd.array(paper_ratio, dtype="Float64")
    df["paper_ops"] = pd.array(paper_ops, dtype="Float64")
    df["paper_says"] = paper_note
    df["diff_pct"] = (df["ratio_paper_compatible"] / df["paper_ratio"] - 1) * 100
    lsm_rows = df.model.str.startswith("LSM") & df.paper_ops.notna()
    df.loc[lsm_rows, "diff_pct"] = (df.loc[lsm_rows, "training_ops"]
                                    / df.loc[lsm_rows, "paper_ops"] - 1) * 100
    clip = (df.model == "SRNN CLIP") & df.paper_ops.notna()
    df.loc[clip, "ops_diff_pct"] = (df.loc[clip, "paper_compatible_ops"]
                                    / df.loc[clip, "paper_ops"] - 1) * 100
    return df


def differences(df: pd.DataFrame | None = None,
                c: TrainingConstants = TrainingConstants()) -> list[str]:
    """Where our counts differ from the paper's, and why; every number comes from ``df``
    (default: :func:`training_table` with ``c``). The report prints these sentences."""
    df = training_table(c) if df is None else df
    t = df.set_index(["task", "model"])
    fitted = [("nmnist", "SRNN-ANN"), ("nmnist", "SRNN-SNN"), ("ntidigits", "SRNN-ANN"),
              ("ntidigits", "SRNN-SNN"), ("zeroshot", "SRNN CLIP")]
    diffs = [float(t.loc[k, "diff_pct"]) for k in fitted]
    full = [float(t.loc[k, "ratio_full_bptt"] / t.loc[k, "ratio_paper_compatible"])
            for k in fitted]

    def surplus(task: str) -> float:
        # the paper's SNN-over-ANN gap, in ops per neuron-step, on top of the LSM's count
        s = dict(PRESETS[task].encoders)[PRESETS[task].encoders[0][0]]
        lsm = float(t.loc[(task, "LSM + readout"), "training_ops"])
        return ((PAPER_TRAINING[(task, "SRNN-SNN")][0] - PAPER_TRAINING[(task, "SRNN-ANN")][0])
                * lsm / (s.hidden * s.n_steps))

    zs = PRESETS["zeroshot"]
    clip_mac_ops = sum(2 * (s.reservoir_macs + s.head_macs) for _, s in zs.encoders)
    clip_lif = sum(c.lif_ops * s.hidden * s.n_steps for _, s in zs.encoders)
    clip = t.loc[("zeroshot", "SRNN CLIP")]
    proto = t.loc[("zeroshot", "prototypical (paper's count)")]
    bmi = t.loc[("bmi", "SRNN prototypical")]
    bmi_lsm = float(t.loc[("bmi", "LSM + projection heads"), "training_ops"])
    b_sizes = "; ".join(f"{e} {s.n_in} in, {s.hidden} hidden, {s.n_out}-dim head"
                        for e, s in PRESETS["bmi"].encoders)
    b_steps = PRESETS["bmi"].encoders[0][1].n_steps
    full_txt = (f"{min(full):.2f}x" if f"{min(full):.2f}" == f"{max(full):.2f}"
                else f"{min(full):.2f}-{max(full):.2f}x")
    return [
        (f"Baselines: the paper-compatible rule (the baseline's forward ops over the LSM head's "
         f"6hC) lands {min(diffs):+.1f} % to {max(diffs):+.1f} % from the paper's N-MNIST, "
         "N-TIDIGITS and zero-shot ratios. The rest is not attributable without the "
         "supplementary tables (bias terms, loss and optimiser ops, or the neuron-op "
         "convention): the paper's SNN-over-ANN surplus is not a constant per neuron-step (it "
         f"would be {surplus('nmnist'):.1f} ops for N-MNIST and {surplus('ntidigits'):.1f} for "
         f"N-TIDIGITS; ours is {c.lif_ops - c.tanh_ops})."),
        (f"Full BPTT (forward + backward through time) is what training a baseline really "
         f"costs; it is {full_txt} the paper-compatible count, so the real "
         "advantage of LSM training is that much larger than the paper states."),
        (f"SRNN CLIP: our two SRNN encoders with their heads give {clip_mac_ops / 1e6:.2f} M "
         f"forward MAC ops (2 per MAC; {clip_mac_ops / 2e6:.2f} M actual MACs) plus "
         f"{clip_lif / 1e6:.2f} M LIF ops, {clip['paper_compatible_ops'] / 1e6:.2f} M in all "
         f"({clip['ops_diff_pct']:+.1f} % from the paper's '22.7 M MACs', which matches our ops "
         "count, not our MAC count)."),
        (f"Prototypical network (the paper's {proto['paper_ops'] / 1e6:.3f} M for image-audio "
         f"zero-shot): the paper gives no size; it is {proto['ratio_paper_compatible']:.2f}x our "
         f"LSM heads' training count and {clip['paper_compatible_ops'] / proto['paper_ops']:.0f}x "
         "below our SRNN CLIP pair, so a much smaller model. Not reconstructed."),
        (f"BMI ({b_sizes}; T = {b_steps} steps is our assumption, the paper gives none): the "
         f"LSM trains two projection heads, {bmi_lsm / 1e6:.2f} M ops; an SRNN pair of the same "
         f"encoders costs {bmi['paper_compatible_ops'] / 1e6:.0f} M forward ops "
         f"({bmi['ratio_paper_compatible']:.0f}x, {bmi['diff_pct']:+.0f} % from the paper's "
         f"{bmi['paper_ratio']:.2f}x) and {bmi['training_ops'] / 1e9:.2f} G with full BPTT "
         f"({bmi['ratio_full_bptt']:.0f}x). The paper's figure lies between our forward-only "
         "and full-BPTT counts: its 'prototypical network' baseline is not specified, and a "
         "longer recording (T) scales the baseline, not the heads."),
    ]
