"""A TIA driven past its linear range: the surrogate finds the read and solves it exactly.

The circuit reference is the nodal engine (equal to ngspice to 1e-9, tests/cosim/test_nodal.py);
the case is the one where a clipped TIA corrupts its in-range neighbours: a column gradient
from 5 to 100 uS with every row on, on a tile whose full scale is the 30 uS corner's.
"""

import dataclasses
import warnings

import numpy as np
import pytest
from rram_cosim.cosim.engines.calibrate import calibrate_tile
from rram_cosim.cosim.engines.nodal import NodalBackend
from rram_cosim.models.errors import ConfigError, DomainWarning
from rram_cosim.models.params import ReadScheme, TileSpec
from rram_cosim.models.tile.clipping import margin_ua
from rram_cosim.models.tile.network import factorise
from rram_cosim.models.tile.periphery import current_lsb_ua, tia_linear_range_ua
from rram_cosim.models.tile.surrogate import interleave, terminations
from rram_cosim.models.tile.tiling import TiledBackend

ROWS = COLS = 16


@pytest.fixture(scope="module")
def calibrated():
    spec = TileSpec(rows=ROWS, cols=COLS, r_wire_ohm=1.0)
    res = calibrate_tile(spec, reference="nodal", n_maps=1, n_test_maps=0, n_vectors=4,
                         structured=False)
    return res.spec, res.surrogate.with_noise(0.0)


def _gradient():
    g = np.tile(np.linspace(5.0, 100.0, COLS), (ROWS, 1))
    return g, np.full_like(g, 5.0)


def _inputs():
    x = np.ones((3, ROWS))
    x[1, ROWS // 2:] = 0.0  # half the rows: still clipping
    x[2] = 0.0
    x[2, 0] = 1.0  # one row: no TIA clips
    return x


@pytest.mark.parametrize("read", ["board", "row-groups", "differential"])
def test_clipped_reads_are_solved_exactly_and_counted(calibrated, read):
    spec, sur = calibrated
    scheme = {"board": ReadScheme(), "row-groups": ReadScheme(rows_per_read=8),
              "differential": ReadScheme(rows_per_read=8, sense="differential")}[read]
    spec = dataclasses.replace(spec, read=scheme)
    sur = sur.with_adc(spec.adc)
    sur.spec = spec
    gp, gn = _gradient()
    x = _inputs()
    rng = np.random.default_rng(0)
    with pytest.warns(UserWarning, match="outside its calibrated domain"):
        bound = sur.bind(gp, gn)
    out = bound.apply(x, rng)
    ref = NodalBackend(spec).bind(gp, gn).apply(x, rng)
    if read == "board":  # one read a VMM: the circuit's own currents cross the range
        assert ref.i_pos_ua[0].max() > tia_linear_range_ua(spec)[1]
    assert out.resolved.tolist() == [True, True, False]
    # reads solved: one a VMM on the board's scheme (16 rows, one read); with 8-row groups
    # both reads of "all rows on" and the driven group of "rows 0-7"
    assert out.n_resolved == 2 and bound.n_resolved_ == (2 if read == "board" else 3)
    # the solved reads are exact; the other is the linear model (its conductances reach 3x
    # the calibrated domain, so only the bar holds: 0.5 % of full scale)
    np.testing.assert_array_equal(out.codes_pos[:2], ref.codes_pos[:2])
    np.testing.assert_array_equal(out.codes_neg[:2], ref.codes_neg[:2])
    np.testing.assert_allclose(out.i_pos_ua[:2], ref.i_pos_ua[:2], rtol=1e-6, atol=1e-6)
    assert np.abs(out.codes_pos[2] - ref.codes_pos[2]).max() <= 0.005 * spec.adc.n_codes


@pytest.mark.parametrize("read", ["board", "row-groups"])
@pytest.mark.parametrize("sigma_us", [0.0, 3.0])
def test_the_event_driven_path_solves_clipped_reads_as_the_dense_one(calibrated, read,
                                                                     sigma_us):
    """Same flags, codes and currents on both paths; with noise, the exact solve of a clipped
    read comes before its noise on both (3 uS moves codes by tens of LSB)."""
    spec, sur = calibrated
    spec = dataclasses.replace(spec, read={"board": ReadScheme(),
                                           "row-groups": ReadScheme(rows_per_read=8)}[read])
    sur = sur.with_adc(spec.adc).with_noise(sigma_us)
    sur.spec = spec
    gp, gn = _gradient()
    with pytest.warns(UserWarning, match="outside its calibrated domain"):
        bound = sur.bind(gp, gn)
    out = {}
    for path in ("dense", "sparse"):
        bound.vmm = path
        out[path] = bound.apply(_inputs(), np.random.default_rng(0))
    assert out["sparse"].resolved.tolist() == out["dense"].resolved.tolist() == [True, True,
                                                                                False]
    for f in ("codes_pos", "codes_neg", "y"):
        np.testing.assert_array_equal(getattr(out["sparse"], f), getattr(out["dense"], f))
    for f in ("i_pos_ua", "i_neg_ua"):
        np.testing.assert_allclose(getattr(out["sparse"], f), getattr(out["dense"], f),
                                   rtol=1e-12)


def test_without_the_exact_solve_the_in_range_neighbours_read_wrong(calibrated):
    """The linear model alone (``currents``, no clipping handled): the
    columns whose own conductances are in the calibrated domain read codes off."""
    spec, sur = calibrated
    gp, gn = _gradient()
    x = _inputs()[:1]
    with pytest.warns(UserWarning):
        bound = sur.bind(gp, gn)
    ip, _ = bound.currents(x)  # the linear model, no clipping handled
    ref = NodalBackend(spec).bind(gp, gn).apply(x, np.random.default_rng(0))
    in_domain = gp[0] <= spec.g_full_scale_us
    from rram_cosim.models.tile.periphery import adc_codes, tia_out_v
    lin_codes = adc_codes(tia_out_v(ip, spec), spec)
    assert np.abs(lin_codes - ref.codes_pos)[0, in_domain].max() > 20
    assert np.abs(bound.apply(x, np.random.default_rng(0)).codes_pos
                  - ref.codes_pos).max() == 0


def test_tiles_report_which_vmms_were_solved_exactly(calibrated):
    spec, sur = calibrated
    gp, gn = _gradient()
    x = _inputs()
    with pytest.warns(UserWarning):
        out = TiledBackend(sur, ROWS, COLS // 2).bind(gp, gn).apply(x, np.random.default_rng(0))
    # only the high-conductance column block clips, and the VMM says so
    assert out.resolved.tolist() == [True, True, False]
    ref = TiledBackend(NodalBackend(spec), ROWS, COLS // 2).bind(gp, gn).apply(
        x, np.random.default_rng(0))  # the same two tiles in the circuit
    # the high-conductance tile is exact; the other is the linear model where it did not clip
    np.testing.assert_array_equal(out.codes_pos[:2, COLS // 2:], ref.codes_pos[:2, COLS // 2:])
    assert np.abs(out.codes_pos - ref.codes_pos).max() <= 0.005 * spec.adc.n_codes


def test_clip_mask_is_checked():
    spec = TileSpec(rows=4, cols=2, r_wire_ohm=1.0, tia=dataclasses.replace(
        TileSpec().tia, r_f_ohm=1e4))
    term = terminations(spec)
    a = np.full((4, 4), 1e-5)
    with pytest.raises(ConfigError, match="-1, 0 or \\+1"):
        factorise(a, -a, term, clipped=np.array([2, 0, 0, 0]))
    bare = dataclasses.replace(term, g_clip_s=None)
    with pytest.raises(ConfigError, match="g_clip_s"):
        factorise(a, -a, bare, clipped=np.array([-1, 0, 0, 0]))
    # a clipped column draws its current through R_f + r_out from the rail, not the
    # virtual ground: at zero drive it sources current from the low rail's side
    fac = factorise(a, -a, term, clipped=np.array([-1, 0, 0, 0]))
    _, _, i = fac.solve(np.zeros(4))
    assert i[0] > 0 and abs(i[1]) < 1e-3 * i[0]
    assert interleave(np.ones((1, 2)), np.zeros((1, 2))).tolist() == [[1, 0, 1, 0]]


def test_an_8_bit_adc_at_full_scale_is_not_resolved_while_the_tia_is_linear(calibrated):
    """The margin is in uA, from the TIA's range and the surrogate's error, not in ADC codes:
    an 8-bit ADC read at its full scale, 2 uA inside the TIA's linear range, is the linear
    model (8 codes of an 8-bit ADC, 3 % of full scale, would flag it)."""
    spec, sur = calibrated
    sur8 = sur.with_adc(dataclasses.replace(spec.adc, bits=8))
    s8 = sur8.spec
    hi = tia_linear_range_ua(s8)[1]
    target = hi - 2.0
    x = np.ones((1, ROWS))
    g = 30.0
    for _ in range(3):  # scale a uniform G+ map until the column current is the target
        gp, gn = np.full((ROWS, COLS), g), np.full((ROWS, COLS), 5.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DomainWarning)
            i_max = sur8.bind(gp, gn).currents(x)[0].max()
        g *= target / i_max
    assert abs(i_max - target) < 0.1
    assert i_max > hi - 8 * current_lsb_ua(s8)  # inside 8 codes of an 8-bit ADC
    assert margin_ua(s8, sur8.worst_max_ua()) == margin_ua(spec, sur.worst_max_ua()) < 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DomainWarning)
        out = sur8.bind(gp, gn).apply(x, np.random.default_rng(0))
    assert out.n_resolved == 0 and out.codes_pos.max() == s8.adc.n_codes - 1
    # 1 uA nearer the rail than the margin allows: solved exactly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DomainWarning)
        bound = sur8.bind(gp * (hi - 0.5 * margin_ua(s8, None)) / i_max, gn)
        assert bound.apply(x, np.random.default_rng(0)).n_resolved == 1


def test_a_task_tally_counts_the_reads_solved_exactly_and_warns(calibrated):
    from rram_cosim.models.errors import AccuracyWarning
    from rram_cosim.models.tile.clipping import tally_reads
    _, sur = calibrated
    gp, gn = _gradient()
    with pytest.warns(UserWarning):
        bound = sur.bind(gp, gn)
    with tally_reads() as t:
        bound.apply(_inputs(), np.random.default_rng(0))
        bound.apply(_inputs()[2:], np.random.default_rng(0))
    assert t.summary() == {"surrogate_reads": 4, "reads_solved_exactly": 2,
                           "share_solved_exactly": 0.5}
    with pytest.warns(AccuracyWarning, match="2 of 4 surrogate reads"):
        t.warn("classify")


def test_a_failed_exact_solve_names_the_reads_and_the_fix(calibrated, monkeypatch):
    """No active-set round allowed: the clipped reads cannot settle, and the error says which
    inputs of the batch, which rows, and what to change."""
    from rram_cosim.models.tile import clipping
    monkeypatch.setattr(clipping, "_MAX_ROUNDS", 0)
    _, sur = calibrated
    gp, gn = _gradient()
    with pytest.warns(UserWarning):
        bound = sur.bind(gp, gn)
    with pytest.raises(ConfigError, match=r"2 read\(s\).*inputs \[0, 1\] of this batch, rows "
                                          r"0-15.*did not settle.*--adc-range corner"):
        bound.apply(_inputs(), np.random.default_rng(0))
