import numpy as np
import pytest
from rram_cosim.models.errors import NotFittedError
from rram_cosim.models.snn.heads import SoftmaxReadout


def test_readout_learns_separable_classes_and_is_seeded():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (4, 10))
    y = rng.integers(0, 4, 400)
    x = centres[y] + rng.normal(0, 1, (400, 10))
    a = SoftmaxReadout(epochs=30).fit(x[:300], y[:300], rng=np.random.default_rng(5))
    b = SoftmaxReadout(epochs=30).fit(x[:300], y[:300], rng=np.random.default_rng(5))
    assert a.score(x[300:], y[300:]) > 0.9
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_allclose(a.predict_proba(x[:5]).sum(axis=1), 1.0)


def test_unfitted_readout_raises():
    with pytest.raises(NotFittedError):
        SoftmaxReadout().predict(np.zeros((1, 3)))


def test_lbfgs_reaches_the_stationary_point_of_the_same_loss():
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 1.0, (3, 6))
    y = rng.integers(0, 3, 240)
    x = centres[y] + rng.normal(0, 1.2, (240, 6))
    lb = SoftmaxReadout(solver="lbfgs", l2=1e-2, epochs=50).fit(x, y, rng=rng)
    # gradient of the mean cross-entropy + l2/2 |W|^2 vanishes at the L-BFGS solution
    z = (x - lb.mean_) / lb.scale_
    p = lb.predict_proba(x)
    err = (p - np.eye(3)[y]) / len(y)
    g_w = z.T @ err + 1e-2 * lb.coef_
    assert np.abs(g_w).max() < 1e-4 and np.abs(err.sum(axis=0)).max() < 1e-4
    ad = SoftmaxReadout(l2=1e-2, epochs=200, lr=0.01).fit(x, y, rng=np.random.default_rng(0))
    # Adam ends near the same optimum: predictions agree on almost every sample
    assert np.mean(ad.predict(x) == lb.predict(x)) > 0.95
    again = SoftmaxReadout(solver="lbfgs", l2=1e-2, epochs=50).fit(x, y, rng=rng)
    assert np.array_equal(again.coef_, lb.coef_)
    with pytest.raises(Exception, match="solver"):
        SoftmaxReadout(solver="sgd").fit(x, y, rng=rng)
