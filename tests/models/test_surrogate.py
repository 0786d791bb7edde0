"""TileSurrogate on its own: limits with a closed form, the transistor fit, persistence, the
validity domain and input checking. (Against the circuit: tests/cosim/test_surrogate_vs_circuit.py.)
"""

import json
import warnings

import numpy as np
import pytest
from rram_cosim.models.errors import ConfigError, DomainWarning, NotFittedError
from rram_cosim.models.params import DacSpec, MosfetSpec, TiaSpec, TileSpec
from rram_cosim.models.tile.network import operating_points
from rram_cosim.models.tile.periphery import current_lsb_ua, dac_volts
from rram_cosim.models.tile.surrogate import (
    CalibrationSample,
    DriveProfile,
    TileSurrogate,
    card_cell,
    interleave,
    terminations,
)

NEAR_IDEAL = MosfetSpec(kp_a_per_v2=1e-2, w_m=100e-6, l_m=10e-9, lambda_per_v=0.0)


def _fitted(spec, rng, n_maps=2, batch=12, **kw):
    """A surrogate fitted on its own predictions (transistor from the card, so exact)."""
    maps = [(rng.uniform(2, 30, (spec.rows, spec.cols)), rng.uniform(2, 30, (spec.rows,
                                                                              spec.cols)))
            for _ in range(n_maps)]
    x = (rng.random((batch, spec.rows)) < np.linspace(0, 1, batch)[:, None]).astype(float)
    x[-1] = 1.0
    boot = TileSurrogate(spec=spec, read_noise_sigma_us=0.0)
    boot.fit([CalibrationSample(gp, gn, x, np.zeros((batch, spec.cols)),
                                np.zeros((batch, spec.cols))) for gp, gn in maps])
    samples = []
    for gp, gn in maps:
        ip, i_n = boot.bind(gp, gn).currents(x)
        samples.append(CalibrationSample(gp, gn, x, ip, i_n))
    return TileSurrogate(spec=spec, **kw).fit(samples, provenance={"by": "test"}), samples


@pytest.mark.parametrize("v_offset_v", [0.0, 0.5e-3])
def test_no_wires_near_ideal_transistor_is_g_dot_v_up_to_the_tia(v_offset_v):
    spec = TileSpec(rows=8, cols=4, r_wire_ohm=0.0, dac=DacSpec(r_out_ohm=0.0),
                    tia=TiaSpec(v_offset_v=v_offset_v), mosfet=NEAR_IDEAL)
    rng = np.random.default_rng(3)
    sur, _ = _fitted(spec, rng, read_noise_sigma_us=0.0)
    gp, gn = rng.uniform(5, 30, (8, 4)), rng.uniform(5, 30, (8, 4))
    x = rng.uniform(0, 1, (6, 8))
    ip, i_n = sur.bind(gp, gn).currents(x)
    v = dac_volts(x, spec)
    t = spec.tia
    for i_sur, g in ((ip, gp), (i_n, gn)):
        g_s = g * 1e-6
        # ideal cells on a TIA of finite gain: I = G.(v - v_t), v_t = (A v_os + I r) / (1 + A)
        num = v @ g_s - g_s.sum(axis=0) * t.a_ol * t.v_offset_v / (1 + t.a_ol)
        expect = num / (1 + g_s.sum(axis=0) * (spec.r_f_ohm + t.r_out_ohm) / (1 + t.a_ol)) * 1e6
        # what remains is the ~16 mOhm transistor: below 1e-5 relative
        np.testing.assert_allclose(i_sur, expect, rtol=1e-5, atol=1e-7)


