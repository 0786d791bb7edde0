"""Contrastive heads: hand-written gradients vs finite differences, loss properties, seeds,
retrieval metrics and the permutation test."""

import numpy as np
import pytest
from rram_cosim.models.errors import ConfigError, NotFittedError
from rram_cosim.models.snn.contrastive import (
    ContrastiveHeads,
    chance_topk,
    class_pairs,
    head_backward,
    head_forward,
    info_nce,
    mean_interval,
    nearest_labels,
    permutation_pvalue,
    retrieval_accuracy,
    topk_hits,
)


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("mask", ["identity", "class"])
def test_info_nce_gradient_matches_finite_differences(mask):
    rng = np.random.default_rng(0)
    ea, eb = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    pos = None if mask == "identity" else np.equal.outer([0, 1, 0, 2, 1, 0], [0, 1, 0, 2, 1, 0])
    _, da, db = info_nce(ea, eb, 0.3, pos)
    eps = 1e-6
    for e, d, which in ((ea, da, 0), (eb, db, 1)):
        num = np.zeros_like(e)
        for idx in np.ndindex(e.shape):
            hi, lo = e.copy(), e.copy()
            hi[idx] += eps
            lo[idx] -= eps
            args_hi = (hi, eb) if which == 0 else (ea, hi)
            args_lo = (lo, eb) if which == 0 else (ea, lo)
            num[idx] = (info_nce(*args_hi, 0.3, pos)[0] - info_nce(*args_lo, 0.3, pos)[0]) / (2 * eps)
        np.testing.assert_allclose(d, num, atol=1e-8)


@pytest.mark.parametrize("activation", ["linear", "gelu"])
def test_head_gradient_through_loss_matches_finite_differences(activation):
    rng = np.random.default_rng(1)
    za, zb = rng.normal(size=(5, 7)), rng.normal(size=(5, 3))
    wa, ba = rng.normal(size=(7, 4)), rng.normal(size=4)
    wb, bb = rng.normal(size=(3, 4)), rng.normal(size=4)

    def loss(wa_, ba_):
        ea, _ = head_forward(wa_, ba_, za, activation)
        eb, _ = head_forward(wb, bb, zb, activation)
        return info_nce(ea, eb, 0.2)[0]

    ea, ca = head_forward(wa, ba, za, activation)
    eb, _ = head_forward(wb, bb, zb, activation)
    _, dea, _ = info_nce(ea, eb, 0.2)
    gw, gb = head_backward(ca, dea)
    eps = 1e-6
    num_w = np.zeros_like(wa)
    for idx in np.ndindex(wa.shape):
        hi, lo = wa.copy(), wa.copy()
        hi[idx] += eps
        lo[idx] -= eps
        num_w[idx] = (loss(hi, ba) - loss(lo, ba)) / (2 * eps)
    num_b = np.zeros_like(ba)
    for i in range(ba.size):
        hi, lo = ba.copy(), ba.copy()
        hi[i] += eps
        lo[i] -= eps
        num_b[i] = (loss(wa, hi) - loss(wa, lo)) / (2 * eps)
    np.testing.assert_allclose(gw, num_w, atol=1e-7)
    np.testing.assert_allclose(gb, num_b, atol=1e-7)


def test_loss_properties():
    rng = np.random.default_rng(2)
    e = _unit(rng.normal(size=(8, 16)))
    # aligned pairs at a low temperature: near zero; a permuted pairing: large
    assert info_nce(e, e, 0.01)[0] < 1e-3
    assert info_nce(e, e[::-1].copy(), 0.01)[0] > 5
    # equal embeddings for all: every logit equal, loss = log B
    same = np.ones((8, 3)) / np.sqrt(3)
    assert info_nce(same, same, 0.5)[0] == pytest.approx(np.log(8))
    # symmetric: swapping the modalities (and transposing the mask) changes nothing
    a, b = _unit(rng.normal(size=(8, 5))), _unit(rng.normal(size=(8, 5)))
    pos = np.equal.outer(np.arange(8) % 3, np.arange(8) % 3)
    assert info_nce(a, b, 0.2, pos)[0] == pytest.approx(info_nce(b, a, 0.2, pos.T)[0])
    with pytest.raises(ConfigError, match="positive in every row"):
        info_nce(a, b, 0.2, np.zeros((8, 8), dtype=bool))


def _synthetic(rng, n_per=30, n_classes=6, d=12):
    protos = rng.normal(size=(n_classes, d))
    y = np.repeat(np.arange(n_classes), n_per)
    xa = protos[y] + 0.3 * rng.normal(size=(y.size, d))
    mix = rng.normal(size=(d, 9))
    xb = (protos[y] + 0.3 * rng.normal(size=(y.size, d))) @ mix
    return xa, xb, y


def test_fit_aligns_modalities_and_seeds_are_explicit():
    xa, xb, y = _synthetic(np.random.default_rng(3))
    kw = {"dim": 8, "temperature": 0.2, "epochs": 30, "batch_size": 32, "checkpoints": (1, 30)}
    m = ContrastiveHeads(**kw).fit(xa, xb, rng=np.random.default_rng(0), labels_a=y, labels_b=y)
    acc = retrieval_accuracy(m.transform_b(xb), y, m.transform_a(xa), y)
    assert acc > 0.9  # chance is 1/6
    assert m.loss_history_[-1] < m.loss_history_[0]
    assert retrieval_accuracy(m.at_epoch(1).transform_b(xb), y, m.at_epoch(1).transform_a(xa),
                              y) <= acc
    assert m.train_ops_ > 0
    again = ContrastiveHeads(**kw).fit(xa, xb, rng=np.random.default_rng(0), labels_a=y,
                                       labels_b=y)
    np.testing.assert_array_equal(again.params_[0], m.params_[0])
    other = ContrastiveHeads(**kw).fit(xa, xb, rng=np.random.default_rng(1), labels_a=y,
                                       labels_b=y)
    assert not np.allclose(other.params_[0], m.params_[0])
    e = m.transform_a(xa)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0)


