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
    last = cfg.backends[-1]
    save_figure(_confusion_plot(res.confusion[last], last), run.path / "confusion.png")
    name, feats = res.embedding
    save_figure(_embedding_plot(feats, res.test_labels, name), run.path / "embedding.png")
    wall = time.perf_counter() - t0
    _report(run, cfg, res, wall)
    headline = {r["model"]: {"val": round(r["val_mean"], 4), "test": round(r["test_mean"], 4),
                             "test_std": round(float(np.nan_to_num(r["test_std"])), 4)}
                for r in res.summary.to_dict(orient="records")}
    summary = {"headline": headline, "accuracy": res.accuracy.to_dict(orient="records"),
               "paired": res.paired.to_dict(orient="records"), "exact_reads": res.exact_reads,
               "surrogate_worst": res.surrogate_worst,
               "wall_s": wall}
    run.write_json("summary.json", {k: v for k, v in summary.items() if k != "wall_s"})
    run.finish()
    return summary


def _confusion_plot(cm: np.ndarray, backend: str):
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(cm / np.maximum(cm.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0,
                   vmax=1)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"test confusion, LSM on {backend} (all seeds)")
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    return fig


def _embedding_plot(feats: np.ndarray, labels: np.ndarray, backend: str):
    import matplotlib.pyplot as plt

    from ....analysis.stats import pca_2d

    p = pca_2d(feats)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sc = ax.scatter(p[:, 0], p[:, 1], c=labels, cmap="tab10", s=8)
    ax.set_xlabel("PC 1 of spike counts")
    ax.set_ylabel("PC 2")
    ax.set_title(f"test spike-count embedding ({backend}, first seed)")
    fig.colorbar(sc, ax=ax, label="class")
    return fig


def _report(run: RunDir, cfg: ClassifyConfig, res: ClassifyResult, wall: float) -> None:
    from ....analysis.report import markdown_table, write_report

    spec, n_in, n_steps = res.spec, res.n_in, res.n_steps
    sizes = "/".join(str(n) for n in res.sizes.values())
    tile = (f"tiles of {cfg.tile_rows}x{cfg.tile_cols}" if cfg.tile_rows
            else "the whole map on one macro")
    sections = [
        ("What ran", (
            f"`{cfg.dataset}` ({sizes} train/val/test samples, {n_in} inputs, {n_steps} steps), "
            f"LIF reservoir h = {cfg.hidden} on a {n_in + cfg.hidden}x{cfg.hidden} differential "
            f"map ({tile}; {cfg.adc_bits}-bit ADC with full scale "
            f"{spec.adc.v_full_scale_v / spec.r_f_ohm * 1e6:.0f} uA per column and read, "
            f"'{cfg.adc_range}' range; read scheme: "
            f"{describe_read(spec, n_in + cfg.hidden, cfg.hidden)}), backends "
            f"{', '.join(cfg.backends)}"
            + (f" (surrogate linearised: '{cfg.linearise}')" if "surrogate" in cfg.backends
               else "")
            + f", {cfg.seeds} network seed(s). Hyperparameters chosen per "
            "seed and backend on validation (grid in grid.csv); nothing selected on "
            f"test. Wall time {wall:.0f} s.")),
        ("Accuracy (mean and std over seeds)", markdown_table(res.summary)),
        (f"Paired test-accuracy difference to `{cfg.backends[0]}` (95 % interval)",
         markdown_table(res.paired) if len(res.paired) else "Only one backend ran."),
        ("Per class (test, pooled over seeds)", markdown_table(res.per_class)),
        ("Plots", "![](confusion.png)\n\n![](embedding.png)"),
    ]
    write_report(run.path / "report.md", f"rram-cosim classify: {cfg.name}", sections)


run = run_classify
