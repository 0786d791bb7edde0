import numpy as np
import pytest
from rram_cosim.models.errors import NotFittedError
from rram_cosim.models.heads import SoftmaxReadout


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
