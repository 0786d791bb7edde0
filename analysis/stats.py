"""Small statistics used by reports: paired accuracy differences, summaries over seeds."""

from __future__ import annotations

import numpy as np

from ..models.errors import ConfigError


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray,
                      z: float = 1.959964) -> dict[str, float]:
    """Mean of ``b - a`` over paired 0/1 outcomes and its normal 95 % interval.

    ``correct_a`` and ``correct_b`` are per-sample outcomes on the same samples (pooled over
    seeds if several). The interval is ``mean +- z * sd / sqrt(n)`` of the per-sample
    differences, the paired (McNemar-style) interval: shared difficulty cancels.
    """
    a = np.asarray(correct_a, dtype=np.float64).ravel()
    b = np.asarray(correct_b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ConfigError(
            f"Paired outcomes need equal, non-empty shapes. Got {a.shape} and {b.shape}.")
    d = b - a
    half = z * d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
    m = float(d.mean())
    return {"diff": m, "ci_low": m - half, "ci_high": m + half, "n": int(d.size),
            "n_b_only": int(np.sum(d > 0)), "n_a_only": int(np.sum(d < 0))}


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes x n_classes): rows true class, columns predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def pca_2d(x: np.ndarray) -> np.ndarray:
    """First two principal components of the rows of ``x`` (n x 2)."""
    z = np.asarray(x, dtype=np.float64)
    z = z - z.mean(axis=0)
    u, s, _ = np.linalg.svd(z, full_matrices=False)
    return u[:, :2] * s[:2]