def test_wires_and_transistor_lower_the_currents_and_ir_drop_grows_with_r_wire():
    rng = np.random.default_rng(0)
    gp = rng.uniform(10, 20, (16, 8))
    x = np.ones((1, 16))
    ratio = []
    for r_wire in (0.0, 1.0, 5.0):
        spec = TileSpec(rows=16, cols=8, r_wire_ohm=r_wire)
        sur, _ = _fitted(spec, np.random.default_rng(1), read_noise_sigma_us=0.0)
        ip, _ = sur.bind(gp, gp).currents(x)
        ratio.append(float((ip / (dac_volts(x, spec) @ gp)).mean()))
    assert 1.0 > ratio[0] > ratio[1] > ratio[2]
    # no wires: each cell is G in series with r_on ~ 1.5 kOhm, driven by v_read - v_offset
    g_s = gp * 1e-6
    eff = (g_s / (1 + g_s / card_cell(spec)[0])).sum(axis=0) / g_s.sum(axis=0)
    expect = eff.mean() * (1 - spec.tia.v_offset_v / spec.v_read_v)
    assert ratio[0] == pytest.approx(expect, rel=5e-4)


def test_fit_recovers_a_transistor_the_card_does_not_know():
    truth = TileSpec(rows=16, cols=8, r_wire_ohm=5.0,
                     mosfet=MosfetSpec(kp_a_per_v2=250e-6, vto_v=0.5))
    rng = np.random.default_rng(5)
    _, samples = _fitted(truth, rng, n_maps=2, batch=10)
    # a PDK card whose level-1 start values are off by 60 % in KP
    guess = TileSpec(rows=16, cols=8, r_wire_ohm=5.0,
                     mosfet=MosfetSpec(card="custom", lib_path="/pdk.lib", model_name="n",
                                       kp_a_per_v2=400e-6, vto_v=0.5))
    sur = TileSurrogate(spec=guess, read_noise_sigma_us=0.0).fit(samples)
    assert sur.fitted_transistor_
    assert sur.g_on_s_ == pytest.approx(card_cell(truth)[0], rel=1e-3)
    assert sur.fit_rms_lsb_ < 0.05
    level1 = TileSurrogate(spec=truth).fit(samples)
    assert not level1.fitted_transistor_ and level1.fit_rms_lsb_ < 1e-6


def test_save_load_round_trip_and_domain(tmp_path):
    spec = TileSpec(rows=8, cols=4)
    rng = np.random.default_rng(1)
    sur, _ = _fitted(spec, rng)
    sur.energy_ = {"mean_total_j": 1e-9}
    sur.save(tmp_path / "s.json")
    back = TileSurrogate.load(tmp_path / "s.json")
    assert back.spec == spec and back.provenance_ == {"by": "test"}
    assert back.energy_ == {"mean_total_j": 1e-9}
    assert back.summary() == sur.summary()
    gp = rng.uniform(5, 20, (8, 4))
    x = rng.integers(0, 2, (3, 8))
    a = sur.bind(gp, gp).apply(x, np.random.default_rng(2))
    b = back.bind(gp, gp).apply(x, np.random.default_rng(2))
    np.testing.assert_array_equal(a.codes_pos, b.codes_pos)
    np.testing.assert_array_equal(a.i_neg_ua, b.i_neg_ua)
    with pytest.warns(DomainWarning, match="outside its calibrated domain"):
        sur.bind(gp * 10, gp)
    with pytest.warns(DomainWarning, match="map 8x5, calibrated up to 8x4"):
        sur.check_map(np.full((8, 5), 10.0), np.full((8, 5), 10.0))
    strict = TileSurrogate.load(tmp_path / "s.json", strict=True)
    with pytest.raises(ConfigError, match="calibrated domain"):
        strict.bind(gp * 10, gp)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bound = sur.bind(np.where(gp > 10, gp, 0.0), gp)  # zeros (no cell) are in the domain
        bound.apply(x, np.random.default_rng(0))


def test_density_outside_the_calibrated_range_warns():
    spec = TileSpec(rows=8, cols=4)
    sur, samples = _fitted(spec, np.random.default_rng(2))
    sur.domain_ = dict(sur.domain_, density_max=0.5)
    bound = sur.bind(samples[0].g_pos_us, samples[0].g_neg_us)
    with pytest.warns(DomainWarning, match="input densities"):
        bound.apply(np.ones((2, 8)), np.random.default_rng(0))
    sur.strict = True
    with pytest.raises(ConfigError, match="input densities"):
        bound.apply(np.ones((2, 8)), np.random.default_rng(0))