def test_paired_fit_and_bad_input():
    xa, xb, _y = _synthetic(np.random.default_rng(4))
    m = ContrastiveHeads(dim=4, epochs=2).fit(xa, xb, rng=np.random.default_rng(0))
    assert m.transform_b(xb).shape == (xb.shape[0], 4)
    with pytest.raises(NotFittedError):
        ContrastiveHeads().transform_a(xa)
    with pytest.raises(ConfigError, match="as many rows"):
        ContrastiveHeads(epochs=1).fit(xa, xb[:-1], rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="'temperature'"):
        ContrastiveHeads(temperature=0.0).fit(xa, xb, rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="Epoch 3 was not kept"):
        m.at_epoch(3)
    with pytest.raises(ConfigError, match="shape"):
        m.transform_a(xb)


def test_class_pairs_pair_within_classes():
    ya = np.array([0, 0, 1, 1, 2])
    yb = np.array([2, 1, 1, 0, 0, 0, 2, 1])
    ia, ib = class_pairs(ya, yb, np.random.default_rng(0))
    assert ia.size == ya.size  # anchored on the scarcer modality
    np.testing.assert_array_equal(ya[ia], yb[ib])
    with pytest.raises(ConfigError, match=r"Classes \[3\]"):
        class_pairs(np.array([0, 3]), np.array([0, 0]), np.random.default_rng(0))


def test_retrieval_metrics_by_hand():
    gallery = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    gl = np.array([0, 1, 1, 1])
    q = np.array([[1.0, 0.05], [0.0, 1.0]])
    ql = np.array([1, 1])
    nl = nearest_labels(q, gallery, gl, 2)
    np.testing.assert_array_equal(nl, [[0, 1], [1, 1]])
    np.testing.assert_array_equal(topk_hits(nl[:, :1], ql), [False, True])
    np.testing.assert_array_equal(topk_hits(nl, ql), [True, True])
    assert retrieval_accuracy(q, ql, gallery, gl, 1) == 0.5
    # chance: 2 of 4 gallery items match -> top-1 1/2, top-2 1 - C(2,2)/C(4,2) = 5/6
    assert chance_topk(np.array([0]), np.array([0, 0, 1, 1]), 1) == pytest.approx(0.5)
    assert chance_topk(np.array([0]), np.array([0, 0, 1, 1]), 2) == pytest.approx(5 / 6)


def test_permutation_test_separates_signal_from_noise():
    rng = np.random.default_rng(5)
    ql = np.repeat([0, 1], 40)
    perfect = ql[:, None].copy()
    random = rng.integers(0, 2, (80, 1))
    assert permutation_pvalue([perfect, perfect], [ql, ql], 500, rng) < 0.01
    assert permutation_pvalue([random], [ql], 500, rng) > 0.05


def test_mean_interval_covers_the_mean():
    s = mean_interval([0.8, 0.9, 0.85, 0.95, 0.75])
    assert s["mean"] == pytest.approx(0.85)
    assert s["ci_low"] < s["mean"] < s["ci_high"]
    # Student t with 4 degrees of freedom: 2.776 standard errors
    assert s["ci_high"] - s["mean"] == pytest.approx(2.776 * s["std"] / np.sqrt(5), rel=1e-3)
    assert np.isnan(mean_interval([0.5])["std"])


def test_pvalue_small_for_a_working_model_and_uniform_after_shuffled_labels():
    # a tiny separable case: queries and gallery are noisy copies of two class prototypes
    rng = np.random.default_rng(6)
    protos = rng.normal(size=(2, 8))
    ql, gl = np.repeat([0, 1], 20), np.repeat([0, 1], 15)
    nl = nearest_labels(protos[ql] + 0.5 * rng.normal(size=(40, 8)),
                        protos[gl] + 0.5 * rng.normal(size=(30, 8)), gl, 1)
    assert topk_hits(nl, ql).mean() > 0.8  # chance 0.5
    assert permutation_pvalue([nl], [ql], 200, np.random.default_rng(1)) == pytest.approx(1 / 201)
    # labels unrelated to the neighbours: p is roughly uniform on (0, 1]
    rng = np.random.default_rng(2)
    ps = np.array([permutation_pvalue([nl], [rng.permutation(ql)], 200, rng)
                   for _ in range(40)])
    assert 0.3 < ps.mean() < 0.7
    assert np.mean(ps < 0.1) < 0.25


def test_chance_topk_matches_a_per_query_count():
    rng = np.random.default_rng(7)
    gl = rng.integers(0, 5, 60)
    ql = rng.integers(0, 7, 300)  # classes 5 and 6 are missing from the gallery: m = 0
    from scipy.special import comb

    m = np.array([np.sum(gl == q) for q in ql])
    for k in (1, 3):
        want = np.mean(1 - comb(60 - m, k) / comb(60, k))
        assert chance_topk(ql, gl, k) == pytest.approx(want, rel=1e-12)


def test_info_nce_names_the_rows_without_a_positive():
    rng = np.random.default_rng(8)
    a, b = _unit(rng.normal(size=(4, 3))), _unit(rng.normal(size=(4, 3)))
    mask = np.eye(4, dtype=bool)
    mask[2, 2] = False
    with pytest.raises(ConfigError, match=r"rows \[2\] and columns \[2\] have none"):
        info_nce(a, b, 0.2, mask)
    with pytest.raises(ConfigError, match=r"must be \(4, 4\).*\(3, 3\)"):
        info_nce(a, b, 0.2, np.eye(3, dtype=bool))
