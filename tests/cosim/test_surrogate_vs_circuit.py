"""The calibrated surrogate against the circuit (nodal engine and real ngspice) on held-out
maps and inputs, at the default and the stressed wire resistance; the calibration's full
scale and read energy. (The large-size table is benchmarks/bench_surrogate.py's.)"""

import numpy as np
import pytest
from rram_cosim.cosim.engines.calibrate import (
    calibrate_tile,
    calibration_inputs,
    corner_map,
    simulate_with_energy,
)
from rram_cosim.cosim.engines.nodal import NodalBackend
from rram_cosim.cosim.spice.backend import SpiceBackend
from rram_cosim.cosim.spice.runner import RunOptions
from rram_cosim.models.params import MosfetSpec, TileSpec
from rram_cosim.models.tile.periphery import adc_codes, current_lsb_ua, tia_out_v


@pytest.mark.parametrize("r_wire", [1.0, 5.0])
def test_surrogate_error_against_nodal_on_held_out_maps(r_wire):
    spec = TileSpec(rows=24, cols=12, r_wire_ohm=r_wire)
    res = calibrate_tile(spec, reference="nodal", n_maps=2, n_test_maps=2, n_vectors=10,
                         seed=1)
    e = res.errors.set_index("backend")
    # the full scale is the corner's current: R_f set from it, one LSB = I_fs / (2**14 - 1)
    assert res.spec.r_f_ohm == pytest.approx(spec.adc.v_full_scale_v / (res.i_full_scale_ua
                                                                      * 1e-6))
    assert current_lsb_ua(res.spec) == pytest.approx(res.i_full_scale_ua / 16383, rel=1e-12)
    assert e.loc["surrogate", "rms_lsb"] < 0.5
    assert e.loc["surrogate", "max_lsb"] < 2.0
    assert e.loc["surrogate", "max_code_lsb"] <= 2
    assert e.loc["ideal", "rms_lsb"] > 10 * e.loc["surrogate", "rms_lsb"]
    assert res.surrogate.validation_[1]["backend"] == "surrogate"
    assert res.energy["source"].startswith("nodal") and res.energy["mean_total_j"] > 0


def test_surrogate_against_ngspice_and_the_energy_it_stores(tmp_path):
    spec = TileSpec(rows=8, cols=4, r_wire_ohm=5.0)
    opts = {"run_options": RunOptions(run_dir=tmp_path), "cache": False, "n_workers": 1}
    res = calibrate_tile(spec, reference="spice", n_maps=2, n_test_maps=1, n_vectors=8,
                         seed=2, reference_options=opts)
    e = res.errors.set_index("backend")
    assert e.loc["surrogate", "max_code_lsb"] <= 1
    assert e.loc["surrogate", "rms_lsb"] < 0.3
    en = res.surrogate.energy_
    assert en["source"] == "ngspice supply currents"
    # quiescent: i_q from vdd to vss in every TIA, for one read
    t = spec.tia
    q = t.i_q_a * (t.v_pos_v - t.v_neg_v) * 2 * spec.cols * spec.t_read_s
    assert en["mean_tia_quiescent_j"] == pytest.approx(q, rel=1e-6)
    assert en["idle_j"] == pytest.approx(q, rel=0.01) and en["per_active_row_j"] > 0
    # held-out codes: the deck's own quantisers vs the surrogate through the periphery model
    held = res.held_out[0]
    sur = res.surrogate.with_noise(0.0).bind(held.g_pos_us, held.g_neg_us)
    ip, _ = sur.currents(held.levels)
    ref = adc_codes(tia_out_v(held.i_pos_ua, res.spec), res.spec)
    assert np.abs(adc_codes(tia_out_v(ip, res.spec), res.spec) - ref).max() <= 1


def test_nodal_energy_follows_the_ngspice_rules(tmp_path):
    spec = TileSpec(rows=6, cols=3, r_wire_ohm=1.0)
    rng = np.random.default_rng(0)
    maps = [corner_map((6, 3), spec)]
    x = [calibration_inputs(6, 5, rng)]
    spice = SpiceBackend(spec, RunOptions(run_dir=tmp_path), cache=False, n_workers=1)
    _, e_sp = simulate_with_energy(spice, maps, x, rng)
    _, e_no = simulate_with_energy(NodalBackend(spec), maps, x, rng)
    for f in ("dac_j", "tia_quiescent_j", "tia_output_j"):
        np.testing.assert_allclose(getattr(e_no[0], f), getattr(e_sp[0], f), rtol=1e-6,
                                   atol=1e-22)


