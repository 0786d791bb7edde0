import numpy as np
import pytest
from rram_cosim.analysis.stats import confusion_matrix, pca_2d
from rram_cosim.models.errors import ConfigError


def _pooled_normal_half_width(a, b, z=1.959964):
    """The normal interval's half width over per-sample differences pooled over seeds."""
    d = (np.asarray(b, float) - np.asarray(a, float)).ravel()
    return z * d.std(ddof=1) / np.sqrt(d.size)


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
    assert mixed["ci_low"] < 0 < mixed["ci_high"]
    assert mixed["ci_high"] - mixed["ci_low"] > 2 * _pooled_normal_half_width(a, c)


def test_bootstrap_method_names_its_resamples_and_one_seed():
    import inspect

    from rram_cosim.analysis.stats import N_BOOT, bootstrap_interval, bootstrap_method
    assert inspect.signature(bootstrap_interval).parameters["n_boot"].default == N_BOOT
    assert f"{N_BOOT} resamples" in bootstrap_method(3)
    assert "over seeds and test samples" in bootstrap_method(2)
    one = bootstrap_method(1)
    assert "test samples only" in one and "over seeds" not in one


def test_chance_accuracy_is_the_most_frequent_class():
    from rram_cosim.analysis.stats import chance_accuracy

    assert chance_accuracy(np.array([0, 1, 2, 3])) == 0.25
    assert chance_accuracy(np.array([0, 0, 0, 1])) == 0.75
