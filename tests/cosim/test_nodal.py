"""The nodal DC engine: ideal limit, real ngspice on small tiles, clipping, protocol, errors."""

from __future__ import annotations

import dataclasses
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rram_cosim.cosim.engines.nodal import NodalBackend, level1_device, level1_ids
from rram_cosim.cosim.engines.registry import make_backend
from rram_cosim.cosim.spice.errors import ConvergenceError
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import (
    DacSpec,
    MosfetSpec,
    ReadScheme,
    TiaSpec,
    TileSpec,
    WireGeometry,
)
from rram_cosim.models.tile.backend import BoundTile, TileBackend, TileOutput, code_y_scale
from rram_cosim.models.tile.periphery import adc_codes, dac_volts

needs_ngspice = pytest.mark.skipif(shutil.which("ngspice") is None, reason="needs ngspice")


def random_pair(rng: np.random.Generator, rows: int, cols: int, lo: float = 5.0,
                hi: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(lo, hi, (rows, cols)), rng.uniform(lo, hi, (rows, cols))


def physical(gp: np.ndarray, gn: np.ndarray) -> np.ndarray:
    g = np.empty((gp.shape[0], 2 * gp.shape[1]))
    g[:, 0::2], g[:, 1::2] = gp, gn
    return g


# --------------------------------------------------------------------------- ideal limit

def test_ideal_limit_gives_g_dot_v() -> None:
    """No wires, no DAC resistance, a 0.016-ohm transistor, ideal-gain TIA: I = G.V.

    Remaining error: the transistor's on-resistance against >= 25 kOhm cells (< 7e-7) and the
    virtual ground's 1/A_ol (1e-9), so 1e-6 relative.
    """
    rng = np.random.default_rng(0)
    spec = TileSpec(rows=16, cols=8, r_wire_ohm=0.0, dac=DacSpec(r_out_ohm=0.0),
                    mosfet=MosfetSpec(kp_a_per_v2=1e-2, w_m=100e-6, l_m=10e-9),
                    tia=TiaSpec(a_ol=1e9, v_offset_v=0.0))
    gp, gn = random_pair(rng, 16, 8)
    gp[3, 2] = 0.0  # a missing cell: no device at all
    x = rng.integers(0, 2, (5, 16)).astype(float)
    x[0] = 0.0
    sol = NodalBackend(spec).bind(gp, gn).solve(x)
    v = dac_volts(x, spec)
    expected = v @ physical(gp, gn)  # uA (V x uS)
    np.testing.assert_allclose(sol.i_col_ua[1:], expected[1:], rtol=1e-6)
    assert np.abs(sol.i_col_ua[0]).max() < 1e-9  # no input: gmin leakage only
    assert np.isnan(sol.v_m[:, 3, 4]).all() and (sol.i_cell_a[:, 3, 4] == 0).all()
    # merged nodes: every row tap is the DAC node, every column tap the TIA input
    np.testing.assert_array_equal(sol.v_r, np.broadcast_to(sol.v_d[:, :, None], sol.v_r.shape))
    np.testing.assert_array_equal(sol.v_c, np.broadcast_to(sol.v_t[:, None, :], sol.v_c.shape))


def test_kirchhoff_current_balance_with_wires() -> None:
    """Current leaving the DACs equals the current reaching the TIAs plus what GMIN leaks.

    The card has IS = 0, so each junction carries exactly GMIN * v(node) to the grounded bulk.
    """
    rng = np.random.default_rng(1)
    spec = TileSpec(rows=24, cols=12, r_wire_ohm=5.0)
    gp, gn = random_pair(rng, 24, 12)
    x = rng.integers(0, 2, (3, 24))
    sol = NodalBackend(spec).bind(gp, gn).solve(x)
    i_dac = ((sol.v_d - sol.v_a) / spec.dac.r_out_ohm).sum(axis=1) * 1e6
    leak = 1e-12 * (sol.v_m.sum(axis=(1, 2)) + sol.v_c.sum(axis=(1, 2))) * 1e6
    assert np.all(leak > 1e-6)  # ~5e-5 uA: visible at this precision
    np.testing.assert_allclose(i_dac, sol.i_col_ua.sum(axis=1) + leak, rtol=1e-12)
    # IR drop: a driven row's taps fall away from its DAC; each column segment carries the
    # cells' currents from row 0 (farthest from the TIA) down to it, less the source leakage
    assert np.all(np.diff(sol.v_r, axis=2)[x == 1] < 0)
    seg_a = -np.diff(np.concatenate([sol.v_c, sol.v_t[:, None, :]], axis=1), axis=1) / 5.0
    np.testing.assert_allclose(seg_a, np.cumsum(sol.i_cell_a - 1e-12 * sol.v_c, axis=1),
                               rtol=1e-9, atol=1e-15)
    assert sol.residual_a.max() < 1e-12


def test_level1_equations_by_hand() -> None:
    """The mirrored Shichman-Hodges current at hand-computed points, incl. lambda and swap."""
    spec = TileSpec(v_gate_read_v=1.0,
                    mosfet=MosfetSpec(vto_v=0.5, kp_a_per_v2=2e-4, w_m=1e-6, l_m=1e-6,
                                      lambda_per_v=0.1))
    dev = level1_device(spec, gmin_s=0.0)
    beta = 2e-4
    # linear, vgs = 1.0, vds = 0.1: beta (1 + 0.01) 0.1 (0.5 - 0.05)
    ids, _, _ = level1_ids(np.array([0.1]), np.array([0.0]), dev)
    assert ids[0] == pytest.approx(beta * 1.01 * 0.1 * 0.45, rel=1e-14)
    # saturation, vds = 0.8 > vgst = 0.5: beta/2 0.25 (1 + 0.08)
    ids, _, _ = level1_ids(np.array([0.8]), np.array([0.0]), dev)
    assert ids[0] == pytest.approx(0.5 * beta * 0.25 * 1.08, rel=1e-14)
    # swapped terminals (vds < 0): the source is the drain, vgs -> vgd
    ids, d_vd, d_vs = level1_ids(np.array([0.0]), np.array([0.1]), dev)
    assert ids[0] == pytest.approx(-beta * 1.01 * 0.1 * 0.45, rel=1e-14)
    # cutoff: vgs = 0.4 V < vto
    ids, d_vd, d_vs = level1_ids(np.array([0.7]), np.array([0.6]), dev)
    assert ids[0] == 0.0 and d_vd[0] == 0.0 and d_vs[0] == 0.0
    # analytic derivatives against central differences in every region
    vd = np.array([0.1, 0.8, 0.0, 0.3, 0.05])
    vs = np.array([0.0, 0.0, 0.1, 0.35, 0.02])
    _, d_vd, d_vs = level1_ids(vd, vs, dev)
    h = 1e-7
    num_d = (level1_ids(vd + h, vs, dev)[0] - level1_ids(vd - h, vs, dev)[0]) / (2 * h)
    num_s = (level1_ids(vd, vs + h, dev)[0] - level1_ids(vd, vs - h, dev)[0]) / (2 * h)
    np.testing.assert_allclose(d_vd, num_d, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(d_vs, num_s, rtol=1e-6, atol=1e-12)


# --------------------------------------------------------------------------- real ngspice

def _spice_tia(spec: TileSpec, gp: np.ndarray, gn: np.ndarray, x: np.ndarray,
               tmp_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """TIA outputs and column currents (uA) from ngspice on the shared tile deck."""
    from rram_cosim.cosim.spice.runner import RunOptions, run_deck
    from rram_cosim.netlists.tile import tile_deck

    res = run_deck(tile_deck(spec, gp, gn, x), RunOptions(run_dir=tmp_path, retry=False))
    assert res.remedy is None
    p = 2 * gp.shape[1]
    v_o = np.stack([res.vectors[f"v(o{j})"] for j in range(p)], axis=1)
    v_t = np.stack([res.vectors[f"v(t{j})"] for j in range(p)], axis=1)
    return v_o, (v_t - v_o) / spec.r_f_ohm * 1e6


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RRAM_COSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@needs_ngspice
@pytest.mark.parametrize("weights", [(4, 4), (16, 16)])
@pytest.mark.parametrize("r_wire_ohm", [1.0, 5.0])
def test_matches_ngspice(weights: tuple[int, int], r_wire_ohm: float, tmp_path: Path) -> None:
    rows, cols = weights
    rng = np.random.default_rng(rows * 10 + int(r_wire_ohm))
    spec = TileSpec(rows=rows, cols=cols, r_wire_ohm=r_wire_ohm)
    gp, gn = random_pair(rng, rows, cols)
    x = rng.integers(0, 2, (3, rows)).astype(float)
    v_o, i_ua = _spice_tia(spec, gp, gn, x, tmp_path)
    sol = NodalBackend(spec).bind(gp, gn).solve(x)
    np.testing.assert_allclose(sol.v_o, v_o, rtol=1e-6)
    np.testing.assert_allclose(sol.i_col_ua, i_ua, rtol=1e-6)
    out = NodalBackend(spec).bind(gp, gn).apply(x, np.random.default_rng(0))
    spice_codes = adc_codes(v_o, spec)
    np.testing.assert_array_equal(out.codes_pos, spice_codes[:, 0::2])
    np.testing.assert_array_equal(out.codes_neg, spice_codes[:, 1::2])


@needs_ngspice
@pytest.mark.parametrize("solve_path", ["fast", "plain"])
def test_the_gmres_path_matches_ngspice(solve_path: str, tmp_path: Path) -> None:
    """The iterative linear solver (GMRES; the default above 2,000 unknowns) forced on a deck
    ngspice solves: both Newton paths agree with it to 1e-9 relative."""
    rng = np.random.default_rng(17)
    spec = TileSpec(rows=16, cols=16, r_wire_ohm=5.0, read=ReadScheme(rows_per_read=8))
    gp, gn = random_pair(rng, 16, 16)
    x = np.vstack([rng.integers(0, 2, (3, 16)), np.zeros((1, 16)), rng.uniform(0, 1, (1, 16))])
    v_o, i_ua = _spice_tia(spec, gp, gn, x, tmp_path)
    sol = NodalBackend(spec, linear_solver="krylov", solve_path=solve_path).bind(gp, gn).solve(x)
    assert set(sol.linear_solvers) == {"krylov"}
    np.testing.assert_allclose(sol.v_o, v_o, rtol=1e-9)
    np.testing.assert_allclose(sol.i_col_ua, i_ua, rtol=1e-9, atol=1e-12)


EDGE_SPECS = {
    # access transistors in saturation and reverse mode (zero-input rows), hot
    "saturated_hot": TileSpec(rows=8, cols=4, v_gate_read_v=0.6, v_read_v=0.5,
                              temperature_c=85.0),
    # rows and columns of different metal; one of them without resistance
    "row_wire_only": TileSpec(rows=8, cols=4, row_wire=WireGeometry(3.0, 1.0, 1.0),
                              col_wire=WireGeometry(0.0, 1.0, 1.0)),
    "col_wire_only": TileSpec(rows=8, cols=4, row_wire=WireGeometry(0.0, 1.0, 1.0),
                              col_wire=WireGeometry(2.0, 1.0, 1.0)),
    "unequal_wires": TileSpec(rows=8, cols=4, row_wire=WireGeometry(0.5, 1.0, 1.0),
                              col_wire=WireGeometry(4.0, 1.0, 1.0)),
    "merged_nodes": TileSpec(rows=8, cols=4, r_wire_ohm=0.0, dac=DacSpec(r_out_ohm=0.0)),
    "dac_r_only": TileSpec(rows=8, cols=4, r_wire_ohm=0.0, dac=DacSpec(r_out_ohm=50.0)),
    "tia_r_out_0_low_gain": TileSpec(rows=8, cols=4, r_wire_ohm=2.0,
                                     tia=TiaSpec(r_out_ohm=0.0, a_ol=10.0)),
    "cold_custom_device": TileSpec(rows=8, cols=4, temperature_c=-40.0,
                                   mosfet=MosfetSpec(kp_a_per_v2=1e-4, lambda_per_v=0.5,
                                                     w_m=200e-9, l_m=100e-9)),
}


@needs_ngspice
@pytest.mark.parametrize("case", sorted(EDGE_SPECS))
def test_matches_ngspice_edge_regimes(case: str, tmp_path: Path) -> None:
    spec = EDGE_SPECS[case]
    rng = np.random.default_rng(7)
    gp, gn = random_pair(rng, 8, 4, 5.0, 100.0)
    gp[2, :], gn[2, :] = 0.0, 0.0  # an empty row
    gp[5, 1] = 0.0
    x = np.vstack([rng.integers(0, 2, (2, 8)), rng.uniform(0, 1, (1, 8))])
    v_o, i_ua = _spice_tia(spec, gp, gn, x, tmp_path)
    sol = NodalBackend(spec).bind(gp, gn).solve(x)
    np.testing.assert_allclose(sol.v_o, v_o, rtol=1e-6)
    np.testing.assert_allclose(sol.i_col_ua, i_ua, rtol=1e-6)


@needs_ngspice
def test_saturating_tia_clips_at_the_rail_in_both(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    spec = TileSpec(rows=8, cols=4, tia=TiaSpec(r_f_ohm=1e6))
    gp, gn = random_pair(rng, 8, 4)
    gn[:, 0] = 0.05  # tiny currents: column 1 stays in the linear range
    x = np.ones((2, 8))
    v_o, i_ua = _spice_tia(spec, gp, gn, x, tmp_path)
    sol = NodalBackend(spec).bind(gp, gn).solve(x)
    rail = spec.tia.v_out_min_v
    # ngspice's B-source output: the column current runs on from o through r_out into x
    x_spice = v_o - i_ua * 1e-6 * spec.tia.r_out_ohm
    clipped = np.abs(x_spice - rail) < 1e-9
    assert clipped[:, 0].all() and not clipped[:, 1].any()
    np.testing.assert_array_equal(sol.v_x[clipped], rail)
    assert np.all(np.abs(sol.v_x[~clipped] - rail) > 1.0)
    np.testing.assert_allclose(sol.v_o, v_o, rtol=1e-6)
    np.testing.assert_allclose(sol.i_col_ua, i_ua, rtol=1e-6)
    codes = NodalBackend(spec).bind(gp, gn).apply(x, rng).codes_pos
    assert (codes[:, 0] == spec.adc.n_codes - 1).all()


# --------------------------------------------------------------------------- solvers, protocol

def test_direct_and_krylov_agree_and_batching_is_transparent() -> None:
    rng = np.random.default_rng(5)
    spec = TileSpec(rows=32, cols=16, r_wire_ohm=5.0)
    gp, gn = random_pair(rng, 32, 16)
    x = rng.integers(0, 2, (4, 32))
    direct = NodalBackend(spec, linear_solver="direct").bind(gp, gn).solve(x)
    krylov = NodalBackend(spec, linear_solver="krylov", max_block_unknowns=1).bind(gp, gn)
    k_sol = krylov.solve(x)
    assert set(direct.linear_solvers) == {"direct"} and set(k_sol.linear_solvers) == {"krylov"}
    np.testing.assert_allclose(k_sol.v_o, direct.v_o, rtol=1e-10)
    np.testing.assert_allclose(k_sol.v_c, direct.v_c, rtol=1e-10, atol=1e-15)
    one = krylov.solve(x[2])
    np.testing.assert_allclose(one.v_o[0], k_sol.v_o[2], rtol=1e-10)


@pytest.mark.parametrize("solver", ["direct", "krylov"])
def test_fast_and_plain_paths_agree_and_identical_vectors_are_solved_once(solver: str) -> None:
    rng = np.random.default_rng(8)
    spec = TileSpec(rows=32, cols=16, r_wire_ohm=2.0, read=ReadScheme(rows_per_read=8))
    gp, gn = random_pair(rng, 32, 16)
    x = rng.integers(0, 2, (6, 32)).astype(float)
    x[4] = x[1]  # a repeated vector
    x[5] = 0.0  # all off: the same circuit in every read
    kw = {"linear_solver": solver, "max_block_unknowns": 1}
    plain = NodalBackend(spec, solve_path="plain", **kw).bind(gp, gn)
    fast = NodalBackend(spec, solve_path="fast", **kw).bind(gp, gn)
    off = []
    for rows in (slice(0, 8), slice(24, 32)):
        lv = np.zeros_like(x)
        lv[:, rows] = x[:, rows]
        a, b = plain.solve(lv), fast.solve(lv)
        assert set(b.linear_solvers) == {solver} and b.fallbacks == 0
        np.testing.assert_allclose(b.v_o, a.v_o, rtol=1e-10)
        np.testing.assert_allclose(b.v_c, a.v_c, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(b.i_cell_a, a.i_cell_a, rtol=1e-8, atol=1e-18)
        np.testing.assert_array_equal(adc_codes(b.v_o, spec), adc_codes(a.v_o, spec))
        np.testing.assert_array_equal(b.v_o[4], b.v_o[1])
        off.append(b.v_o[5])
    # the all-off read was solved once for both row groups (the plain path solved it twice)
    np.testing.assert_array_equal(off[0], off[1])
    out_fast, out_plain = fast.apply(x, rng), plain.apply(x, rng)
    np.testing.assert_array_equal(out_fast.codes_pos, out_plain.codes_pos)
    np.testing.assert_array_equal(out_fast.codes_neg, out_plain.codes_neg)
    np.testing.assert_allclose(out_fast.i_pos_ua, out_plain.i_pos_ua, rtol=1e-10)


class _NewtonCount:
    """Counts the vectors each Newton solve of the nodal engine receives (the real solver)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from rram_cosim.cosim.engines import nodal

        self.vectors = 0
        real = nodal._newton

        def counted(topo: Any, dev: Any, tia: Any, d: np.ndarray, *args: Any) -> Any:
            self.vectors += d.shape[0]
            return real(topo, dev, tia, d, *args)

        monkeypatch.setattr(nodal, "_newton", counted)

    def take(self) -> int:
        n, self.vectors = self.vectors, 0
        return n


def _distinct_on(lv: np.ndarray) -> int:
    """Distinct input vectors of ``lv`` with at least one row driven."""
    on = lv[lv.any(axis=1)]
    return np.unique(on, axis=0).shape[0]


def test_the_fast_path_solves_each_distinct_vector_once_and_the_all_off_read_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(9)
    spec = TileSpec(rows=32, cols=16, r_wire_ohm=2.0, read=ReadScheme(rows_per_read=8))
    gp, gn = random_pair(rng, 32, 16)
    x = rng.integers(0, 2, (6, 32)).astype(float)
    x[4] = x[1]
    x[5] = 0.0
    count = _NewtonCount(monkeypatch)
    fast = NodalBackend(spec).bind(gp, gn)
    plain = NodalBackend(spec, solve_path="plain").bind(gp, gn)
    for i, rows in enumerate((slice(0, 8), slice(24, 32))):
        lv = np.zeros_like(x)
        lv[:, rows] = x[:, rows]
        sol = fast.solve(lv)
        # the repeated vector once; the all-off vector only for the first row group
        assert count.take() == _distinct_on(lv) + (1 if i == 0 else 0) < 6
        np.testing.assert_allclose(sol.v_o, plain.solve(lv).v_o, rtol=1e-10)
        assert count.take() == 6
    assert len(fast._off_reads) == 1


def test_floating_column_groups_and_differential_reads_share_one_all_off_read_per_mask(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Floating column groups: each sensed mask is its own all-off circuit, solved once per
    bound tile; a differential scheme's zero-input calibration reads are not VMM reads."""
    from rram_cosim.models.tile.read import column_groups

    rng = np.random.default_rng(10)
    spec = TileSpec(rows=16, cols=8, r_wire_ohm=2.0,
                    read=ReadScheme(rows_per_read=8, cols_per_read=2, unsensed="float",
                                    sense="differential"))
    gp, gn = random_pair(rng, 16, 8)
    x = rng.integers(0, 2, (3, 16)).astype(float)
    x[2] = 0.0
    count = _NewtonCount(monkeypatch)
    fast = NodalBackend(spec).bind(gp, gn)
    masks = column_groups(spec, 8)
    assert len(masks) == 4
    a = fast.apply(x, rng)
    n_reads = 2 * len(masks)
    assert len(fast.last_reads) == n_reads
    first = count.take()
    assert len(fast._off_reads) == len(masks)
    b = fast.apply(x, rng)
    # the second VMM: the all-off and the zero-input reads come from the cache
    expect = sum(_distinct_on(np.where(np.arange(16) // 8 == g, x, 0.0)) for g in (0, 1))
    assert count.take() == expect * len(masks) < first
    np.testing.assert_array_equal(b.codes_pos, a.codes_pos)
    plain = NodalBackend(spec, solve_path="plain").bind(gp, gn)
    c = plain.apply(x, rng)
    assert len(plain.last_reads) == n_reads
    np.testing.assert_array_equal(a.codes_pos, c.codes_pos)
    np.testing.assert_allclose(a.i_pos_ua, c.i_pos_ua, rtol=1e-10, atol=1e-12)


def test_negative_zero_inputs_are_the_all_off_read() -> None:
    rng = np.random.default_rng(11)
    spec = TileSpec(rows=4, cols=2, r_wire_ohm=1.0)
    gp, gn = random_pair(rng, 4, 2)
    bound = NodalBackend(spec).bind(gp, gn)
    both = bound.solve(np.array([[0.0, 0, 0, 0], [-0.0, 0, 0, 0]]), volts=True)
    one = bound.solve(np.zeros((1, 4)))
    np.testing.assert_array_equal(both.v_o[0], both.v_o[1])
    np.testing.assert_array_equal(one.v_o[0], both.v_o[0])
    assert one.iterations == 0 and one.linear_solvers == ()  # served from the cache


def test_the_all_off_cache_keeps_a_bounded_number_of_masks() -> None:
    from rram_cosim.cosim.engines.nodal import _OFF_CACHE_MASKS

    rng = np.random.default_rng(12)
    spec = TileSpec(rows=4, cols=8, r_wire_ohm=1.0)
    gp, gn = random_pair(rng, 4, 8)
    bound = NodalBackend(spec).bind(gp, gn)
    for i in range(_OFF_CACHE_MASKS + 3):
        mask = np.ones(16, dtype=bool)
        mask[i] = False
        bound.solve(np.zeros((1, 4)), sensed=mask)
    assert len(bound._off_reads) == _OFF_CACHE_MASKS


def test_a_fast_path_failure_is_reported_and_handed_to_the_plain_path() -> None:
    spec = TileSpec(rows=8, cols=4, tia=TiaSpec(r_f_ohm=1e7))
    g = np.full((8, 4), 20.0)
    bound = NodalBackend(spec, max_iter=2).bind(g, g)
    with pytest.warns(RuntimeWarning, match="fast nodal Newton path did not converge"), \
            pytest.raises(ConvergenceError, match="in 2 iterations"):
        bound.solve(np.ones((1, 8)))
    assert bound.fallbacks_ == 1
    # the plain path has no fallback: it raises at once, without the warning
    plain = NodalBackend(spec, max_iter=2, solve_path="plain").bind(g, g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConvergenceError, match="in 2 iterations"):
            plain.solve(np.ones((1, 8)))
    assert plain.fallbacks_ == 0


def test_backend_protocol_and_outputs() -> None:
    rng = np.random.default_rng(2)
    spec = TileSpec(rows=12, cols=6)
    backend = make_backend("nodal", spec)
    assert isinstance(backend, NodalBackend) and isinstance(backend, TileBackend)
    gp, gn = random_pair(rng, 12, 5)
    bound = backend.bind(gp, gn)
    assert isinstance(bound, BoundTile)
    x = rng.integers(0, 2, (4, 12))
    out = bound.apply(x, rng)
    assert isinstance(out, TileOutput) and out.y.shape == (4, 5)
    sol = bound.solve(x)
    codes = adc_codes(sol.v_o, spec)
    np.testing.assert_array_equal(out.codes_pos, codes[:, 0::2])
    np.testing.assert_array_equal(out.codes_neg, codes[:, 1::2])
    np.testing.assert_allclose(out.y, (codes[:, 0::2] - codes[:, 1::2]) * code_y_scale(spec))
    np.testing.assert_allclose(out.i_pos_ua, sol.i_col_ua[:, 0::2])
    # y approximates the ideal x @ W (IR drop and the transistor cost a few percent)
    w = (gp - gn) / spec.g_ref_us
    assert np.abs(out.y - x @ w).max() < 0.1 * np.abs(x @ w).max()
    volts = bound.apply(x * spec.v_read_v, rng, volts=True)
    np.testing.assert_array_equal(volts.codes_pos, out.codes_pos)
    assert bound.solve(np.zeros((0, 12))).v_o.shape == (0, 10)


def test_read_noise_is_seeded() -> None:
    rng = np.random.default_rng(4)
    spec = TileSpec(rows=8, cols=4)
    gp, gn = random_pair(rng, 8, 4)
    x = np.ones((2, 8))
    noisy = NodalBackend(spec, read_noise_sigma_us=0.5).bind(gp, gn)
    a = noisy.solve(x, np.random.default_rng(9)).i_col_ua
    b = noisy.solve(x, np.random.default_rng(9)).i_col_ua
    c = noisy.solve(x, np.random.default_rng(10)).i_col_ua
    clean = NodalBackend(spec).bind(gp, gn).solve(x).i_col_ua
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c, rtol=1e-6)
    # sigma 0.5 uS on 8 cells at ~0.2 V: ~0.3 uA per column
    assert 0.01 < np.abs(a - clean).mean() < 1.0
    with pytest.raises(ConfigError, match="Generator"):
        noisy.solve(x)


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kwargs, match", [
    ({"linear_solver": "cholesky"}, "linear_solver"),
    ({"reltol": -1.0}, "reltol"),
    ({"max_iter": 1}, "max_iter"),
    ({"spec": TileSpec(mosfet=MosfetSpec(card="ptm45"))}, "level-1"),
    ({"spec": "not a spec"}, "TileSpec"),
    ({"gmin_s": float("nan")}, "gmin_s"),
    ({"solve_path": "newton"}, "solve_path"),
])
def test_bad_backend_options_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        NodalBackend(**kwargs)


def test_bad_maps_and_inputs_raise() -> None:
    spec = TileSpec(rows=4, cols=2)
    backend = NodalBackend(spec)
    good = np.full((4, 2), 10.0)
    with pytest.raises(ConfigError, match="negative"):
        backend.bind(good, -good)
    with pytest.raises(ConfigError, match="shape"):
        backend.bind(good, np.full((4, 1), 10.0))
    with pytest.raises(ConfigError, match="does not fit"):
        backend.bind(np.full((5, 2), 10.0), np.full((5, 2), 10.0))
    bound = backend.bind(good, good)
    with pytest.raises(ConfigError, match=r"shape \(batch, 4\)"):
        bound.solve(np.ones((2, 3)))
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        bound.solve(np.full((1, 4), 1.5))
    with pytest.raises(ConfigError, match="NaN"):
        bound.apply(np.full((1, 4), np.nan), np.random.default_rng(0))


def test_non_convergence_raises_with_iterations_and_residual() -> None:
    spec = TileSpec(rows=8, cols=4, tia=TiaSpec(r_f_ohm=1e7))
    bound = NodalBackend(spec, max_iter=2).bind(np.full((8, 4), 20.0), np.full((8, 4), 20.0))
    with pytest.raises(ConvergenceError, match=r"in 2 iterations \(max KCL residual"):
        bound.solve(np.ones((1, 8)))


def test_backend_is_frozen_and_replaceable() -> None:
    b = NodalBackend()
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.reltol = 1.0  # type: ignore[misc]
    assert dataclasses.replace(b, linear_solver="direct").linear_solver == "direct"
