import numpy as np
import pytest
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import TileSpec
from rram_cosim.models.tile.backend import read_noise_ua
from rram_cosim.models.tile.ideal import IdealBackend
from rram_cosim.models.tile.periphery import adc_codes, codes_to_ua, dac_volts, tia_out_v
from rram_cosim.models.tile.tiling import TiledBackend


def _pair(rng, shape):
    return rng.uniform(5, 25, shape), rng.uniform(5, 25, shape)


def test_ideal_output_is_x_times_w():
    rng = np.random.default_rng(1)
    spec = TileSpec(rows=8, cols=5, g_ref_us=2.0)
    gp, gn = _pair(rng, (8, 5))
    x = rng.integers(0, 2, (7, 8))
    out = IdealBackend(spec).bind(gp, gn).apply(x, rng)
    np.testing.assert_allclose(out.y, x @ ((gp - gn) / 2.0), rtol=1e-12)
    np.testing.assert_allclose(out.i_pos_ua, 0.2 * x @ gp, rtol=1e-12)
    # volts give the same y as levels
    out_v = IdealBackend(spec).bind(gp, gn).apply(x * spec.v_read_v, rng, volts=True)
    np.testing.assert_allclose(out_v.y, out.y, rtol=1e-12)


def test_periphery_round_trip_within_one_lsb():
    spec = TileSpec(rows=16, cols=4)
    i = np.linspace(0, spec.i_full_scale_ua, 1001)
    back = codes_to_ua(adc_codes(tia_out_v(i, spec), spec), spec)
    lsb = spec.adc.lsb_v / spec.r_f_ohm * 1e6
    # the op-amp offset lifts the output by v_os: the codes read i - v_os / R_f (3.4 LSB here);
    # finite gain adds far less than an LSB; rounding at most half an LSB
    shift = spec.tia.v_offset_v / spec.r_f_ohm * 1e6
    live = i > shift
    assert np.max(np.abs(back[live] - (i[live] - shift))) < 0.6 * lsb
    assert np.max(np.abs(back - i)) > 3 * lsb
    assert adc_codes(tia_out_v(np.array([1e9]), spec), spec)[0] == spec.adc.n_codes - 1


def test_dac_quantises_to_its_lsb():
    spec = TileSpec()
    v = dac_volts(np.array([0.0, 0.5, 1.0]), spec)
    lsb = spec.dac.lsb_v
    np.testing.assert_allclose(v / lsb, np.round(v / lsb))
    assert abs(v[2] - spec.v_read_v) <= lsb / 2


def test_read_noise_has_the_summed_variance():
    rng = np.random.default_rng(0)
    v = np.full((20000, 50), 0.2)
    n = read_noise_ua(v, 0.1, 3, rng)
    assert n.std() == pytest.approx(0.1 * 0.2 * np.sqrt(50), rel=0.02)


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(0)
    spec = TileSpec(rows=4, cols=4)
    gp, gn = _pair(rng, (4, 4))
    be = IdealBackend(spec)
    bad = gp.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ConfigError, match=r"non-finite conductance at \(1, 2\)"):
        be.bind(bad, gn)
    with pytest.raises(ConfigError, match="negative conductance"):
        be.bind(-gp, gn)
    with pytest.raises(ConfigError, match="shape"):
        be.bind(gp, gn[:3])
    with pytest.raises(ConfigError, match="does not fit"):
        be.bind(np.ones((5, 4)), np.ones((5, 4)))
    with pytest.raises(ConfigError, match=r"shape \(batch, 4\)"):
        be.bind(gp, gn).apply(np.ones((2, 3)), rng)
    with pytest.raises(ConfigError, match=r"levels in \[0, 1\]"):
        be.bind(gp, gn).apply(np.full((1, 4), 2.0), rng)


def test_tiling_adds_partial_sums_exactly_for_ideal_tiles():
    rng = np.random.default_rng(3)
    gp, gn = _pair(rng, (37, 11))
    x = rng.integers(0, 2, (5, 37))
    whole = IdealBackend(TileSpec(rows=37, cols=11)).bind(gp, gn).apply(x, rng)
    tiled = TiledBackend(IdealBackend(TileSpec(rows=16, cols=4)), 16, 4).bind(gp, gn)
    assert tiled.n_tiles == 3 * 3
    np.testing.assert_allclose(tiled.apply(x, rng).y, whole.y, rtol=1e-12, atol=1e-12)