def test_read_noise_is_per_column_with_the_summed_variance():
    spec = TileSpec(rows=16, cols=4)
    sur, samples = _fitted(spec, np.random.default_rng(3), read_noise_sigma_us=0.5)
    bound = sur.bind(samples[0].g_pos_us, samples[0].g_neg_us)
    x = np.ones((4000, 16))
    quiet, _ = sur.with_noise(0.0).bind(samples[0].g_pos_us, samples[0].g_neg_us).currents(x)
    noisy, _ = bound.currents(x, np.random.default_rng(0))
    expect = 0.5 * np.sqrt(16) * spec.v_read_v
    assert np.std(noisy - quiet) == pytest.approx(expect, rel=0.03)


def test_bad_inputs_give_clear_errors():
    spec = TileSpec(rows=6, cols=3)
    sur, _ = _fitted(spec, np.random.default_rng(4))
    g = np.full((6, 3), 10.0)
    bad = g.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ConfigError, match=r"non-finite conductance at \(1, 2\)"):
        sur.bind(bad, g)
    with pytest.raises(ConfigError, match="negative conductance"):
        sur.bind(g, -g)
    with pytest.raises(ConfigError, match=r"'g_neg_us' must have shape \(6, 3\)"):
        sur.bind(g, g[:, :2])
    with pytest.raises(ConfigError, match="does not fit a 6x3 tile"):
        sur.bind(np.full((7, 3), 10.0), np.full((7, 3), 10.0))
    bound = sur.bind(g, g)
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match=r"shape \(batch, 6\)"):
        bound.apply(np.ones((2, 5)), rng)
    with pytest.raises(ConfigError, match="NaN or inf"):
        bound.apply(np.full((2, 6), np.nan), rng)
    with pytest.raises(ConfigError, match=r"levels in \[0, 1\]"):
        bound.apply(-np.ones((2, 6)), rng)


def test_unfitted_and_bad_files(tmp_path):
    with pytest.raises(NotFittedError):
        TileSurrogate().bind(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ConfigError, match="Cannot load"):
        TileSurrogate.load("/nonexistent/s.json")
    (tmp_path / "old.json").write_text(json.dumps({"r_s_ohm": 1.0}))
    with pytest.raises(ConfigError, match="Not a TileSurrogate file"):
        TileSurrogate.load(tmp_path / "old.json")
    with pytest.raises(ConfigError, match="at least one CalibrationSample"):
        TileSurrogate().fit([])


def _spiking_drive(rng, n, rows, n_in):
    """Reservoir-like drive: input rows at level 1, recurrent rows at 0.25, sparse."""
    on = np.r_[np.ones(n_in), np.full(rows - n_in, 0.25)]
    p = rng.uniform(0.05, 0.35, rows)
    return (rng.random((n, rows)) < p) * on


def test_drive_profile_makes_the_surrogate_unbiased_and_closer_than_any_tangent():
    """On spike-like drive the workload linearisation must beat the tangent at the mean level
    (the best tangent measured) by a wide margin, against the exact nonlinear network."""
    spec = TileSpec(rows=24, cols=12, r_wire_ohm=5.0)
    rng = np.random.default_rng(7)
    sur, _ = _fitted(spec, rng, read_noise_sigma_us=0.0)
    gp, gn = rng.uniform(3, 28, (24, 12)), rng.uniform(3, 28, (24, 12))
    rec = _spiking_drive(rng, 400, 24, 12)
    test = _spiking_drive(np.random.default_rng(8), 60, 24, 12)
    model = sur.cell_model()
    exact = np.stack([o.i_tia_a for o in operating_points(
        interleave(gp, gn) * 1e-6, model, terminations(spec), dac_volts(test, spec))]) * 1e6

    def err(s):
        ip, i_n = s.bind(gp, gn).currents(test)
        return interleave(ip, i_n) - exact

    sur.linearise_level = float(rec.mean())
    e_tan = err(sur)
    prof = DriveProfile.from_levels(rec, np.random.default_rng(0))
    e_drv = err(sur.with_drive(prof))

    def rms(e):
        return float(np.sqrt(np.mean(e**2)))

    assert rms(e_drv) < 0.3 * rms(e_tan)
    assert abs(float(e_drv.mean())) < 0.2 * abs(float(e_tan.mean()))


