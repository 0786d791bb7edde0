"""The canonical tile's resistive network in numpy: operating point and transfer matrix.

The tile surrogate (:mod:`rram_cosim.models.tile.surrogate`) needs, once per conductance map, the
DC operating point of the tile circuit and the transfer matrix of the circuit linearised
there. This module computes both exactly for the canonical tile (docs/tile.md):
row DAC behind ``dac.r_out_ohm``, ``r_row_ohm`` segments on rows and ``r_col_ohm`` segments on
columns, 1T1R cells
(RRAM conductance in series with a level-1 access transistor), and the TIA's virtual ground
seen through its closed-loop input resistance ``(R_f + r_out) / (1 + A)``.

Cell (i, j) is a two-terminal element between row tap ``r[i, j]`` and column tap ``c[i, j]``:
the RRAM conductance ``g`` in series with the channel of a level-1 NMOS (gate at
``v_gate_v``, source on the column side unless reverse biased)::

    I = g (v_r - v_m) = beta (v_gs - vth - v_ds / 2) v_ds (1 + lambda v_ds)   (triode)

:func:`cell_iv` solves the internal node ``v_m`` and returns ``I`` and its tangent
``(dI/dv_r, dI/dv_c)``. The bulk junctions' GMIN leak (1e-12 S against cell conductances of
1e-5 S) is left out.

Linear solves use hierarchical Schur complements on the site grid (nested dissection with
dense frontal matrices, as in the hierarchical Poincare-Steklov scheme): every wire segment
is split at its midpoint; a box of sites is represented by the dense Schur complement of its
network onto the midpoints on its boundary (its "ports"); two neighbouring boxes merge by
adding their complements on the shared midpoints and eliminating those. Leaves are single
sites; boxes of one shape at one level are merged in one batched numpy call. At the root the
ports are the row inputs (west), with rows driven from both ends also the east row ends (at the
same DAC voltage as the row's west end), and the TIA inputs (south); an open end (north, east
when driven from one end) carries no current and is never a port. A floating (unsensed) column
has a south port without termination. The cost is O(n^3) for an n x n site grid (about 6
GFlop for the paper's 456 x 402 physical map) against O(n^4) for sweeping dense line-by-line
complements; a solve for a new right-hand side after a factorisation is O(n^2 log n). East
ports cost about 1.2-1.5x in the factorisation (256 x 256, measured).

With ``r_row_ohm == r_col_ohm == 0`` every row is one node and every column is one node (the
canonical merged taps); that network has R + P unknowns and is solved densely. With exactly
one of them 0 (a wire layer of zero sheet resistance) a sparse LU solves the tap network.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..blas import blas_limit
from ..device.level1 import level1_channel
from ..errors import ConfigError

__all__ = [
    "CellModel",
    "NetworkFactor",
    "OperatingPoint",
    "Terminations",
    "cell_iv",
    "factorise",
    "operating_point",
    "operating_points",
    "tia_currents",
]


# ---------------------------------------------------------------------------------------------
# The cell: RRAM in series with a level-1 access transistor
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellModel:
    """Effective level-1 access transistor of every cell (SI units).

    ``beta_a_per_v2`` is KP W / L, ``vth_v`` the threshold, ``lambda_per_v`` the channel
    length modulation (in the triode region too, as ngspice's level 1), ``v_gate_v`` the
    word-line voltage (the bulk is ground and there is no body effect).
    """

    beta_a_per_v2: float
    vth_v: float
    lambda_per_v: float
    v_gate_v: float

    def __post_init__(self) -> None:
        if not (self.beta_a_per_v2 > 0 and math.isfinite(self.beta_a_per_v2)):
            raise ConfigError(
                f"The 'beta_a_per_v2' parameter of CellModel must be a finite number > 0 A/V^2."
                f" Got {self.beta_a_per_v2!r} instead.")
        if self.v_gate_v - self.vth_v <= 0:
            raise ConfigError(
                f"The word line ({self.v_gate_v} V) does not exceed the access transistor's "
                f"threshold ({self.vth_v} V), so no cell conducts. Raise "
                "TileSpec.v_gate_read_v or lower the threshold.")


def _channel(vd: np.ndarray, vs: np.ndarray, m: CellModel
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Level-1 channel current drain -> source (A) and its derivatives w.r.t. vd and vs.

    ngspice ``mos1load.c`` with gamma = 0: terminals swap when ``vds < 0``; cutoff, triode
    and saturation as in :func:`rram_cosim.cosim.engines.nodal.level1_ids`.
    """
    return level1_channel(vd, vs, m.v_gate_v, m.vth_v, m.beta_a_per_v2, m.lambda_per_v)


def cell_iv(v_r: np.ndarray, v_c: np.ndarray, g_s: np.ndarray, model: CellModel,
            v_m0: np.ndarray | None = None, max_iter: int = 60
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Current of each cell from row tap to column tap, its tangent and internal node.

    Parameters
    ----------
    v_r, v_c : ndarray
        Row and column tap voltages (V), one shape.
    g_s : ndarray
        RRAM conductances (S), same shape; 0 means no cell.
    model : CellModel
        The access transistor.
    v_m0 : ndarray or None
        Warm start for the internal node (V).

    Returns
    -------
    i_a, di_dvr, di_dvc, v_m : ndarray
        Current (A), its derivatives (S) and the RRAM/drain node voltage (V).
    """
    g = np.broadcast_to(g_s, v_r.shape)
    lo = np.minimum(v_r, v_c) - 1.0
    hi = np.maximum(v_r, v_c) + 1.0
    if v_m0 is None:
        g_on = model.beta_a_per_v2 * np.maximum(model.v_gate_v - v_c - model.vth_v, 1e-3)
        v_m = v_c + (v_r - v_c) * g / (g + g_on)
    else:
        v_m = np.clip(v_m0, lo, hi)
    tol = 1e-15 * (np.abs(v_r) + np.abs(v_c)) + 1e-20
    # f(v_m) = g (v_r - v_m) - ids(v_m, v_c) strictly decreases: bracketed Newton converges.
    for _ in range(max_iter):
        ids, d_vd, _ = _channel(v_m, v_c, model)
        f = g * (v_r - v_m) - ids
        lo = np.where(f > 0.0, v_m, lo)
        hi = np.where(f < 0.0, v_m, hi)
        v_new = v_m + f / (g + d_vd)
        v_new = np.where((v_new < lo) | (v_new > hi) | ~np.isfinite(v_new), 0.5 * (lo + hi),
                         v_new)
        done = np.abs(v_new - v_m) <= tol
        v_m = v_new
        if done.all():
            break
    ids, d_vd, d_vs = _channel(v_m, v_c, model)
    den = g + d_vd
    safe = np.where(den > 0, den, 1.0)
    di_dvr = np.where(den > 0, g * d_vd / safe, 0.0)
    di_dvc = np.where(den > 0, g * d_vs / safe, 0.0)
    i_a = np.where(g > 0, g * (v_r - v_m), 0.0)
    return i_a, di_dvr, di_dvc, v_m


# ---------------------------------------------------------------------------------------------
# Terminations of the network: DAC on the west, TIA on the south
# ---------------------------------------------------------------------------------------------


def _series(*g_s: float) -> float:
    """Conductance of conductances in series (S); ``inf`` terms are shorts."""
    r = sum(1.0 / g for g in g_s if math.isfinite(g))
    return math.inf if r == 0 else 1.0 / r


@dataclass(frozen=True)
class Terminations:
    """Wire and port conductances of a tile network (S).

    ``g_row_s`` is one row (bit-line) wire segment and ``g_col_s`` one column (source-line)
    segment (``inf`` for a zero resistance: the taps of that line are one node); ``g_dac_s`` the
    DAC output (``inf`` for ``r_out_ohm == 0``); ``g_tia_s`` the TIA's closed-loop input
    conductance ``(1 + A) / (R_f + r_out)`` to its virtual ground ``v_t0_v = A v_os / (1 + A)``.
    ``both_ends``: every row is driven from its west and its east end, each through its own DAC
    output resistance, at the same DAC voltage (``ReadScheme.drive == 'both'``).

    A TIA whose op-amp output has hit a rail no longer holds its virtual ground: the column
    then sees ``g_clip_s = 1 / (R_f + r_out)`` to the rail voltage (``v_clip_lo_v`` for a
    column sinking current, ``v_clip_hi_v`` for one sourcing it). These are used only for the
    columns a ``clipped`` mask marks (:func:`factorise`); None where the tile never clips.
    """

    g_row_s: float
    g_col_s: float
    g_dac_s: float
    g_tia_s: float
    v_t0_v: float
    both_ends: bool = False
    g_clip_s: float | None = None
    v_clip_lo_v: float | None = None
    v_clip_hi_v: float | None = None

    def __post_init__(self) -> None:
        for name in ("g_row_s", "g_col_s", "g_dac_s", "g_tia_s"):
            g = getattr(self, name)
            if not g > 0:
                raise ConfigError(f"Terminations.{name} must be > 0 S (inf for a short). "
                                  f"Got {g!r}.")
        if not math.isfinite(self.g_tia_s):
            raise ConfigError("Terminations.g_tia_s must be finite (the TIA current is read "
                              "across it).")

    @property
    def wires(self) -> bool:
        """Both wire layers have segments (the hierarchical solver)."""
        return math.isfinite(self.g_row_s) and math.isfinite(self.g_col_s)

    @property
    def merged(self) -> bool:
        """Neither wire layer has segments: R row nodes and P column nodes."""
        return not (math.isfinite(self.g_row_s) or math.isfinite(self.g_col_s))

    def west_s(self) -> float:
        """Midpoint of a row's first segment to the DAC: half a segment plus the DAC output."""
        return _series(2.0 * self.g_row_s, self.g_dac_s)

    def east_s(self) -> float:
        """Midpoint of a row's last segment to its east DAC (rows driven from both ends)."""
        return _series(2.0 * self.g_row_s, self.g_dac_s)

    def south_s(self) -> float:
        """Midpoint of a column's last segment to the virtual ground: half a segment + TIA."""
        return _series(2.0 * self.g_col_s, self.g_tia_s)


def _clip_state(term: Terminations, clipped: np.ndarray | None, sensed: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Validated clip state (P,) of every TIA (0 linear, -1 at the low rail, +1 at the high
    rail; a floating column has no TIA and is never clipped) and each column end's source
    voltage (V): the virtual ground, or the rail of a clipped TIA."""
    p = sensed.size
    if clipped is None:
        return np.zeros(p, dtype=np.int8), np.full(p, term.v_t0_v)
    c = np.asarray(clipped)
    if c.shape != (p,) or not np.isin(c, (-1, 0, 1)).all():
        raise ConfigError(f"The clipped-TIA mask must hold -1, 0 or +1 per column, shape "
                          f"({p},). Got {c.dtype} {c.shape}.")
    c = np.where(sensed, c, 0).astype(np.int8)
    if c.any() and None in (term.g_clip_s, term.v_clip_lo_v, term.v_clip_hi_v):
        raise ConfigError("Clipped TIAs need Terminations.g_clip_s, v_clip_lo_v and "
                          "v_clip_hi_v (surrogate.terminations(spec) sets them).")
    v0 = np.full(p, term.v_t0_v)
    if c.any():
        v0[c < 0], v0[c > 0] = term.v_clip_lo_v, term.v_clip_hi_v
    return c, v0


# ---------------------------------------------------------------------------------------------
# Hierarchical Schur complements on the site grid
# ---------------------------------------------------------------------------------------------


def _layout(h: int, w: int, has_e: bool, has_n: bool) -> tuple[dict[str, np.ndarray], int]:
    """Port order of a box: west (h), east (h, unless on the open east edge), north (w,
    unless on the open top edge), south (w)."""
    out: dict[str, np.ndarray] = {}
    k = 0
    for name, n, on in (("W", h, True), ("E", h, has_e), ("N", w, has_n), ("S", w, True)):
        if on:
            out[name] = np.arange(k, k + n)
            k += n
    return out, k


@dataclass
class _Group:
    """Boxes of one port layout at one level, their Schur complements stacked."""

    h: int
    w: int
    has_e: bool
    has_n: bool
    mr: np.ndarray  # row piece index of each box
    mc: np.ndarray  # column piece index of each box
    s: np.ndarray  # (nb, n, n)

    @property
    def key(self) -> tuple[int, int, bool, bool]:
        return (self.h, self.w, self.has_e, self.has_n)


@dataclass
class _Elim:
    """One batched elimination: children's ports scattered into a union, interface removed.

    For the solve: ``h_parent = h_keep - y @ h_elim``; ``v_elim = einv @ h_elim - x @ v_keep``.
    """

    children: list[tuple[int, np.ndarray, np.ndarray]]  # (group id, positions, union map)
    parent: tuple[int, np.ndarray]  # (group id, positions)
    n_keep: int
    y: np.ndarray | None
    einv: np.ndarray | None
    x: np.ndarray | None


def _schur(c: np.ndarray, n_keep: int, store: bool
           ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Eliminate the trailing unknowns of a batch of matrices: ``C_kk - C_ke C_ee^-1 C_ek``."""
    cee = c[:, n_keep:, n_keep:]
    cek = c[:, n_keep:, :n_keep]
    cke = c[:, :n_keep, n_keep:]
    einv = np.linalg.inv(cee)
    x = einv @ cek
    s = c[:, :n_keep, :n_keep] - cke @ x
    if not store:
        return s, None, None, None
    return s, cke @ einv, einv, x


def _pieces(n: int, k: int) -> np.ndarray:
    """Boundaries of the 2**k pieces of ``range(n)`` at level k (sizes differ by at most 1)."""
    m = np.arange(2**k + 1)
    return (m * n) // 2**k


class NetworkFactor:
    """Factorised linear tile network: the tangent cells plus wires and terminations.

    Build with :func:`factorise`. ``transfer()`` returns ``dI_tia / d v_dac`` (R x P);
    ``solve`` returns the node voltages and TIA currents for given DAC voltages and current
    injections at the cell nodes. ``sensed`` (P,) marks the columns held at their TIA's virtual
    ground; the others float (open south end: no current out, zero transfer).
    """

    def __init__(self, a_s: np.ndarray, b_s: np.ndarray, term: Terminations,
                 store: bool, sensed: np.ndarray | None = None,
                 clipped: np.ndarray | None = None) -> None:
        self.rows, self.cols = a_s.shape
        self.term = term
        self.store = store
        if sensed is None:
            sensed = np.ones(self.cols, dtype=bool)
        sensed = np.asarray(sensed)
        if sensed.shape != (self.cols,) or sensed.dtype != bool:
            raise ConfigError(f"The sensed-column mask must be a boolean array of shape "
                              f"({self.cols},). Got {sensed.dtype} {sensed.shape}.")
        self.sensed = sensed
        self.clipped, self._v0 = _clip_state(term, clipped, sensed)
        # A floating column without a conducting cell is cut off from the network; holding it
        # at the virtual ground changes nothing else and keeps the matrices regular.
        live = (a_s != 0).any(axis=0) | (b_s != 0).any(axis=0)
        self._port = sensed | ~live
        if term.wires:
            self._build_hier(a_s, b_s)
        elif term.merged:
            self._build_dense(a_s, b_s)
        else:
            self._build_sparse(a_s, b_s)

    def _south(self, with_tia: Callable[[float], float]) -> tuple[np.ndarray, np.ndarray]:
        """South port conductance of every column, and the share read as TIA current.

        ``with_tia(g)`` is the column end's conductance to the TIA's source behind ``g``: the
        closed-loop input conductance, or ``g_clip_s`` where the TIA output is clipped."""
        g = np.full(self.cols, with_tia(self.term.g_tia_s))
        if self.clipped.any():
            g[self.clipped != 0] = with_tia(float(self.term.g_clip_s))
        return np.where(self._port, g, 0.0), np.where(self.sensed, g, 0.0)

    # -- r_row == r_col == 0: R row nodes and P column nodes --------------------------------
    def _build_dense(self, a_s: np.ndarray, b_s: np.ndarray) -> None:
        r, p = self.rows, self.cols
        t = self.term
        dac_r = math.isfinite(t.g_dac_s)
        self._g_drive = t.g_dac_s * (2.0 if t.both_ends else 1.0)
        self._port_s, self._out_s = self._south(lambda g: g)
        # KCL, currents leaving: row i: g_dac (a_i - d_i) + sum_j (A a_i + B t_j)
        #                        col j: g_tia (t_j - v_t0) - sum_i (A a_i + B t_j)
        n = (r if dac_r else 0) + p
        k = np.zeros((n, n))
        off = r if dac_r else 0
        if dac_r:
            k[np.arange(r), np.arange(r)] = self._g_drive + a_s.sum(axis=1)
            k[:r, off:] = b_s
            k[off:, :r] = -a_s.T
        k[off + np.arange(p), off + np.arange(p)] = self._port_s - b_s.sum(axis=0)
        self._dense_k = k
        self._dense_kinv = np.linalg.inv(k)
        self._a, self._b = a_s, b_s

    def _dense_solve(self, d: np.ndarray, f_r: np.ndarray, f_c: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r, p = self.rows, self.cols
        t = self.term
        dac_r = math.isfinite(t.g_dac_s)
        rhs_col = self._port_s * self._v0 + f_c.sum(axis=-2)
        if dac_r:
            rhs = np.concatenate([self._g_drive * d + f_r.sum(axis=-1), rhs_col], axis=-1)
            u = rhs @ self._dense_kinv.T
            v_a, v_t = u[..., :r], u[..., r:]
        else:
            # rows are the DAC nodes themselves
            rhs = rhs_col + d @ self._a
            v_a, v_t = d, rhs @ self._dense_kinv.T
        v_r = np.broadcast_to(v_a[..., :, None], v_a.shape + (p,))
        v_c = np.broadcast_to(v_t[..., None, :], v_t.shape[:-1] + (r, p))
        return v_r, v_c, self._out_s * (v_t - self._v0)

    def _dense_transfer(self) -> np.ndarray:
        r = self.rows
        t = self.term
        if math.isfinite(t.g_dac_s):
            # dv_t/dd = Kinv[t, a] g_dac
            return self._g_drive * self._dense_kinv[r:, :r].T * self._out_s
        return (self._a @ self._dense_kinv.T) * self._out_s

    # -- exactly one wire layer without segments: sparse LU ---------------------------------
    def _build_sparse(self, a_s: np.ndarray, b_s: np.ndarray) -> None:
        """Nodes: row taps (or one node per row), column taps (or one node per column).

        Rare (a wire layer of zero sheet resistance), so a general sparse LU rather than a
        Schur scheme of its own. A merged row behind an ideal DAC is the DAC node: its
        equation is ``v = d``.
        """
        from scipy.sparse import coo_matrix
        from scipy.sparse.linalg import splu

        r, p = self.rows, self.cols
        t = self.term
        rows_merged = not math.isfinite(t.g_row_s)
        n_r = r if rows_merged else r * p
        if rows_merged:
            ir = np.repeat(np.arange(r)[:, None], p, axis=1)
            ic = n_r + np.arange(r * p).reshape(r, p)
        else:
            ir = np.arange(r * p).reshape(r, p)
            ic = n_r + np.repeat(np.arange(p)[None, :], r, axis=0)
        n = n_r + (r * p if rows_merged else p)
        ii: list[np.ndarray] = []
        jj: list[np.ndarray] = []
        vv: list[np.ndarray] = []

        def stamp(i: np.ndarray, j: np.ndarray, v: np.ndarray | float) -> None:
            i, j = np.ravel(i), np.ravel(j)
            ii.append(i)
            jj.append(j)
            vv.append(np.broadcast_to(np.ravel(v), i.shape))

        def res(n1: np.ndarray, n2: np.ndarray, g: float) -> None:
            stamp(n1, n1, g)
            stamp(n2, n2, g)
            stamp(n1, n2, -g)
            stamp(n2, n1, -g)

        stamp(ir, ir, a_s)
        stamp(ir, ic, b_s)
        stamp(ic, ir, -a_s)
        stamp(ic, ic, -b_s)
        if rows_merged:
            res(ic[:-1], ic[1:], t.g_col_s)
        else:
            res(ir[:, :-1], ir[:, 1:], t.g_row_s)
        # end taps to the DAC (a full segment plus its output), bottom taps to the TIA
        g_end = _series(t.g_row_s, t.g_dac_s)
        ends = [ir[:, 0]] + ([ir[:, -1]] if t.both_ends else [])
        fixed = not math.isfinite(g_end)
        if not fixed:
            for e in ends:
                stamp(e, e, g_end)
        self._port_s, self._out_s = self._south(lambda g: _series(t.g_col_s, g))
        stamp(ic[-1], ic[-1], self._port_s)
        i_all, j_all, v_all = np.concatenate(ii), np.concatenate(jj), np.concatenate(vv)
        if fixed:
            keep = ~np.isin(i_all, ir[:, 0])
            i_all = np.concatenate([i_all[keep], ir[:, 0]])
            j_all = np.concatenate([j_all[keep], ir[:, 0]])
            v_all = np.concatenate([v_all[keep], np.ones(r)])
        k = coo_matrix((v_all, (i_all, j_all)), shape=(n, n)).tocsc()
        self._lu = splu(k)
        self._sp = (n, ir, ic, ends, g_end, fixed)

    def _sparse_rhs(self, d: np.ndarray, f_r: np.ndarray, f_c: np.ndarray) -> np.ndarray:
        n, ir, ic, ends, g_end, fixed = self._sp
        rhs = np.bincount(ir.ravel(), f_r.ravel(), n) + np.bincount(ic.ravel(), f_c.ravel(), n)
        rhs[ic[-1]] += self._port_s * self._v0
        if fixed:
            rhs[ir[:, 0]] = d
        else:
            for e in ends:
                rhs[e] += g_end * d
        return rhs

    def _sparse_solve(self, d: np.ndarray, f_r: np.ndarray, f_c: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, ir, ic, *_ = self._sp
        v = self._lu.solve(self._sparse_rhs(d, f_r, f_c))
        return v[ir], v[ic], self._out_s * (v[ic[-1]] - self._v0)

    def _sparse_transfer(self) -> np.ndarray:
        n, _, ic, ends, g_end, fixed = self._sp
        r = self.rows
        out = np.empty((r, self.cols))
        step = 64
        for s0 in range(0, r, step):
            rows = np.arange(s0, min(s0 + step, r))
            rhs = np.zeros((n, rows.size))
            for e in ends:  # a merged row's two ends are one node: two DACs in parallel
                if fixed:
                    rhs[e[rows], np.arange(rows.size)] = 1.0
                else:
                    rhs[e[rows], np.arange(rows.size)] += g_end
            out[rows] = self._lu.solve(rhs)[ic[-1]].T
        return out * self._out_s

    # -- wires: hierarchical Schur complements -----------------------------------------------
    def _leaf_groups(self, a_s: np.ndarray, b_s: np.ndarray, lr: int, lc: int
                     ) -> tuple[list[_Group], np.ndarray, np.ndarray]:
        r, p = self.rows, self.cols
        g2r, g2c = 2.0 * self.term.g_row_s, 2.0 * self.term.g_col_s
        both = self.term.both_ends
        rb, cb = _pieces(r, lr), _pieces(p, lc)
        # piece index of every row / column (pieces are of size 0 or 1 at the finest level)
        row_piece = np.flatnonzero(np.diff(rb))
        col_piece = np.flatnonzero(np.diff(cb))
        gid = np.full((2**lr, 2**lc), -1, dtype=np.int64)
        pos = np.full((2**lr, 2**lc), -1, dtype=np.int64)
        groups: list[_Group] = []
        self._leaf_ops: list[tuple[np.ndarray, np.ndarray, _Elim]] = []
        ii, jj = np.meshgrid(np.arange(r), np.arange(p), indexing="ij")
        for has_e in (False, True):
            for has_n in (False, True):
                sel = (((jj < p - 1) | both) == has_e) & ((ii > 0) == has_n)
                si, sj = ii[sel], jj[sel]
                if si.size == 0:
                    continue
                lay, nk = _layout(1, 1, has_e, has_n)
                c = np.zeros((si.size, nk + 2, nk + 2))
                rn, cn = nk, nk + 1
                for port, node, g2 in (("W", rn, g2r), ("E", rn, g2r), ("N", cn, g2c),
                                       ("S", cn, g2c)):
                    if port in lay:
                        q = int(lay[port][0])
                        c[:, q, q] = g2
                        c[:, q, node] = c[:, node, q] = -g2
                a, b = a_s[si, sj], b_s[si, sj]
                c[:, rn, rn] = g2r * (1 + has_e) + a
                c[:, rn, cn] = b
                c[:, cn, rn] = -a
                c[:, cn, cn] = g2c * (1 + has_n) - b
                s, y, einv, x = _schur(c, nk, self.store)
                gi = len(groups)
                mr, mc = row_piece[si], col_piece[sj]
                groups.append(_Group(1, 1, has_e, has_n, mr, mc, s))
                gid[mr, mc] = gi
                pos[mr, mc] = np.arange(si.size)
                self._leaf_ops.append((si, sj, _Elim([], (gi, np.arange(si.size)), nk, y,
                                                     einv, x)))
        return groups, gid, pos

    def _build_hier(self, a_s: np.ndarray, b_s: np.ndarray) -> None:
        r, p = self.rows, self.cols
        lr, lc = max(0, math.ceil(math.log2(r))), max(0, math.ceil(math.log2(p)))
        groups, gid, pos = self._leaf_groups(a_s, b_s, lr, lc)
        # per level: child group shapes, parent group shapes, eliminations, pass-throughs
        self._levels: list[tuple[list, list, list[_Elim], list[tuple]]] = []
        kr, kc = lr, lc
        while kr > 0 or kc > 0:
            height = -(-r // 2**kr)
            width = -(-p // 2**kc)
            by_col = kc > 0 and (width <= height or kr == 0)
            before = [g.s.shape[:2] for g in groups]
            groups, gid, pos, elims, passes = self._merge(groups, gid, pos, by_col)
            self._levels.append((before, [g.s.shape[:2] for g in groups], elims, passes))
            if by_col:
                kc -= 1
            else:
                kr -= 1
        if len(groups) != 1 or groups[0].s.shape[0] != 1:
            raise AssertionError("internal: the box tree did not end in one root box")
        t = self.term
        root = groups[0].s[0]
        self._root_lay, n_root = _layout(r, p, t.both_ends, False)
        if root.shape[0] != n_root:
            raise AssertionError("internal: the root box has unexpected ports")
        self._port_s, self._out_s = self._south(lambda g: _series(2.0 * t.g_col_s, g))
        ext = [np.full(r, t.west_s())]
        if t.both_ends:
            ext.append(np.full(r, t.east_s()))
        self._root_k = root + np.diag(np.concatenate(ext + [self._port_s]))
        self._root_kinv = np.linalg.inv(self._root_k)

    def _merge(self, groups: list[_Group], gid: np.ndarray, pos: np.ndarray, by_col: bool):
        """One level: pair neighbouring boxes along columns (by_col) or rows and merge."""
        if by_col:
            ga, gb = gid[:, 0::2], gid[:, 1::2]
            pa, pb = pos[:, 0::2], pos[:, 1::2]
        else:
            ga, gb = gid[0::2, :], gid[1::2, :]
            pa, pb = pos[0::2, :], pos[1::2, :]
        new_gid = np.full(ga.shape, -1, dtype=np.int64)
        new_pos = np.full(ga.shape, -1, dtype=np.int64)
        pending: dict[tuple, list] = {}  # parent key -> [(kind, payload, mr, mc, s)]
        # merges, one batch per pair of child groups
        both = (ga >= 0) & (gb >= 0)
        if both.any():
            pmr, pmc = np.nonzero(both)
            pair_key = ga[pmr, pmc] * len(groups) + gb[pmr, pmc]
            for key_ab in np.unique(pair_key):
                g1, g2 = divmod(int(key_ab), len(groups))
                sel = pair_key == key_ab
                mr, mc = pmr[sel], pmc[sel]
                A, B = groups[g1], groups[g2]
                posa, posb = pa[mr, mc], pb[mr, mc]
                key, map_a, map_b, n_keep, n_union = _merge_maps(A, B, by_col)
                nb = mr.size
                c = np.zeros((nb, n_union, n_union))
                c[:, map_a[:, None], map_a[None, :]] += A.s[posa]
                c[:, map_b[:, None], map_b[None, :]] += B.s[posb]
                s, y, einv, x = _schur(c, n_keep, self.store)
                elim = _Elim([(g1, posa, map_a), (g2, posb, map_b)], (-1, None),
                             n_keep, y, einv, x)
                pending.setdefault(key, []).append(("m", elim, mr, mc, s))
        for g_child, p_child, other in ((ga, pa, gb), (gb, pb, ga)):
            alone = (g_child >= 0) & (other < 0)
            if not alone.any():
                continue
            amr, amc = np.nonzero(alone)
            for g in np.unique(g_child[alone]):
                sel = g_child[amr, amc] == g
                mr, mc = amr[sel], amc[sel]
                child = groups[g]
                pc = p_child[mr, mc]
                pending.setdefault(child.key, []).append(("p", (int(g), pc), mr, mc,
                                                          child.s[pc]))
        new_groups: list[_Group] = []
        elims: list[_Elim] = []
        passes: list[tuple] = []
        for key, items in pending.items():
            gi = len(new_groups)
            start = 0
            mrs, mcs, ss = [], [], []
            for kind, payload, mr, mc, s in items:
                where = np.arange(start, start + mr.size)
                start += mr.size
                if kind == "m":
                    payload.parent = (gi, where)
                    elims.append(payload)
                else:
                    passes.append((payload[0], payload[1], gi, where))
                mrs.append(mr)
                mcs.append(mc)
                ss.append(s)
            mr_all, mc_all = np.concatenate(mrs), np.concatenate(mcs)
            new_groups.append(_Group(*key, mr_all, mc_all,
                                     ss[0] if len(ss) == 1 else np.concatenate(ss)))
            new_gid[mr_all, mc_all] = gi
            new_pos[mr_all, mc_all] = np.arange(mr_all.size)
        return new_groups, new_gid, new_pos, elims, passes

    # -- public ------------------------------------------------------------------------------
    def transfer(self) -> np.ndarray:
        """``T[i, j] = dI_j / d v_dac,i`` (S), R x P: the TIA current response to row i's DAC."""
        if self.term.merged:
            return self._dense_transfer()
        if not self.term.wires:
            return self._sparse_transfer()
        t = self.term
        lay, kinv = self._root_lay, self._root_kinv
        s_rows = kinv[lay["S"]]
        dv = t.west_s() * s_rows[:, lay["W"]]
        if t.both_ends:
            dv += t.east_s() * s_rows[:, lay["E"]]
        return dv.T * self._out_s

    def solve(self, d: np.ndarray, f_r: np.ndarray | None = None,
              f_c: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Node voltages and TIA currents of the linear network, for one right-hand side or a
        batch of them (a leading axis of ``N`` on every argument and result).

        Parameters
        ----------
        d : ndarray (R,) or (N, R)
            DAC voltages (V).
        f_r, f_c : ndarray (R, P) or (N, R, P), or None
            Currents injected into the row and column tap of every cell (A).

        Returns
        -------
        v_r, v_c : ndarray (R, P) or (N, R, P)
            Row and column tap voltages (V).
        i_tia : ndarray (P,) or (N, P)
            Current into each TIA (A).
        """
        d = np.asarray(d, dtype=np.float64)
        lead = d.shape[:-1]
        r, p = self.rows, self.cols
        f_r = np.zeros(lead + (r, p)) if f_r is None else f_r
        f_c = np.zeros(lead + (r, p)) if f_c is None else f_c
        if self.term.merged:
            return self._dense_solve(d, f_r, f_c)
        if not self.term.wires:
            if not lead:
                return self._sparse_solve(d, f_r, f_c)
            parts = [self._sparse_solve(dk, fr, fc) for dk, fr, fc in zip(d, f_r, f_c)]
            return tuple(np.stack(x) for x in zip(*parts))  # type: ignore[return-value]
        if not self.store:
            raise AssertionError("internal: this factor was built without solve data")
        if not lead:
            return self._hier_solve(d, f_r, f_c)
        # the batch rides on a trailing axis through the box tree
        v_r, v_c, i_tia = self._hier_solve(d.T, np.moveaxis(f_r, 0, -1),
                                           np.moveaxis(f_c, 0, -1))
        return np.moveaxis(v_r, -1, 0), np.moveaxis(v_c, -1, 0), i_tia.T

    def _hier_solve(self, d: np.ndarray, f_r: np.ndarray, f_c: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The box tree's solve; ``d`` (R, ...), ``f_r``/``f_c`` (R, P, ...): any trailing
        axes are independent right-hand sides."""
        r, p = self.rows, self.cols
        extra = d.shape[1:]
        # upward: equivalent port injections of every box
        h: dict[int, np.ndarray] = {}
        w_leaf = []
        for si, sj, el in self._leaf_ops:
            he = np.stack([f_r[si, sj], f_c[si, sj]], axis=1)
            h[el.parent[0]] = -np.einsum("bke,be...->bk...", el.y, he)
            w_leaf.append(np.einsum("bef,bf...->be...", el.einv, he))
        w_levels = []
        for _, after, elims, passes in self._levels:
            new_h = {gi: np.zeros(tuple(shape) + extra) for gi, shape in enumerate(after)}
            ws = []
            for e in elims:
                nb = e.children[0][1].size
                hu = np.zeros((nb, e.n_keep + e.einv.shape[1]) + extra)
                for g, pc, mp in e.children:
                    hu[:, mp] += h[g][pc]
                he = hu[:, e.n_keep:]
                new_h[e.parent[0]][e.parent[1]] = hu[:, :e.n_keep] - np.einsum(
                    "bke,be...->bk...", e.y, he)
                ws.append(np.einsum("bef,bf...->be...", e.einv, he))
            for g, pc, gi, where in passes:
                new_h[gi][where] = h[g][pc]
            h = new_h
            w_levels.append(ws)
        t = self.term
        ones = (1,) * len(extra)
        v0 = self._v0.reshape((p,) + ones)
        port = np.broadcast_to(self._port_s.reshape((p,) + ones) * v0, (p,) + extra)
        drive = [t.west_s() * d] + ([t.east_s() * d] if t.both_ends else [])
        rhs = h[0][0] + np.concatenate(drive + [port])
        v_root = np.tensordot(self._root_kinv, rhs, axes=(1, 0))
        # downward: port voltages of every box, then the sites
        v: dict[int, np.ndarray] = {0: v_root[None]}
        for (before, _, elims, passes), ws in zip(reversed(self._levels), reversed(w_levels)):
            old = {gi: np.zeros(tuple(shape) + extra) for gi, shape in enumerate(before)}
            for e, w in zip(elims, ws):
                vk = v[e.parent[0]][e.parent[1]]
                ve = w - np.einsum("bek,bk...->be...", e.x, vk)
                vu = np.concatenate([vk, ve], axis=1)
                for g, pc, mp in e.children:
                    old[g][pc] = vu[:, mp]
            for g, pc, gi, where in passes:
                old[g][pc] = v[gi][where]
            v = old
        v_r = np.empty((r, p) + extra)
        v_c = np.empty((r, p) + extra)
        for (si, sj, el), w in zip(self._leaf_ops, w_leaf):
            vk = v[el.parent[0]]
            ve = w - np.einsum("bek,bk...->be...", el.x, vk)
            v_r[si, sj] = ve[:, 0]
            v_c[si, sj] = ve[:, 1]
        i_tia = self._out_s.reshape((p,) + ones) * (v_root[self._root_lay["S"]] - v0)
        return v_r, v_c, i_tia


def _merge_maps(a: _Group, b: _Group, by_col: bool
                ) -> tuple[tuple[int, int, bool, bool], np.ndarray, np.ndarray, int, int]:
    """Parent key and where each child's ports land in [parent ports, shared interface]."""
    la, _ = _layout(a.h, a.w, a.has_e, a.has_n)
    lb, _ = _layout(b.h, b.w, b.has_e, b.has_n)
    if by_col:  # a west of b, same rows
        key = (a.h, a.w + b.w, b.has_e, a.has_n)
        lp, n_keep = _layout(*key)
        iface = n_keep + np.arange(a.h)
        place_a = {"W": lp["W"], "E": iface, "S": lp["S"][:a.w]}
        place_b = {"W": iface, "S": lp["S"][a.w:]}
        if b.has_e:
            place_b["E"] = lp["E"]
        if a.has_n:
            place_a["N"] = lp["N"][:a.w]
            place_b["N"] = lp["N"][a.w:]
    else:  # a above b, same columns
        key = (a.h + b.h, a.w, a.has_e, a.has_n)
        lp, n_keep = _layout(*key)
        iface = n_keep + np.arange(a.w)
        place_a = {"W": lp["W"][:a.h], "S": iface}
        place_b = {"W": lp["W"][a.h:], "N": iface, "S": lp["S"]}
        if a.has_e:
            place_a["E"] = lp["E"][:a.h]
            place_b["E"] = lp["E"][a.h:]
        if a.has_n:
            place_a["N"] = lp["N"]
    map_a = np.concatenate([place_a[k] for k in la])
    map_b = np.concatenate([place_b[k] for k in lb])
    return key, map_a, map_b, n_keep, n_keep + iface.size


def factorise(a_s: np.ndarray, b_s: np.ndarray, term: Terminations, *,
              store: bool = True, sensed: np.ndarray | None = None,
              clipped: np.ndarray | None = None) -> NetworkFactor:
    """Factorise the linear tile network whose cells carry ``I = a v_r + b v_c``.

    Parameters
    ----------
    a_s, b_s : ndarray (R, P)
        Tangent conductances ``dI/dv_r`` and ``dI/dv_c`` of every cell (S).
    term : Terminations
        Wires, DAC and TIA.
    store : bool
        Keep what :meth:`NetworkFactor.solve` needs (costs memory); ``transfer`` needs none.
    sensed : ndarray of bool (P,) or None
        Columns held at their TIA's virtual ground and sensed; the others float (no current
        out, zero transfer). None: every column.
    clipped : ndarray of int (P,) or None
        TIAs whose output is at a rail (-1 low, +1 high; 0 linear): the column end then sees
        ``term.g_clip_s`` to that rail instead of the virtual ground. None: none clipped.
    """
    with blas_limit():
        return NetworkFactor(np.asarray(a_s, dtype=np.float64),
                             np.asarray(b_s, dtype=np.float64), term, store, sensed, clipped)


# ---------------------------------------------------------------------------------------------
# Operating point of the nonlinear tile
# ---------------------------------------------------------------------------------------------


@dataclass
class OperatingPoint:
    """DC solution of the nonlinear tile for one DAC vector, with its tangent network.

    ``v_r``, ``v_c`` (R x P, V) tap voltages; ``i_tia_a`` (P,) TIA currents; ``a_s``, ``b_s``
    (R x P, S) the cells' tangent conductances there; ``iterations`` chord steps taken.
    """

    v_r: np.ndarray
    v_c: np.ndarray
    v_m: np.ndarray
    i_tia_a: np.ndarray
    a_s: np.ndarray
    b_s: np.ndarray
    iterations: int


def operating_point(g_s: np.ndarray, model: CellModel, term: Terminations, d: np.ndarray, *,
                    tol_v: float = 1e-13, max_iter: int = 40,
                    sensed: np.ndarray | None = None,
                    clipped: np.ndarray | None = None) -> OperatingPoint:
    """Solve the nonlinear tile for DAC voltages ``d`` (R,) by a chord iteration.

    The chord matrix is the network with every cell linearised at zero bias (all its terminals
    at the virtual ground). Each step solves it with the cells' nonlinear currents moved to the
    right-hand side: ``(K_lin + J0) v_new = b - (i(v) - J0 v)``. The cells' tangent differs
    from J0 only through the transistor (about 2 % of a cell's resistance), so each step gains
    about two digits. Converged when no node moves by more than ``tol_v``. ``sensed`` and
    ``clipped``: as in :func:`factorise` (unsensed columns float; clipped TIAs at a rail).

    Raises
    ------
    ConfigError
        If the iteration does not converge (the TIA would have to saturate, or the map is far
        outside the read regime).
    """
    return operating_points(g_s, model, term, np.asarray(d)[None, :], tol_v=tol_v,
                            max_iter=max_iter, sensed=sensed, clipped=clipped)[0]


def operating_points(g_s: np.ndarray, model: CellModel, term: Terminations, d: np.ndarray, *,
                     tol_v: float = 1e-13, max_iter: int = 40,
                     sensed: np.ndarray | None = None,
                     clipped: np.ndarray | None = None) -> list[OperatingPoint]:
    """:func:`operating_point` for several DAC vectors ``d`` (B x R), one chord factor for all.

    The chord matrix does not depend on the inputs, so its factorisation (the cost at large
    maps) is shared, and every chord step solves all vectors at once (one right-hand side
    each); :func:`tia_currents` keeps only the TIA currents.
    """
    with blas_limit():
        fac, a0, b0 = _chord_factor(g_s, model, term, sensed, clipped)
        ops = []
        for chunk in _chunks(np.atleast_2d(d), g_s.size):
            v_r, v_c, v_m, i_tia, its = _chord_iteration(fac, a0, b0, g_s, model, chunk, tol_v,
                                                         max_iter)
            _, a_s, b_s, v_m = cell_iv(v_r, v_c, g_s, model, v_m)
            ops += [OperatingPoint(v_r=v_r[k], v_c=v_c[k], v_m=v_m[k], i_tia_a=i_tia[k],
                                   a_s=a_s[k], b_s=b_s[k], iterations=its)
                    for k in range(len(chunk))]
        return ops


def tia_currents(g_s: np.ndarray, model: CellModel, term: Terminations, d: np.ndarray, *,
                 tol_v: float = 1e-13, max_iter: int = 40, sensed: np.ndarray | None = None,
                 clipped: np.ndarray | None = None) -> np.ndarray:
    """TIA currents (B x P, A) of the nonlinear tile for DAC vectors ``d`` (B x R): the
    operating points of :func:`operating_points` without the per-vector tap voltages and
    tangents (one chord factorisation, every vector solved in each chord step)."""
    with blas_limit():
        fac, a0, b0 = _chord_factor(g_s, model, term, sensed, clipped)
        return np.concatenate([
            _chord_iteration(fac, a0, b0, g_s, model, chunk, tol_v, max_iter)[3]
            for chunk in _chunks(np.atleast_2d(d), g_s.size)])


#: Vectors solved together in one chord iteration: up to this many tap voltages (the batch's
#: arrays, a few of R x P each per vector, stay within tens of MB).
_BATCH_ELEMENTS = 2_000_000


def _chunks(d: np.ndarray, cells: int) -> list[np.ndarray]:
    step = max(1, _BATCH_ELEMENTS // max(cells, 1))
    return [d[k:k + step] for k in range(0, len(d), step)]


def _chord_factor(g_s: np.ndarray, model: CellModel, term: Terminations,
                  sensed: np.ndarray | None, clipped: np.ndarray | None
                  ) -> tuple[NetworkFactor, np.ndarray, np.ndarray]:
    """The chord matrix (every cell linearised at zero bias), factorised once."""
    z = np.full(g_s.shape, term.v_t0_v)
    _, a0, b0, _ = cell_iv(z, z, g_s, model)
    return NetworkFactor(a0, b0, term, store=True, sensed=sensed, clipped=clipped), a0, b0


def _chord_iteration(fac: NetworkFactor, a0: np.ndarray, b0: np.ndarray, g_s: np.ndarray,
                     model: CellModel, d: np.ndarray, tol_v: float, max_iter: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Chord iteration of a batch ``d`` (N x R) on one factor: tap voltages (N x R x P),
    internal nodes, TIA currents (N x P) and the steps taken (until every vector's largest
    node move is at most ``tol_v``)."""
    v_r, v_c, i_tia = fac.solve(d)
    v_m = None
    for it in range(1, max_iter + 1):
        i_cell, _, _, v_m = cell_iv(v_r, v_c, g_s, model, v_m)
        # nonlinear remainder of every cell, injected as current sources
        rem = i_cell - (a0 * v_r + b0 * v_c)
        v_r_new, v_c_new, i_tia = fac.solve(d, -rem, rem)
        step = max(float(np.max(np.abs(v_r_new - v_r))), float(np.max(np.abs(v_c_new - v_c))))
        v_r, v_c = v_r_new, v_c_new
        if step <= tol_v:
            break
    else:
        raise ConfigError(
            f"The tile's operating point did not converge in {max_iter} chord steps (last "
            f"step {step:.3g} V). The map or inputs drive the tile far outside the read "
            "regime (check conductances against TileSpec.g_full_scale_us).")
    return v_r, v_c, v_m, i_tia, it