def test_temperature_scaling_of_the_level1_card_matches_the_circuit():
    spec = TileSpec(rows=12, cols=6, r_wire_ohm=5.0, temperature_c=85.0)
    res = calibrate_tile(spec, reference="nodal", n_maps=1, n_test_maps=1, n_vectors=8, seed=3)
    assert not res.surrogate.fitted_transistor_  # the card at 85 degC, no fit
    assert res.errors.set_index("backend").loc["surrogate", "rms_lsb"] < 0.5


def test_bsim4_card_gets_a_fitted_effective_transistor(tmp_path):
    spec = TileSpec(rows=12, cols=6, r_wire_ohm=5.0, mosfet=MosfetSpec(card="ptm45"))
    opts = {"run_options": RunOptions(run_dir=tmp_path), "cache": False, "n_workers": 1}
    res = calibrate_tile(spec, reference="spice", n_maps=2, n_test_maps=1, n_vectors=8, seed=3,
                         reference_options=opts)
    e = res.errors.set_index("backend")
    assert res.surrogate.fitted_transistor_
    assert e.loc["surrogate", "rms_lsb"] < 1.0 and e.loc["surrogate", "max_code_lsb"] <= 2
    assert e.loc["ideal", "rms_lsb"] > 100 * e.loc["surrogate", "rms_lsb"]


def test_bind_for_workload_on_tiles_tracks_the_circuit_closer_than_the_tangent():
    """A tiled surrogate linearised for a reservoir's drive: every tile carries its rows'
    profile, and on that reservoir's own drive vectors its currents sit closer to the circuit
    (nodal engine, same tiling) than the tangent's."""
    from rram_cosim.cosim.engines.calibrate import (
        bind_for_workload,
        calibration_maps,
        fit_surrogate,
        record_drive,
    )
    from rram_cosim.cosim.engines.calibrate import simulate as simulate_cal
    from rram_cosim.cosim.engines.registry import make_backend
    from rram_cosim.models.device.conductance import differential_pair
    from rram_cosim.models.errors import ConfigError
    from rram_cosim.models.params import DeviceParams, LIFParams
    from rram_cosim.models.tile.ideal import IdealBackend
    from rram_cosim.models.tile.surrogate import interleave
    from rram_cosim.models.tile.tiling import TiledBackend

    spec = TileSpec(rows=16, cols=8, r_wire_ohm=5.0)
    rng = np.random.default_rng(3)
    maps = calibration_maps((16, 8), 2, rng, DeviceParams(), spec)
    cal = simulate_cal(make_backend("nodal", spec), maps,
                       [calibration_inputs(16, 8, rng) for _ in maps], rng)
    sur = fit_surrogate(spec, cal, read_noise_sigma_us=0.0, provenance={})
    sur.linearise_level = 0.2
    n_in, h = 24, 8
    frames = (rng.random((24, 15, n_in)) < 0.25).astype(float)
    lif = LIFParams(hidden=h, v_th=1.0, rec_level=0.25)
    gp, gn = differential_pair((n_in + h, h), rng)
    tiled = TiledBackend(sur, 16, 8)
    bound = bind_for_workload(tiled, gp, gn, frames[:12], lif, np.random.default_rng(4))
    assert [t.model.drive_.rows for row in bound.tiles for t in row] == [16, 16]

    # the drive vectors of the held-out frames, through the tangent tiles
    x = record_drive(tiled.bind(gp, gn), frames[12:], lif, np.random.default_rng(5))
    assert (x[:, n_in:] > 0).mean() > 0.02  # the recurrent rows are driven too
    ref = TiledBackend(make_backend("nodal", spec), 16, 8).bind(gp, gn).apply(x, rng)
    lsb = current_lsb_ua(spec)
    err = {}
    for name, b in (("workload", bound), ("tangent", tiled.bind(gp, gn))):
        out = b.apply(x, rng)
        err[name] = np.sqrt(np.mean((interleave(out.i_pos_ua, out.i_neg_ua)
                                     - interleave(ref.i_pos_ua, ref.i_neg_ua)) ** 2)) / lsb
    assert err["workload"] < 0.5 * err["tangent"], err
    with pytest.raises(ConfigError, match="linearises a TileSurrogate"):
        bind_for_workload(IdealBackend(spec), gp, gn, frames, lif, rng)
