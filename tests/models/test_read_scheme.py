"""Read schemes in the numpy backends: row groups, differential sensing, counts, legacy files."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import ReadScheme, TileSpec, WireGeometry, to_dict
from rram_cosim.models.tile.backend import code_y_scale
from rram_cosim.models.tile.ideal import IdealBackend
from rram_cosim.models.tile.periphery import adc_codes, dac_volts, diff_codes, diff_out_v, tia_out_v
from rram_cosim.models.tile.read import column_groups
from rram_cosim.models.tile.surrogate import TileSurrogate


def _pair(rng, rows, cols):
    return rng.uniform(5, 25, (rows, cols)), rng.uniform(5, 25, (rows, cols))


def test_defaults_follow_the_board_and_the_geometry():
    r = ReadScheme()
    assert r.rows_per_read == 64 and r.sense == "single" and r.drive == "one"
    spec = TileSpec(rows=456, cols=200)
    assert spec.rows_per_read == 64
    assert spec.i_full_scale_ua == pytest.approx(64 * 0.2 * 30.0)
    assert spec.r_row_ohm == spec.r_col_ohm == pytest.approx(0.35 * 0.25 / 0.07)
    assert TileSpec(r_wire_ohm=2.0).r_row_ohm == 2.0
    assert TileSpec(col_wire=WireGeometry(width_um=0.14)).r_col_ohm == pytest.approx(0.625)
    assert r.row_groups(150) == [(0, 64), (64, 128), (128, 150)]
    assert ReadScheme.whole_map().row_groups(150) == [(0, 150)]
    assert (r.reads_per_vmm(456, 200), r.conversions_per_vmm(456, 200)) == (8, 3200)
    with pytest.raises(ConfigError, match="sense"):
        ReadScheme(sense="both")
    with pytest.raises(ConfigError, match="rows_per_read"):
        ReadScheme(rows_per_read=-1)


def test_ideal_rows_groups_sum_codes_of_each_read():
    rng = np.random.default_rng(0)
    gp, gn = _pair(rng, 150, 6)
    x = (rng.random((5, 150)) < 0.4).astype(float)
    spec = TileSpec(rows=150, cols=6, read=ReadScheme(rows_per_read=64))
    out = IdealBackend(spec).bind(gp, gn).apply(x, rng)
    np.testing.assert_allclose(out.y, x @ (gp - gn), rtol=1e-12)  # the ideal y is exact
    expect = 0
    for a, b in spec.read.row_groups(150):
        i = x[:, a:b] * 0.2 @ gp[a:b]
        expect = expect + np.clip(np.floor(i * 1e-6 * spec.r_f_ohm / spec.adc.lsb_v + 0.5),
                                  0, spec.adc.n_codes - 1)
    np.testing.assert_array_equal(out.codes_pos, expect)


def test_differential_sensing_converts_the_analogue_difference_once():
    rng = np.random.default_rng(1)
    gp, gn = _pair(rng, 64, 8)
    x = (rng.random((6, 64)) < 0.5).astype(float)
    single = TileSpec(rows=64, cols=8)
    diff = dataclasses.replace(single, read=ReadScheme(sense="differential"))
    sur = TileSurrogate(spec=single, read_noise_sigma_us=0.0)
    sur.g_on_s_, sur.vth_v_ = 1e-3, 0.4  # a plausible transistor; no fit needed here
    s_out = _bound(sur, gp, gn).apply(x, rng)
    d_out = _bound(_with_spec(sur, diff), gp, gn).apply(x, rng)
    assert not d_out.codes_neg.any()
    v = diff_out_v(tia_out_v(s_out.i_pos_ua, diff), tia_out_v(s_out.i_neg_ua, diff), diff)
    z_out = _bound(sur, gp, gn).apply(np.zeros((1, 64)), rng)  # the offset calibration's read
    z = diff_out_v(tia_out_v(z_out.i_pos_ua, diff), tia_out_v(z_out.i_neg_ua, diff), diff)
    assert diff_codes(z, diff).any()  # the subtractor offset is several codes ...
    np.testing.assert_array_equal(d_out.codes_pos, diff_codes(v, diff) - diff_codes(z, diff))
    np.testing.assert_allclose(d_out.y, d_out.codes_pos * 2 * code_y_scale(diff))
    # before its calibration, one bipolar conversion of twice the LSB against two unipolar
    # ones: within 2 codes
    half = (s_out.codes_pos - s_out.codes_neg) / 2.0
    assert np.abs(d_out.codes_pos + diff_codes(z, diff) - half).max() <= 2.0


def test_differential_offset_calibration_keeps_row_group_sums_unbiased():
    """Eight differential reads per VMM: uncalibrated, each read would add the subtractor
    offset's codes; calibrated, only its sub-LSB remainder is left per read, beside rounding
    and the gain error's share of the G+ current."""
    rng = np.random.default_rng(4)
    gp, gn = _pair(rng, 456, 10)
    x = (rng.random((20, 456)) < 0.3).astype(float)
    spec = TileSpec(rows=456, cols=10, read=ReadScheme(sense="differential"))
    out = IdealBackend(spec).bind(gp, gn).apply(x, rng)
    e = spec.read.diff_gain_error
    exact = x @ ((1 + e) * gp - gn) / (2.0 * code_y_scale(spec))  # in bipolar codes
    offset = spec.read.diff_offset_v / (2 * spec.adc.lsb_v)  # codes per read, uncalibrated
    assert offset > 1.5
    remainder = abs(offset - round(offset))
    n_reads = len(spec.read.row_groups(456))
    err = out.codes_pos - exact
    assert abs(err.mean()) < n_reads * (remainder + 0.05)
    assert np.abs(err).max() <= n_reads * (remainder + 0.5)


