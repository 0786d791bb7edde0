import warnings

import numpy as np
import pytest
from rram_cosim.models.errors import ConfigError, DomainWarning, NotFittedError
from rram_cosim.models.params import TileSpec
from rram_cosim.models.periphery import dac_volts
from rram_cosim.models.surrogate import (
    CalibrationSample,
    TileSurrogate,
    interleave,
    transfer_matrix,
)


def _samples(spec, r_s, k_w, rng, n_maps=3):
    out = []
    for _ in range(n_maps):
        gp = rng.uniform(2, 30, (spec.rows, spec.cols))
        gn = rng.uniform(2, 30, (spec.rows, spec.cols))
        x = (rng.random((20, spec.rows)) < rng.uniform(0.05, 1, (20, 1))).astype(float)
        a = transfer_matrix(interleave(gp, gn), spec, r_s, k_w)
        t = spec.tia
        i = (dac_volts(x, spec) - t.v_offset_v * t.a_ol / (1 + t.a_ol)) @ a
        out.append(CalibrationSample(gp, gn, x, i[:, 0::2], i[:, 1::2]))
    return out


def test_fit_recovers_known_parameters():
    spec = TileSpec(rows=12, cols=6, r_wire_ohm=5.0)
    rng = np.random.default_rng(0)
    sur = TileSurrogate(spec=spec).fit(_samples(spec, 2500.0, 0.8, rng))
    assert sur.r_s_ohm_ == pytest.approx(2500.0, rel=1e-6)
    assert sur.k_wire_ == pytest.approx(0.8, rel=1e-6)


def test_first_order_wire_model_is_exact_for_one_cell():
    # one cell: series DAC r, 1 row segment, 1 column segment: 1/(1/g + r_s + r_dac + 2 r_w)
    spec = TileSpec(rows=1, cols=1, r_wire_ohm=7.0)
    g = np.array([[20.0, 0.0]])
    a = transfer_matrix(g, spec, 1000.0, 1.0)
    expect = 1 / (1 / 20e-6 + 1000.0 + spec.dac.r_out_ohm + 2 * 7.0) * 1e6
    assert a[0, 0] == pytest.approx(expect, rel=1e-3)


def test_save_load_round_trip_and_domain(tmp_path):
    spec = TileSpec(rows=8, cols=4)
    rng = np.random.default_rng(1)
    sur = TileSurrogate(spec=spec).fit(_samples(spec, 1500.0, 1.0, rng), provenance={"by": "test"})
    sur.save(tmp_path / "s.json")
    back = TileSurrogate.load(tmp_path / "s.json")
    assert back.r_s_ohm_ == sur.r_s_ohm_ and back.provenance_ == {"by": "test"}
    gp = rng.uniform(5, 20, (8, 4))
    x = rng.integers(0, 2, (3, 8))
    np.testing.assert_array_equal(
        sur.bind(gp, gp).apply(x, np.random.default_rng(2)).codes_pos,
        back.bind(gp, gp).apply(x, np.random.default_rng(2)).codes_pos)
    with pytest.warns(DomainWarning, match="outside its calibrated domain"):
        sur.bind(gp * 10, gp)
    strict = TileSurrogate.load(tmp_path / "s.json", strict=True)
    with pytest.raises(ConfigError, match="calibrated domain"):
        strict.bind(gp * 10, gp)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sur.bind(gp, gp)  # inside the domain: silent


def test_unfitted_and_bad_file():
    with pytest.raises(NotFittedError):
        TileSurrogate().bind(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ConfigError, match="Cannot load"):
        TileSurrogate.load("/nonexistent/s.json")
