"""The numpy tile network: hierarchical Schur complements against a dense direct solve, the
cell two-port against finite differences, the operating point against Kirchhoff's laws."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.tile.network import (
    CellModel,
    Terminations,
    cell_iv,
    factorise,
    operating_point,
    operating_points,
    tia_currents,
)

MODEL = CellModel(beta_a_per_v2=400e-6 * 120 / 45, vth_v=0.47, lambda_per_v=0.1, v_gate_v=1.1)


class _Reference:
    """The linear network stamped element by element into one scipy.sparse matrix.

    Independent of the solver's lumped port conductances: explicit DAC source nodes (at ``d``),
    a node between each DAC output and its row's end segment, explicit TIA input nodes and
    virtual-ground nodes (at ``v_t0``); full segments everywhere; an infinite conductance
    merges its two nodes. Unsensed columns have no TIA branch at all.
    """

    def __init__(self, a, b, term, sensed=None):
        r, p = a.shape
        sensed = np.ones(p, bool) if sensed is None else sensed
        nid = iter(range(10**9))
        tap_r = np.array([[next(nid) for _ in range(p)] for _ in range(r)])
        tap_c = np.array([[next(nid) for _ in range(p)] for _ in range(r)])
        src = [next(nid) for _ in range(r)]  # the DAC voltage (both ends share it)
        edges = []  # (n1, n2, g)
        for i in range(r):
            ends = [tap_r[i, 0]] + ([tap_r[i, -1]] if term.both_ends else [])
            for e in ends:
                x = next(nid)
                edges += [(src[i], x, term.g_dac_s), (x, e, term.g_row_s)]
            edges += [(tap_r[i, j], tap_r[i, j + 1], term.g_row_s) for j in range(p - 1)]
        tia, gnd = [], []
        for j in range(p):
            edges += [(tap_c[i, j], tap_c[i + 1, j], term.g_col_s) for i in range(r - 1)]
            tia.append(next(nid))
            gnd.append(next(nid))
            edges.append((tap_c[-1, j], tia[j], term.g_col_s))
            if sensed[j]:
                edges.append((tia[j], gnd[j], term.g_tia_s))
        n = next(nid)
        parent = list(range(n))

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for n1, n2, g in edges:
            if not math.isfinite(g):
                parent[find(n1)] = find(n2)
        known = {}  # class -> ("d", i) or ("t0", None)
        for i, s_ in enumerate(src):
            known[find(s_)] = ("d", i)
        for j in range(p):
            known[find(gnd[j])] = ("t0", None)
        classes = sorted({find(x) for x in range(n)} - set(known))
        col = {c: k for k, c in enumerate(classes)}
        kn = sorted(known)
        kcol = {c: k for k, c in enumerate(kn)}
        rows_u, cols_u, vals_u, rows_k, cols_k, vals_k = [], [], [], [], [], []

        def add(eq, node, g):  # KCL of class eq (currents leaving): + g v(node)
            if eq in known:
                return
            if node in known:
                rows_k.append(col[eq]), cols_k.append(kcol[node]), vals_k.append(g)
            else:
                rows_u.append(col[eq]), cols_u.append(col[node]), vals_u.append(g)

        for n1, n2, g in edges:
            if math.isfinite(g):
                c1, c2 = find(n1), find(n2)
                add(c1, c1, g), add(c1, c2, -g), add(c2, c2, g), add(c2, c1, -g)
        for i in range(r):
            for j in range(p):
                cr, cc = find(tap_r[i, j]), find(tap_c[i, j])
                add(cr, cr, a[i, j]), add(cr, cc, b[i, j])
                add(cc, cr, -a[i, j]), add(cc, cc, -b[i, j])
        nu, nk = len(classes), len(kn)
        self.k_uu = sp.csc_matrix((vals_u, (rows_u, cols_u)), shape=(nu, nu))
        self.k_uk = sp.csr_matrix((vals_k, (rows_k, cols_k)), shape=(nu, nk))
        self.lu = spla.splu(self.k_uu)
        self.known, self.kn, self.find, self.col = known, kn, find, col
        self.tap_r, self.tap_c, self.tia, self.sensed, self.term = tap_r, tap_c, tia, sensed, term

    def _v(self, d, f_r, f_c):
        vk = np.array([d[i] if kind == "d" else self.term.v_t0_v
                       for kind, i in (self.known[c] for c in self.kn)])
        rhs = -(self.k_uk @ vk)
        for taps, f in ((self.tap_r, f_r), (self.tap_c, f_c)):
            for (i, j), fij in np.ndenumerate(f):
                c = self.find(taps[i, j])
                if c in self.col:
                    rhs[self.col[c]] += fij
        u = self.lu.solve(rhs)
        return lambda node: self._at(u, vk, node)

    def _at(self, u, vk, node):
        c = self.find(int(node))
        return u[self.col[c]] if c in self.col else vk[self.kn.index(c)]

    def solve(self, d, f_r, f_c):
        at = self._v(d, f_r, f_c)
        v_r = np.vectorize(at)(self.tap_r)
        v_c = np.vectorize(at)(self.tap_c)
        v_tia = np.array([at(t) for t in self.tia])
        i = np.where(self.sensed, self.term.g_tia_s * (v_tia - self.term.v_t0_v), 0.0)
        return v_r, v_c, i

    def transfer(self):
        r, p = self.tap_r.shape
        z = np.zeros((r, p))
        d0 = np.zeros(r)
        _, _, i0 = self.solve(d0, z, z)
        # the network is linear: columns of the transfer matrix are unit-step responses
        return np.stack([self.solve(np.eye(r)[k], z, z)[2] - i0 for k in range(r)])


def _rel(x, ref):
    """Largest deviation relative to the largest reference entry (absolute if that is 0)."""
    dev = float(np.abs(np.asarray(x) - ref).max())
    scale = float(np.abs(ref).max())
    return dev / scale if scale > 0 else dev


def _term(g_row, g_col, g_dac=1.0, both=False):
    return Terminations(g_row_s=g_row, g_col_s=g_col, g_dac_s=g_dac, g_tia_s=500.0,
                        v_t0_v=5e-4, both_ends=both)


def _cells(rng, rows, cols):
    a = rng.uniform(1e-6, 3e-5, (rows, cols))
    b = -a * rng.uniform(1.0, 1.05, (rows, cols))  # a transistor makes the two-port unequal
    if a.size > 1:
        a[0, 0] = b[0, 0] = 0.0  # one missing cell
    return a, b


def _check_against_reference(a, b, term, sensed=None, rtol=1e-10):
    """Transfer matrix and a solve with injections against the sparse reference."""
    rng = np.random.default_rng(a.size)
    rows, cols = a.shape
    ref = _Reference(a, b, term, sensed)
    fac = factorise(a, b, term, sensed=sensed)
    t_ref = ref.transfer()
    err_t = _rel(fac.transfer(), t_ref)
    d = rng.uniform(0, 0.2, rows)
    f = rng.normal(0, 1e-7, (rows, cols))
    v_r, v_c, i_tia = fac.solve(d, f, -f)
    rv_r, rv_c, ri = ref.solve(d, f, -f)
    err_i = _rel(i_tia, ri)
    assert err_t <= rtol and err_i <= rtol, (err_t, err_i)
    # a floating column's taps hang on cells 1e4 times weaker than its wire: 1e-11 V of
    # rounding in either solver
    atol = 1e-13 if sensed is None else 1e-10 * np.abs(rv_c).max()
    np.testing.assert_allclose(v_r, rv_r, rtol=0, atol=atol)
    np.testing.assert_allclose(v_c, rv_c, rtol=0, atol=atol)
    if sensed is not None:
        assert np.all(fac.transfer()[:, ~sensed] == 0) and np.all(i_tia[~sensed] == 0)
    return err_t, err_i


@pytest.mark.parametrize("rows,cols,g_dac", [(1, 1, 1.0), (1, 5, 1.0), (4, 1, math.inf),
                                             (3, 7, 1.0), (6, 4, math.inf), (9, 13, 2.0)])
@pytest.mark.parametrize("g_wire", [1.0, 0.2])
def test_hierarchical_factor_equals_reference(rows, cols, g_dac, g_wire):
    a, b = _cells(np.random.default_rng(rows * 100 + cols), rows, cols)
    _check_against_reference(a, b, _term(g_wire, g_wire, g_dac))


@pytest.mark.parametrize("size", [(8, 8), (13, 21), (24, 24)])
@pytest.mark.parametrize("g_row,g_col", [(1.0, 0.2), (0.4, 2.5), (math.inf, 0.5),
                                         (0.5, math.inf), (math.inf, math.inf)])
@pytest.mark.parametrize("g_dac", [1.0, math.inf])
def test_separate_row_and_column_wires(size, g_row, g_col, g_dac):
    a, b = _cells(np.random.default_rng(size[0] * 7 + size[1]), *size)
    _check_against_reference(a, b, _term(g_row, g_col, g_dac))


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (11, 24), (24, 17)])
@pytest.mark.parametrize("g_row,g_col", [(1.0, 0.2), (0.4, 2.5), (math.inf, 0.5),
                                         (0.5, math.inf), (math.inf, math.inf)])
@pytest.mark.parametrize("g_dac", [1.0, math.inf])
def test_rows_driven_from_both_ends(size, g_row, g_col, g_dac):
    a, b = _cells(np.random.default_rng(size[0] * 5 + size[1]), *size)
    _check_against_reference(a, b, _term(g_row, g_col, g_dac, both=True))


@pytest.mark.parametrize("size", [(8, 8), (16, 11), (24, 24)])
@pytest.mark.parametrize("g_row,g_col", [(1.0, 0.2), (0.4, 2.5), (math.inf, 0.5),
                                         (0.5, math.inf), (math.inf, math.inf)])
@pytest.mark.parametrize("both", [False, True])
def test_floating_unsensed_columns(size, g_row, g_col, both):
    rng = np.random.default_rng(size[0] * 3 + size[1])
    a, b = _cells(rng, *size)
    sensed = np.zeros(size[1], bool)
    sensed[rng.choice(size[1], max(1, size[1] // 3), replace=False)] = True
    _check_against_reference(a, b, _term(g_row, g_col, 1.0, both), sensed)


@pytest.mark.parametrize("g_row,g_col", [(1.0, 0.2), (math.inf, 0.5), (0.5, math.inf),
                                         (math.inf, math.inf)])
def test_a_floating_column_without_cells_is_cut_off(g_row, g_col):
    rng = np.random.default_rng(9)
    a, b = _cells(rng, 6, 5)
    a[:, 2] = b[:, 2] = 0.0
    sensed = np.array([True, False, False, True, False])
    term = _term(g_row, g_col)
    fac = factorise(a, b, term, sensed=sensed)
    # the empty column does not matter: grounding it gives the same network
    grounded = factorise(a, b, term, sensed=sensed | (np.arange(5) == 2))
    np.testing.assert_array_equal(fac.transfer()[:, 2], 0.0)
    assert _rel(fac.transfer(), grounded.transfer() * sensed) <= 1e-12
    d = rng.uniform(0, 0.2, 6)
    assert _rel(fac.solve(d)[2], grounded.solve(d)[2] * sensed) <= 1e-12


def test_sensed_mask_is_checked():
    a, b = _cells(np.random.default_rng(1), 3, 4)
    with pytest.raises(ConfigError, match="sensed-column mask"):
        factorise(a, b, _term(1.0, 1.0), sensed=np.ones(3, bool))
    with pytest.raises(ConfigError, match="g_row_s"):
        _term(0.0, 1.0)


@pytest.mark.parametrize("g_dac", [1.0, math.inf])
@pytest.mark.parametrize("both", [False, True])
def test_no_wires_is_a_dense_row_column_network(g_dac, both):
    rng = np.random.default_rng(4)
    a = rng.uniform(1e-6, 3e-5, (5, 3))
    b = -a
    term = _term(math.inf, math.inf, g_dac, both)
    fac = factorise(a, b, term)
    d = rng.uniform(0, 0.2, 5)
    v_r, v_c, i_tia = fac.solve(d)
    # every tap of a row is one node, every tap of a column is one node
    assert np.ptp(v_r, axis=1).max() == 0 and np.ptp(v_c, axis=0).max() == 0
    i_cells = a * v_r + b * v_c
    np.testing.assert_allclose(i_tia, i_cells.sum(axis=0), rtol=1e-10)
    if math.isfinite(g_dac):
        # both ends: two DAC outputs in parallel
        g_in = g_dac * (2 if both else 1)
        np.testing.assert_allclose(g_in * (d - v_r[:, 0]), i_cells.sum(axis=1), rtol=1e-10)
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
    term = _term(g_wire, g_wire)
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
    term = _term(1.0, 1.0)
    d = np.where(rng.random((3, 6)) < 0.4, 0.2, 0.0)
    many = operating_points(g, MODEL, term, d)
    assert len(many) == 3
    for dk, op in zip(d, many):
        one = operating_point(g, MODEL, term, dk)
        np.testing.assert_allclose(op.i_tia_a, one.i_tia_a, rtol=1e-12, atol=1e-18)
        np.testing.assert_allclose(op.v_c, one.v_c, rtol=1e-12, atol=1e-15)
    # the batched currents-only solve: every vector in each chord step, the same currents
    np.testing.assert_allclose(tia_currents(g, MODEL, term, d),
                               np.stack([o.i_tia_a for o in many]), rtol=1e-12, atol=1e-18)


@pytest.mark.parametrize("wires", [(1.0, 1.0), (math.inf, math.inf), (1.0, math.inf)])
def test_factor_solves_a_batch_of_right_hand_sides_as_single_ones(wires):
    """NetworkFactor.solve with a leading batch axis equals one solve per vector (box tree
    with wires, the merged dense network without, the sparse one with row wires only)."""
    rng = np.random.default_rng(7)
    g = rng.uniform(5e-6, 30e-6, (5, 7))
    term = _term(*wires)
    z = np.full(g.shape, term.v_t0_v)
    _, a, b, _ = cell_iv(z, z, g, MODEL)
    fac = factorise(a, b, term)
    d = rng.uniform(0, 0.2, (4, 5))
    f = rng.normal(0, 1e-6, (4, 5, 7))
    many = fac.solve(d, -f, f)
    for k in range(4):
        for got, want in zip(many, fac.solve(d[k], -f[k], f[k])):
            np.testing.assert_allclose(got[k], want, rtol=1e-12, atol=1e-15)


def _newton_reference(g, term, d, sensed):
    """The nonlinear tile by Newton's method on the sparse reference network."""
    r, p = g.shape
    z = np.full((r, p), term.v_t0_v)
    _, a, b, _ = cell_iv(z, z, g, MODEL)
    v_r, v_c, _ = _Reference(a, b, term, sensed).solve(d, np.zeros((r, p)), np.zeros((r, p)))
    for _ in range(30):
        i_cell, a, b, _ = cell_iv(v_r, v_c, g, MODEL)
        rem = i_cell - (a * v_r + b * v_c)
        v_r2, v_c2, i_tia = _Reference(a, b, term, sensed).solve(d, -rem, rem)
        step = max(np.abs(v_r2 - v_r).max(), np.abs(v_c2 - v_c).max())
        v_r, v_c = v_r2, v_c2
        if step < 1e-15:
            break
    return i_tia