def test_rarely_driven_rows_are_linearised_at_their_own_swing():
    """A row driven once in a thousand VMMs still swings 0 -> on when it fires: the model must
    stay as good on vectors where rare rows fire as where only common ones do."""
    spec = TileSpec(rows=24, cols=12, r_wire_ohm=5.0)
    rng = np.random.default_rng(7)
    sur, _ = _fitted(spec, rng, read_noise_sigma_us=0.0)
    gp, gn = rng.uniform(3, 28, (24, 12)), rng.uniform(3, 28, (24, 12))
    rec = _spiking_drive(rng, 4000, 24, 12)
    rec[:, [3, 15]] = 0.0
    rec[:4, 3], rec[:4, 15] = 1.0, 0.25  # rows 3 and 15: driven in 1e-3 of the VMMs
    test = _spiking_drive(np.random.default_rng(8), 60, 24, 12)
    test[:, 3], test[:, 15] = 1.0, 0.25  # ... and firing in every test vector
    exact = np.stack([o.i_tia_a for o in operating_points(
        interleave(gp, gn) * 1e-6, sur.cell_model(), terminations(spec),
        dac_volts(test, spec))]) * 1e6
    prof = DriveProfile.from_levels(rec, np.random.default_rng(0))
    ip, i_n = sur.with_drive(prof).bind(gp, gn).currents(test)
    err_lsb = (interleave(ip, i_n) - exact) / current_lsb_ua(spec)
    sur.linearise_level = float(rec.mean())
    ip, i_n = sur.bind(gp, gn).currents(test)
    tan_lsb = (interleave(ip, i_n) - exact) / current_lsb_ua(spec)
    assert np.sqrt(np.mean(err_lsb**2)) < 0.5 * np.sqrt(np.mean(tan_lsb**2))


def test_tiled_surrogate_gives_each_row_block_its_rows_profile():
    from rram_cosim.models.tile.tiling import TiledBackend

    spec = TileSpec(rows=8, cols=4)
    rng = np.random.default_rng(2)
    sur, _ = _fitted(spec, rng, read_noise_sigma_us=0.0)
    big_g = rng.uniform(5, 25, (20, 6)), rng.uniform(5, 25, (20, 6))
    lv = _spiking_drive(rng, 50, 20, 12)
    prof = DriveProfile.from_levels(lv, np.random.default_rng(0), n_samples=5)
    bound = TiledBackend(sur.with_drive(prof), 8, 4).bind(*big_g)
    for bi, r in enumerate((0, 8, 16)):
        for t in bound.tiles[bi]:
            got = t.model.drive_
            np.testing.assert_array_equal(got.samples, prof.samples[:, r:r + 8])
            np.testing.assert_array_equal(got.on_level, prof.on_level[r:r + 8])
    # and each block is linearised for its rows: same as binding that block alone
    alone = sur.with_drive(prof.row_slice(8, 16)).bind(big_g[0][8:16, :4], big_g[1][8:16, :4])
    np.testing.assert_array_equal(bound.tiles[1][0].t_pos_, alone.t_pos_)
    assert sur.row_block(0, 8, 20) is sur  # no profile: nothing to cut
    with pytest.raises(ConfigError, match="describes 20 rows, but the tiled map has 24"):
        TiledBackend(sur.with_drive(prof), 8, 4).bind(rng.uniform(5, 25, (24, 6)),
                                                      rng.uniform(5, 25, (24, 6)))


