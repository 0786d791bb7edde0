"""The numpy tile network: hierarchical Schur complements against a dense direct solve, the
cell two-port against finite differences, the operating point against Kirchhoff's laws."""

import math

import numpy as np
import pytest
from rram_cosim.models.tile.network import (
    CellModel,
    Terminations,
    cell_iv,
    factorise,
    operating_point,
    operating_points,
)

MODEL = CellModel(beta_a_per_v2=400e-6 * 120 / 45, vth_v=0.47, lambda_per_v=0.1, v_gate_v=1.1)


def _dense(a, b, term):
    """The same linear network as one dense matrix (unknowns: a_i, r_ij, c_ij, t_j)."""
    r, p = a.shape
    n_a = r if math.isfinite(term.g_dac_s) else 0
    ia = np.arange(n_a)
    ir = n_a + np.arange(r * p).reshape(r, p)
    ic = n_a + r * p + np.arange(r * p).reshape(r, p)
    it = n_a + 2 * r * p + np.arange(p)
    n = n_a + 2 * r * p + p
    k = np.zeros((n, n))
    bd = np.zeros((n, r))  # DAC coupling: rhs = bd @ d

    def res(n1, n2, g):
        np.add.at(k, (n1, n1), g)
        np.add.at(k, (n2, n2), g)
        np.add.at(k, (n1, n2), -g)
        np.add.at(k, (n2, n1), -g)

    gw = term.g_wire_s
    if n_a:
        k[ia, ia] += term.g_dac_s
        bd[ia, np.arange(r)] = term.g_dac_s
        res(ia, ir[:, 0], gw)
    else:
        k[ir[:, 0], ir[:, 0]] += gw
        bd[ir[:, 0], np.arange(r)] = gw
    res(ir[:, :-1].ravel(), ir[:, 1:].ravel(), gw)
    res(ic[:-1].ravel(), ic[1:].ravel(), gw)
    res(ic[-1], it, gw)
    k[it, it] += term.g_tia_s
    np.add.at(k, (ir.ravel(), ir.ravel()), a.ravel())
    np.add.at(k, (ir.ravel(), ic.ravel()), b.ravel())
    np.add.at(k, (ic.ravel(), ir.ravel()), -a.ravel())
    np.add.at(k, (ic.ravel(), ic.ravel()), -b.ravel())
    c0 = np.zeros(n)
    c0[it] = term.g_tia_s * term.v_t0_v
    return k, bd, c0, ir, ic, it


@pytest.mark.parametrize("rows,cols,g_dac", [(1, 1, 1.0), (1, 5, 1.0), (4, 1, math.inf),
                                             (3, 7, 1.0), (6, 4, math.inf), (9, 13, 2.0)])
@pytest.mark.parametrize("g_wire", [1.0, 0.2])
def test_hierarchical_factor_equals_dense_solve(rows, cols, g_dac, g_wire):
    rng = np.random.default_rng(rows * 100 + cols)
    a = rng.uniform(1e-6, 3e-5, (rows, cols))
    b = -a * rng.uniform(1.0, 1.05, (rows, cols))  # a transistor makes the two-port unequal
    a[0, 0] = b[0, 0] = 0.0  # one missing cell
    term = Terminations(g_wire_s=g_wire, g_dac_s=g_dac, g_tia_s=500.0, v_t0_v=5e-4)
    k, bd, c0, ir, ic, it = _dense(a, b, term)
    kinv = np.linalg.inv(k)
    fac = factorise(a, b, term)
    t_ref = term.g_tia_s * (kinv @ bd)[it].T
    np.testing.assert_allclose(fac.transfer(), t_ref, rtol=1e-9, atol=1e-12 * np.abs(t_ref).max())
    d = rng.uniform(0, 0.2, rows)
    f = rng.normal(0, 1e-7, (rows, cols))
    v = kinv @ (bd @ d + c0 + np.bincount(ir.ravel(), f.ravel(), k.shape[0])
                - np.bincount(ic.ravel(), f.ravel(), k.shape[0]))
    v_r, v_c, i_tia = fac.solve(d, f, -f)
    np.testing.assert_allclose(v_r, v[ir], rtol=0, atol=1e-13)
    np.testing.assert_allclose(v_c, v[ic], rtol=0, atol=1e-13)
    np.testing.assert_allclose(i_tia, term.g_tia_s * (v[it] - term.v_t0_v), rtol=1e-9,
                               atol=1e-16)


