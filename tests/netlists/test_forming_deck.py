"""The 1T1R forming testbench deck: structure, determinism, cards, and one real ngspice run."""

from __future__ import annotations

import dataclasses
import re
import shutil

import numpy as np
import pytest
from rram_cosim.models.device.breakdown import CellValues, cell_values, draw_cells, form_cells
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import BreakdownParams, FormingConditions
from rram_cosim.netlists.cards import PTM45_NMOS_PATH
from rram_cosim.netlists.forming import FormingTolerances, forming_deck, pulse_times_s

P = BreakdownParams()
C = FormingConditions()


def values(n: int, seed: int = 0) -> CellValues:
    return cell_values(draw_cells((n,), np.random.default_rng(seed)), P, C.mosfet)


def test_deck_holds_state_capacitors_initial_conditions_and_real_card():
    v = values(3)
    deck = forming_deck(v, P, C)
    text = deck.text
    assert deck.analysis == "tran"
    assert ".model nacc_l1 nmos (level=1 vto=0.55 kp=0.0002 lambda=0.05" in text
    for k in range(3):
        # state on 1 F capacitors driven by B-sources, initial conditions on the state nodes
        assert f"cd{k} xd{k} 0 1\n" in text and f"cg{k} xg{k} 0 1\n" in text
        w_k = re.escape(repr(float(v.w_damage[k])))
        assert re.search(rf"^bg{k} 0 xg{k} i = \(v\(xd{k}\) >= {w_k} \? 1 : 0\)", text,
                         re.MULTILINE)
        assert f"v(xd{k})=0" in text and f"v(xg{k})=0" in text
        assert f"mn{k} m{k} g{k} 0 0 nacc_l1 w=4e-07 l=2.8e-07" in text
        assert deck.node_map[f"g_us[{k}]"] == f"v(xg{k})"
    # each cell's random values are numbers in the text (no agauss)
    assert "agauss" not in text and "gauss(" not in text
    reltol = float(re.search(r"reltol=([0-9.e+-]+)", text).group(1))
    assert reltol <= 1e-4
    t1, t2, t3, t_stop = pulse_times_s(C)
    assert f"pwl(0 0 {t1!r} 3.0 {t2!r} 3.0 {t3!r} 0)" in text
    assert f".tran {C.t_step_s!r} {t_stop!r} 0 {C.t_step_s!r}" in text


def test_deck_text_is_deterministic_and_depends_on_every_cell():
    a, b = forming_deck(values(4), P, C), forming_deck(values(4), P, C)
    assert a.text == b.text and a.sha256 == b.sha256
    v = values(4)
    moved = CellValues(v.w_damage, v.dvt_v.copy(), v.tau_growth_s)
    moved.dvt_v[2] += 1e-3
    assert forming_deck(moved, P, C).sha256 != a.sha256


def test_ptm45_card_is_included_and_hashed():
    cond = dataclasses.replace(C, mosfet=dataclasses.replace(C.mosfet, card="ptm45"))
    deck = forming_deck(values(1), P, cond)
    assert f'.include "{PTM45_NMOS_PATH}"' in deck.text
    assert deck.includes == (str(PTM45_NMOS_PATH),)
    assert "ptm45_nmos w=4e-07 l=2.8e-07" in deck.text


def test_bad_values_and_tolerances_are_rejected():
    v = values(2)
    with pytest.raises(ConfigError, match="non-finite"):
        forming_deck(CellValues(np.array([np.nan, 1.0]), v.dvt_v, v.tau_growth_s), P, C)
    with pytest.raises(ConfigError, match="1-D per-cell values"):
        forming_deck(CellValues(v.w_damage[:1], v.dvt_v, v.tau_growth_s), P, C)
    with pytest.raises(ConfigError, match=r"'reltol' .*\[1e-12, 0.0001\].*Got 0.001"):
        FormingTolerances(reltol=1e-3)


@pytest.mark.skipif(shutil.which("ngspice") is None, reason="needs ngspice")
def test_one_deck_in_ngspice_matches_the_twin(tmp_path):
    from rram_cosim.cosim.spice.runner import RunOptions, run_deck

    v = values(3, seed=4)
    res = run_deck(forming_deck(v, P, C), RunOptions(run_dir=tmp_path, retry=False))
    g = np.array([res.vectors[f"v(xg{k})"][-1] for k in range(3)]) + P.g_pristine_us
    twin = form_cells(v, P, C)
    np.testing.assert_allclose(g, twin.g_us, rtol=1e-3)
    # the cell voltage collapsed to V_hold: the filament carries the compliance current
    for k in range(3):
        assert res.vectors[f"v(xd{k})"][-1] >= v.w_damage[k]
