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
