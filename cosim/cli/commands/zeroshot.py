"""``rram-cosim zeroshot``: zero-shot retrieval with two LSM encoders on one conductance map.

The protocol is :mod:`rram_cosim.cosim.tasks.zeroshot`'s. This module runs it per backend over
seeds and writes ``runs/<name>/``: ``config.json``, ``grid.csv`` (every grid point and
checkpoint), ``chosen.csv`` (the chosen point per seed, model and selection rule),
``summary.csv`` (mean, std, 95 % interval, chance, permutation p-value; NaN and "not valid
after test selection" for the ``paper`` rows), ``activity.json`` (reservoir activity per
backend, encoder and seed at the headline selection's LIF point), ``confusion.png``
(unseen queries vs the class of their nearest gallery image), ``embedding.png`` (both
modalities' projections, 2-D), ``report.md`` with the paper's figures beside ours, and
``summary.json``.

Heavy libraries (pandas, matplotlib, scipy) and the protocol load inside :func:`run_zeroshot`,
so building the command line's parser imports only the configuration.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...tasks.configs.zeroshot import ZeroshotConfig
from ..runs import RunDir

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ...tasks.zeroshot import Modality, ProtocolResult

COMMAND = "zeroshot"
HELP = ("Zero-shot retrieval: image and neural-sim / spoken-digit LSM encoders sharing one "
        "conductance map, contrastive heads, honest selection (and the paper's, labelled), "
        "mean and interval over seeds")
CONFIG = ZeroshotConfig

# [Lin25]: audio-to-image top-1 on the unseen classes 8 and 9 (N-TIDIGITS / N-MNIST), best
# epoch chosen on the test queries by the published scripts.
PAPER_UNSEEN_TOP1 = 0.88
# the project's prototype on digits + espeak-ng, selection on seen-class validation, 5 seeds.
PROTOTYPE_HONEST = (0.44, 0.10)
PROTOTYPE_SEEN_TRAINED = 0.97


def run_zeroshot(cfg: ZeroshotConfig, runs_root: str | Path = "runs", *,
                 progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Run the protocol and write ``runs_root/<cfg.name>/``; returns the summary."""
    import numpy as np

    from ....analysis.report import save_figure, save_table
    from ....analysis.stats import confusion_matrix
    from ...tasks.zeroshot import (
        P_INVALID_NOTE,
        SELECTIONS,
        activity_records,
        headline_selection,
        zeroshot,
    )

    t0 = time.perf_counter()
    run = RunDir.create(runs_root, cfg.name, command=COMMAND, overwrite=overwrite)
    run.write_config(COMMAND, asdict(cfg))
    z = zeroshot(cfg, run.path, progress=progress)
    image, other, res, summary, paired = z.image, z.other, z.result, z.summary, z.paired
    save_table(paired, run.path / "paired.csv")
    save_table(z.grid, run.path / "grid.csv")
    save_table(z.chosen, run.path / "chosen.csv")
    save_table(summary, run.path / "summary.csv")

    head = headline_selection(cfg)
    run.write_json("activity.json", activity_records(cfg, res, head))
    lead = f"LSM, {cfg.backends[0]}"
    lead_rows = res.chosen[(lead, head)]
    classes = sorted(set(res.query_labels.tolist()) | set(res.gallery_labels.tolist()))
    cm = sum(confusion_matrix(np.searchsorted(classes, res.query_labels),
                              np.searchsorted(classes, r["neighbours"][:, 0]), len(classes))
             for r in lead_rows)
    names = image.class_names or other.class_names
    ticks = [names[c] if c < len(names) else str(c) for c in classes]
    save_figure(_confusion_plot(cm, ticks, lead, SELECTIONS[head][1]),
                run.path / "confusion.png")
    save_figure(_embedding_plot(lead_rows[0], image, other, lead), run.path / "embedding.png")
    wall = time.perf_counter() - t0
    _report(run, cfg, image, other, res, summary, paired, head, z.domain_warnings, wall,
            z.warnings)
    hl = summary[summary["selection"] == SELECTIONS[head][1]]
    headline = {r["model"]: {"unseen_top1": round(r["unseen_top1_mean"], 4),
                             "ci95": [round(r["unseen_top1_ci_low"], 4),
                                      round(r["unseen_top1_ci_high"], 4)],
                             "chance": round(r["chance_top1"], 4),
                             "p_value": (P_INVALID_NOTE if np.isnan(r["p_value_top1"])
                                         else r["p_value_top1"])}
                for r in hl.to_dict(orient="records")}
    headline["selection"] = SELECTIONS[head][1]
    out = {"headline": headline, "summary": summary.to_dict(orient="records"),
           "warnings": z.warnings,
           "chosen": z.chosen.to_dict(orient="records"), "exact_reads": z.exact_reads,
           "surrogate_worst": z.surrogate_worst,
           "wall_s": wall,
           "cache": {"hits": res.cache_hits, "misses": res.cache_misses}}
    run.write_json("summary.json", {k: v for k, v in out.items() if k != "wall_s"})
    run.finish()
    return out


