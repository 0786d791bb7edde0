"""Tables (CSV), plots (PNG) and the run's report.md, all written atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs write PNGs, never open windows
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..models.io import atomic_write, atomic_write_text


def save_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as CSV (loadable with ``pandas.read_csv``)."""
    return atomic_write(path, lambda p: df.to_csv(p, index=False))


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Write a figure as PNG and close it."""
    try:
        return atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120,
                                                        bbox_inches="tight"))
    finally:
        plt.close(fig)


def _cell(v: object) -> str:
    if isinstance(v, (float, np.floating)):
        if v == 0 or 1e-3 <= abs(v) < 1e5:
            return f"{v:.4g}"
        return f"{v:.3e}"
    return str(v).replace("|", "\\|")


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of ``df`` (no extra dependency)."""
    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |"
            for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def write_report(path: str | Path, title: str, sections: list[tuple[str, str]]) -> Path:
    """Write report.md: a title and (heading, markdown body) sections."""
    parts = [f"# {title}", ""]
    for heading, body in sections:
        parts += [f"## {heading}", "", body.rstrip(), ""]
    return atomic_write_text(path, "\n".join(parts))


def tile_error_figure(ref_ua: np.ndarray, preds_ua: dict[str, np.ndarray], lsb_ua: float,
                      title: str) -> plt.Figure:
    """Model vs circuit column currents (uA) and their difference in ADC LSB, per model."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, p in preds_ua.items():
        axes[0].plot(ref_ua, p, ".", ms=2, label=name)
        axes[1].plot(ref_ua, (p - ref_ua) / lsb_ua, ".", ms=2, label=name)
    axes[0].set_xlabel("circuit column current (uA)")
    axes[0].set_ylabel("model column current (uA)")
    axes[1].set_xlabel("circuit column current (uA)")
    axes[1].set_ylabel("model - circuit (ADC LSB)")
    axes[1].set_yscale("symlog", linthresh=1.0)
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig
