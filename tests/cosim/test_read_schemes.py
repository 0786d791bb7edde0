"""Read schemes in the circuit engines: the nodal engine against real ngspice, read by read, and
physics checks that can fail (floating columns, both-end drive, superposition of row groups)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from rram_cosim.cosim.engines.nodal import NodalBackend
from rram_cosim.cosim.spice.backend import SpiceBackend
from rram_cosim.cosim.spice.checks import floating_nodes
from rram_cosim.cosim.spice.runner import RunOptions
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import DacSpec, ReadScheme, TiaSpec, TileSpec, WireGeometry
from rram_cosim.models.tile.periphery import adc_codes, diff_codes, diff_out_v
from rram_cosim.models.tile.read import column_groups
from rram_cosim.netlists.tile import tile_deck

needs_ngspice = pytest.mark.skipif(shutil.which("ngspice") is None, reason="needs ngspice")

# Max relative nodal-vs-ngspice difference on TIA outputs (measured: below 1e-11).
REL_TOL = 1e-9


def _wire(r_ohm: float) -> WireGeometry:
    return WireGeometry(sheet_ohm_per_sq=r_ohm, pitch_um=1.0, width_um=1.0)


def _pair(rng: np.random.Generator, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(5.0, 40.0, (rows, cols)), rng.uniform(5.0, 40.0, (rows, cols))


# name: (spec, weight rows, weight cols)
SCHEMES: dict[str, tuple[TileSpec, int, int]] = {
    "default": (TileSpec(rows=8, cols=4, r_wire_ohm=2.0), 8, 4),
    "row_groups": (TileSpec(rows=16, cols=4, r_wire_ohm=2.0,
                            read=ReadScheme(rows_per_read=8)), 16, 4),
    "float_columns": (TileSpec(rows=8, cols=4, r_wire_ohm=3.0,
                               read=ReadScheme(cols_per_read=3, unsensed="float")), 8, 4),
    "drive_both": (TileSpec(rows=8, cols=8, r_wire_ohm=3.0, read=ReadScheme(drive="both")),
                   8, 8),
    "drive_both_ideal_dac": (TileSpec(rows=8, cols=4, r_wire_ohm=3.0,
                                      dac=DacSpec(r_out_ohm=0.0),
                                      read=ReadScheme(drive="both")), 8, 4),
    "differential": (TileSpec(rows=8, cols=4, r_wire_ohm=2.0,
                              read=ReadScheme(sense="differential")), 8, 4),
    "differential_float": (TileSpec(rows=16, cols=4, r_wire_ohm=2.0,
                                    read=ReadScheme(rows_per_read=8, sense="differential",
                                                    cols_per_read=2, unsensed="float")),
                           16, 4),
    "unequal_wires": (TileSpec(rows=16, cols=8, row_wire=_wire(0.5), col_wire=_wire(4.0)),
                      16, 8),
    # the larger tiles: 32 rows in two groups, 32 physical columns
    "combined_32x16": (TileSpec(rows=32, cols=16, row_wire=_wire(1.0), col_wire=_wire(3.0),
                                read=ReadScheme(rows_per_read=16, drive="both",
                                                sense="differential")), 32, 16),
    "float_16x8": (TileSpec(rows=16, cols=8, r_wire_ohm=2.0,
                            read=ReadScheme(cols_per_read=6, unsensed="float")), 16, 8),
}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RRAM_COSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _reads(spec: TileSpec, rows: int, cols: int) -> list[tuple[slice, np.ndarray | None]]:
    return [(slice(a, b), m) for a, b in spec.read.row_groups(rows)
            for m in column_groups(spec, cols)]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-6)))


@needs_ngspice
@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_nodal_equals_ngspice_read_by_read(name: str, tmp_path: Path) -> None:
    spec, rows, cols = SCHEMES[name]
    rng = np.random.default_rng(sorted(SCHEMES).index(name))
    gp, gn = _pair(rng, rows, cols)
    gp[:, 1] = gn[:, 1] = 0.0  # an empty weight column (floats as an island when unsensed)
    gp[2, 0] = 0.0
    x = np.vstack([np.ones(rows), rng.integers(0, 2, (2, rows)), rng.uniform(0, 1, (1, rows))])
    nodal = NodalBackend(spec).bind(gp, gn)
    spice = SpiceBackend(spec, RunOptions(run_dir=tmp_path, retry=False), n_workers=1,
                         cache=False).bind(gp, gn)
    worst = worst_big = 0.0
    for rows_sl, sensed in _reads(spec, rows, cols):
        lv = np.zeros_like(x)
        lv[:, rows_sl] = x[:, rows_sl]
        s = spice.solve(lv, sensed=sensed)
        n = nodal.solve(lv, sensed=sensed)
        mask = np.ones(2 * cols, bool) if sensed is None else sensed
        assert s.remedies == (None,)
        worst = max(worst, _rel(n.v_o[:, mask], s.v_o[:, mask]))
        big = np.abs(s.v_o) > 10e-3  # outputs of columns that carry current
        if big.any():
            worst_big = max(worst_big, _rel(n.v_o[big], s.v_o[big]))
        # the open end of a floating line (0 V for a column without cells) agrees to the deck's
        # reltol (1e-7): ngspice stops iterating there once the update is below it
        np.testing.assert_allclose(n.v_t, s.v_t, rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(n.i_col_ua, s.i_col_ua, rtol=REL_TOL, atol=1e-9)
        np.testing.assert_array_equal(adc_codes(n.v_o, spec)[:, mask], s.codes[:, mask])
        if not mask.all():
            assert (s.v_o[:, ~mask] == 0).all() and (n.v_o[:, ~mask] == 0).all()
            assert (n.i_col_ua[:, ~mask] == 0).all() and (s.codes[:, ~mask] == 0).all()
    print(f"{name}: max relative nodal-vs-ngspice TIA output difference {worst:.2e} "
          f"(outputs above 10 mV: {worst_big:.2e})")
    assert worst <= REL_TOL
    # the whole VMM through scheme_apply: identical codes and currents
    a = nodal.apply(x, rng)
    b = spice.apply(x)
    np.testing.assert_array_equal(a.codes_pos, b.codes_pos)
    np.testing.assert_array_equal(a.codes_neg, b.codes_neg)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_allclose(a.i_pos_ua, b.i_pos_ua, rtol=REL_TOL, atol=1e-9)
    # the offset calibration's zero-input reads are not reads whose energy the VMM draws
    assert len(spice.last_reads) == len(_reads(spec, rows, cols))
    assert len(nodal.last_reads) == len(_reads(spec, rows, cols))


@needs_ngspice
def test_deck_differential_codes_equal_numpy(tmp_path: Path) -> None:
    """The deck's subtractor and bipolar ADC give diff_codes(diff_out_v(...)) of its own TIAs."""
    spec = TileSpec(rows=8, cols=6, r_wire_ohm=2.0,
                    read=ReadScheme(sense="differential", diff_gain_error=5e-3,
                                    diff_offset_v=2e-3))
    rng = np.random.default_rng(11)
    gp, gn = _pair(rng, 8, 6)
    gp[:, 2] = 0.0  # a negative weight column: positive subtractor output, negative codes
    gn[:, 3] = 0.5
    x = np.vstack([np.ones(8), rng.uniform(0, 1, (4, 8))])
    spice = SpiceBackend(spec, RunOptions(run_dir=tmp_path, retry=False), n_workers=1,
                         cache=False).bind(gp, gn)
    s = spice.solve(x)
    v_diff = diff_out_v(s.v_o[:, 0::2], s.v_o[:, 1::2], spec)
    np.testing.assert_allclose(s.v_diff, v_diff, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(s.codes_diff, diff_codes(v_diff, spec))
    assert (s.codes_diff[:, 2] < 0).all() and (s.codes_diff[:, 3] > 0).all()
    out = spice.apply(x)  # less the codes of a zero-input read: the offset calibration
    z = spice.solve(np.zeros((1, 8)))
    assert z.codes_diff.any()  # a 2 mV subtractor offset is several codes
    np.testing.assert_array_equal(out.codes_pos, s.codes_diff - z.codes_diff)
    assert (out.codes_neg == 0).all()


def test_floating_deck_elements_and_node_check() -> None:
    """An unsensed column has no TIA, R_f, ADC, quiescent source or nodeset, and its open line
    end still passes the floating-node check; a floating column without cells is left out."""
    spec = TileSpec(rows=4, cols=2, read=ReadScheme(cols_per_read=1, unsensed="float"))
    g = np.full((4, 2), 10.0)
    gn = g.copy()
    gn[:, 1] = 0.0  # physical column 3 is empty
    sensed = np.array([True, False, False, False])
    deck = tile_deck(spec, g, gn, np.ones(4), sensed=sensed)
    text = deck.text
    assert floating_nodes(text) == []
    for j in (1, 2, 3):
        for el in (f"btia{j} ", f"rf{j} ", f"badc{j} ", f"iq{j} ", f"v(t{j})=", f"rto{j} "):
            assert el not in text
        assert f"tia_out[{j}]" not in deck.node_map and f"adc[{j}]" not in deck.node_map
    assert "rc3_1 c3_1 t1" in text and "tia_in[1]" in deck.node_map
    assert " t3 " not in text and "tia_in[3]" not in deck.node_map
    assert "btia0 " in text and "rf0 " in text and "iq0 " in text
    with pytest.raises(ConfigError, match="sensed-column mask"):
        tile_deck(spec, g, gn, np.ones(4), sensed=np.ones(3, bool))


def test_both_end_deck_elements() -> None:
    spec = TileSpec(rows=2, cols=2, read=ReadScheme(drive="both"))
    g = np.full((2, 2), 10.0)
    deck = tile_deck(spec, g, g, np.ones((3, 2)))
    # the east end mirrors the west: one row segment plus the DAC's output resistance
    r_east = repr(spec.r_row_ohm + spec.dac.r_out_ohm)
    assert f"rdace1 e1 r1_3 {r_east}\n" in deck.text
    assert "bdace1 e1 0 v = pwl(v(idx)," in deck.text
    assert deck.node_map["i_dac_e[0]"] == "i(bdace0)"
    assert floating_nodes(deck.text) == []
    ideal = TileSpec(rows=2, cols=2, dac=DacSpec(r_out_ohm=0.0), read=ReadScheme(drive="both"))
    text = tile_deck(ideal, g, g, np.ones(2)).text
    assert "vdace0 e0 0 dc " in text and f"rdace0 e0 r0_3 {ideal.r_row_ohm!r}\n" in text
    merged = TileSpec(rows=2, cols=2, r_wire_ohm=0.0, dac=DacSpec(r_out_ohm=0.0),
                      read=ReadScheme(drive="both"))
    assert "dace" not in tile_deck(merged, g, g, np.ones(2)).text  # one node: one source


# --------------------------------------------------------------------------- physics sanity

def test_floating_unsensed_columns_raise_the_sensed_currents() -> None:
    """Columns disconnected by their multiplexer draw no current from the rows, so the rows
    drop less along their wires and the sensed columns see more voltage than when every column
    sits at a virtual ground."""
    rng = np.random.default_rng(2)
    spec = TileSpec(rows=32, cols=16, r_wire_ohm=4.0)
    gp, gn = _pair(rng, 32, 16)
    bound = NodalBackend(spec).bind(gp, gn)
    x = np.ones((2, 32))
    x[1, ::3] = 0.5
    sensed = np.zeros(32, bool)
    sensed[24:] = True  # the far (east) end of the rows, where IR drop is largest
    grounded = bound.solve(x).i_col_ua[:, sensed]
    floating = bound.solve(x, sensed=sensed).i_col_ua[:, sensed]
    assert np.all(floating > grounded * (1 + 1e-3))


def test_both_end_drive_raises_the_column_currents() -> None:
    rng = np.random.default_rng(3)
    one = TileSpec(rows=32, cols=16, r_wire_ohm=4.0)
    both = TileSpec(rows=32, cols=16, r_wire_ohm=4.0, read=ReadScheme(drive="both"))
    gp, gn = _pair(rng, 32, 16)
    x = np.ones((1, 32))
    i_one = NodalBackend(one).bind(gp, gn).solve(x).i_col_ua
    i_both = NodalBackend(both).bind(gp, gn).solve(x).i_col_ua
    assert np.all(i_both > i_one)
    # the gain is largest at the far end, which the east DAC now feeds
    gain = i_both / i_one - 1.0
    assert gain[0, -1] > 10 * gain[0, 0]


def test_row_groups_superpose_on_a_near_linear_tile() -> None:
    """Four reads of 8 rows sum to the one read of all 32 rows within 1e-3.

    At read voltages the array is close to linear: each access transistor is deep in triode
    with millivolts across it, so a cell is nearly a resistor, and the wires are resistors.
    A linear network superposes exactly, so row groups change only the ADC range and the number
    of conversions, not the IR drop each row sees. The TIA offset is set to 0: with an offset,
    the undriven rows' cells carry ``-G v_os`` in every read, a real per-read offset that does
    not superpose.
    """
    rng = np.random.default_rng(4)
    whole = TileSpec(rows=32, cols=8, r_wire_ohm=1.25, tia=TiaSpec(v_offset_v=0.0),
                     read=ReadScheme.whole_map())
    grouped = dataclasses.replace(whole, read=ReadScheme(rows_per_read=8))
    gp, gn = _pair(rng, 32, 8)
    x = rng.uniform(0, 1, (3, 32))
    a = NodalBackend(grouped).bind(gp, gn).apply(x, rng)
    b = NodalBackend(whole).bind(gp, gn).apply(x, rng)
    np.testing.assert_allclose(a.i_pos_ua, b.i_pos_ua, rtol=1e-3)
    np.testing.assert_allclose(a.i_neg_ua, b.i_neg_ua, rtol=1e-3)
    # ...while the conversions differ: four reads on a 4x finer ADC range
    assert not np.array_equal(a.codes_pos, b.codes_pos)


def test_full_scale_is_the_largest_single_read_of_the_corner() -> None:
    """With row groups the ADC full scale is the largest current of one read, whichever group
    draws it (the group nearest the TIAs loses least to the column IR drop), not a VMM's sum
    over reads nor the first group's."""
    import dataclasses

    from rram_cosim.cosim.engines.calibrate import corner_map, full_scale_spec
    from rram_cosim.cosim.engines.nodal import NodalBackend

    spec = TileSpec(rows=192, cols=4, r_wire_ohm=4.0, read=ReadScheme(rows_per_read=64))
    rng = np.random.default_rng(0)
    fitted, i_fs = full_scale_spec(spec, NodalBackend, (192, 4), rng)
    single = dataclasses.replace(spec, read=ReadScheme.whole_map())
    gp, gn = corner_map((192, 4), spec)
    per_group = []
    for a, b in spec.read.row_groups(192):
        x = np.zeros((1, 192))
        x[0, a:b] = 1.0
        out = NodalBackend(single).bind(gp, gn).apply(x, rng)
        per_group.append(max(out.i_pos_ua.max(), out.i_neg_ua.max()))
    assert i_fs == pytest.approx(max(per_group), rel=1e-6)
    assert np.argmax(per_group) == len(per_group) - 1 and per_group[0] < 0.9 * per_group[-1]
    assert fitted.r_f_ohm == pytest.approx(spec.adc.v_full_scale_v / (i_fs * 1e-6))


@pytest.mark.parametrize("r_out", [1.0, 0.0])
def test_the_surrogates_network_is_the_nodal_circuit_with_both_end_drive(r_out: float) -> None:
    """The surrogate's network (models/tile/network.py) and the nodal engine model the same
    two-ended row: one segment plus the DAC's output resistance at each end."""
    import dataclasses

    from rram_cosim.cosim.engines.nodal import NodalBackend
    from rram_cosim.models.tile.network import CellModel, operating_point
    from rram_cosim.models.tile.periphery import dac_volts
    from rram_cosim.models.tile.surrogate import card_cell, interleave, terminations

    rng = np.random.default_rng(3)
    for drive in ("one", "both"):
        spec = TileSpec(rows=16, cols=8, r_wire_ohm=20.0, dac=DacSpec(r_out_ohm=r_out),
                        read=ReadScheme(rows_per_read=0, drive=drive))
        spec = dataclasses.replace(spec, tia=TiaSpec(r_f_ohm=spec.r_f_ohm))
        gp, gn = rng.uniform(5, 30, (16, 8)), rng.uniform(5, 30, (16, 8))
        x = np.full((1, 16), 0.5)
        nodal = NodalBackend(spec).bind(gp, gn).solve(x).i_col_ua[0]
        g_on, vth = card_cell(spec)
        model = CellModel(beta_a_per_v2=g_on / (spec.v_gate_read_v - vth), vth_v=vth,
                          lambda_per_v=spec.mosfet.lambda_per_v, v_gate_v=spec.v_gate_read_v)
        op = operating_point(interleave(gp, gn) * 1e-6, model, terminations(spec),
                             dac_volts(x, spec)[0])
        # the network leaves out the junctions' GMIN leak (1e-12 S): ~1e-8 relative
        assert np.abs(op.i_tia_a * 1e6 - nodal).max() < 1e-7 * np.abs(nodal).max()


def test_differential_calibration_energy_counts_the_vmm_reads_only() -> None:
    """Calibrating a differential row-group scheme on the nodal engine: the VMM's energy sums
    its own reads (the same circuits as the single-ended scheme's), not the offset
    calibration's zero-input read."""
    from rram_cosim.cosim.engines.calibrate import simulate_with_energy

    rng = np.random.default_rng(21)
    single = TileSpec(rows=24, cols=6, read=ReadScheme(rows_per_read=8))
    diff = dataclasses.replace(single, read=ReadScheme(rows_per_read=8, sense="differential"))
    maps = [_pair(rng, 24, 6)]
    x = [rng.integers(0, 2, (5, 24)).astype(float)]
    _, e_single = simulate_with_energy(NodalBackend(single), maps, x, rng)
    samples, e_diff = simulate_with_energy(NodalBackend(diff), maps, x, rng)
    assert samples[0].i_pos_ua.shape == (5, 6)
    np.testing.assert_allclose(e_diff[0].dac_j, e_single[0].dac_j, rtol=1e-12)
    np.testing.assert_allclose(e_diff[0].tia_output_j, e_single[0].tia_output_j, rtol=1e-12)
    assert e_diff[0].t_read_s == e_single[0].t_read_s == 3 * single.t_read_s


def test_differential_offset_reference_is_solved_once_per_column_group() -> None:
    """The zero-input reads of the offset calibration are circuit solves: a bound tile makes
    them on its first VMM and reuses them, with the same codes as a freshly bound tile."""
    rng = np.random.default_rng(22)
    spec = SCHEMES["differential_float"][0]
    gp, gn = _pair(rng, 16, 4)
    x1, x2 = (rng.integers(0, 2, (4, 16)).astype(float) for _ in range(2))
    bound = NodalBackend(spec).bind(gp, gn)
    calls: list[bool] = []
    read = bound._read
    bound._read = lambda *a, **k: calls.append(k.get("log", True)) or read(*a, **k)
    bound.apply(x1, rng)
    first = calls.count(False)
    calls.clear()
    out = bound.apply(x2, rng)
    assert first == len(column_groups(spec, 4)) == 2 and calls.count(False) == 0
    assert len(calls) == len(_reads(spec, 16, 4))  # the VMM's own reads, still made
    fresh = NodalBackend(spec).bind(gp, gn).apply(x2, rng)
    np.testing.assert_array_equal(out.codes_pos, fresh.codes_pos)


@pytest.mark.parametrize("engine", ["ideal", "nodal"])
def test_differential_offset_reference_is_noise_free_under_read_noise(engine: str) -> None:
    """With read noise on, the offset calibration's zero-input read is still made without it
    (a controller's stored reference), and the VMM's own reads are noisy: the same seed gives
    the same codes, another seed other codes, and no noise gives a third set."""
    from rram_cosim.models.tile.ideal import IdealBackend
    spec = SCHEMES["differential_float"][0]
    gp, gn = _pair(np.random.default_rng(23), 16, 4)
    x = np.random.default_rng(24).integers(0, 2, (6, 16)).astype(float)

    def backend(sigma: float):
        return (IdealBackend(spec, read_noise_sigma_us=sigma) if engine == "ideal"
                else NodalBackend(spec, read_noise_sigma_us=sigma))

    noisy = backend(2.0).bind(gp, gn)
    a = noisy.apply(x, np.random.default_rng(1)).codes_pos
    b = backend(2.0).bind(gp, gn).apply(x, np.random.default_rng(1)).codes_pos
    c = backend(2.0).bind(gp, gn).apply(x, np.random.default_rng(2)).codes_pos
    quiet = backend(0.0).bind(gp, gn)
    d = quiet.apply(x, np.random.default_rng(1)).codes_pos
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    # the references a noisy tile stored are the noise-free tile's
    assert noisy._zero_codes.keys() == quiet._zero_codes.keys()
    for key, ref in quiet._zero_codes.items():
        np.testing.assert_array_equal(noisy._zero_codes[key], ref)
    with pytest.raises(ConfigError, match="Generator"):
        backend(2.0).bind(gp, gn).apply(x, None)
