"""The numpy breakdown twin: against an independent ODE solve, statistics, seeds, bad input."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
from rram_cosim.models.device.breakdown import (
    CellValues,
    breakdown_time_s,
    cell_values,
    compliance_current_a,
    differential_map,
    draw_cells,
    form_array,
    form_cells,
    gate_voltage_v,
    growth_charge_v_s,
    growth_h,
    read_conductance,
)
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import (
    IO_NMOS_25V,
    BreakdownParams,
    FormingConditions,
    from_dict,
    isclose_params,
    to_dict,
)
from scipy import integrate, optimize

P = BreakdownParams()


def reference_cell(w: float, dvt: float, tau: float, params: BreakdownParams,
                   cond: FormingConditions) -> float:
    """Final G (uS) of one cell by direct numerical integration of the model's ODEs.

    Independent of the twin's closed forms: at every time the circuit (RRAM in series with
    the level-1 transistor) is solved with brentq, and scipy's Radau integrates the damage,
    then (after the breakdown event) the filament conductance through the whole pulse.
    """
    m = cond.mosfet
    beta = m.kp_a_per_v2 * m.w_m / m.l_m
    vov = gate_voltage_v(params, cond) - m.vto_v - dvt
    gp = params.g_pristine_us * 1e-6
    q = float(growth_charge_v_s(tau, params))
    t1, t2 = cond.t_edge_s, cond.t_edge_s + cond.t_pulse_s
    t3 = t2 + cond.t_edge_s

    def v_te(t: float) -> float:
        if t < t1:
            return cond.v_form_v * t / t1
        if t < t2:
            return cond.v_form_v
        return max(cond.v_form_v * (1 - (t - t2) / cond.t_edge_s), 0.0)

    def i_t(vds: float) -> float:
        if vov <= 0 or vds <= 0:
            return 0.0
        if vds < vov:
            return beta * (vov - vds / 2) * vds * (1 + m.lambda_per_v * vds)
        return beta / 2 * vov**2 * (1 + m.lambda_per_v * vds)

    def v_cell(t: float, g_s: float) -> float:
        v = v_te(t)
        if v <= 0:
            return 0.0
        # the drain node v_m balances the RRAM current against the transistor's
        vm = optimize.brentq(lambda x: (gp + g_s) * (v - x) - i_t(x), 0.0, v,
                             xtol=1e-15, rtol=1e-13)
        return v - vm

    def damage_rate(t: float, y: np.ndarray) -> list[float]:
        return [np.exp(params.gamma_per_v * (v_cell(t, 0.0) - params.v_ref_v))
                / params.t63_ref_s]

    def hit(t: float, y: np.ndarray) -> float:
        return y[0] - w

    hit.terminal, hit.direction = True, 1  # type: ignore[attr-defined]
    # piecewise over rise, plateau and fall, so the solver never steps across a corner
    corners = [(0.0, t1), (t1, t2), (t2, t3)]
    d0, t_bd = 0.0, None
    for a, b in corners:
        seg = integrate.solve_ivp(damage_rate, (a, b), [d0], events=hit, rtol=1e-10,
                                  atol=1e-12)
        if seg.t_events[0].size:
            t_bd = float(seg.t_events[0][0])
            break
        d0 = float(seg.y[0, -1])
    if t_bd is None:
        return params.g_pristine_us

    def growth(t: float, y: np.ndarray) -> list[float]:
        g_s = max(y[0], 0.0) * 1e-6
        vc = v_cell(t, g_s)
        return [(gp + g_s) * vc * float(growth_h(vc, params)) / q * 1e6]

    g0 = 0.0
    for a, b in corners:
        if b <= t_bd:
            continue
        seg = integrate.solve_ivp(growth, (max(a, t_bd), b), [g0], method="Radau",
                                  rtol=1e-9, atol=1e-9)
        g0 = float(seg.y[0, -1])
    return g0 + params.g_pristine_us


@pytest.mark.parametrize("cond, rel", [
    (FormingConditions(), 5e-4),
    (FormingConditions(i_cc_a=20e-6), 5e-4),
    # cells still growing when the pulse ends: the twin's falling-edge growth is approximate
    (FormingConditions(t_pulse_s=1e-6), 1e-2),
    (FormingConditions(v_form_v=2.2, t_pulse_s=100e-6, t_edge_s=20e-9, i_cc_a=4e-6), 5e-4),
], ids=["default", "20uA", "short-pulse", "low-voltage"])
def test_twin_matches_direct_ode_integration(cond, rel):
    draws = draw_cells((3,), np.random.default_rng(5))
    vals = cell_values(draws, P, cond.mosfet)
    twin = form_cells(vals, P, cond)
    for k in range(3):
        ref = reference_cell(vals.w_damage[k], vals.dvt_v[k], vals.tau_growth_s[k], P, cond)
        if twin.formed[k]:
            assert twin.g_us[k] == pytest.approx(ref, rel=rel)
        else:
            assert ref == pytest.approx(P.g_pristine_us, rel=1e-3)


def test_breakdown_time_is_weibull_in_time_with_voltage_acceleration():
    w = np.array([0.1, 1.0, 2.0])
    cond = FormingConditions(t_pulse_s=100e-6)
    t = breakdown_time_s(w, P, cond)
    # on the plateau: t = t_edge + (w - D_edge) t63(V)
    np.testing.assert_allclose(np.diff(t), np.diff(w) * P.t63_ref_s, rtol=1e-12)
    hi = breakdown_time_s(w, P, dataclasses.replace(cond, v_form_v=3.5))
    ratio = np.diff(t) / np.diff(hi)
    np.testing.assert_allclose(ratio, np.exp(P.gamma_per_v * 0.5), rtol=1e-12)


def test_same_seed_same_map_and_other_seed_other_map():
    a = form_array((64, 64), np.random.default_rng(7))
    b = form_array((64, 64), np.random.default_rng(7))
    c = form_array((64, 64), np.random.default_rng(8))
    np.testing.assert_array_equal(a.g_us, b.g_us)
    np.testing.assert_array_equal(a.formed, b.formed)
    assert not np.allclose(a.g_us, c.g_us)


def test_default_conditions_reproduce_formed_cell_statistics():
    r = form_array((512, 512), np.random.default_rng(0))
    g = r.g_us[r.formed]
    assert r.n_unformed == 0
    assert abs(g.mean() - 14.2) / 14.2 < 0.10
    assert abs(g.std() - 2.46) / 2.46 < 0.25


def test_mean_rises_with_compliance_and_tracks_icc_over_v_hold():
    draws = draw_cells((96, 96), np.random.default_rng(1))
    means = []
    for i_cc in (2e-6, 5e-6, 10e-6, 20e-6, 50e-6):  # the documented range
        cond = FormingConditions(i_cc_a=i_cc)
        r = form_cells(cell_values(draws, P, cond.mosfet), P, cond)
        m = r.g_us[r.formed].mean()
        assert abs(m / (i_cc / P.v_hold_v * 1e6) - 1) < 0.15
        means.append(m)
    assert np.all(np.diff(means) > 0)


def test_low_voltage_or_short_pulse_leaves_unformed_cells():
    draws = draw_cells((64, 64), np.random.default_rng(2))

    def unformed(**kw):
        cond = FormingConditions(**kw)
        return form_cells(cell_values(draws, P, cond.mosfet), P, cond).n_unformed

    assert unformed() == 0
    short = unformed(t_pulse_s=0.5e-6)
    low = unformed(v_form_v=2.2)
    assert 0 < short < draws.u_bd.size and 0 < low < draws.u_bd.size
    assert unformed(t_pulse_s=0.2e-6) > short  # shorter still: more unformed
    assert unformed(v_form_v=1.8) > low
    # unformed cells read the pristine leakage
    cond = FormingConditions(t_pulse_s=0.5e-6)
    r = form_cells(cell_values(draws, P, cond.mosfet), P, cond)
    np.testing.assert_allclose(r.g_us[~r.formed], P.g_pristine_us)


def test_compliance_gate_voltage_round_trip():
    cond = FormingConditions(i_cc_a=10e-6)
    vg = gate_voltage_v(P, cond)
    assert compliance_current_a(P, cond) == pytest.approx(10e-6, rel=1e-12)
    same = dataclasses.replace(cond, i_cc_a=None, v_gate_v=vg)
    assert compliance_current_a(P, same) == pytest.approx(10e-6, rel=1e-12)
    d = draw_cells((16, 16), np.random.default_rng(0))
    a = form_cells(cell_values(d, P, cond.mosfet), P, cond)
    b = form_cells(cell_values(d, P, same.mosfet), P, same)
    np.testing.assert_allclose(a.g_us, b.g_us, rtol=1e-12)


def test_512x512_forming_under_two_seconds():
    form_array((8, 8), np.random.default_rng(0))  # warm-up
    # CPU time of this process: other jobs on a loaded machine do not count against it
    t0 = time.process_time()
    form_array((512, 512), np.random.default_rng(0))
    assert time.process_time() - t0 < 2.0


def test_differential_map_pairs_columns_like_the_tile():
    g = np.arange(12.0).reshape(2, 6)
    np.testing.assert_array_equal(differential_map(g), g[:, 0::2] - g[:, 1::2])
    with pytest.raises(ConfigError, match="even number of columns"):
        differential_map(np.ones((2, 3)))


def test_read_noise_and_telegraph_noise():
    g = np.full((200, 200), 14.0)
    reads = read_conductance(g, np.random.default_rng(0), P, n_reads=4)
    assert reads.shape == (4, 200, 200)
    assert np.std(reads - g) == pytest.approx(0.1, rel=0.02)
    quiet = dataclasses.replace(P, read_noise_sigma_us=0.0, rtn_fraction=0.25,
                                rtn_amplitude_rel=0.05, rtn_dwell_s=1e-6)
    reads = read_conductance(g, np.random.default_rng(1), quiet, n_reads=50)
    levels = np.unique(np.round(reads, 9))
    np.testing.assert_allclose(levels, [14.0 * 0.95, 14.0])
    has_trap = np.any(reads < 14.0, axis=0)
    assert 0.2 < has_trap.mean() < 0.3
    # a trapped cell switches between reads (dwell 1 us, reads 1 us apart)
    assert np.mean(np.abs(np.diff(reads[:, has_trap], axis=0)) > 0) > 0.3


def test_params_round_trip_and_defaults_cite_the_io_device():
    cond = FormingConditions(i_cc_a=5e-6, v_form_v=3.2)
    back = from_dict(FormingConditions, json.loads(json.dumps(to_dict(cond))))
    assert isclose_params(cond, back) and back.mosfet == IO_NMOS_25V
    assert isclose_params(P, from_dict(BreakdownParams, json.loads(json.dumps(to_dict(P)))))


@pytest.mark.parametrize("kwargs, pattern", [
    ({"i_cc_a": 0.0}, r"'i_cc_a' .* \(0, 0.001\] A. Got 0.0"),
    ({"i_cc_a": -5e-6}, r"'i_cc_a' .* \(0, 0.001\] A. Got -5e-06"),
    ({"t_pulse_s": 5e-9}, r"'t_pulse_s' .* \[1e-08, 1\] s. Got 5e-09.*time step"),
    ({"v_form_v": 6.0}, r"'v_form_v' .* \[1, 5\] V. Got 6.0"),
    ({"v_form_v": 0.5}, r"'v_form_v' .* \[1, 5\] V. Got 0.5"),
    ({"i_cc_a": None, "v_gate_v": 6.0}, r"'v_gate_v' .* \(0, 5\] V. Got 6.0"),
    ({"v_gate_v": 1.0}, r"exactly one of 'i_cc_a'"),
])
def test_bad_forming_conditions_name_value_and_range(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        FormingConditions(**kwargs)


def test_compliance_that_cannot_act_is_an_error():
    cond = FormingConditions(v_form_v=1.0, i_cc_a=200e-6)
    with pytest.raises(ConfigError, match=r"v_form_v=1 V .* cannot act"):
        form_array((4, 4), np.random.default_rng(0), P, cond)


def test_bad_params_name_value_and_range():
    with pytest.raises(ConfigError, match=r"'v_hold_v' parameter of BreakdownParams .*Got 5"):
        BreakdownParams(v_hold_v=5.0)
    with pytest.raises(ConfigError, match="numpy.random.Generator"):
        draw_cells((4,), np.random.RandomState(0))  # type: ignore[arg-type]


def test_cell_values_transform_draws():
    d = draw_cells((20000,), np.random.default_rng(3))
    v = cell_values(d, P, IO_NMOS_25V)
    sigma = P.a_vt_mv_um * 1e-3 / np.sqrt(0.4 * 0.28)
    assert v.dvt_v.std() == pytest.approx(sigma, rel=0.03)
    assert np.median(v.tau_growth_s) == pytest.approx(P.tau_growth_s, rel=0.03)
    # unit-scale Weibull: P(w <= 1) = 1 - 1/e
    assert np.mean(v.w_damage <= 1.0) == pytest.approx(1 - np.exp(-1), abs=0.01)
    assert isinstance(v, CellValues) and v.shape == (20000,)