@pytest.mark.parametrize("g_row,g_col", [(1.0, 0.4), (math.inf, 0.5), (0.5, math.inf)])
@pytest.mark.parametrize("both,floating", [(False, False), (True, False), (False, True),
                                           (True, True)])
def test_operating_point_equals_newton_on_the_reference(g_row, g_col, both, floating):
    rng = np.random.default_rng(11)
    r, p = 9, 12
    g = rng.uniform(5e-6, 30e-6, (r, p))
    term = _term(g_row, g_col, 1.0, both)
    sensed = (np.arange(p) % 3 == 0) if floating else None
    d = np.where(rng.random(r) < 0.6, 0.2, 0.0)
    op = operating_point(g, MODEL, term, d, sensed=sensed)
    ref = _newton_reference(g, term, d, sensed)
    assert _rel(op.i_tia_a, ref) <= 1e-10


def _column_currents(term, sensed=None, r=32, p=32):
    g = np.random.default_rng(5).uniform(10e-6, 40e-6, (r, p))
    return operating_point(g, MODEL, term, np.full(r, 0.2), sensed=sensed).i_tia_a


@pytest.mark.parametrize("r_wire", [2.0, 5.0])
def test_floating_unsensed_columns_draw_less_from_the_rows(r_wire):
    # grounded unsensed columns load the rows: more IR drop, less current in the sensed ones
    term = _term(1 / r_wire, 1 / r_wire)
    sensed = np.arange(32) < 8
    ground = _column_currents(term)[sensed]
    floating = _column_currents(term, sensed)[sensed]
    assert np.all(floating > ground * (1 + 1e-4))
    assert np.all(_column_currents(term, sensed)[~sensed] == 0)


@pytest.mark.parametrize("r_wire", [2.0, 5.0])
def test_driving_rows_from_both_ends_raises_the_column_currents(r_wire):
    one = _column_currents(_term(1 / r_wire, 1 / r_wire))
    both = _column_currents(_term(1 / r_wire, 1 / r_wire, both=True))
    assert np.all(both > one * (1 + 1e-4))
    # the far (east) columns gain most
    gain = both / one
    assert gain[-8:].mean() > gain[:8].mean()
