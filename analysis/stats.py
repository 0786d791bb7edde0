"""Small statistics used by reports: accuracy intervals over seeds and samples, paired
differences by bootstrap, chance levels."""

from __future__ import annotations

import numpy as np

from ..models.errors import ConfigError

N_BOOT = 2000
"""Resamples of :func:`bootstrap_interval` and :func:`paired_bootstrap` unless told."""

BOOTSTRAP_METHOD = ("bootstrap over seeds and test samples ({n} resamples, percentile 95 %): "
                    "each resample draws seeds and test samples with replacement, the same "
                    "samples for every seed")
"""How :func:`bootstrap_interval` builds its interval, as a report names it."""

BOOTSTRAP_METHOD_ONE_SEED = ("bootstrap over test samples only ({n} resamples, percentile "
                             "95 %): one network seed ran, so the interval says nothing about "
                             "how another seed would score")
"""The same with one seed: only the test samples are resampled."""


def bootstrap_method(n_seeds: int, n_boot: int = N_BOOT) -> str:
    """How :func:`bootstrap_interval` built an interval over ``n_seeds`` seeds, for a report."""
    return (BOOTSTRAP_METHOD if n_seeds > 1 else BOOTSTRAP_METHOD_ONE_SEED).format(n=n_boot)


def bootstrap_interval(values: np.ndarray, rng: np.random.Generator, *,
                       n_boot: int = N_BOOT) -> dict[str, float]:
    """Mean of per-seed, per-sample ``values`` (n_seeds, n_samples) and its 95 % interval.

    A two-level bootstrap: each resample draws the seeds with replacement and, independently,
    the test samples with replacement (one draw shared by all seeds, since every seed ran the
    same test samples), and takes the mean. The percentile interval thus covers both sources
    of spread a designer cares about: another network seed, and another test set of the same
    size. For a paired comparison pass per-sample differences within each seed (model B's
    0/1 outcome minus model A's on the same sample and seed): shared difficulty cancels
    within a seed, and no outcome of one seed is treated as independent of another seed's.

    The interval is conservative: each seed's mean already carries test-sample noise, so
    resampling seeds counts that noise again on top of the sample resampling (both levels),
    and the interval comes out somewhat wider than the spread it stands for. With one seed
    only the samples are resampled (:func:`bootstrap_method` says so).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.size == 0:
        raise ConfigError(f"bootstrap_interval needs a non-empty (n_seeds, n_samples) array. "
                          f"Got shape {v.shape}.")
    n_seeds, n = v.shape
    # per resample: sample weights (multinomial counts) and seed picks
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)  # (B, N)
    per_seed = v @ w.T / n  # (S, B): each seed's mean under each sample resample
    picks = rng.integers(0, n_seeds, size=(n_boot, n_seeds))  # (B, S)
    boots = per_seed[picks, np.arange(n_boot)[:, None]].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"mean": float(v.mean()), "ci_low": float(lo), "ci_high": float(hi),
            "n_seeds": int(n_seeds), "n_samples": int(n)}


def paired_bootstrap(correct_a: np.ndarray, correct_b: np.ndarray, rng: np.random.Generator,
                     *, n_boot: int = N_BOOT) -> dict[str, float]:
    """``b - a`` over paired 0/1 outcomes (n_seeds, n_samples) of two models on the same test
    samples and seeds: mean, :func:`bootstrap_interval` of the per-sample differences within
    each seed, and how many outcomes only one model got right."""
    a = np.atleast_2d(np.asarray(correct_a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(correct_b, dtype=np.float64))
    if a.shape != b.shape or a.size == 0:
        raise ConfigError(
            f"Paired outcomes need equal, non-empty shapes. Got {a.shape} and {b.shape}.")
    d = b - a
    ci = bootstrap_interval(d, rng, n_boot=n_boot)
    return {"diff": ci["mean"], "ci_low": ci["ci_low"], "ci_high": ci["ci_high"],
            "n_seeds": ci["n_seeds"], "n_samples": ci["n_samples"],
            "n_b_only": int(np.sum(d > 0)), "n_a_only": int(np.sum(d < 0))}


def chance_accuracy(labels: np.ndarray) -> float:
    """Accuracy of the best constant guess on ``labels``: the most frequent class's share
    (1 / n_classes on a balanced set)."""
    lab = np.asarray(labels, dtype=np.int64)
    if lab.size == 0:
        raise ConfigError("chance_accuracy needs at least one label.")
    return float(np.bincount(lab).max() / lab.size)


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