def test_surrogate_row_groups_match_reads_done_by_hand():
    rng = np.random.default_rng(2)
    gp, gn = _pair(rng, 100, 5)
    x = (rng.random((4, 100)) < 0.3).astype(float)
    spec = TileSpec(rows=100, cols=5, read=ReadScheme(rows_per_read=40))
    b = _bound(TileSurrogate(spec=spec, read_noise_sigma_us=0.0), gp, gn)
    out = b.apply(x, rng)
    codes, i_sum = 0, 0
    for a, e in spec.read.row_groups(100):  # one read per group: its rows' transfer + offset
        i = dac_volts(x[:, a:e], spec) @ b.t_pos_[a:e] + b.c_pos_
        codes = codes + adc_codes(tia_out_v(i, spec), spec)
        i_sum = i_sum + i
    np.testing.assert_array_equal(out.codes_pos, codes)
    np.testing.assert_allclose(out.i_pos_ua, i_sum, rtol=1e-12)
    np.testing.assert_allclose(b.currents(x)[0], i_sum, rtol=1e-12)
    # three reads: each its own offset current, so not the whole-map read's single offset
    assert not np.allclose(i_sum, dac_volts(x, spec) @ b.t_pos_ + b.c_pos_, rtol=1e-9)


def test_column_groups_only_when_unsensed_columns_float():
    spec = TileSpec(rows=8, cols=6, read=ReadScheme(cols_per_read=4, unsensed="ground"))
    assert column_groups(spec, 6) == [None]
    spec = dataclasses.replace(spec, read=ReadScheme(cols_per_read=4, unsensed="float"))
    masks = column_groups(spec, 6)
    assert [m.sum() for m in masks] == [4, 4, 4]
    assert np.logical_or.reduce(masks).all()
    spec = dataclasses.replace(spec, read=ReadScheme(cols_per_read=4, unsensed="float",
                                                     sense="differential"))
    masks = column_groups(spec, 6)
    assert [m.sum() for m in masks] == [8, 4]
    assert all((m[0::2] == m[1::2]).all() for m in masks)  # a weight column's pair together


def test_surrogate_files_without_a_read_scheme_load_as_whole_map_reads():
    sur = _fake_fit(TileSurrogate(spec=TileSpec(rows=16, cols=4, r_wire_ohm=1.0)))
    d = sur.to_dict()
    del d["spec"]["read"]
    assert TileSurrogate.from_dict(d).spec.read == ReadScheme.whole_map()
    d["spec"]["read"] = to_dict(ReadScheme(sense="differential"))
    assert TileSurrogate.from_dict(d).spec.read.differential


def _with_spec(sur: TileSurrogate, spec: TileSpec) -> TileSurrogate:
    s = TileSurrogate(spec=spec, read_noise_sigma_us=sur.read_noise_sigma_us)
    s.g_on_s_, s.vth_v_ = sur.g_on_s_, sur.vth_v_
    return s


def _fake_fit(sur: TileSurrogate) -> TileSurrogate:
    """The fitted state without a calibration run: a plausible transistor, a wide domain."""
    sur.g_on_s_, sur.vth_v_, sur.fitted_transistor_ = 1e-3, 0.4, False
    sur.domain_ = {"g_min_us": 0.0, "g_max_us": 30.0, "rows_max": 4096, "cols_max": 4096,
                   "density_min": 0.0, "density_max": 1.0}
    sur.fit_rms_ua_ = sur.fit_rms_lsb_ = 0.0
    sur.provenance_, sur.energy_, sur.validation_ = {}, None, None
    return sur


def _bound(sur: TileSurrogate, gp, gn):
    return _fake_fit(sur).bind(gp, gn)


def test_odd_column_groups_keep_both_sides_of_a_weight_column():
    """Single-ended with 3 physical columns per read: G+ and G- of a weight column fall in
    different reads, and neither side may be lost."""
    rng = np.random.default_rng(3)
    gp, gn = _pair(rng, 8, 3)
    x = (rng.random((4, 8)) < 0.5).astype(float)
    spec = TileSpec(rows=8, cols=3, read=ReadScheme(cols_per_read=3, unsensed="float"))
    out = IdealBackend(spec).bind(gp, gn).apply(x, rng)
    np.testing.assert_allclose(out.i_neg_ua, x * 0.2 @ gn, rtol=1e-12)
    np.testing.assert_allclose(out.y, x @ (gp - gn), rtol=1e-12)
    b = _bound(TileSurrogate(spec=spec, read_noise_sigma_us=0.0), gp, gn)
    s = b.apply(x, rng)
    assert (s.codes_neg > 0).all() and (s.codes_pos > 0).all()
