"""Tile deck builder, transistor cards: golden text, topology rules, validation, real ngspice.

Regenerate the golden decks after an intended change with
``RRAM_COSIM_REGEN_GOLDEN=1 .venv/bin/pytest tests/netlists/test_tile_deck.py`` and review the
diff.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import pytest
from rram_cosim.cosim.spice.checks import floating_nodes
from rram_cosim.cosim.spice.runner import RunOptions, run_deck
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import DacSpec, MosfetSpec, TiaSpec, TileSpec, WireGeometry
from rram_cosim.models.tile.periphery import dac_volts
from rram_cosim.netlists.cards import PTM45_NMOS_MODEL, PTM45_NMOS_PATH, level1_params
from rram_cosim.netlists.deck import Deck
from rram_cosim.netlists.mosfet import mosfet_card, mosfet_model_name
from rram_cosim.netlists.tile import physical_conductances, tile_deck

GOLDEN = Path(__file__).with_name("golden")
G_POS = np.array([[12.5, 20.0], [7.25, 0.0]])
G_NEG = np.array([[10.0, 3.5], [15.0, 9.75]])
X3 = np.array([[1.0, 0.0], [0.5, 0.25], [0.0, 1.0]])


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("RRAM_COSIM_REGEN_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"missing golden file {path}; set RRAM_COSIM_REGEN_GOLDEN=1"
    assert text == path.read_text()


def _elements(text: str, prefix: str) -> list[list[str]]:
    return [ln.split() for ln in text.splitlines() if ln.startswith(prefix)]


@pytest.mark.parametrize("name,x", [("tile_2x2_dc.cir", X3), ("tile_2x2_op.cir", X3[1])])
def test_golden_2x2(name: str, x: np.ndarray) -> None:
    spec = TileSpec(rows=2, cols=2)
    deck = tile_deck(spec, G_POS, G_NEG, x)
    _check_golden(name, deck.text)
    again = tile_deck(spec, G_POS.copy(), G_NEG.copy(), np.array(x, copy=True))
    assert again.text == deck.text and again.sha256 == deck.sha256
    other = tile_deck(spec, G_POS * 1.001, G_NEG, x)
    assert other.sha256 != deck.sha256


def test_sweep_deck_structure() -> None:
    spec = TileSpec(rows=2, cols=2)
    deck = tile_deck(spec, G_POS, G_NEG, X3)
    assert deck.analysis == "dc" and ".dc vidx 0 2 1" in deck.text
    # 7 of 8 cells conduct: G+ of (1, 1) is 0 and gets neither resistor nor transistor.
    assert len(_elements(deck.text, "rg")) == 7 and len(_elements(deck.text, "mn")) == 7
    assert not any(e[0] in ("rg1_2", "mn1_2") for e in _elements(deck.text, "rg")
                   + _elements(deck.text, "mn"))
    rg = {e[0]: float(e[3]) for e in _elements(deck.text, "rg")}
    g = physical_conductances(G_POS, G_NEG)
    assert rg["rg0_1"] == pytest.approx(1e6 / g[0, 1], rel=1e-15) and g[0, 1] == 10.0
    # 2 rows x 4 segments of row wire, 4 columns x 2 segments of column wire.
    assert len(_elements(deck.text, "rr")) == 8 and len(_elements(deck.text, "rc")) == 8
    assert ["rc1_3", "c1_3", "t3", repr(TileSpec().r_col_ohm)] in _elements(deck.text, "rc")
    assert ["rr0_0", "a0", "r0_0", repr(TileSpec().r_row_ohm)] in _elements(deck.text, "rr")
    # DAC: padded pwl through the quantised levels, one flat segment each side.
    v = dac_volts(X3, spec)
    joined = re.sub(r"\n\+", " ", deck.text)
    m = re.search(r"^bdac1 d1 0 v = pwl\(v\(idx\),(.*)\)$", joined, re.MULTILINE)
    assert m is not None
    nums = [float(t) for t in m.group(1).split(",")]
    assert nums[0::2] == [-1, 0, 1, 2, 3]
    assert nums[1::2] == [v[0, 1], *v[:, 1], v[-1, 1]]
    for j in range(4):
        assert deck.node_map[f"tia_out[{j}]"] == f"v(o{j})"
        assert deck.node_map[f"tia_in[{j}]"] == f"v(t{j})"
        assert deck.node_map[f"adc[{j}]"] == f"v(q{j})"
    assert deck.node_map["i_dac[0]"] == "i(bdac0)" and deck.node_map["i_vdd"] == "i(vdd)"
    saved = " ".join(ln for ln in deck.text.splitlines() if ln.startswith(".save"))
    assert all(name in saved.split() for name in deck.node_map.values())
    assert "reltol=1e-07" in deck.text and ".temp 27.0" in deck.text


def test_merged_nodes_without_wire_and_output_resistance() -> None:
    spec = TileSpec(rows=2, cols=2, r_wire_ohm=0.0, dac=DacSpec(r_out_ohm=0.0),
                    tia=TiaSpec(r_out_ohm=0.0), temperature_c=55.0)
    deck = tile_deck(spec, G_POS, G_NEG, X3[0])
    assert deck.analysis == "op" and ".op" in deck.text and "vidx" not in deck.text
    assert not _elements(deck.text, "rr") and not _elements(deck.text, "rc")
    assert not _elements(deck.text, "rdac") and not _elements(deck.text, "rto")
    for e in _elements(deck.text, "rg"):
        i = e[0][2:].split("_")[0]
        assert e[1] == f"d{i}"  # the cell hangs on the DAC node itself
    for e in _elements(deck.text, "mn"):
        j = e[0][2:].split("_")[1]
        assert e[3] == f"t{j}"  # and its source on the TIA input
    assert ["btia0", "o0", "0", "v"] == _elements(deck.text, "btia0")[0][:4]
    assert deck.node_map["i_dac[1]"] == "i(vdac1)"
    assert ".temp 55.0" in deck.text
    # No resistor of zero ohm anywhere.
    assert all(float(e[3]) > 0 for e in _elements(deck.text, "r"))


@pytest.mark.parametrize("r_row,r_col", [(0.0, 2.5), (3.0, 0.0), (0.75, 4.0)])
def test_row_and_column_segments_are_separate(r_row: float, r_col: float) -> None:
    """Rows take ``spec.r_row_ohm``, columns ``spec.r_col_ohm``; a zero one merges its taps."""
    spec = TileSpec(rows=2, cols=2, row_wire=WireGeometry(r_row, 1.0, 1.0),
                    col_wire=WireGeometry(r_col, 1.0, 1.0))
    assert (spec.r_row_ohm, spec.r_col_ohm) == (r_row, r_col)
    deck = tile_deck(spec, G_POS, G_NEG, X3)
    rr, rc = _elements(deck.text, "rr"), _elements(deck.text, "rc")
    assert len(rr) == (8 if r_row else 0) and len(rc) == (8 if r_col else 0)
    assert all(float(e[3]) == r_row for e in rr) and all(float(e[3]) == r_col for e in rc)
    for e in _elements(deck.text, "rg"):
        i, j = e[0][2:].split("_")
        assert e[1] == (f"r{i}_{j}" if r_row else f"a{i}")
    for e in _elements(deck.text, "mn"):
        i, j = e[0][2:].split("_")
        assert e[3] == (f"c{i}_{j}" if r_col else f"t{j}")
    assert floating_nodes(deck.text) == []


def test_level1_card_from_spec() -> None:
    ms = MosfetSpec(vto_v=0.4, kp_a_per_v2=3e-4, lambda_per_v=0.05, w_m=200e-9, l_m=50e-9)
    text, inc = mosfet_card(ms)
    assert inc == ()
    assert text.startswith(f".model {mosfet_model_name(ms)} nmos (level=1 ")
    p = level1_params(ms)
    assert p["vto"] == 0.4 and p["kp"] == 3e-4 and p["lambda"] == 0.05 and p["gamma"] == 0.0
    for k, v in p.items():
        assert f"{k}={v!r}" in text
    deck = tile_deck(TileSpec(rows=2, cols=2, mosfet=ms), G_POS, G_NEG, X3)
    assert all(e[-2:] == ["w=2e-07", "l=5e-08"] for e in _elements(deck.text, "mn"))


def test_ptm_and_custom_cards(tmp_path: Path) -> None:
    text, inc = mosfet_card(MosfetSpec(card="ptm45"))
    assert inc == (str(PTM45_NMOS_PATH),) and text == f'.include "{PTM45_NMOS_PATH}"'
    assert mosfet_model_name(MosfetSpec(card="ptm45")) == PTM45_NMOS_MODEL
    header = PTM45_NMOS_PATH.read_text()
    assert "ptm.asu.edu" in header and "vtr-verilog-to-routing" in header
    assert re.search(rf"^\.model {PTM45_NMOS_MODEL} nmos level=54$", header, re.MULTILINE)
    lib = tmp_path / "my.lib"
    lib.write_text(".model mynmos nmos level=1 vto=0.5 kp=2e-4\n")
    ms = MosfetSpec(card="custom", lib_path=str(lib), model_name="MyNmos")
    text, inc = mosfet_card(ms)
    assert inc == (str(lib.resolve()),) and mosfet_model_name(ms) == "mynmos"
    deck = tile_deck(TileSpec(rows=2, cols=2, mosfet=ms), G_POS, G_NEG, X3)
    assert deck.includes == inc and deck.sha256 != Deck(text=deck.text).sha256
    with pytest.raises(ConfigError, match="lib_path"):
        mosfet_card(dataclasses.replace(ms, lib_path=str(tmp_path / "missing.lib")))


@pytest.mark.parametrize("gp,gn,x,match", [
    (np.array([[1.0, np.nan], [1.0, 1.0]]), G_NEG, X3, "non-finite"),
    (np.array([[1.0, -2.0], [1.0, 1.0]]), G_NEG, X3, "negative"),
    (G_POS, G_NEG[:, :1], X3, "shape"),
    (np.ones(2), np.ones(2), X3, "2-D"),
    (np.ones((3, 2)), np.ones((3, 2)), np.ones((1, 3)), "does not fit"),
    (G_POS, G_NEG, np.ones((2, 3)), "shape"),
    (G_POS, G_NEG, np.array([[0.5, 1.5]]), r"\[0, 1\]"),
    (G_POS, G_NEG, np.array([[0.5, np.nan]]), "NaN"),
    (G_POS, G_NEG, np.zeros((0, 2)), "at least one"),
])
def test_bad_inputs_raise_config_error(gp, gn, x, match) -> None:
    with pytest.raises(ConfigError, match=match):
        tile_deck(TileSpec(rows=2, cols=2), gp, gn, x)


def test_ptm45_card_idvgs_in_ngspice(tmp_path: Path) -> None:
    deck = Deck(
        text=("* ptm45 Id-Vgs\n"
              f'.include "{PTM45_NMOS_PATH}"\n'
              "vd d 0 dc 1.0\nvg g 0 dc 0\n"
              f"m1 d g 0 0 {PTM45_NMOS_MODEL} w=1e-6 l=45e-9\n"
              ".save i(vd)\n.dc vg 0 1.0 0.05\n.end\n"),
        analysis="dc", includes=(str(PTM45_NMOS_PATH),))
    res = run_deck(deck, RunOptions(run_dir=tmp_path, retry=False))
    vg = res.vectors["v(v-sweep)"]
    i_d = -res.vectors["i(vd)"]
    assert vg[-1] == pytest.approx(1.0)
    assert 0.5e-3 < i_d[-1] < 1.5e-3  # Idsat of a 45 nm HP NMOS, W = 1 um
    assert i_d[0] < 1e-6  # off at Vgs = 0
    assert np.all(np.diff(i_d) > 0)  # monotone turn-on
    assert "warning" not in res.log.lower()  # the card parses cleanly in ngspice 39
