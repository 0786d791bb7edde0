"""Every backend honours the same contract: bind once, apply batches, y in W x units."""

import numpy as np
import pytest
from rram_cosim.cosim.engines.calibrate import calibration_inputs, simulate
from rram_cosim.cosim.engines.registry import make_backend
from rram_cosim.models.device.conductance import differential_pair
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import DeviceParams, TileSpec
from rram_cosim.models.tile.backend import BoundTile, TileBackend
from rram_cosim.models.tile.surrogate import TileSurrogate


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    spec = TileSpec(rows=6, cols=5)
    rng = np.random.default_rng(11)
    gp, gn = differential_pair((6, 5), rng, DeviceParams())
    x = calibration_inputs(6, 9, rng)
    # surrogate fitted on nodal results of other maps
    maps = [differential_pair((6, 5), rng) for _ in range(2)]
    cal = simulate(make_backend("nodal", spec), maps, [calibration_inputs(6, 9, rng)] * 2, rng)
    path = tmp_path_factory.mktemp("s") / "s.json"
    TileSurrogate(spec=spec, read_noise_sigma_us=0.0).fit(cal).save(path)
    return spec, gp, gn, x, path


@pytest.mark.parametrize("name", ["ideal", "surrogate", "nodal", "spice"])
def test_backend_contract(setup, name):
    spec, gp, gn, x, path = setup
    be = make_backend(name, spec, surrogate_path=path if name == "surrogate" else None)
    assert isinstance(be, TileBackend)
    bound = be.bind(gp, gn)
    assert isinstance(bound, BoundTile)
    out = bound.apply(x, np.random.default_rng(0))
    for f in ("y", "i_pos_ua", "i_neg_ua", "codes_pos", "codes_neg"):
        assert getattr(out, f).shape == (9, 5), f
    ideal = x @ ((gp - gn) / spec.g_ref_us)
    # 6 rows on 1 ohm wires: every backend is within a few percent of the ideal product
    scale = np.abs(x) @ ((gp + gn) / spec.g_ref_us)
    assert np.max(np.abs(out.y - ideal) / scale) < 0.05
    assert out.codes_pos.dtype.kind == "i"


def test_circuit_backends_agree_on_codes(setup):
    spec, gp, gn, x, path = setup
    rng = np.random.default_rng(0)
    nodal = make_backend("nodal", spec).bind(gp, gn).apply(x, rng)
    spice = make_backend("spice", spec).bind(gp, gn).apply(x, rng)
    np.testing.assert_array_equal(nodal.codes_pos, spice.codes_pos)
    np.testing.assert_allclose(nodal.i_neg_ua, spice.i_neg_ua, rtol=1e-8)
    sur = make_backend("surrogate", spec, surrogate_path=path).bind(gp, gn).apply(x, rng)
    assert np.max(np.abs(sur.codes_pos - spice.codes_pos)) <= 1


def test_unknown_backend_and_missing_surrogate():
    with pytest.raises(ConfigError, match="one of"):
        make_backend("hspice", TileSpec())
    with pytest.raises(ConfigError, match="surrogate_path"):
        make_backend("surrogate", TileSpec())
