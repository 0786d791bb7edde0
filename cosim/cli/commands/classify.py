"""``rram-cosim classify``: LSM + softmax readout on event data, per backend, over seeds.

The protocol (hyperparameters chosen per seed and backend on validation, the test split run
once, a raw-event baseline, paired intervals) is :mod:`rram_cosim.cosim.tasks.classify`'s.
This module runs it and writes ``runs/<name>/``: ``config.json``, the protocol's tables
(``accuracy.csv``, ``accuracy_summary.csv``, ``paired_difference.csv``, ``grid.csv``,
``per_class.csv``), ``activity.json``, ``surrogate.json`` (when calibrated),
``confusion.png``, ``embedding.png``, ``report.md`` and ``summary.json``.

Heavy libraries (pandas, matplotlib, scipy) and the task load inside :func:`run_classify`,
so building the command line's parser imports only the configuration.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...tasks.configs.classify import ClassifyConfig
from ...tasks.configs.common import describe_read
from ..runs import RunDir

if TYPE_CHECKING:
    import numpy as np

    from ...tasks.classify import ClassifyResult

COMMAND = "classify"
HELP = ("LSM + softmax readout on event data with ideal / surrogate / nodal / spice weights, "
        "hyperparameters chosen on validation, mean and spread over seeds")
CONFIG = ClassifyConfig


def run_classify(cfg: ClassifyConfig, runs_root: str | Path = "runs", *,
                 progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Run the classification protocol and write ``runs_root/<cfg.name>/``."""
    import numpy as np

    from ....analysis.report import save_figure
    from ...tasks.classify import classify

    t0 = time.perf_counter()
    run = RunDir.create(runs_root, cfg.name, command=COMMAND, overwrite=overwrite)
    run.write_config(COMMAND, asdict(cfg))
    res = classify(cfg, run, progress=progress)
    save_figure(confusion_figure(res.confusion, res.class_names), run.path / "confusion.png")
    save_figure(_embedding_plot(res.embedding, res.test_labels, res.class_names),
                run.path / "embedding.png")
    wall = time.perf_counter() - t0
    _report(run, cfg, res, wall)
    headline = {r["model"]: {"val": round(r["val_mean"], 4), "test": round(r["test_mean"], 4),
                             "test_std": round(float(np.nan_to_num(r["test_std"])), 4),
                             "ci95": [round(r["test_ci_low"], 4), round(r["test_ci_high"], 4)],
                             "chance": round(r["chance"], 4), "n_test": int(r["n_test"])}
                for r in res.summary.to_dict(orient="records")}
    summary = {"headline": headline, "accuracy": res.accuracy.to_dict(orient="records"),
               "paired": res.paired.to_dict(orient="records"), "warnings": res.warnings,
               "split": res.split_text, "exact_reads": res.exact_reads,
               "surrogate_worst": res.surrogate_worst, "wall_s": wall}
    run.write_json("summary.json", {k: v for k, v in summary.items() if k != "wall_s"})
    run.finish()
    return summary


