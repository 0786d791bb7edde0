import numpy as np
import pytest
from rram_cosim.analysis.stats import confusion_matrix, paired_difference, pca_2d
from rram_cosim.models.errors import ConfigError


def test_paired_difference_by_hand():
    a = np.array([1, 1, 0, 0, 1])
    b = np.array([1, 0, 1, 1, 1])
    r = paired_difference(a, b)
    d = np.array([0, -1, 1, 1, 0])
    half = 1.959964 * d.std(ddof=1) / np.sqrt(5)
    assert r["diff"] == pytest.approx(0.2)
    assert r["ci_low"] == pytest.approx(0.2 - half)
    assert (r["n_b_only"], r["n_a_only"]) == (2, 1)
    with pytest.raises(ConfigError):
        paired_difference(a, b[:3])


def test_confusion_and_pca():
    cm = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    x = np.outer(np.arange(10.0), [1.0, 2.0, 0.0])
    p = pca_2d(x)
    assert p.shape == (10, 2) and np.allclose(p[:, 1], 0, atol=1e-9)


def test_bootstrap_interval_covers_seeds_and_samples():
    from rram_cosim.analysis.stats import bootstrap_interval

    rng = np.random.default_rng(0)
    # one seed, 400 samples at 70 %: about the binomial interval, +-4.5 points
    one = (rng.random((1, 400)) < 0.7).astype(float)
    r = bootstrap_interval(one, np.random.default_rng(1))
    assert r["ci_low"] < r["mean"] < r["ci_high"]
    assert 0.07 < r["ci_high"] - r["ci_low"] < 0.11
    # the same samples, but seeds that disagree a lot: the interval must widen
    seeds = np.stack([(rng.random(400) < p).astype(float) for p in (0.4, 0.9, 0.5, 0.95)])
    wide = bootstrap_interval(seeds, np.random.default_rng(1))
    assert wide["ci_high"] - wide["ci_low"] > 2.5 * (r["ci_high"] - r["ci_low"])
    assert (wide["n_seeds"], wide["n_samples"]) == (4, 400)
    # same generator state, same interval
    assert bootstrap_interval(seeds, np.random.default_rng(1)) == wide
    with pytest.raises(ConfigError, match="n_seeds, n_samples"):
        bootstrap_interval(np.ones(5), np.random.default_rng(0))


def test_paired_bootstrap_pairs_within_seeds():
    from rram_cosim.analysis.stats import paired_bootstrap

    rng = np.random.default_rng(0)
    a = (rng.random((3, 300)) < 0.6).astype(float)
    same = paired_bootstrap(a, a, np.random.default_rng(2))
    assert same["diff"] == 0 and same["ci_low"] == 0 and same["ci_high"] == 0
    # b fixes 10 % of the samples in every seed: a consistent gain, resolved
    b = a.copy()
    b[:, :30] = 1.0
    gain = paired_bootstrap(a, b, np.random.default_rng(2))
    assert gain["ci_low"] > 0 and gain["n_a_only"] == 0
    # a gain in one seed and an equal loss in another: pooled over seeds as independent
    # outcomes the normal interval looks tight; pairing within seeds shows the spread
    c = a.copy()
    c[0, :60], c[1, :60] = 1.0, 0.0
    mixed = paired_bootstrap(a, c, np.random.default_rng(2))
    naive = paired_difference(a.ravel(), c.ravel())
    assert mixed["ci_low"] < 0 < mixed["ci_high"]
    assert mixed["ci_high"] - mixed["ci_low"] > naive["ci_high"] - naive["ci_low"]


def test_chance_accuracy_is_the_most_frequent_class():
    from rram_cosim.analysis.stats import chance_accuracy

    assert chance_accuracy(np.array([0, 1, 2, 3])) == 0.25
    assert chance_accuracy(np.array([0, 0, 0, 1])) == 0.75