def test_drive_profile_statistics_persistence_and_errors(tmp_path):
    spec = TileSpec(rows=8, cols=4)
    rng = np.random.default_rng(1)
    sur, _ = _fitted(spec, rng, read_noise_sigma_us=0.0)
    lv = np.array([[1.0, 0, 0.25, 0, 0, 0, 0, 0], [1.0, 1.0, 0, 0, 0, 0, 0, 0.5]] * 5)
    prof = DriveProfile.from_levels(lv, np.random.default_rng(0), n_samples=4)
    np.testing.assert_array_equal(prof.on_level, [1, 1, 0.25, 0, 0, 0, 0, 0.5])
    np.testing.assert_array_equal(prof.mean_level, [1, 0.5, 0.125, 0, 0, 0, 0, 0.25])
    assert prof.samples.shape == (4, 8)
    # the same seed keeps the same vectors
    again = DriveProfile.from_levels(lv, np.random.default_rng(0), n_samples=4)
    np.testing.assert_array_equal(prof.samples, again.samples)
    d = sur.with_drive(prof)
    assert sur.drive_ is None  # a copy
    # copies keep the profile; a saved file (a tile model other networks load) does not
    copy = TileSurrogate.from_dict(d.to_dict()).with_noise(0.2)
    np.testing.assert_array_equal(copy.drive_.samples, prof.samples)
    gp = rng.uniform(5, 30, (8, 4))
    np.testing.assert_array_equal(copy.bind(gp, gp).t_pos_, d.bind(gp, gp).t_pos_)
    assert TileSurrogate.load(d.save(tmp_path / "s.json")).drive_ is None
    assert "drive" not in (tmp_path / "s.json").read_text() or json.loads(
        (tmp_path / "s.json").read_text())["drive"] is None
    with pytest.raises(ValueError, match="read-only"):
        prof.samples[0, 0] = 0.5
    with pytest.raises(ConfigError, match="describes 8 rows, but the map has 6"):
        d.bind(gp[:6], gp[:6])
    with pytest.raises(ConfigError, match=r"must lie in \[0, 1\]"):
        DriveProfile(on_level=np.full(8, 1.5), mean_level=np.zeros(8), samples=np.zeros((1, 8)))
    with pytest.raises(ConfigError, match="shape"):
        DriveProfile(on_level=np.ones(8), mean_level=np.zeros(7), samples=np.zeros((1, 8)))
    with pytest.raises(ConfigError, match="exceeds on_level"):
        DriveProfile(on_level=np.zeros(8), mean_level=np.full(8, 0.5), samples=np.zeros((1, 8)))
    with pytest.raises(ConfigError, match="n_samples"):
        DriveProfile.from_levels(lv, rng, n_samples=0)
    with pytest.raises(ConfigError, match="n >= 1"):
        DriveProfile.from_levels(np.zeros((0, 8)), rng)
    with pytest.raises(ConfigError, match="DriveProfile or None"):
        sur.with_drive({"on_level": 1})


def test_with_adc_changes_only_the_quantisation():
    from rram_cosim.models.params import AdcSpec

    spec = TileSpec(rows=8, cols=4)
    rng = np.random.default_rng(5)
    sur, _ = _fitted(spec, rng, read_noise_sigma_us=0.0)
    low = sur.with_adc(AdcSpec(bits=6, v_full_scale_v=spec.adc.v_full_scale_v))
    assert low.spec.adc.bits == 6 and sur.spec.adc.bits == spec.adc.bits
    gp, gn = rng.uniform(5, 30, (8, 4)), rng.uniform(5, 30, (8, 4))
    x = (rng.random((20, 8)) < 0.5).astype(float)
    hi_out, lo_out = sur.bind(gp, gn).apply(x, rng), low.bind(gp, gn).apply(x, rng)
    np.testing.assert_array_equal(hi_out.i_pos_ua, lo_out.i_pos_ua)  # same circuit
    assert lo_out.codes_pos.max() <= 63 < hi_out.codes_pos.max()
    with pytest.raises(ConfigError, match="AdcSpec"):
        sur.with_adc(6)
    # R_f is the calibrated circuit's: pinned when the ADC's full scale changes
    half = sur.with_adc(AdcSpec(bits=14, v_full_scale_v=spec.adc.v_full_scale_v / 2))
    assert half.spec.r_f_ohm == sur.spec.r_f_ohm
    prof = DriveProfile.from_levels(x, rng)
    kept = TileSurrogate.from_dict(sur.to_dict(), strict=True).with_drive(prof).with_adc(
        AdcSpec(bits=8, v_full_scale_v=spec.adc.v_full_scale_v))
    assert kept.strict
    np.testing.assert_array_equal(kept.drive_.samples, prof.samples)