def _confusion_plot(cm: np.ndarray, classes: list[str], model: str, selection: str):
    """Unseen queries against the class of their nearest gallery image, each class by its
    name (or number), the colour bar beside the matrix and the title above both."""
    import matplotlib.pyplot as plt
    import numpy as np

    k = len(classes)
    side = max(3.6, 0.45 * k + 1.5)
    fig, ax = plt.subplots(figsize=(side + 1.2, side + 0.6), constrained_layout=True)
    frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=90 if max(map(len, classes)) > 2 else 0)
    ax.set_yticks(range(k), classes)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{frac[i, j]:.2f}", ha="center", va="center",
                    color="white" if frac[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("class of the nearest gallery image")
    ax.set_ylabel("query class")
    fig.colorbar(im, ax=ax, label="fraction of queries", shrink=0.8)
    # a figure title sits above the axes and the colour bar, so neither cuts it
    fig.suptitle(f"unseen retrieval, {model}, all seeds\n{selection.split(':')[0]} selection",
                 fontsize=9)
    return fig


def short_name(spec: str) -> str:
    """A dataset for a legend: its kind and the file's name, never the whole path."""
    kind, _, path = spec.partition(":")
    return f"{kind}:{Path(path).name}" if path else spec


def _embedding_plot(row: dict[str, Any], image: Modality, other: Modality, model: str):
    """Gallery images as small faint dots, the queries drawn over them as larger outlined
    crosses, both coloured by class; the unseen classes named at their gallery centre."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.lines import Line2D

    from ....analysis.stats import pca_2d

    heads = row["heads"]
    fi, fo = row["feats"]
    ea = np.concatenate([heads.transform_a(fi["seen_test"]), heads.transform_a(fi["test"])])
    eb = np.concatenate([heads.transform_b(fo["seen_test"]), heads.transform_b(fo["test"])])
    la = np.concatenate([image.labels["seen_test"], image.labels["test"]])
    lb = np.concatenate([other.labels["seen_test"], other.labels["test"]])
    p = pca_2d(np.concatenate([ea, eb]))
    pa, pb = p[: len(ea)], p[len(ea):]
    fig, ax = plt.subplots(figsize=(6.4, 5.4), constrained_layout=True)
    vmax = max(la.max(), lb.max())
    norm = {"cmap": "tab10" if vmax < 10 else "tab20", "vmin": 0, "vmax": max(9, vmax)}
    ax.scatter(pa[:, 0], pa[:, 1], c=la, s=6, marker="o", alpha=0.35, linewidths=0,
               zorder=1, **norm)
    sc = ax.scatter(pb[:, 0], pb[:, 1], c=lb, s=36, marker="X", edgecolors="black",
                    linewidths=0.4, zorder=3, **norm)
    for c in sorted(set(image.labels["test"].tolist())):
        ax.annotate(f"{c} (unseen)", pa[la == c].mean(axis=0), fontsize=9, weight="bold",
                    zorder=4)
    ax.set_xlabel("PC 1 of the joint projections")
    ax.set_ylabel("PC 2")
    ax.set_title(f"test projections, {model}, first seed", fontsize=9)
    ax.legend(handles=[
        Line2D([], [], color="grey", marker="o", ls="", alpha=0.5,
               label=f"gallery: {short_name(image.name)} ({len(ea)})"),
        Line2D([], [], color="grey", marker="X", ls="", markeredgecolor="black",
               label=f"queries: {short_name(other.name)} ({len(eb)})")],
        loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    fig.colorbar(sc, ax=ax, label="class")
    return fig


def _fmt(x: float) -> str:
    """An accuracy as every table of the report shows it (percent, one decimal)."""
    import numpy as np

    return "n/a" if not np.isfinite(x) else f"{100 * x:.1f} %"


def _span(lo: float, hi: float) -> str:
    """A 95 % interval over seeds, or why there is none (one seed)."""
    import numpy as np

    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "none (one seed)"
    return f"{_fmt(lo)} to {_fmt(hi)}"


def _p(p: float) -> str:
    """A p-value for the report, or why there is none."""
    import numpy as np

    from ...tasks.zeroshot import P_INVALID_NOTE

    return f"({P_INVALID_NOTE})" if np.isnan(p) else f"= {p:.2g}"


def _tables(cfg: ZeroshotConfig, other: Modality, summary: pd.DataFrame,
            paired: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The report's tables: every accuracy in percent with one decimal, beside its chance
    level and its sample counts; differences in points."""
    import numpy as np
    import pandas as pd

    from ...tasks.zeroshot import P_INVALID_NOTE, SELECTIONS

    short = {label: key for key, (_, label) in SELECTIONS.items()}
    # the top-k of the run (k = 1: no column beyond top-1)
    k = next((int(c[len("unseen_top"):-len("_mean")]) for c in summary.columns
              if c.startswith("unseen_top") and c.endswith("_mean")
              and c != "unseen_top1_mean"), 1)
    rows = summary.to_dict(orient="records")
    n_seeds = int(rows[0]["n_seeds"])
    counts = (f"{int(rows[0]['n_queries'])} queries, {int(rows[0]['n_gallery'])} gallery, "
              f"{n_seeds} seed{'s' if n_seeds != 1 else ''}")
    key = pd.DataFrame([{
        "model": r["model"], "selection": short[r["selection"]],
        "unseen top-1, mean +- std": (f"{_fmt(r['unseen_top1_mean'])} +- "
                                      f"{_fmt(r['unseen_top1_std'])}" if n_seeds > 1
                                      else f"{_fmt(r['unseen_top1_mean'])} (one seed)"),
        "95 % interval over seeds": _span(r["unseen_top1_ci_low"], r["unseen_top1_ci_high"]),
        "chance": _fmt(r["chance_top1"]),
        "permutation p": (P_INVALID_NOTE if not np.isfinite(r["p_value_top1"])
                          else f"{r['p_value_top1']:.2g}"),
        "samples": counts} for r in rows])
    extra = pd.DataFrame([{
        "model": r["model"], "selection": short[r["selection"]],
        **({f"unseen top-{k} (chance)": f"{_fmt(r[f'unseen_top{k}_mean'])} "
                                        f"({_fmt(r[f'chance_top{k}'])})"} if k > 1 else {}),
        "seen-class test top-1 (chance)": f"{_fmt(r['seen_test_top1_mean'])} "
                                          f"({_fmt(r['chance_seen_test_top1'])})",
        "seen-class val top-1 (chance)": f"{_fmt(r['val_top1_mean'])} "
                                         f"({_fmt(r['chance_val_top1'])})",
        "training ops, chosen": f"{r['train_ops_chosen']:.3g}",
        "training ops, grid": f"{r['train_ops_grid']:.3g}"} for r in rows])
    pair = pd.DataFrame([{
        "selection": short[r["selection"]], "model": r["model"], "minus": r["vs"],
        "difference (points)": f"{100 * r['diff_mean']:+.1f}",
        "95 % interval (points)": f"{100 * r['diff_ci_low']:+.1f} to "
                                  f"{100 * r['diff_ci_high']:+.1f}",
        "hits only in model / only in reference": (f"{int(r['n_model_only'])} / "
                                                   f"{int(r['n_reference_only'])}"),
        "queries x seeds": f"{int(r['n_queries'])} x {int(r['n_seeds'])}"}
        for r in paired.to_dict(orient="records")])
    return {"key": key, "extra": extra, "paired": pair,
            "seen_counts": pd.DataFrame([{"seen test queries": len(other.labels["seen_test"]),
                                          "seen val queries": len(other.labels["val"])}])}


def _report(run: RunDir, cfg: ZeroshotConfig, image: Modality, other: Modality,
            res: ProtocolResult, summary: pd.DataFrame, paired: pd.DataFrame, head: str,
            domain: list[str], wall: float, warned: list[str] | None = None) -> None:
    import pandas as pd

    from ....analysis.report import markdown_table, write_report
    from ....analysis.stats import bootstrap_method
    from ...tasks.zeroshot import P_INVALID_NOTE, SELECTIONS

    lay = res.layout
    tiles = (f"split over {lay.n_tiles(cfg.tile_rows, cfg.tile_cols)} tiles of "
             f"{cfg.tile_rows}x{cfg.tile_cols}" if cfg.tile_rows else "on one macro")
    n = {s: (len(image.labels[s]), len(other.labels[s])) for s in image.labels}
    vc = ", ".join(map(str, res.val_classes)) or "none"
    pairing = ("instance pairs: the simulated population's training trials view the image "
               "modality's training images; val and test queries are responses to the other "
               f"half of the images of {short_name(cfg.image)}, never a gallery image"
               if cfg.pairing_mode == "instance"
               else "class pairs: each epoch pairs every sample of the scarcer modality with a "
               "random same-class sample of the other")
    tabs = _tables(cfg, other, summary, paired)
    notes = [x for x in summary["p_interval_note"] if x] if "p_interval_note" in summary \
        else []
    warned = warned or []
    warn_text = ("\n".join(f"- {w}" for w in warned) if warned else
                 "None: every unseen class has enough queries and gallery images, the "
                 f"headline intervals are narrower than {100 * cfg.warn_interval_width:.0f} "
                 "points, and the modalities' pairing is checked.")
    hl = summary[summary["selection"] == SELECTIONS[head][1]]
    lead = hl.iloc[0]
    ours = (f"{_fmt(lead['unseen_top1_mean'])} (95 % interval over seeds "
            f"{_span(lead['unseen_top1_ci_low'], lead['unseen_top1_ci_high'])}, "
            f"chance {_fmt(lead['chance_top1'])}, "
            f"permutation p {_p(lead['p_value_top1'])})")
    paper_rows = summary[summary["selection"] == SELECTIONS["paper"][1]]
    comparison = pd.DataFrame([
        {"source": "[Lin25] paper, audio-to-image, unseen 8 and 9",
         "selection": "best epoch on the test queries", "unseen_top1": _fmt(PAPER_UNSEEN_TOP1)},
        {"source": "project prototype, digits + espeak-ng, 5 seeds",
         "selection": "seen-class validation", "unseen_top1": _fmt(PROTOTYPE_HONEST[0]),
         "note": f"+- {_fmt(PROTOTYPE_HONEST[1])}; {_fmt(PROTOTYPE_SEEN_TRAINED)} once 8 and 9 "
                 "were trained on"},
        *[{"source": f"this run: {r['model']}, {cfg.image} + {cfg.other}",
           "selection": r["selection"], "unseen_top1": _fmt(r["unseen_top1_mean"]),
           "note": f"95 % interval {_span(r['unseen_top1_ci_low'], r['unseen_top1_ci_high'])}"
                   f", chance {_fmt(r['chance_top1'])}, "
                   f"p {_p(r['p_value_top1'])}"}
          for r in summary.to_dict(orient="records")],
    ])
    comparison = comparison.fillna("")
    sections = [
        ("What ran", (
            f"Images `{cfg.image}` ({image.n_in} inputs) and `{cfg.other}` ({other.n_in} "
            f"inputs); seen classes {cfg.seen} (train / val samples image "
            f"{n['train'][0]}/{n['val'][0]}, other {n['train'][1]}/{n['val'][1]}), unseen "
            f"classes {cfg.unseen} ({n['test'][1]} queries, {n['test'][0]} gallery images, "
            f"{'all splits' if cfg.unseen_from == 'all' else 'test split'}). Pairing: "
            f"{pairing}. One differential map of {lay.shape[0]}x{lay.shape[1]} weights (rows: "
            f"{lay.n_image} image inputs, {lay.n_other} other inputs, {lay.hidden} shared "
            f"recurrent), {tiles}; the image encoder reads {lay.n_image + lay.hidden}x"
            f"{lay.hidden}, the other {lay.n_other + lay.hidden}x{lay.hidden}, both the same "
            f"recurrent cells. Read scheme: {_read_text(cfg)}. Backends "
            f"{', '.join(cfg.backends)}; {cfg.seeds} network seeds "
            f"({cfg.seed}..{cfg.seed + cfg.seeds - 1}); heads: {cfg.dim}-dim projection, "
            f"symmetric InfoNCE, Adam, {cfg.epochs} epochs with checkpoints every "
            f"{cfg.eval_every}. Reservoir runs: {res.cache_misses} (one per backend, seed, "
            "encoder and LIF point; every head grid reuses them)."
            + (f" The surrogate ran outside its calibrated domain on {len(domain)} reads, "
               f"e.g. \"{domain[0]}\"" if domain else "")
            + f" Wall time {wall:.0f} s.\n\nSplit of `{short_name(cfg.image)}`: "
            f"{image.split_text}. Split of `{short_name(cfg.other)}`: {other.split_text} "
            "(sample counts before keeping the classes in use).")),
        ("Warnings", warn_text),
        ("Selection", (
            f"Headline: **{SELECTIONS[head][1]}**. `honest` trains the grid once more without "
            f"the validation classes ({vc}) and picks the grid point and epoch with the best "
            "zero-shot top-1 on them (the standard zero-shot protocol: validation classes "
            "disjoint from the test classes); the chosen hyperparameters' model trained on all "
            "seen classes is then tested once. `honest-seen-val` picks by top-1 on seen-class "
            "validation pairs. `paper` picks by the unseen test top-1, as the published "
            "scripts did, and is labelled so everywhere. Nothing but `paper` looks at the "
            "unseen classes. The permutation p-value of a `paper` row is left out (NaN, "
            f"\"{P_INVALID_NOTE}\"): its null would have to include the choice of the best "
            "of the whole grid on these same test queries, which a label permutation of the "
            "chosen model's neighbours does not. Each row's permutations use their own "
            "generator (from the seed, model and selection).")),
        ("Headline", f"{lead['model']}: unseen top-1 {ours}."),
        ("Unseen-class retrieval (top-1)",
         markdown_table(tabs["key"])
         + ("\n\n**Why a p-value and an interval can disagree.** " + " ".join(notes)
            if notes else "")),
        ("Top-k, seen classes, training operations",
         markdown_table(tabs["extra"])
         + f"\n\nSeen-class test top-1 over {int(tabs['seen_counts'].iloc[0, 0])} queries, "
           f"seen-class val top-1 over {int(tabs['seen_counts'].iloc[0, 1])}; each chance "
           "level is the retrieval rule's exact one for the queries and gallery that ran "
           "(class counts as they are, imbalance included). "
           + (f"Top-{cfg.top_k} counts a hit when any of the {cfg.top_k} nearest gallery "
              "images has the query's class; with two unseen classes it is near 100 % by "
              "construction (its chance level is in the table). " if cfg.top_k > 1 else "")
           + "Training operations: arithmetic operations of the head training "
           "(a MAC counts 2) for the chosen model and for the whole selection grid."),
        (f"Paired by seed: unseen top-1 difference to `LSM, {cfg.backends[0]}`",
         markdown_table(tabs["paired"]) + f"\n\nInterval: {bootstrap_method(cfg.seeds)}. It "
         "resamples per-query hit differences within each seed (same map, data and head "
         "initialisation in a seed), so no outcome of one seed is treated as independent of "
         "another's."
         if len(paired) else "Only one model ran."),
        ("Paper and prototype beside this run", markdown_table(comparison)),
        ("Plots", "![](confusion.png)\n\n![](embedding.png)"),
    ]
    if len(paper_rows):
        # after the headline, wherever the sections before it put it
        at = [title for title, _ in sections].index("Headline") + 1
        sections.insert(at, ("How much the selection adds", markdown_table(pd.DataFrame([
            {"model": m,
             **{SELECTIONS[s][1]: _fmt(float(summary[(summary["model"] == m)
                                                     & (summary["selection"]
                                                        == SELECTIONS[s][1])]
                                             ["unseen_top1_mean"].iloc[0]))
                for s in SELECTIONS if (summary["selection"] == SELECTIONS[s][1]).any()},
             "chance": _fmt(float(summary["chance_top1"].iloc[0])),
             "samples": tabs["key"]["samples"].iloc[0]}
            for m in summary["model"].unique()]))))
    write_report(run.path / "report.md", f"rram-cosim zeroshot: {cfg.name}", sections)


run = run_zeroshot


def _read_text(cfg: ZeroshotConfig) -> str:
    r = cfg.read_scheme()
    return (f"{r.rows_per_read or 'all'} rows per read, {r.cols_per_read or 'all'} outputs "
            f"sensed per read, {r.sense} sensing, rows driven from {r.drive} end(s), wire "
            f"segments {cfg.r_wire_ohm if cfg.r_wire_ohm is not None else 'from the geometry'}"
            f"{' ohm' if cfg.r_wire_ohm is not None else ''}")