def confusion_figure(cms: dict[str, np.ndarray], class_names: tuple[str, ...]):
    """One test confusion matrix a model (all seeds pooled), every class labelled, the
    colour bar beside the panels and the title above them."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ...tasks.classify import model_label

    n = len(cms)
    k = next(iter(cms.values())).shape[0]
    names = list(class_names)[:k] + [str(c) for c in range(len(class_names), k)]
    side = max(3.2, 0.32 * k + 1.2)
    fig, axes = plt.subplots(1, n, figsize=(side * n + 1.0, side + 0.8), squeeze=False,
                             constrained_layout=True)
    im = None
    for ax, (model, cm) in zip(axes[0], cms.items()):
        frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(k), names, rotation=90 if max(map(len, names)) > 2 else 0,
                      fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
        ax.set_xlabel("predicted class")
        ax.set_title(model_label(model), fontsize=9)
    axes[0][0].set_ylabel("true class")
    fig.colorbar(im, ax=list(axes[0]), label="fraction of the true class", shrink=0.8)
    fig.suptitle("test confusion, all seeds pooled", fontsize=10)
    return fig


def _embedding_plot(embedding: dict[str, np.ndarray], labels: np.ndarray,
                    class_names: tuple[str, ...]):
    import matplotlib.pyplot as plt

    from ....analysis.stats import pca_2d
    from ...tasks.classify import model_label

    n = len(embedding)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n + 1.2, 4.2), squeeze=False,
                             constrained_layout=True)
    k = int(labels.max()) + 1
    cmap = plt.get_cmap("tab10" if k <= 10 else "tab20", max(k, 2))
    for ax, (backend, feats) in zip(axes[0], embedding.items()):
        p = pca_2d(feats)
        for c in range(k):
            m = labels == c
            if m.any():
                ax.scatter(p[m, 0], p[m, 1], s=8, color=cmap(c),
                           label=class_names[c] if c < len(class_names) else str(c))
        ax.set_xlabel("PC 1 of spike counts")
        ax.set_ylabel("PC 2")
        ax.set_title(model_label(backend), fontsize=9)
    axes[0][-1].legend(title="class", fontsize=7, markerscale=1.5, loc="center left",
                       bbox_to_anchor=(1.0, 0.5))
    fig.suptitle("test spike-count embedding, first seed", fontsize=10)
    return fig


def _pct(x: float) -> str:
    """An accuracy as every table of the report shows it."""
    import numpy as np

    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f} %"


def _pts(x: float) -> str:
    """A difference of accuracies, in points."""
    return f"{100 * x:+.1f}"


def _report(run: RunDir, cfg: ClassifyConfig, res: ClassifyResult, wall: float) -> None:
    import pandas as pd

    from ....analysis.report import markdown_table, write_report
    from ...tasks.classify import model_label

    spec, n_in, n_steps = res.spec, res.n_in, res.n_steps
    sizes = "/".join(str(n) for n in res.sizes.values())
    tile = (f"tiles of {cfg.tile_rows}x{cfg.tile_cols}" if cfg.tile_rows
            else "the whole map on one macro")
    acc = pd.DataFrame([{
        "model": r["model"],
        "test (mean +- std over seeds)": (
            f"{_pct(r['test_mean'])} +- {_pct(r['test_std'])}" if r["n_seeds"] > 1
            else f"{_pct(r['test_mean'])} (one seed)"),
        "test 95 % interval": f"{_pct(r['test_ci_low'])} to {_pct(r['test_ci_high'])}",
        "chance": _pct(r["chance"]),
        "validation (samples)": f"{_pct(r['val_mean'])} ({int(r['n_val'])})",
        "test samples x seeds": f"{int(r['n_test'])} x {int(r['n_seeds'])}"}
        for r in res.summary.to_dict(orient="records")])
    paired = pd.DataFrame([{
        "model": r["model"], "minus": r["vs"], "difference (points)": _pts(r["diff"]),
        "95 % interval (points)": f"{_pts(r['ci_low'])} to {_pts(r['ci_high'])}",
        "right only in model / only in reference": f"{r['n_b_only']} / {r['n_a_only']}",
        "test samples x seeds": f"{int(r['n_samples'])} x {int(r['n_seeds'])}"}
        for r in res.paired.to_dict(orient="records")])
    per_class = res.per_class.copy()
    per_class.insert(1, "name", [res.class_names[c] if c < len(res.class_names) else str(c)
                                 for c in per_class["class"]])
    for c in list(per_class.columns):
        if c.endswith("_test_acc"):
            model = c[: -len("_test_acc")]
            per_class[c] = per_class[c].map(_pct)
            per_class = per_class.rename(columns={
                c: model_label(model)})
    per_class = per_class.rename(columns={"n_test": "test samples (x seeds)"})
    warn = ("\n".join(f"- {w}" for w in res.warnings) if res.warnings
            else "None: the test split holds enough samples a class, every interval is "
                 f"narrower than {100 * cfg.warn_interval_width:.0f} points, and validation "
                 "is not saturated.")
    sections = [
        ("What ran", (
            f"`{cfg.dataset}` ({sizes} train/val/test samples, {res.n_in} inputs, {n_steps} "
            f"steps), LIF reservoir h = {cfg.hidden} on a {n_in + cfg.hidden}x{cfg.hidden} "
            f"differential map ({tile}; {cfg.adc_bits}-bit ADC with full scale "
            f"{spec.adc.v_full_scale_v / spec.r_f_ohm * 1e6:.0f} uA per column and read, "
            f"'{cfg.adc_range}' range; read scheme: "
            f"{describe_read(spec, n_in + cfg.hidden, cfg.hidden)}), backends "
            f"{', '.join(cfg.backends)}"
            + (f" (surrogate linearised: '{cfg.linearise}')" if "surrogate" in cfg.backends
               else "")
            + f", {cfg.seeds} network seed(s). Hyperparameters chosen per "
            "seed and backend on validation (grid in grid.csv); nothing selected on "
            f"test. Wall time {wall:.0f} s.\n\n{res.split_text}")),
        ("Warnings", warn),
        ("Accuracy", markdown_table(acc) + (
            f"\n\nChance: the most frequent test class's share ({len(res.class_names)} "
            f"classes). Interval: {res.interval_method}.")),
        (f"Paired test-accuracy difference to `LSM, {cfg.backends[0]}`",
         (markdown_table(paired) + f"\n\nInterval: {res.interval_method}. It "
          "resamples per-sample differences within each seed (the same map, data and readout initialisation), so "
          "no outcome of one seed is treated as independent of another's.")
         if len(paired) else "Only one model ran."),
        ("Per class (test, pooled over seeds)", markdown_table(per_class)),
        ("Plots", "![](confusion.png)\n\n![](embedding.png)"),
    ]
    write_report(run.path / "report.md", f"rram-cosim classify: {cfg.name}", sections)


run = run_classify