@pytest.mark.parametrize("g_dac", [1.0, math.inf])
def test_no_wires_is_a_dense_row_column_network(g_dac):
    rng = np.random.default_rng(4)
    a = rng.uniform(1e-6, 3e-5, (5, 3))
    b = -a
    term = Terminations(g_wire_s=math.inf, g_dac_s=g_dac, g_tia_s=500.0, v_t0_v=5e-4)
    fac = factorise(a, b, term)
    d = rng.uniform(0, 0.2, 5)
    v_r, v_c, i_tia = fac.solve(d)
    # every tap of a row is one node, every tap of a column is one node
    assert np.ptp(v_r, axis=1).max() == 0 and np.ptp(v_c, axis=0).max() == 0
    i_cells = a * v_r + b * v_c
    np.testing.assert_allclose(i_tia, i_cells.sum(axis=0), rtol=1e-10)
    if math.isfinite(g_dac):
        np.testing.assert_allclose(g_dac * (d - v_r[:, 0]), i_cells.sum(axis=1), rtol=1e-10)
    # the transfer matrix is the derivative of the TIA currents
    step = 1e-3
    _, _, i2 = fac.solve(d + step * np.eye(5)[2])
    np.testing.assert_allclose((i2 - i_tia) / step, fac.transfer()[2], rtol=1e-8)


def test_cell_iv_tangent_and_series_resistance():
    rng = np.random.default_rng(0)
    v_r = rng.uniform(-0.05, 0.25, 50)
    v_c = rng.uniform(-0.01, 0.2, 50)
    g = rng.uniform(0, 40e-6, 50)
    g[0] = 0.0
    i, dr, dc, _ = cell_iv(v_r, v_c, g, MODEL)
    assert i[0] == 0 and dr[0] == 0 and dc[0] == 0
    h = 1e-7
    i_r, *_ = cell_iv(v_r + h, v_c, g, MODEL)
    i_c, *_ = cell_iv(v_r, v_c + h, g, MODEL)
    np.testing.assert_allclose((i_r - i) / h, dr, rtol=1e-5, atol=1e-14)
    np.testing.assert_allclose((i_c - i) / h, dc, rtol=1e-5, atol=1e-14)
    # near zero bias the cell is g in series with 1 / (beta (v_gate - v_c - vth))
    z = np.array([1e-6])
    i0, *_ = cell_iv(z + 1e-9, z, np.array([20e-6]), MODEL)
    r_on = 1.0 / (MODEL.beta_a_per_v2 * (MODEL.v_gate_v - 1e-6 - MODEL.vth_v))
    assert i0[0] / 1e-9 == pytest.approx(1.0 / (1.0 / 20e-6 + r_on), rel=1e-6)


@pytest.mark.parametrize("g_wire", [1.0, 0.2, math.inf])
def test_operating_point_satisfies_kirchhoff(g_wire):
    rng = np.random.default_rng(2)
    r, p = 7, 10
    g = rng.uniform(5e-6, 30e-6, (r, p))
    term = Terminations(g_wire_s=g_wire, g_dac_s=1.0, g_tia_s=500.0, v_t0_v=5e-4)
    d = np.where(rng.random(r) < 0.5, 0.2, 0.0)
    op = operating_point(g, MODEL, term, d)
    i_cell, *_ = cell_iv(op.v_r, op.v_c, g, MODEL)
    np.testing.assert_allclose(op.i_tia_a, i_cell.sum(axis=0), rtol=1e-9, atol=1e-14)
    if math.isfinite(g_wire):
        # row taps: wire current in = wire current out + cell current
        left = np.concatenate([np.full((r, 1), np.nan), op.v_r[:, :-1]], axis=1)
        right = np.concatenate([op.v_r[:, 1:], op.v_r[:, -1:]], axis=1)
        kcl = g_wire * (left - op.v_r) - g_wire * (op.v_r - right) - i_cell
        assert np.abs(kcl[:, 1:]).max() < 1e-12
        # column taps: current from above + cell current = current below
        above = np.concatenate([op.v_c[:1], op.v_c[:-1]], axis=0)
        below = np.concatenate([op.v_c[1:], np.full((1, p), np.nan)], axis=0)
        kcl = g_wire * (above - op.v_c) + i_cell - g_wire * (op.v_c - below)
        assert np.abs(kcl[:-1]).max() < 1e-12
    assert op.iterations <= 6


def test_operating_points_share_one_factor_and_equal_single_solves():
    rng = np.random.default_rng(4)
    g = rng.uniform(5e-6, 30e-6, (6, 8))
    term = Terminations(g_wire_s=1.0, g_dac_s=1.0, g_tia_s=500.0, v_t0_v=5e-4)
    d = np.where(rng.random((3, 6)) < 0.4, 0.2, 0.0)
    many = operating_points(g, MODEL, term, d)
    assert len(many) == 3
    for dk, op in zip(d, many):
        one = operating_point(g, MODEL, term, dk)
        np.testing.assert_allclose(op.i_tia_a, one.i_tia_a, rtol=1e-12, atol=1e-18)
        np.testing.assert_allclose(op.v_c, one.v_c, rtol=1e-12, atol=1e-15)
