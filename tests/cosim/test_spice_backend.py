"""The ngspice tile backend against the ideal model, itself, and the periphery equations.

Every test runs the real ngspice on small decks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from rram_cosim.cosim.spice.backend import SpiceBackend
from rram_cosim.cosim.spice.runner import RunOptions
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import DacSpec, MosfetSpec, TiaSpec, TileSpec
from rram_cosim.models.tile.backend import BoundTile, TileBackend, code_y_scale
from rram_cosim.models.tile.ideal import IdealBackend
from rram_cosim.models.tile.periphery import adc_codes, current_lsb_ua, dac_volts, tia_out_v


def _backend(spec: TileSpec, tmp_path: Path, **kw) -> SpiceBackend:
    kw.setdefault("n_workers", 1)
    return SpiceBackend(spec, RunOptions(run_dir=tmp_path), cache=False, **kw)


def _map(rng: np.random.Generator, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(5, 30, (rows, cols)), rng.uniform(5, 30, (rows, cols))


def _on_dac_grid(x: np.ndarray, spec: TileSpec) -> np.ndarray:
    """Levels whose voltages the DAC reproduces exactly, so the ideal model sees them too."""
    return dac_volts(x, spec) / spec.v_read_v


def _near_ideal(v_offset_v: float) -> TileSpec:
    # No wires, no DAC resistance, an access device of ~16 mOhm (beta = 100 A/V^2).
    return TileSpec(rows=8, cols=4, r_wire_ohm=0.0, dac=DacSpec(r_out_ohm=0.0),
                    tia=TiaSpec(v_offset_v=v_offset_v),
                    mosfet=MosfetSpec(kp_a_per_v2=1e-2, w_m=100e-6, l_m=10e-9,
                                      lambda_per_v=0.0))


def _tia_loaded_current_ua(g_us: np.ndarray, v: np.ndarray, spec: TileSpec) -> np.ndarray:
    """Column current with ideal cells and the TIA's finite gain, offset and r_out.

    I = G.(v - v_t) with the TIA input v_t = (A v_os + I (R_f + r_o)) / (1 + A) (the closed
    form behind periphery.tia_out_v), solved for I.
    """
    t = spec.tia
    g_s = g_us * 1e-6
    gs = g_s.sum(axis=0)
    num = v @ g_s - gs * t.a_ol * t.v_offset_v / (1 + t.a_ol)
    return num / (1 + gs * (spec.r_f_ohm + t.r_out_ohm) / (1 + t.a_ol)) * 1e6


def test_protocol(tmp_path: Path) -> None:
    spec = TileSpec(rows=2, cols=2)
    backend = _backend(spec, tmp_path)
    assert isinstance(backend, TileBackend)
    assert isinstance(backend.bind(np.ones((2, 2)), np.ones((2, 2))), BoundTile)


@pytest.mark.parametrize("v_offset_v", [0.0, 0.5e-3])
def test_near_ideal_tile_matches_ideal_model(tmp_path: Path, v_offset_v: float) -> None:
    spec = _near_ideal(v_offset_v)
    rng = np.random.default_rng(3)
    gp, gn = _map(rng, 8, 4)
    x = _on_dac_grid(rng.uniform(0, 1, (6, 8)), spec)
    bound = _backend(spec, tmp_path).bind(gp, gn)
    out = bound.apply(x, rng)
    ideal = IdealBackend(spec).bind(gp, gn).apply(x, rng)
    v = x * spec.v_read_v
    pairs = ((out.i_pos_ua, ideal.i_pos_ua, out.codes_pos, gp),
             (out.i_neg_ua, ideal.i_neg_ua, out.codes_neg, gn))
    for i_sp, i_id, codes, g in pairs:
        expected = _tia_loaded_current_ua(g, v, spec)
        # What remains is the 16 mOhm device and gmin: far below 1e-5.
        np.testing.assert_allclose(i_sp, expected, rtol=1e-5, atol=1e-6)
        # The TIA's own effect is the whole difference to the ideal product.
        np.testing.assert_allclose(i_sp - i_id, expected - i_id, rtol=0, atol=1e-4)
        assert np.max(np.abs(codes - adc_codes(tia_out_v(expected, spec), spec))) <= 1
    if v_offset_v == 0.0:
        # Only the finite gain is left (3e-7 relative): codes within one LSB of ideal.
        assert np.max(np.abs(out.codes_pos - ideal.codes_pos)) <= 1
        assert np.max(np.abs(out.codes_neg - ideal.codes_neg)) <= 1
        np.testing.assert_allclose(out.y, ideal.y, rtol=0, atol=2 * code_y_scale(spec))
    else:
        # The 0.5 mV offset takes sum(G) x 0.5 mV off every column: many LSB, as expected.
        shift = (gp.sum(axis=0) * v_offset_v) / current_lsb_ua(spec)
        assert np.all(shift > 5)
        assert np.all(ideal.codes_pos - out.codes_pos >= np.floor(shift) - 1)


def test_ir_drop_and_series_resistance_lower_the_currents(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    gp, gn = _map(rng, 16, 16)
    x = rng.uniform(0, 1, (4, 16))
    errs = {}
    for r_wire in (1.0, 5.0):
        spec = TileSpec(rows=16, cols=16, r_wire_ohm=r_wire)
        sp = _backend(spec, tmp_path).bind(gp, gn).apply(x)
        ideal = IdealBackend(spec).bind(gp, gn).apply(x, rng)
        i_sp = np.concatenate([sp.i_pos_ua, sp.i_neg_ua], axis=1)
        i_id = np.concatenate([ideal.i_pos_ua, ideal.i_neg_ua], axis=1)
        assert np.all(i_sp < i_id)
        errs[r_wire] = float(np.sqrt(np.mean((i_sp - i_id) ** 2) / np.mean(i_id**2)))
    print(f"\n16x16 relative RMS column-current error vs ideal G.V: "
          f"{errs[1.0]:.4f} at 1 ohm/segment, {errs[5.0]:.4f} at 5 ohm/segment")
    # ~2 % from the 1.5 kOhm access device in series with ~60 kOhm cells, plus IR drop.
    assert 0.01 < errs[1.0] < 0.08
    assert errs[1.0] + 0.005 < errs[5.0] < 0.25


def test_sweep_equals_separate_operating_points(tmp_path: Path) -> None:
    spec = TileSpec(rows=4, cols=3)
    rng = np.random.default_rng(11)
    gp, gn = _map(rng, 4, 3)
    gn[2, 1] = 0.0
    x = rng.uniform(0, 1, (4, 4))
    x[1] = 0.0
    sweep = _backend(spec, tmp_path).bind(gp, gn).solve(x)
    ops = _backend(spec, tmp_path, max_vectors_per_deck=1).bind(gp, gn)
    assert len(ops.decks(x)) == 4 and all(d.analysis == "op" for d in ops.decks(x))
    single = ops.solve(x)
    for name in ("v_o", "v_t", "i_col_ua", "i_dac_a"):
        a, b = getattr(sweep, name), getattr(single, name)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-18, err_msg=name)
    np.testing.assert_array_equal(sweep.codes, single.codes)


def test_split_over_workers_keeps_order(tmp_path: Path) -> None:
    spec = TileSpec(rows=4, cols=2)
    rng = np.random.default_rng(5)
    gp, gn = _map(rng, 4, 2)
    x = rng.uniform(0, 1, (5, 4))
    one = _backend(spec, tmp_path, max_vectors_per_deck=64).bind(gp, gn)
    assert len(one.decks(x)) == 1
    many = _backend(spec, tmp_path, max_vectors_per_deck=2, n_workers=2).bind(gp, gn)
    assert [d.analysis for d in many.decks(x)] == ["dc", "dc", "op"]  # 2 + 2 + 1 vectors
    a, b = one.apply(x), many.apply(x)
    np.testing.assert_allclose(b.i_pos_ua, a.i_pos_ua, rtol=1e-9)
    np.testing.assert_array_equal(b.codes_neg, a.codes_neg)
    np.testing.assert_allclose(many.last_energy_j, one.last_energy_j, rtol=1e-9)


def test_outputs_codes_and_energy_are_consistent(tmp_path: Path) -> None:
    spec = TileSpec(rows=6, cols=3)
    rng = np.random.default_rng(2)
    gp, gn = _map(rng, 6, 3)
    x = rng.uniform(0, 1, (3, 6))
    bound = _backend(spec, tmp_path).bind(gp, gn)
    out = bound.apply(x)
    sol = bound.last_solution
    assert sol is not None and sol.remedies == (None,)
    # The deck's ADC equals the periphery model applied to the solved TIA output.
    np.testing.assert_array_equal(sol.codes, adc_codes(sol.v_o, spec))
    np.testing.assert_allclose(out.y, (out.codes_pos - out.codes_neg) * code_y_scale(spec))
    np.testing.assert_allclose(sol.v_d, dac_volts(x, spec), rtol=0, atol=1e-15)
    # KCL: all the DAC current reaches the TIAs (level-1 gates draw none).
    np.testing.assert_allclose(sol.i_dac_a.sum(axis=1) * 1e6, sol.i_col_ua.sum(axis=1),
                               rtol=1e-7)
    e = sol.energy
    p = 2 * spec.cols
    t = spec.tia
    np.testing.assert_allclose(e.tia_quiescent_j,
                               p * t.i_q_a * (t.v_pos_v - t.v_neg_v) * spec.t_read_s, rtol=1e-9)
    np.testing.assert_allclose(e.dac_j, (sol.v_d * sol.i_dac_a).sum(axis=1) * spec.t_read_s)
    np.testing.assert_allclose(e.tia_output_j,
                               -t.v_neg_v * sol.i_col_ua.sum(axis=1) * 1e-6 * spec.t_read_s)
    assert np.all(e.dac_j > 0) and np.all(e.tia_output_j > e.dac_j)
    np.testing.assert_allclose(bound.last_energy_j, e.dac_j + e.tia_quiescent_j
                               + e.tia_output_j)


def test_overloaded_column_clips_and_converges(tmp_path: Path) -> None:
    spec = TileSpec(rows=4, cols=2)
    gp = np.full((4, 2), 10.0)
    gp[:, 0] = 200.0  # far above g_full_scale_us: the TIA output hits its rail
    gn = np.full((4, 2), 5.0)
    x = np.ones((2, 4))
    x[1, 1:] = 0.0
    bound = _backend(spec, tmp_path).bind(gp, gn)
    out = bound.apply(x)
    sol = bound.last_solution
    # The B-source sits on its rail; the output is r_out x the sunk current above it.
    v_rail = spec.tia.v_out_min_v + sol.i_col_ua[0, 0] * 1e-6 * spec.tia.r_out_ohm
    assert sol.v_o[0, 0] == pytest.approx(v_rail, abs=1e-9)
    assert out.codes_pos[0, 0] == spec.adc.n_codes - 1
    assert 0 < out.codes_pos[0, 1] < spec.adc.n_codes - 1


def test_ptm45_tile_runs(tmp_path: Path) -> None:
    spec = TileSpec(rows=4, cols=2, mosfet=MosfetSpec(card="ptm45"))
    rng = np.random.default_rng(4)
    gp, gn = _map(rng, 4, 2)
    x = rng.uniform(0.2, 1, (3, 4))
    sp = _backend(spec, tmp_path).bind(gp, gn).apply(x)
    ideal = IdealBackend(spec).bind(gp, gn).apply(x, rng)
    ratio = sp.i_pos_ua / ideal.i_pos_ua
    assert np.all((ratio > 0.9) & (ratio < 1.0))  # ~2 kOhm device in series


@pytest.mark.parametrize("make", [
    lambda b: b.bind(np.array([[np.nan, 1.0]]), np.ones((1, 2))),
    lambda b: b.bind(-np.ones((2, 2)), np.ones((2, 2))),
    lambda b: b.bind(np.ones((2, 2)), np.ones((2, 1))),
    lambda b: b.bind(np.ones((2, 2)), np.ones((2, 2))).apply(np.ones((1, 3))),
    lambda b: b.bind(np.ones((2, 2)), np.ones((2, 2))).apply(np.full((1, 2), 2.0)),
    lambda b: b.bind(np.ones((2, 2)), np.ones((2, 2))).apply(np.zeros((0, 2))),
    lambda b: dataclasses.replace(b, max_vectors_per_deck=0),
    lambda b: dataclasses.replace(b, run_options="batch"),
])
def test_bad_inputs_raise_config_error(tmp_path: Path, make) -> None:
    with pytest.raises(ConfigError):
        make(_backend(TileSpec(rows=2, cols=2), tmp_path))
