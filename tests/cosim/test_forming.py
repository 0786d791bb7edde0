"""Forming in ngspice against the numpy twin, on real ngspice: agreement, retries, files."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from rram_cosim.cosim.spice.forming import (
    compare_with_twin,
    sample_indices,
    simulate_cells,
    spice_gate_voltage_v,
)
from rram_cosim.models.device.breakdown import (
    CellValues,
    cell_values,
    draw_cells,
    form_cells,
    gate_voltage_v,
)
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import IO_NMOS_25V, BreakdownParams, FormingConditions

pytestmark = pytest.mark.skipif(shutil.which("ngspice") is None, reason="needs ngspice")

P = BreakdownParams()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RRAM_COSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.mark.parametrize("i_cc_a", [5e-6, 10e-6, 20e-6])
def test_spice_and_twin_agree_cell_by_cell(i_cc_a):
    """The acceptance bar: per-cell relative difference < 5 % median and < 15 % at the 90th
    percentile, at three compliance levels, for the same per-cell random draws."""
    cond = FormingConditions(i_cc_a=i_cc_a)
    draws = draw_cells((32, 32), np.random.default_rng(11))
    idx = sample_indices(draws.shape, 12, np.random.default_rng(12))
    twin = form_cells(cell_values(draws, P, cond.mosfet), P, cond)
    sp = simulate_cells(cell_values(draws.take(idx), P, cond.mosfet), P, cond, cache=False)
    cmp = compare_with_twin(sp, twin.g_us.ravel()[idx], twin.formed.ravel()[idx])
    assert cmp["n_failed"] == 0 and cmp["n_compared"] == 12 and cmp["n_formed_mismatch"] == 0
    assert cmp["median_rel_diff"] < 0.05 and cmp["p90_rel_diff"] < 0.15
    # in fact the two integrate the same equations to ~1e-4
    assert cmp["p90_rel_diff"] < 1e-3
    # and the sample tracks the compliance: G ~ I_cc / V_hold
    assert np.mean(sp.g_us) == pytest.approx(i_cc_a / P.v_hold_v * 1e6, rel=0.15)


def test_short_pulse_unformed_cells_agree():
    cond = FormingConditions(t_pulse_s=1e-6)
    vals = cell_values(draw_cells((8,), np.random.default_rng(3)), P, cond.mosfet)
    twin = form_cells(vals, P, cond)
    sp = simulate_cells(vals, P, cond, cells_per_deck=8, cache=False)
    assert 0 < np.count_nonzero(~sp.formed) < 8
    np.testing.assert_array_equal(sp.formed, twin.formed)
    cmp = compare_with_twin(sp, twin.g_us, twin.formed)
    assert cmp["median_rel_diff"] < 0.05 and cmp["p90_rel_diff"] < 0.15


def test_failing_cell_is_retried_and_recorded_not_fatal():
    cond = FormingConditions()
    good = cell_values(draw_cells((3,), np.random.default_rng(0)), P, cond.mosfet)
    # cell 1: a growth time constant of 1e-30 s makes the transient infinitely stiff;
    # ngspice stops with "timestep too small" (a real failure, no mock)
    vals = CellValues(good.w_damage, good.dvt_v, good.tau_growth_s.copy())
    vals.tau_growth_s[1] = 1e-30
    sp = simulate_cells(vals, P, cond, cells_per_deck=2, cache=False)
    # the failing group deck (cells 0 and 1) was re-run cell by cell
    assert sp.retried == (0, 1)
    assert [f.cell for f in sp.failures] == [1]
    assert sp.failures[0].error == "ConvergenceError"
    assert "timestep too small" in sp.failures[0].message.lower()
    assert np.isnan(sp.g_us[1]) and not sp.formed[1]
    twin = form_cells(good, P, cond)
    np.testing.assert_allclose(sp.g_us[[0, 2]], twin.g_us[[0, 2]], rtol=1e-3)
    assert compare_with_twin(sp, twin.g_us, twin.formed)["n_failed"] == 1


def test_cache_serves_repeated_cells(tmp_path):
    cond = FormingConditions()
    vals = cell_values(draw_cells((4,), np.random.default_rng(1)), P, cond.mosfet)
    first = simulate_cells(vals, P, cond, cache_dir=tmp_path, n_workers=1)
    again = simulate_cells(vals, P, cond, cache_dir=tmp_path, n_workers=1)
    assert first.n_cached == 0 and again.n_cached == again.n_decks == 1
    np.testing.assert_array_equal(first.g_us, again.g_us)


def test_sample_indices():
    idx = sample_indices((8, 8), 10, np.random.default_rng(0))
    assert idx.size == 10 and np.unique(idx).size == 10 and idx.max() < 64
    with pytest.raises(ConfigError, match=r"'n' .*\[1, 64\].*Got 65"):
        sample_indices((8, 8), 65, np.random.default_rng(0))


def test_compliance_gate_from_a_spice_sweep():
    # level 1: the ngspice sweep and the twin's closed form give the same gate
    cond = FormingConditions(i_cc_a=10e-6)
    assert spice_gate_voltage_v(P, cond) == pytest.approx(gate_voltage_v(P, cond), abs=2e-4)
    # the bundled PTM card is a 1 V core device: at a 3 V pulse it cannot set a compliance
    ptm = dataclasses.replace(cond, mosfet=dataclasses.replace(IO_NMOS_25V, card="ptm45"))
    with pytest.raises(ConfigError, match=r"ptm45 .*cannot carry i_cc_a=1e-05 A.*core device"):
        spice_gate_voltage_v(P, ptm)
    low = dataclasses.replace(ptm, v_form_v=1.5)
    assert 0.3 < spice_gate_voltage_v(P, low) < 1.0
