"""Independent nodal DC engine: the canonical tile circuit solved exactly in scipy.

The engine solves the circuit that :func:`rram_cosim.netlists.tile.tile_deck` writes (DAC behind
``dac.r_out_ohm``, row and column wire segments, 1T1R cells with the ngspice level-1 access
transistor, one finite-gain clipped TIA per sensed physical column) by Newton-Raphson on the
nodal equations. Read schemes as in the deck: :meth:`BoundNodal.apply` runs the reads of
``spec.read`` through :func:`~rram_cosim.models.tile.read.scheme_apply`, one solve per read
(rows outside the read's group at 0 V); with ``read.drive == 'both'`` each row's east end is
tied to its DAC voltage through a second ``dac.r_out_ohm`` (or is the fixed DAC node when that
is 0); an unsensed (floating) column has no TIA: its end node ``t`` gets zero TIA current (a
floating column without cells, an isolated island, is held at 0 V by 1 S to ground, which
touches nothing else). Differential subtraction and its codes are numpy's
(:func:`~rram_cosim.models.tile.periphery.diff_codes`) on the solved TIA outputs. It mirrors ngspice's level-1 MOSFET (``src/spicelib/devices/mos1/mos1load.c`` and
``mos1temp.c``) including the bulk junctions and the GMIN ngspice puts across them, so the two
agree to round-off (about 1e-12 relative on TIA outputs, measured), and it reaches the macro's
full 512 x 512 size, which ngspice (no KLU) cannot.

Exact reductions of the circuit:

- The cell's internal node ``m`` (RRAM / drain) is eliminated: for given row and column tap
  voltages a vectorised, bracketed scalar Newton finds ``v_m`` to round-off and the implicit
  function theorem gives the cell's 2 x 2 Jacobian, so each cell is a two-port between its row
  tap and its column tap.
- The TIA's nodes ``x`` and ``o`` are eliminated: KCL at ``o`` gives
  ``v_o = (x R_f + v_t r_out) / (R_f + r_out)``, so the TIA loads its input ``t`` with
  ``(v_t - x(v_t)) / (R_f + r_out)``, ``x = clip(A (v_os - v_t), v_min, v_max)``.
- Row segments are ``spec.r_row_ohm``, column segments ``spec.r_col_ohm``: ``r_row_ohm == 0``
  merges the row taps into ``a{i}``, ``r_col_ohm == 0`` the column taps into ``t{j}``;
  ``dac.r_out_ohm == 0`` makes ``a{i}`` the fixed DAC node.

Linear algebra: unknowns are ordered as chains (row ``i``: ``a_i, r_i_0 .. r_i_{P-1}``, then
column ``j``: ``c_0_j .. c_{R-1}_j, t_j``), so without the cells' row-column coupling the
Jacobian is a symmetric positive-definite tridiagonal matrix per layer. A block Gauss-Seidel
sweep (row layer, then column layer) built from those two tridiagonals (LAPACK ``pttrf``,
O(n)) preconditions GMRES; it needs 5-15 iterations per Newton step up to 512 x 512 with 1-5
ohm wires (measured). A sparse LU (SuperLU, minimum-degree ordering on ``A + A^T``) solves the
same Newton systems directly: the default for small tiles and the fallback whenever GMRES stalls.

Fast path (``NodalBackend.solve_path="fast"``, the default; ``"plain"`` is the Newton iteration
without it, kept to compare against and as the fallback): identical input vectors of one solve
are solved once, and the all-off vector (a read whose row group is all off is the same circuit
whatever the group) once per bound tile and sensed-column mask, kept for the last
:data:`_OFF_CACHE_MASKS` masks; each cell's internal node is carried along every Newton step to first order (the cell
solve then starts within the step's second-order error); residual and Jacobian are assembled by
indexed addition; GMRES solves the first step to 1e-4 and, once the residual is close to what
the test accepts, the last steps to what they can still gain (:func:`_forcing`; looser than
``krylov_rtol``, which bounds it from below). The
convergence test is the plain path's. A block the fast path does not converge on is solved again
by the plain path, counted in ``NodalSolution.fallbacks`` and warned about.
"""

from __future__ import annotations

import functools
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import lapack

from ...models.blas import blas_limit
from ...models.checks import check_choice, check_int, check_range
from ...models.device.level1 import level1_at_temperature, level1_channel
from ...models.errors import ConfigError
from ...models.params import TileSpec
from ...models.tile.backend import TileOutput, check_pair, code_y_scale, input_levels, need_rng
from ...models.tile.periphery import adc_codes, dac_volts
from ...models.tile.read import scheme_apply
from ...netlists.cards.level1 import level1_params
from ...netlists.tile import check_sensed
from ..spice.errors import ConvergenceError

__all__ = [
    "BoundNodal",
    "CellState",
    "Level1Device",
    "NodalBackend",
    "NodalSolution",
    "cell_solve",
    "junction",
    "level1_device",
    "level1_ids",
]

_MAX_EXP_ARG = 709.0  # ngspice MAX_EXP_ARG (src/include/ngspice/defines.h)
# ngspice's default GMIN (.options gmin), added across every MOSFET junction (mos1load.c).
_NGSPICE_GMIN_S = 1e-12

_LINEAR_SOLVERS = ("auto", "direct", "krylov")
# Under "auto", sparse LU below this many unknowns per vector (about a 16 x 32 physical tile
# with wires): there it costs milliseconds and needs no iteration; GMRES was faster from
# 32 x 32 up (measured: 9 ms vs 31 ms per vector at 32 x 32, 0.27 s vs 0.54 s at 128 x 128).
_AUTO_DIRECT_MAX_UNKNOWNS = 2_000
# GMRES tolerance of the fast path's first Newton step. The step from the initial guess leaves
# a nonlinearity error of about 3e-4 of its size (456 x 402 map, 1.25 ohm wires: a 0.12 V
# step, then 3e-5 V, measured), so a solve to 1e-4 leaves the next steps as they were (1e-3
# did not: its error outgrew the nonlinearity's and cost a Newton step).
_FAST_FIRST_RTOL = 1e-4
# Loosest GMRES tolerance of any fast-path step.
_FAST_MAX_RTOL = 1e-3
# Sensed masks whose all-off read a bound tile keeps (one per floating column group of a read
# scheme, a few at most): each holds one vector's solution, O(rows x columns) floats.
_OFF_CACHE_MASKS = 8


# ---------------------------------------------------------------------------------------------
# Device equations: ngspice level 1 (Shichman-Hodges), mirrored line by line
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Level1Device:
    """Temperature-adjusted level-1 NMOS quantities, as ngspice's ``MOS1temp`` computes them.

    Attributes
    ----------
    beta_a_per_v2 : float
        ``KP(T) * W / (L - 2 LD)`` with ``LD = 0``; ``KP(T) = KP / (T / TNOM)^1.5``.
    vth_v : float
        ``tVbi`` (gamma = 0, so ``von = tVbi``): VTO plus ngspice's band-gap and PHI shifts,
        which vanish at ``T = TNOM``.
    lambda_per_v : float
        Channel-length modulation, in both the linear and the saturation region.
    is_a : float
        Junction saturation current ``IS(T)`` of the bulk-drain and bulk-source diodes.
    vt_v : float
        Thermal voltage ``k T / q`` of the diodes.
    gmin_s : float
        GMIN across each junction.
    v_gate_v : float
        Word-line voltage (the gate is held by a source; the bulk is ground).
    """

    beta_a_per_v2: float
    vth_v: float
    lambda_per_v: float
    is_a: float
    vt_v: float
    gmin_s: float
    v_gate_v: float


def level1_device(spec: TileSpec, gmin_s: float = _NGSPICE_GMIN_S) -> Level1Device:
    """Level-1 quantities of the tile's access transistor at ``spec.temperature_c``.

    Reads the card's numbers from :func:`rram_cosim.netlists.cards.level1.level1_params` (the
    deck's ``.model`` line comes from the same function) and mirrors ``MOS1temp`` (ngspice
    ``mos1temp.c``) for an NMOS with ``gamma = 0``, ``LD = 0``, default ``PHI``; the deck sets
    ``.temp`` to ``spec.temperature_c``. Raises :class:`ConfigError` for a card other than
    ``"level1"`` or a level-1 card with body effect.
    """
    m = spec.mosfet
    if m.card != "level1":
        raise ConfigError(
            f"The nodal engine implements the ngspice level-1 transistor only. Got "
            f"TileSpec.mosfet.card={m.card!r}. Use card='level1', or the ngspice backend for "
            "BSIM4/PDK cards."
        )
    card = level1_params(m)
    if card["gamma"] != 0.0:
        raise ConfigError(
            f"The nodal engine mirrors level 1 without body effect (gamma = 0). The card has "
            f"gamma={card['gamma']!r}.")
    t = level1_at_temperature(card["vto"], card["kp"], m.w_m, m.l_m, card["is"], card["tnom"],
                              spec.temperature_c)
    return Level1Device(
        beta_a_per_v2=t.beta_a_per_v2,
        vth_v=t.vth_v,
        lambda_per_v=card["lambda"],
        is_a=t.is_a,
        vt_v=t.vt_v,
        gmin_s=gmin_s,
        v_gate_v=spec.v_gate_read_v,
    )


def level1_ids(vd: np.ndarray, vs: np.ndarray,
               dev: Level1Device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channel current drain -> source (A) and its partial derivatives (S), any shape.

    ngspice ``mos1load.c`` with gamma = 0: ``mode = +1`` if ``vds >= 0`` else the terminals swap
    (``vgs -> vgd``, ``vds -> -vds``); ``vgst = vgs - VTH``; cutoff if ``vgst <= 0``;
    ``betap = beta (1 + lambda vds)``; saturation if ``vgst <= vds``:
    ``id = betap vgst^2 / 2``, ``gm = betap vgst``, ``gds = lambda beta vgst^2 / 2``; otherwise
    linear: ``id = betap vds (vgst - vds/2)``, ``gm = betap vds``,
    ``gds = betap (vgst - vds) + lambda beta vds (vgst - vds/2)``.

    Returns
    -------
    ids, d_ids_d_vd, d_ids_d_vs : ndarray
        Current from drain to source and its derivatives w.r.t. the drain and source voltages.
    """
    return level1_channel(vd, vs, dev.v_gate_v, dev.vth_v, dev.beta_a_per_v2,
                          dev.lambda_per_v)


def junction(v_bn: np.ndarray, dev: Level1Device) -> tuple[np.ndarray, np.ndarray]:
    """Bulk junction diode of ngspice's level 1 with GMIN, for ``v_bn = v_bulk - v_node``.

    ``v <= -3 vt``: ``g = GMIN``, ``i = GMIN v - IS``; otherwise ``e = exp(min(709, v/vt))``,
    ``g = IS e / vt + GMIN``, ``i = IS (e - 1) + GMIN v``. ``i`` flows from the bulk into the
    node (A); ``g = di/dv`` (S).
    """
    vt, i_s, gmin = dev.vt_v, dev.is_a, dev.gmin_s
    rev = v_bn <= -3.0 * vt
    e = np.exp(np.minimum(v_bn / vt, _MAX_EXP_ARG))
    g = np.where(rev, gmin, i_s * e / vt + gmin)
    i = np.where(rev, gmin * v_bn - i_s, i_s * (e - 1.0) + gmin * v_bn)
    return i, g


@dataclass
class CellState:
    """One cell two-port after eliminating its internal node (arrays of equal shape).

    ``i_r_a`` flows from the row tap into the RRAM, ``i_c_a`` from the transistor's source into
    the column tap; they differ by the drain junction current. Derivatives in S.
    """

    v_m: np.ndarray
    i_r_a: np.ndarray
    i_c_a: np.ndarray
    dir_dvr: np.ndarray
    dir_dvc: np.ndarray
    dic_dvr: np.ndarray
    dic_dvc: np.ndarray


def cell_solve(v_r: np.ndarray, v_c: np.ndarray, g_s: np.ndarray, v_m0: np.ndarray | None,
               dev: Level1Device, max_iter: int = 80, final_pass: bool = True) -> CellState:
    """Solve each cell's internal node and return its two-port currents and Jacobian.

    KCL at ``m``: ``f(v_m) = G (v_r - v_m) + i_bd(-v_m) - i_ds(v_m, v_c) = 0``. ``f`` strictly
    decreases, so a Newton step safeguarded by bisection inside the bracket
    ``[min(v_r, v_c, 0) - 1 V, max(v_r, v_c, 0) + 1 V]`` converges for every cell; iteration
    stops when every step is below ``1e-14`` of the cell's voltage scale (round-off). Warm
    started from the previous Newton iterate it takes 1-3 steps.

    Parameters
    ----------
    v_r, v_c : ndarray
        Row and column tap voltages (V), any common shape.
    g_s : ndarray
        RRAM conductance (S), broadcastable to that shape.
    v_m0 : ndarray or None
        Starting guess for ``v_m`` (warm start), or None.
    dev : Level1Device
        The transistor.
    final_pass : bool
        Evaluate the devices once more at the last iterate (True), or return the iterate at
        which the last, converged step was computed, with the device values computed there
        (False: one evaluation fewer; its KCL residual at ``m`` is below the step tolerance
        times the node's conductance, as the other's is).

    Raises
    ------
    ConvergenceError
        If the bracketed iteration has not converged after ``max_iter`` steps (a bug guard:
        bisection alone converges in about 60).
    """
    g = np.broadcast_to(g_s, v_r.shape)
    # f(lo) > 0 and f(hi) < 0 for any G >= 0, IS >= 0, GMIN >= 0: below min(v_r, v_c, 0) every
    # term pushes current into m, above max(v_r, v_c, 0) every term drains it.
    lo = np.minimum(np.minimum(v_r, v_c), 0.0) - 1.0
    hi = np.maximum(np.maximum(v_r, v_c), 0.0) + 1.0
    if v_m0 is None:
        g_on = dev.beta_a_per_v2 * np.maximum(dev.v_gate_v - v_c - dev.vth_v, 1e-3)
        v_m = v_c + (v_r - v_c) * g / (g + g_on)
    else:
        v_m = np.clip(v_m0, lo, hi)
    tol = 1e-14 * (np.abs(v_r) + np.abs(v_c)) + 1e-20
    for _ in range(max_iter):
        ids, d_vd, d_vs = level1_ids(v_m, v_c, dev)
        i_bd, g_bd = junction(-v_m, dev)
        f = g * (v_r - v_m) + i_bd - ids
        lo = np.where(f > 0.0, v_m, lo)
        hi = np.where(f < 0.0, v_m, hi)
        v_new = v_m + f / (g + g_bd + d_vd)
        # The bracket end on the step's side is v_m itself, so only an overshoot past the far
        # end is rejected (a step below one ulp leaves v_new == v_m: converged, not outside).
        v_new = np.where((v_new < lo) | (v_new > hi), 0.5 * (lo + hi), v_new)
        done = np.abs(v_new - v_m) <= tol
        if done.all() and not final_pass:
            break  # v_m is converged and the device values above are at v_m
        v_m = v_new
        if done.all():
            break
    else:
        bad = int(np.count_nonzero(~done))
        raise ConvergenceError(
            f"The cell-internal node solve did not converge for {bad} cell(s) after {max_iter} "
            "bracketed Newton steps. This indicates non-finite node voltages; check the inputs."
        )
    if final_pass:
        ids, d_vd, d_vs = level1_ids(v_m, v_c, dev)
        i_bd, g_bd = junction(-v_m, dev)
    den = g + g_bd + d_vd
    dvm_dvr = g / den
    dvm_dvc = -d_vs / den
    return CellState(
        v_m=v_m,
        i_r_a=g * (v_r - v_m),
        i_c_a=ids,
        dir_dvr=g * (1.0 - dvm_dvr),
        dir_dvc=-g * dvm_dvc,
        dic_dvr=d_vd * dvm_dvr,
        dic_dvc=d_vd * dvm_dvc + d_vs,
    )


# ---------------------------------------------------------------------------------------------
# Topology: node numbering, element lists and the sparse pattern, built once per map
# ---------------------------------------------------------------------------------------------


@dataclass
class _Topology:
    """Index arrays of one physical conductance map (internal; caches per batch size)."""

    n_rows: int
    n_phys: int
    n: int  # unknowns per vector; fixed DAC nodes follow at n .. n + n_rows - 1
    n_row_layer: int  # unknowns 0 .. n_row_layer - 1 are row-layer nodes, the rest column
    node_a: np.ndarray  # (R,) index into [unknowns, d]
    node_r: np.ndarray  # (R, P)
    node_c: np.ndarray  # (R, P)
    node_t: np.ndarray  # (P,)
    cell_flat: np.ndarray  # flat (i * P + j) positions of the cells with G > 0
    cell_nr: np.ndarray
    cell_nc: np.ndarray
    cell_g_s: np.ndarray
    col_empty: np.ndarray  # (P,) bool, columns without any cell
    res_n1: np.ndarray  # linear resistors (wires, DAC r_out): node pairs and conductances
    res_n2: np.ndarray
    res_g: np.ndarray
    tri_e: np.ndarray  # (n - 1,) off-diagonal of the chain (tridiagonal) part of the Jacobian
    lap: sp.csr_matrix  # (n, n + R): resistor currents leaving each unknown = lap @ v_all
    # Nonlinear terms (cell row side, cell column side, source junction, TIA), see _evaluate:
    kcl_idx: np.ndarray  # node of every nonlinear current term
    jac_keep: np.ndarray  # which nonlinear Jacobian entries touch two unknowns
    jac_pos: np.ndarray  # their positions in the CSR data array
    jac_const: np.ndarray  # (nnz,) CSR data of the resistors (constant per map)
    csr_indices: np.ndarray
    csr_indptr: np.ndarray
    diag_pos: np.ndarray  # (n,) data positions of the diagonal
    # Direct scatter for the fast path (None when two terms of one kind share a node, e.g.
    # merged taps): which cells' row/column terms land on unknowns, and where.
    scatter: _Scatter | None = None
    # (offset of the first tap in a row chain, row chain length, column chain length) when
    # every site has a cell and both wire layers have taps: the cells' row-to-column coupling
    # is then a transpose of the (R, P) site grid (the fast path's preconditioner uses it)
    grid: tuple[int, int, int] | None = None
    _cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def nnz(self) -> int:
        return int(self.csr_indices.size)

    def batched(self, b: int) -> dict[str, np.ndarray]:
        """Offset index arrays for a block-diagonal batch of ``b`` vectors (cached)."""
        if b not in self._cache:
            nb = self.n + self.n_rows
            off_n = np.arange(b)[:, None]
            self._cache.clear()  # keep one batch size: the arrays scale with b
            self._cache[b] = {
                "kcl": (self.kcl_idx[None, :] + nb * off_n).ravel(),
                "jac": (self.jac_pos[None, :] + self.nnz * off_n).ravel(),
                "indices": (self.csr_indices[None, :] + self.n * off_n).ravel(),
                "indptr": np.concatenate(
                    [[0], (self.csr_indptr[1:][None, :] + self.nnz * off_n).ravel()]),
            }
        return self._cache[b]


@dataclass(frozen=True)
class _Scatter:
    """Index sets of the nonlinear terms when every node receives at most one term of each
    kind (distinct row taps, column taps and TIA inputs): assembly is then plain indexed
    addition instead of ``bincount`` over concatenated terms."""

    r_keep: np.ndarray  # cells whose row tap is an unknown
    r_node: np.ndarray
    c_keep: np.ndarray  # cells whose column tap is an unknown
    c_node: np.ndarray
    pos_rr: np.ndarray  # CSR data positions of the cell (row, row) entries (cells r_keep)
    pos_cc: np.ndarray  # (col, col), cell and source junction (cells c_keep)
    rc_keep: np.ndarray  # cells with both taps unknown
    pos_rc: np.ndarray
    pos_cr: np.ndarray
    pos_tt: np.ndarray  # (P,) the TIA entries
    # the resistors' part of the Jacobian at those positions (constant per map)
    const: dict[str, np.ndarray] = field(default_factory=dict)


def _scatter_of(n: int, cell_nr: np.ndarray, cell_nc: np.ndarray, node_t: np.ndarray,
                keep: np.ndarray, pos: np.ndarray, jac_const: np.ndarray) -> _Scatter | None:
    """:class:`_Scatter` for the Jacobian entry order of :func:`_build_topology`, or None."""
    r_keep = np.flatnonzero(cell_nr < n)
    c_keep = np.flatnonzero(cell_nc < n)
    nodes = np.concatenate([cell_nr[r_keep], cell_nc[c_keep], node_t[node_t < n]])
    if np.unique(nodes).size != nodes.size or (node_t >= n).any():
        return None
    nc = cell_nr.size
    full = np.full(keep.size, -1, dtype=np.int64)
    full[keep] = pos
    seg = [full[k * nc:(k + 1) * nc] for k in range(5)]
    rc_keep = np.flatnonzero((cell_nr < n) & (cell_nc < n))
    pos_of = {"rr": seg[0][r_keep], "rc": seg[1][rc_keep], "cr": seg[2][rc_keep],
              "cc": seg[3][c_keep], "tt": full[5 * nc:]}
    return _Scatter(r_keep=r_keep, r_node=cell_nr[r_keep], c_keep=c_keep,
                    c_node=cell_nc[c_keep], pos_rr=pos_of["rr"], pos_cc=pos_of["cc"],
                    rc_keep=rc_keep, pos_rc=pos_of["rc"], pos_cr=pos_of["cr"],
                    pos_tt=pos_of["tt"], const={k: jac_const[p] for k, p in pos_of.items()})


def _build_topology(g_phys_us: np.ndarray, spec: TileSpec) -> _Topology:
    n_rows, n_phys = g_phys_us.shape
    r_row, r_col = spec.r_row_ohm, spec.r_col_ohm
    rd = spec.dac.r_out_ohm
    two_ends = spec.read.drive == "both"
    n_taps = n_phys if r_row > 0 else 0
    l_row = (1 if rd > 0 else 0) + n_taps
    l_col = (n_rows if r_col > 0 else 0) + 1
    n = n_rows * l_row + n_phys * l_col
    ii = np.arange(n_rows)
    jj = np.arange(n_phys)
    node_d = n + ii
    node_a = ii * l_row if rd > 0 else node_d
    col0 = n_rows * l_row
    node_t = col0 + jj * l_col + (l_col - 1)
    if r_row > 0:
        node_r = np.empty((n_rows, n_phys), dtype=np.int64)
        node_r[:, :n_taps] = ii[:, None] * l_row + (1 if rd > 0 else 0) + jj[None, :n_taps]
    else:
        node_r = np.broadcast_to(node_a[:, None], (n_rows, n_phys)).copy()
    if r_col > 0:
        node_c = col0 + jj[None, :] * l_col + ii[:, None]
    else:
        node_c = np.broadcast_to(node_t[None, :], (n_rows, n_phys)).copy()

    n1: list[np.ndarray] = []
    n2: list[np.ndarray] = []
    gg: list[np.ndarray] = []
    if rd > 0:
        n1.append(node_a)
        n2.append(node_d)
        gg.append(np.full(n_rows, 1.0 / rd))
    if two_ends and r_row + rd > 0:
        # the east end mirrors the west: one more row segment, then the DAC's output
        # resistance, in series from the last tap to the row's DAC voltage
        n1.append(node_r[:, -1])
        n2.append(node_d)
        gg.append(np.full(n_rows, 1.0 / (r_row + rd)))
    if r_row > 0:
        left = np.concatenate([node_a[:, None], node_r[:, :-1]], axis=1)
        n1.append(left.ravel())
        n2.append(node_r.ravel())
        gg.append(np.full(n_rows * n_phys, 1.0 / r_row))
    if r_col > 0:
        below = np.concatenate([node_c[1:, :], node_t[None, :]], axis=0)
        n1.append(node_c.ravel())
        n2.append(below.ravel())
        gg.append(np.full(n_rows * n_phys, 1.0 / r_col))
    res_n1 = np.concatenate(n1) if n1 else np.zeros(0, np.int64)
    res_n2 = np.concatenate(n2) if n2 else np.zeros(0, np.int64)
    res_g = np.concatenate(gg) if gg else np.zeros(0)
    distinct = res_n1 != res_n2  # a one-tap row between two fixed DAC ends carries nothing
    res_n1, res_n2, res_g = res_n1[distinct], res_n2[distinct], res_g[distinct]

    flat = np.flatnonzero(g_phys_us.ravel() > 0.0)
    cell_nr = node_r.ravel()[flat]
    cell_nc = node_c.ravel()[flat]
    cell_g = g_phys_us.ravel()[flat] * 1e-6

    # Chain off-diagonal: every resistor between two unknowns joins neighbours by construction.
    both = (res_n1 < n) & (res_n2 < n)
    lo = np.minimum(res_n1[both], res_n2[both])
    if np.any(np.abs(res_n1[both] - res_n2[both]) != 1):
        raise AssertionError("internal: a wire joins non-adjacent unknowns")
    tri_e = np.zeros(max(n - 1, 0))
    np.add.at(tri_e, lo, -res_g[both])

    # Resistor stamps (n1,n1,+g), (n2,n2,+g), (n1,n2,-g), (n2,n1,-g).
    rr = np.concatenate([res_n1, res_n2, res_n1, res_n2])
    rc = np.concatenate([res_n1, res_n2, res_n2, res_n1])
    rv = np.concatenate([res_g, res_g, -res_g, -res_g])
    r_keep = rr < n
    lap = sp.coo_matrix((rv[r_keep], (rr[r_keep], rc[r_keep])),
                        shape=(n, n + n_rows)).tocsr()
    rj_keep = r_keep & (rc < n)

    # Nonlinear term order (see _evaluate): cell r, cell c, source junction c, TIA t.
    kcl_idx = np.concatenate([cell_nr, cell_nc, cell_nc, node_t])
    # Nonlinear Jacobian entry order (see _evaluate): cell (r,r), (r,c), (c,r), (c,c); source
    # junction (c,c); TIA (t,t).
    jr = np.concatenate([cell_nr, cell_nr, cell_nc, cell_nc, cell_nc, node_t])
    jc = np.concatenate([cell_nr, cell_nc, cell_nr, cell_nc, cell_nc, node_t])
    keep = (jr < n) & (jc < n)
    key_nl = jr[keep].astype(np.int64) * n + jc[keep]
    key_res = rr[rj_keep].astype(np.int64) * n + rc[rj_keep]
    # Every unknown gets a diagonal entry, so the pattern is complete even for an empty column.
    key_diag = np.arange(n, dtype=np.int64) * (n + 1)
    ukey, pos = np.unique(np.concatenate([key_nl, key_res, key_diag]), return_inverse=True)
    nnz = ukey.size
    jac_const = np.bincount(pos[key_nl.size: key_nl.size + key_res.size],
                            weights=rv[rj_keep], minlength=nnz)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(ukey // n, minlength=n))])
    return _Topology(
        n_rows=n_rows, n_phys=n_phys, n=n, n_row_layer=col0, node_a=node_a, node_r=node_r,
        node_c=node_c, node_t=node_t, cell_flat=flat, cell_nr=cell_nr, cell_nc=cell_nc,
        cell_g_s=cell_g, col_empty=~(g_phys_us > 0.0).any(axis=0), res_n1=res_n1, res_n2=res_n2, res_g=res_g, tri_e=tri_e, lap=lap,
        kcl_idx=kcl_idx, jac_keep=keep, jac_pos=pos[: key_nl.size], jac_const=jac_const,
        csr_indices=(ukey % n).astype(np.int64), csr_indptr=indptr.astype(np.int64),
        diag_pos=np.searchsorted(ukey, key_diag),
        scatter=_scatter_of(n, cell_nr, cell_nc, node_t, keep, pos[: key_nl.size], jac_const),
        grid=((1 if rd > 0 else 0, l_row, l_col)
              if r_row > 0 and r_col > 0 and flat.size == n_rows * n_phys else None),
    )


# ---------------------------------------------------------------------------------------------
# The TIA as a one-node element at its input t
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tia:
    """The TIA seen from its input node ``t`` (``x`` and ``o`` eliminated, see module doc)."""

    a_ol: float
    v_os_v: float
    v_min_v: float
    v_max_v: float
    r_f_ohm: float
    r_out_ohm: float

    @classmethod
    def of(cls, spec: TileSpec) -> _Tia:
        t = spec.tia
        return cls(t.a_ol, t.v_offset_v, t.v_out_min_v, t.v_out_max_v, spec.r_f_ohm,
                   t.r_out_ohm)

    @property
    def r_series_ohm(self) -> float:
        return self.r_f_ohm + self.r_out_ohm

    @property
    def window_v(self) -> tuple[float, float]:
        """Input voltages between which the B-source is not clipped (``x`` from max to min)."""
        return (self.v_os_v - self.v_max_v / self.a_ol, self.v_os_v - self.v_min_v / self.a_ol)

    def x(self, v_t: np.ndarray) -> np.ndarray:
        """The B-source: ``clip(A (v_os - v_t), v_min, v_max)`` (V)."""
        return np.clip(self.a_ol * (self.v_os_v - v_t), self.v_min_v, self.v_max_v)

    def out(self, v_t: np.ndarray) -> np.ndarray:
        """Output node ``o`` from KCL at ``o`` (only ``r_out`` and ``R_f`` meet there)."""
        return (self.x(v_t) * self.r_f_ohm + v_t * self.r_out_ohm) / self.r_series_ohm

    def region(self, v_t: np.ndarray) -> np.ndarray:
        """+1 where ``x`` sits at ``v_max`` (input below the window), -1 at ``v_min``, else 0."""
        w_lo, w_hi = self.window_v
        return np.where(v_t < w_lo, 1, np.where(v_t > w_hi, -1, 0))

    def limit(self, v_old: np.ndarray, v_new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Newton step limiting at the clip corners (the B-source is piecewise linear).

        A step that changes the clip region stops just past the corner it crosses first, so the
        next Newton step sees the slope of the region it enters. Without this, a step from one
        clipped region can jump over the 1.6 uV-wide linear window into the other and cycle.
        ngspice does not limit B-sources; limiting only changes the path, not the solution.
        """
        w_lo, w_hi = self.window_v
        eta = 1e-3 * (w_hi - w_lo)
        r_old, r_new = self.region(v_old), self.region(v_new)
        lim = np.where(r_old == 1, w_lo + eta,
                       np.where(r_old == -1, w_hi - eta,
                                np.where(r_new == 1, w_lo - eta, w_hi + eta)))
        changed = r_old != r_new
        return np.where(changed, lim, v_new), changed


# ---------------------------------------------------------------------------------------------
# Assembly and Newton-Raphson
# ---------------------------------------------------------------------------------------------


@dataclass
class _Eval:
    f: np.ndarray  # (B, n) KCL residual, sum of currents leaving each unknown node (A)
    jac: np.ndarray  # (B, nnz) CSR data of the Jacobian blocks (S)
    cells: CellState
    v_all: np.ndarray  # (B, n + R)
    # (B, n_terms) nonlinear current terms, in topo.kcl_idx order (A); the fast path leaves
    # the concatenation to _kcl_scale (needed only once the last step was small)
    terms: np.ndarray | None
    parts: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True)
class _Sense:
    """Which TIAs one read has: ``on`` 1.0 on sensed columns (TIA at the end node), 0.0 on
    floating ones; ``pin`` 1 S to ground at the end node of a floating column without cells,
    an isolated island whose nodes it holds at 0 V (it touches nothing else)."""

    mask: np.ndarray  # (P,) bool, sensed
    on: np.ndarray  # (P,) float
    pin: np.ndarray  # (P,) float, S

    @classmethod
    def of(cls, sensed: np.ndarray, empty: np.ndarray) -> _Sense:
        return cls(sensed, sensed.astype(np.float64), (~sensed & empty).astype(np.float64))


def _evaluate(topo: _Topology, dev: Level1Device, tia: _Tia, x: np.ndarray, d: np.ndarray,
              g_cells: np.ndarray, v_m0: np.ndarray | None, sense: _Sense,
              fast: bool = False) -> _Eval:
    """KCL residual and Jacobian at ``x`` (B x n unknowns) with DAC voltages ``d`` (B x R).

    ``fast`` assembles by indexed addition where the topology allows (:class:`_Scatter`); the
    sums are the same up to the order of floating-point additions.
    """
    b = x.shape[0]
    n = topo.n
    v = np.concatenate([x, d], axis=1)
    v_cr = v[:, topo.cell_nr]
    v_cc = v[:, topo.cell_nc]
    cells = cell_solve(v_cr, v_cc, g_cells, v_m0, dev, final_pass=not fast)
    i_bs, g_bs = junction(-v_cc, dev)  # bulk -> source junction (bulk is ground)
    v_t = v[:, topo.node_t]
    i_tia = sense.on * (v_t - tia.x(v_t)) / tia.r_series_ohm + sense.pin * v_t
    g_tia = sense.on * (1.0 + tia.a_ol * (tia.region(v_t) == 0)) / tia.r_series_ohm + sense.pin

    sc = topo.scatter if fast else None
    if sc is not None:
        f = (topo.lap @ v.T).T
        f[:, sc.r_node] += cells.i_r_a[:, sc.r_keep]
        f[:, sc.c_node] -= (cells.i_c_a + i_bs)[:, sc.c_keep]
        f[:, topo.node_t] += i_tia
        # distinct positions: set each entry to its resistor part plus its nonlinear part
        jac = np.empty((b, topo.nnz))
        jac[:] = topo.jac_const
        c = sc.const
        jac[:, sc.pos_rr] = c["rr"] + cells.dir_dvr[:, sc.r_keep]
        jac[:, sc.pos_rc] = c["rc"] + cells.dir_dvc[:, sc.rc_keep]
        jac[:, sc.pos_cr] = c["cr"] - cells.dic_dvr[:, sc.rc_keep]
        jac[:, sc.pos_cc] = c["cc"] + (g_bs - cells.dic_dvc)[:, sc.c_keep]
        jac[:, sc.pos_tt] = c["tt"] + g_tia
        return _Eval(f=f, jac=jac, cells=cells, v_all=v, terms=None,
                     parts=(cells.i_r_a, -cells.i_c_a, -i_bs, i_tia))
    terms = np.concatenate([cells.i_r_a, -cells.i_c_a, -i_bs, i_tia], axis=1)
    bt = topo.batched(b)
    nb = n + topo.n_rows
    f = np.bincount(bt["kcl"], weights=terms.ravel(), minlength=b * nb).reshape(b, nb)[:, :n]
    f += (topo.lap @ v.T).T

    vals = np.concatenate([cells.dir_dvr, cells.dir_dvc, -cells.dic_dvr, -cells.dic_dvc, g_bs,
                           g_tia], axis=1)[:, topo.jac_keep]
    jac = np.bincount(bt["jac"], weights=vals.ravel(), minlength=b * topo.nnz).reshape(
        b, topo.nnz)
    jac += topo.jac_const
    return _Eval(f=f, jac=jac, cells=cells, v_all=v, terms=terms)


def _kcl_scale(topo: _Topology, ev: _Eval) -> np.ndarray:
    """Sum of |branch currents| at each unknown node (B x n, A): the residual's yardstick."""
    b, n = ev.f.shape
    nb = n + topo.n_rows
    bt = topo.batched(b)
    terms = ev.terms if ev.terms is not None else np.concatenate(ev.parts, axis=1)
    scale = np.bincount(bt["kcl"], weights=np.abs(terms).ravel(),
                        minlength=b * nb).reshape(b, nb)
    i_res = np.abs(topo.res_g * (ev.v_all[:, topo.res_n1] - ev.v_all[:, topo.res_n2]))
    for nodes in (topo.res_n1, topo.res_n2):
        scale += np.bincount((nodes[None, :] + nb * np.arange(b)[:, None]).ravel(),
                             weights=i_res.ravel(), minlength=b * nb).reshape(b, nb)
    return scale[:, :n]


def _initial_guess(topo: _Topology, tia: _Tia, d: np.ndarray, g_phys_s: np.ndarray,
                   sense: _Sense) -> np.ndarray:
    """Rows at their DAC voltage; each column at the exact solution for ideal cells (a
    floating column at the conductance-weighted mean of its rows' voltages).

    With ideal cells a column is a Norton source ``I = G_sum (V_th - v_t)`` into the TIA, which
    has a closed form in every clip region. A guess that ignores the current limit (e.g. the
    TIA input an ideal current source would push it to, hundreds of volts when the TIA clips)
    puts every transistor in a region it never visits and slows the first steps badly.
    """
    b = d.shape[0]
    x = np.zeros((b, topo.n + topo.n_rows))
    x[:, topo.n:] = d
    x[:, topo.node_a] = d
    x[:, topo.node_r] = d[:, :, None]
    g_sum = g_phys_s.sum(axis=0)  # (P,), S
    i_th = d @ g_phys_s  # G_sum * V_th, (B, P), A
    rs, a = tia.r_series_ohm, tia.a_ol
    v_t = (a * tia.v_os_v + rs * i_th) / (1.0 + a + rs * g_sum)
    x_src = a * (tia.v_os_v - v_t)
    for rail, hit in ((tia.v_max_v, x_src > tia.v_max_v), (tia.v_min_v, x_src < tia.v_min_v)):
        v_t = np.where(hit, (rail / rs + i_th) / (1.0 / rs + g_sum), v_t)
    v_float = i_th / np.where(g_sum > 0, g_sum, 1.0)
    v_t = np.where(sense.mask, v_t, v_float)
    x[:, topo.node_t] = v_t
    x[:, topo.node_c] = v_t[:, None, :]
    return x[:, : topo.n]


@dataclass(frozen=True)
class _Options:
    reltol: float
    vntol_v: float
    abstol_a: float
    max_iter: int
    linear_solver: str
    krylov_rtol: float
    fast: bool = False  # the fast path's Newton (see _newton); False: the plain one


def _solve_linear(topo: _Topology, ev: _Eval, opts: _Options) -> tuple[np.ndarray, str]:
    """Newton step ``dx`` from ``J dx = -F`` for the block-diagonal batch; returns the method."""
    b, n = ev.f.shape
    bt = topo.batched(b)
    jac = sp.csr_matrix((ev.jac.ravel(), bt["indices"], bt["indptr"]), shape=(b * n, b * n))
    rhs = -ev.f.ravel()
    method = opts.linear_solver
    if method == "auto":
        method = "direct" if n <= _AUTO_DIRECT_MAX_UNKNOWNS else "krylov"
    if method == "krylov":
        dx = _solve_krylov(topo, ev, jac, rhs, opts)
        if dx is not None:
            return dx.reshape(b, n), "krylov"
    lu = spla.splu(jac.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                   options={"SymmetricMode": True})
    return lu.solve(rhs).reshape(b, n), "direct"


def _gmres(matvec: Any, prec: Any, rhs: np.ndarray, rtol: float, restart: int,
           max_iter: int, reorthogonalise: bool = True) -> tuple[np.ndarray, bool, int]:
    """Right-preconditioned flexible GMRES with classical Gram-Schmidt re-orthogonalised once
    (``reorthogonalise``; the fast path's few iterations per solve keep the basis orthogonal
    enough without it, and the true residual below decides either way).

    Stops when the true residual ``||rhs - A x||_2 <= rtol ||rhs||_2``. Lean on purpose: the
    basis (``restart`` + 1 vectors of n) is allocated once and the orthogonalisation is two BLAS
    matrix-vector products per iteration, which matters at 0.5 M unknowns.
    """
    b_norm = float(np.linalg.norm(rhs))
    x = np.zeros_like(rhs)
    if b_norm == 0.0:
        return x, True, 0
    target = rtol * b_norm
    v = np.empty((restart + 1, rhs.size))
    z = np.empty((restart, rhs.size))
    r = rhs.copy()
    total = 0
    while total < max_iter:
        beta = float(np.linalg.norm(r))
        if beta <= target:
            return x, True, total
        h = np.zeros((restart + 1, restart))
        v[0] = r / beta
        y = np.zeros(0)
        k_used = 0
        for k in range(restart):
            z[k] = prec(v[k])
            w = matvec(z[k])
            c1 = v[: k + 1] @ w
            w -= c1 @ v[: k + 1]
            if reorthogonalise:
                c2 = v[: k + 1] @ w
                w -= c2 @ v[: k + 1]
                c1 = c1 + c2
            h[: k + 1, k] = c1
            h_next = float(np.linalg.norm(w))
            h[k + 1, k] = h_next
            e1 = np.zeros(k + 2)
            e1[0] = beta
            y = np.linalg.lstsq(h[: k + 2, : k + 1], e1, rcond=None)[0]
            res = float(np.linalg.norm(e1 - h[: k + 2, : k + 1] @ y))
            total += 1
            k_used = k + 1
            if res <= 0.5 * target or h_next == 0.0 or total >= max_iter:
                break
            v[k + 1] = w / h_next
        x += y @ z[:k_used]
        r = rhs - matvec(x)
    return x, bool(np.linalg.norm(r) <= target), total


def _solve_krylov(topo: _Topology, ev: _Eval, jac: sp.csr_matrix, rhs: np.ndarray,
                  opts: _Options) -> np.ndarray | None:
    """GMRES with a block Gauss-Seidel preconditioner; None if it fails (caller uses LU).

    The preconditioner solves the row layer (tridiagonal chains: wires, DAC and the cells'
    row-side self terms) exactly, then the column layer (chains, cells' column-side self terms,
    junctions, TIAs) with the row solution's coupling through the cells subtracted. Both layers
    are symmetric positive-definite tridiagonal (LAPACK ``pttrf``/``pttrs``, O(n)).
    """
    b, n = ev.f.shape
    nrl = topo.n_row_layer
    ncl = n - nrl
    diag = ev.jac[:, topo.diag_pos]

    def factor(d: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        if d.shape[1] == 0:
            return np.zeros(0), np.zeros(0)
        e_b = np.tile(np.append(e, 0.0), d.shape[0])[:-1]
        df, ef, info = lapack.dpttrf(d.ravel(), e_b)
        return None if info != 0 else (df, ef)

    f_row = factor(diag[:, :nrl], topo.tri_e[: max(nrl - 1, 0)])
    f_col = factor(diag[:, nrl:], topo.tri_e[nrl:])
    if f_row is None or f_col is None:
        return None
    # Coupling of the column layer to the row layer: J[c, r] = -dIc/dvr per cell.
    keep = topo.cell_nr < n
    c_idx = topo.cell_nc[keep] - nrl
    r_idx = topo.cell_nr[keep]
    c_val = -ev.cells.dic_dvr[:, keep]
    c_idx_b = (c_idx[None, :] + ncl * np.arange(b)[:, None]).ravel()
    # one cell per column tap (fast path): the coupling is a plain scatter, or on the full
    # site grid a transpose
    distinct = opts.fast and topo.scatter is not None
    grid = topo.grid if distinct and bool(keep.all()) else None
    rows, cols = topo.n_rows, topo.n_phys
    c_grid = c_val.reshape(b, rows, cols) if grid is not None else None

    def prec(res: np.ndarray) -> np.ndarray:
        r2 = res.reshape(b, n)
        out = np.empty((b, n))
        if nrl:
            y_r = lapack.dpttrs(f_row[0], f_row[1], r2[:, :nrl].ravel())[0].reshape(b, nrl)
            out[:, :nrl] = y_r
            if grid is not None:
                off, l_row, l_col = grid
                rhs_c = r2[:, nrl:].copy()
                taps_r = y_r.reshape(b, rows, l_row)[:, :, off:]
                rhs_c.reshape(b, cols, l_col)[:, :, :rows] -= (
                    c_grid * taps_r).transpose(0, 2, 1)
                rhs_c = rhs_c.ravel()
            elif distinct:
                rhs_c = r2[:, nrl:].copy()
                rhs_c[:, c_idx] -= c_val * y_r[:, r_idx]
                rhs_c = rhs_c.ravel()
            else:
                coupled = np.bincount(c_idx_b, weights=(c_val * y_r[:, r_idx]).ravel(),
                                      minlength=b * ncl)
                rhs_c = (r2[:, nrl:].ravel() - coupled)
        else:
            rhs_c = r2[:, nrl:].ravel()
        out[:, nrl:] = lapack.dpttrs(f_col[0], f_col[1], rhs_c)[0].reshape(b, ncl)
        return out.ravel()

    dx, ok, _ = _gmres(jac.dot, prec, rhs, opts.krylov_rtol, restart=40, max_iter=120,
                       reorthogonalise=not opts.fast)
    return dx if ok else None


@dataclass
class _Solved:
    v_all: np.ndarray
    cells: CellState
    iterations: int
    residual_a: np.ndarray  # (B,) max |KCL residual|
    methods: tuple[str, ...]


def _forcing(f: np.ndarray, first: bool, opts: _Options) -> float:
    """GMRES tolerance of one fast-path Newton step (inexact Newton; the outer test decides).

    The first step solves to :data:`_FAST_FIRST_RTOL`: its own nonlinearity error is larger.
    Later steps solve to ``0.01 abstol sqrt(n) / |F_k|_2``: the linear residual they leave
    has a 2-norm of at most ``0.01 abstol sqrt(n)``, 100x below the 2-norm of a residual of
    ``abstol`` at every node. That is a bound in 2-norm only: at a single node the linear
    residual can reach ``0.01 abstol sqrt(n)``, above ``abstol`` once n > 10^4, so it is a
    heuristic for how far GMRES need go, and convergence is decided by the outer test (every
    node's KCL residual and the update, as on the plain path). It loosens only the last steps,
    whose updates are far below the step tolerance. Bounded to ``[krylov_rtol, 1e-3]``: the
    user's ``krylov_rtol`` is the tightest tolerance a fast-path step uses, not the tolerance
    of every step.
    """
    if first:
        return max(opts.krylov_rtol, _FAST_FIRST_RTOL)
    f_norm = float(np.linalg.norm(f))
    target = 0.01 * opts.abstol_a * np.sqrt(f.size)
    loose = target / f_norm if f_norm > 0 else _FAST_MAX_RTOL
    return float(min(_FAST_MAX_RTOL, max(opts.krylov_rtol, loose)))


def _predict_v_m(ev: _Eval, g_cells: np.ndarray, v_new: np.ndarray,
                  topo: _Topology) -> np.ndarray:
    """First-order prediction of every cell's internal node at the new tap voltages.

    The cell solve's implicit-function derivatives (``dv_m/dv_r = 1 - (di_r/dv_r) / G``,
    ``dv_m/dv_c = -(di_r/dv_c) / G``) carry ``v_m`` along the Newton step, so the bracketed
    cell solve starts within the step's second order and takes 1-2 steps instead of 4-5
    (456 x 402 map, measured). For a cell without conductance ``1 / G`` is taken as 0, so its
    prediction moves with the row tap (``dv_m/dv_r = 1``): only a start, which the bracketed
    cell solve corrects.
    """
    c = ev.cells
    g = np.broadcast_to(g_cells, c.v_m.shape)
    inv_g = np.divide(1.0, g, out=np.zeros_like(c.v_m), where=g > 0)
    dvr = v_new[:, topo.cell_nr] - ev.v_all[:, topo.cell_nr]
    dvc = v_new[:, topo.cell_nc] - ev.v_all[:, topo.cell_nc]
    return c.v_m + (1.0 - c.dir_dvr * inv_g) * dvr - c.dir_dvc * inv_g * dvc


def _newton(topo: _Topology, dev: Level1Device, tia: _Tia, d: np.ndarray, g_cells: np.ndarray,
            g_phys_s: np.ndarray, opts: _Options, sense: _Sense) -> _Solved:
    """Newton-Raphson for a block of vectors; converged when both the KCL residual
    (``|F| <= reltol * sum|i| + abstol`` at every node) and the last update
    (``|dx| <= reltol |x| + vntol``, and the TIA output it implies) are below tolerance.

    ``opts.fast`` changes the path, not the test: the cells' internal nodes are predicted
    along each step (:func:`_predict_v_m`), assembly is by indexed addition, and each step's
    GMRES tolerance follows :func:`_forcing` instead of the fixed ``krylov_rtol``.
    """
    x = _initial_guess(topo, tia, d, g_phys_s, sense)
    v_m = None
    step_ok = False
    methods: list[str] = []
    ev = None
    for it in range(1, opts.max_iter + 1):
        ev = _evaluate(topo, dev, tia, x, d, g_cells, v_m, sense, fast=opts.fast)
        v_m = ev.cells.v_m
        if step_ok and bool(np.all(
                np.abs(ev.f) <= opts.reltol * _kcl_scale(topo, ev) + opts.abstol_a)):
            return _Solved(ev.v_all, ev.cells, it, np.abs(ev.f).max(axis=1, initial=0.0),
                           tuple(methods))
        step_opts = opts
        if opts.fast:
            step_opts = replace(opts, krylov_rtol=_forcing(ev.f, it == 1, opts))
        dx, method = _solve_linear(topo, ev, step_opts)
        methods.append(method)
        x_new = x + dx
        vt_old = x[:, topo.node_t]
        vt_lim, limited = tia.limit(vt_old, x_new[:, topo.node_t])
        vt_new = np.where(sense.mask, vt_lim, x_new[:, topo.node_t])  # floating ends: no TIA
        limited &= sense.mask
        x_new[:, topo.node_t] = vt_new
        dx = x_new - x
        v_o = tia.out(vt_new)
        unclipped = (tia.region(vt_new) == 0) & sense.mask
        dvo = np.where(unclipped, tia.a_ol * tia.r_f_ohm / tia.r_series_ohm, 0.0) * np.abs(
            vt_new - vt_old)
        step_ok = bool(
            np.all(np.abs(dx) <= opts.reltol * np.maximum(np.abs(x), np.abs(x_new))
                   + opts.vntol_v)
            and np.all(dvo <= opts.reltol * np.abs(v_o) + opts.vntol_v)
            and not limited.any()
        )
        if not np.all(np.isfinite(x_new)):
            raise ConvergenceError(
                f"The nodal Newton iteration produced non-finite node voltages at iteration "
                f"{it} (max KCL residual {float(np.abs(ev.f).max()):.3e} A). Check the "
                "conductances and the TIA parameters for extreme values.")
        if opts.fast:
            v_m = _predict_v_m(ev, g_cells, np.concatenate([x_new, d], axis=1), topo)
        x = x_new
    resid = float(np.abs(ev.f).max()) if ev is not None else float("nan")
    raise ConvergenceError(
        f"The nodal Newton iteration did not converge in {opts.max_iter} iterations "
        f"(max KCL residual {resid:.3e} A, reltol {opts.reltol:g}, abstol {opts.abstol_a:g} A). "
        "Raise NodalBackend.max_iter or loosen reltol; a TIA driven far past its rails or a "
        "wire resistance near the cell resistance converges slowest."
    )


# ---------------------------------------------------------------------------------------------
# Public API: solution, backend, bound tile
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodalSolution:
    """Every node of the canonical tile circuit for a batch of B input vectors.

    Shapes: R rows, P = 2K physical columns (column 2k is G+ of weight column k, 2k+1 its G-).
    Merged nodes repeat (e.g. with ``r_wire_ohm == 0`` every ``v_r[:, i, :]`` equals ``v_a``).

    Attributes
    ----------
    v_d, v_a : ndarray (B, R)
        DAC voltage and the row line's start behind the DAC's ``r_out`` (V).
    v_r, v_m, v_c : ndarray (B, R, P)
        Row tap, cell-internal node (RRAM / drain; NaN where G = 0) and column tap (V).
    v_t, v_x, v_o : ndarray (B, P)
        TIA input, B-source output and TIA output (V).
    i_cell_a : ndarray (B, R, P)
        Current from each cell's transistor into its column tap (A); 0 where G = 0.
    i_col_ua : ndarray (B, P)
        Column current into the TIA, ``(v_t - v_o) / R_f`` (uA).
    iterations : int
        Newton iterations (residual evaluations) of the slowest block this solve ran; an
        all-off vector served from the fast path's cache ran none (0 and an empty
        ``linear_solvers`` when every vector was).
    residual_a : ndarray (B,)
        Max |KCL residual| of each vector at the returned solution (A).
    linear_solvers : tuple of str
        The linear solver each Newton step of the slowest block used ("direct" or "krylov"),
        of the blocks this solve ran (see ``iterations``).
    fallbacks : int
        Blocks of vectors the fast Newton path did not converge on, solved again by the plain
        Newton (``NodalBackend.solve_path``); each also raises a ``RuntimeWarning``.
    """

    v_d: np.ndarray
    v_a: np.ndarray
    v_r: np.ndarray
    v_m: np.ndarray
    v_c: np.ndarray
    v_t: np.ndarray
    v_x: np.ndarray
    v_o: np.ndarray
    i_cell_a: np.ndarray
    i_col_ua: np.ndarray
    iterations: int
    residual_a: np.ndarray
    linear_solvers: tuple[str, ...]
    fallbacks: int = 0


_SOLVE_PATHS = ("fast", "plain")


@dataclass(frozen=True)
class NodalBackend:
    """Tile backend that solves the canonical tile circuit's DC operating point in scipy.

    Parameters
    ----------
    spec : TileSpec
        The tile; ``spec.mosfet.card`` must be ``"level1"``.
    reltol : float
        Relative tolerance of node updates and KCL residuals (ngspice's RELTOL is 1e-3; the
        default here is tight enough for 1e-6 agreement of TIA outputs).
    vntol_v : float
        Absolute voltage tolerance of node updates (V).
    abstol_a : float
        Absolute KCL residual tolerance (A).
    max_iter : int
        Newton iterations before :class:`ConvergenceError`.
    linear_solver : {"auto", "direct", "krylov"}
        Sparse LU (SuperLU) for each Newton step; GMRES with the block Gauss-Seidel chain
        preconditioner (falling back to LU for a step where it stalls); or "auto": LU below
        2,000 unknowns per vector, GMRES above.
    krylov_rtol : float
        GMRES relative tolerance per Newton step (inexact Newton; the outer test decides).
        With ``solve_path="plain"`` every step uses it. With ``solve_path="fast"`` (default) it
        is the tightest tolerance a step uses: the first step solves to ``max(krylov_rtol,
        1e-4)`` and later ones loosen, up to ``max(krylov_rtol, 1e-3)``, as the residual
        approaches what the convergence test accepts (:func:`_forcing`); set
        ``solve_path="plain"`` to hold every step to ``krylov_rtol``.
    max_block_unknowns : int
        Vectors solved together as one block-diagonal system, up to this many unknowns (batching
        cuts per-vector overhead on small tiles: 1.8 vs 6.1 ms per 32 x 32 vector, measured;
        neutral from 128 x 128 up).
    read_noise_sigma_us : float
        Per-read Gaussian conductance noise of each cell (uS, std), drawn from ``apply``'s rng
        and clipped at 0; 0 gives a deterministic solve.
    gmin_s : float
        GMIN across each transistor junction (ngspice's default ``.options gmin`` 1e-12 S).
    solve_path : {"fast", "plain"}
        ``"fast"``: identical input vectors of a solve are solved once, each cell's internal
        node is predicted along every Newton step, assembly is by indexed addition and the
        GMRES tolerance of each step follows what the step can gain (module doc, "Fast
        path"); a block it does not converge on is solved again by the plain path, counted in
        ``NodalSolution.fallbacks``. ``"plain"``: the Newton iteration without these. Both
        stop on the same convergence test.
    """

    spec: TileSpec = field(default_factory=TileSpec)
    reltol: float = 1e-10
    vntol_v: float = 1e-12
    abstol_a: float = 1e-15
    max_iter: int = 60
    linear_solver: str = "auto"
    krylov_rtol: float = 1e-8
    max_block_unknowns: int = 100_000
    read_noise_sigma_us: float = 0.0
    gmin_s: float = _NGSPICE_GMIN_S
    # the faster path by default; "plain" is kept to compare against and as the fallback
    solve_path: str = "fast"
    name: str = "nodal"

    def __post_init__(self) -> None:
        o = "NodalBackend"
        if not isinstance(self.spec, TileSpec):
            raise ConfigError(
                f"The 'spec' parameter of NodalBackend must be a TileSpec. Got "
                f"{type(self.spec).__name__}.")
        check_range(o, "reltol", self.reltol, 0, 1e-2, lo_open=True)
        check_range(o, "vntol_v", self.vntol_v, 0, 1e-3, lo_open=True, unit="V")
        check_range(o, "abstol_a", self.abstol_a, 0, 1e-6, lo_open=True, unit="A")
        check_int(o, "max_iter", self.max_iter, 2, 10_000)
        check_choice(o, "linear_solver", self.linear_solver, _LINEAR_SOLVERS)
        check_range(o, "krylov_rtol", self.krylov_rtol, 0, 0.5, lo_open=True)
        check_int(o, "max_block_unknowns", self.max_block_unknowns, 1, 10**9)
        check_range(o, "read_noise_sigma_us", self.read_noise_sigma_us, 0, 10, unit="uS")
        check_range(o, "gmin_s", self.gmin_s, 0, 1e-6, unit="S")
        check_choice(o, "solve_path", self.solve_path, _SOLVE_PATHS)
        level1_device(self.spec, self.gmin_s)  # rejects non-level-1 cards at construction

    def bind(self, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> BoundNodal:
        """Validate a differential pair (R x K, uS) and build its circuit topology."""
        return BoundNodal(self, g_pos_us, g_neg_us)


class BoundNodal:
    """A :class:`NodalBackend` bound to one differential conductance pair.

    ``g_phys_us`` (R x 2K) interleaves the pair: column 2k is G+, column 2k+1 is G-.

    Not thread-safe: a bound tile keeps state between calls (the fast path's cache of all-off
    reads, ``last_reads``, ``fallbacks_``); give each thread its own bound tile.
    """

    def __init__(self, backend: NodalBackend, g_pos_us: np.ndarray,
                 g_neg_us: np.ndarray) -> None:
        self.backend = backend
        self.spec = backend.spec
        self.g_pos_us, self.g_neg_us = check_pair(self.spec, g_pos_us, g_neg_us)
        r, k = self.g_pos_us.shape
        g = np.empty((r, 2 * k))
        g[:, 0::2] = self.g_pos_us
        g[:, 1::2] = self.g_neg_us
        self.g_phys_us = g
        self.dev_ = level1_device(self.spec, backend.gmin_s)
        self.tia_ = _Tia.of(self.spec)
        self.topology_ = _build_topology(g, self.spec)
        self._zero_codes: dict = {}  # a differential scheme's offset references (read.py)
        self.opts_ = _Options(backend.reltol, backend.vntol_v, backend.abstol_a,
                              backend.max_iter, backend.linear_solver, backend.krylov_rtol,
                              fast=backend.solve_path == "fast")
        # blocks the fast path handed to the plain one, over this bound tile's solves
        self.fallbacks_ = 0
        # the all-off read's one-vector solution per sensed mask (fast path, noise-free),
        # least recently used first, at most _OFF_CACHE_MASKS of them
        self._off_reads: OrderedDict[bytes, NodalSolution] = OrderedDict()
        # the solutions of the reads of the last apply (energy of a VMM read in groups)
        self.last_reads: tuple[NodalSolution, ...] = ()

    def solve(self, levels: np.ndarray, rng: np.random.Generator | None = None, *,
              volts: bool = False, sensed: np.ndarray | None = None,
              noisy: bool = True) -> NodalSolution:
        """Solve the circuit for input levels (B x R in [0, 1], or volts with ``volts=True``).

        ``rng`` is needed only with ``read_noise_sigma_us > 0`` and ``noisy`` (False: solve
        without the read noise, as a differential scheme's zero-input reference is read).
        ``sensed`` (bool, 2K) names the physical columns with a TIA in this read (None: all);
        the others float, their line open at the end node ``t`` (``v_x``, ``v_o`` and
        ``i_col_ua`` are 0 there).

        Raises
        ------
        ConfigError
            Inputs of the wrong shape or outside [0, 1], or a bad ``sensed`` mask.
        ConvergenceError
            Newton did not converge within ``max_iter`` (iterations and residual in the message).
        """
        topo = self.topology_
        lv = input_levels(levels, self.spec, topo.n_rows, volts, allow_empty=True)
        sense = _Sense.of(check_sensed(sensed, topo.n_phys), topo.col_empty)
        d_all = dac_volts(lv, self.spec)
        n_b = d_all.shape[0]
        sigma = self.backend.read_noise_sigma_us if noisy else 0.0
        need_rng("NodalBackend", sigma, rng)
        if self.opts_.fast and sigma == 0 and n_b > 0:
            return self._solve_shared(d_all, sense)
        return self._solve_dac(d_all, rng, sense, sigma)

    def _solve_shared(self, d_all: np.ndarray, sense: _Sense) -> NodalSolution:
        """Noise-free solve with every distinct input vector solved once, and the all-off
        vector once per bound tile and sensed mask (a read whose row group is all off is that
        circuit whatever the group; the last :data:`_OFF_CACHE_MASKS` masks are kept)."""
        # -0.0 and 0.0 drive the same circuit: one key for both
        d_all = np.ascontiguousarray(d_all + 0.0)
        # rows as opaque byte strings: np.unique(axis=0) builds a structured dtype of one field
        # per row entry, 60 ms for a 456-row batch (measured), this costs microseconds
        keys = d_all.view(np.dtype((np.void, d_all.dtype.itemsize * d_all.shape[1]))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        uniq = d_all[first]
        off = ~uniq.any(axis=1)
        parts: list[tuple[np.ndarray, NodalSolution]] = []
        fallbacks = 0
        solved: list[NodalSolution] = []  # the Newton solves of this call
        if off.any():
            key = sense.mask.tobytes()
            cached = self._off_reads.get(key)
            if cached is None:
                cached = self._solve_dac(np.zeros((1, d_all.shape[1])), None, sense, 0.0)
                fallbacks += cached.fallbacks
                solved.append(cached)
                self._off_reads[key] = cached
                if len(self._off_reads) > _OFF_CACHE_MASKS:
                    self._off_reads.popitem(last=False)
            else:
                self._off_reads.move_to_end(key)
            # one off vector at most among the distinct ones: the cached row is its solution
            parts.append((np.flatnonzero(off), cached))
        if not off.all():
            sol = self._solve_dac(uniq[~off], None, sense, 0.0)
            parts.append((np.flatnonzero(~off), sol))
            fallbacks += sol.fallbacks
            solved.append(sol)
        fields = ("v_d", "v_a", "v_r", "v_m", "v_c", "v_t", "v_x", "v_o", "i_cell_a",
                  "i_col_ua", "residual_a")
        merged: dict[str, np.ndarray] = {}
        for name in fields:
            arr = np.empty((uniq.shape[0], *getattr(parts[0][1], name).shape[1:]))
            for idx, sol in parts:
                arr[idx] = getattr(sol, name)
            merged[name] = arr[inverse.ravel()]
        slowest = max(solved, key=lambda sol: sol.iterations, default=None)
        return NodalSolution(**merged, iterations=slowest.iterations if slowest else 0,
                             linear_solvers=slowest.linear_solvers if slowest else (),
                             fallbacks=fallbacks)

    def _solve_dac(self, d_all: np.ndarray, rng: np.random.Generator | None,
                   sense: _Sense, sigma: float) -> NodalSolution:
        """:meth:`solve` for DAC voltages (B x R), in blocks of ``max_block_unknowns``, with
        read noise of ``sigma`` uS."""
        topo = self.topology_
        n_b = d_all.shape[0]
        g_phys_s = self.g_phys_us * 1e-6
        chunk = max(1, self.backend.max_block_unknowns // max(topo.n, 1))
        r, p = topo.n_rows, topo.n_phys
        out = {k: np.empty((n_b, r)) for k in ("v_d", "v_a")}
        out.update({k: np.empty((n_b, r, p)) for k in ("v_r", "v_m", "v_c", "i_cell_a")})
        out.update({k: np.empty((n_b, p)) for k in ("v_t", "v_x", "v_o", "i_col_ua")})
        resid = np.empty(n_b)
        slowest: _Solved | None = None
        fallbacks = 0
        # BLAS threads as models.blas says (one by default: the solve's calls are short
        # matrix-vector products that a second thread slows down on busy cores)
        with blas_limit():
            for start in range(0, n_b, chunk):
                d = d_all[start: start + chunk]
                g_cells = np.broadcast_to(topo.cell_g_s, (d.shape[0], topo.cell_g_s.size))
                if sigma > 0:
                    g_cells = np.maximum(
                        g_cells + 1e-6 * sigma * rng.standard_normal(g_cells.shape), 0.0)
                try:
                    res = _newton(topo, self.dev_, self.tia_, d, g_cells, g_phys_s,
                                  self.opts_, sense)
                except ConvergenceError as err:
                    if not self.opts_.fast:
                        raise
                    fallbacks += 1
                    self.fallbacks_ += 1
                    warnings.warn(
                        f"The fast nodal Newton path did not converge on a block of "
                        f"{d.shape[0]} vector(s) ({err}); the plain Newton path solves it.",
                        RuntimeWarning, stacklevel=3)
                    res = _newton(topo, self.dev_, self.tia_, d, g_cells, g_phys_s,
                                  replace(self.opts_, fast=False), sense)
                if slowest is None or res.iterations > slowest.iterations:
                    slowest = res
                self._store(out, slice(start, start + d.shape[0]), res, sense.mask)
                resid[start: start + d.shape[0]] = res.residual_a
        return NodalSolution(**out, iterations=slowest.iterations if slowest else 0,
                             residual_a=resid,
                             linear_solvers=slowest.methods if slowest else (),
                             fallbacks=fallbacks)

    def _store(self, out: dict[str, np.ndarray], sl: slice, res: _Solved,
               sensed: np.ndarray) -> None:
        """Scatter one block's solution into the node arrays of :class:`NodalSolution`."""
        topo = self.topology_
        b = sl.stop - sl.start
        r, p = topo.n_rows, topo.n_phys
        v = res.v_all
        out["v_d"][sl] = v[:, topo.n:]
        out["v_a"][sl] = v[:, topo.node_a]
        out["v_r"][sl] = v[:, topo.node_r]
        out["v_c"][sl] = v[:, topo.node_c]
        vm = np.full((b, r * p), np.nan)
        vm[:, topo.cell_flat] = res.cells.v_m
        out["v_m"][sl] = vm.reshape(b, r, p)
        ic = np.zeros((b, r * p))
        ic[:, topo.cell_flat] = res.cells.i_c_a
        out["i_cell_a"][sl] = ic.reshape(b, r, p)
        v_t = v[:, topo.node_t]
        out["v_t"][sl] = v_t
        out["v_x"][sl] = np.where(sensed, self.tia_.x(v_t), 0.0)
        v_o = self.tia_.out(v_t)
        out["v_o"][sl] = np.where(sensed, v_o, 0.0)
        out["i_col_ua"][sl] = np.where(sensed, (v_t - v_o) / self.tia_.r_f_ohm * 1e6, 0.0)

    def apply(self, x: np.ndarray, rng: np.random.Generator, *,
              volts: bool = False) -> TileOutput:
        """Apply a batch (B x R) and return outputs (B x K), read as ``spec.read`` says.

        :func:`~rram_cosim.models.tile.read.scheme_apply` runs the reads of one VMM (row
        groups, floating column groups) through :meth:`_read` and adds their codes and
        currents; a differential read subtracts the solved TIA outputs.
        """
        lv = input_levels(x, self.spec, self.g_pos_us.shape[0], volts)
        need_rng("NodalBackend", self.backend.read_noise_sigma_us, rng)
        self.last_reads = ()
        return scheme_apply(self.spec, lv, rng, self._read, self.g_pos_us.shape[1],
                            zero_read=functools.partial(self._read, log=False),
                            zero_cache=self._zero_codes)

    def _read(self, lv: np.ndarray, rng: np.random.Generator | None, rows: slice,
              sensed: np.ndarray | None, log: bool = True) -> TileOutput:
        """One read: the rows in ``rows`` at their levels, the others at 0 V (their cells
        still on the columns); columns not in ``sensed`` float.

        Codes come from the solved ``v(o)`` via
        :func:`~rram_cosim.models.tile.periphery.adc_codes`; currents are
        ``(v(t) - v(o)) / R_f`` in uA; ``y`` is the code difference times
        :func:`~rram_cosim.models.tile.backend.code_y_scale`; ``v_pos_v``/``v_neg_v`` are the
        solved TIA outputs. Unsensed columns report zero current and code. ``log``: keep the
        solution in ``last_reads`` (the reads whose energy a VMM draws).
        """
        driven = np.zeros_like(lv)
        driven[:, rows] = lv[:, rows]
        # rng None: noise off, or the differential reference read (apply refuses None when
        # the noise is on)
        sol = self.solve(driven, rng, sensed=sensed, noisy=rng is not None)
        if log:
            self.last_reads = (*self.last_reads, sol)
        codes = adc_codes(sol.v_o, self.spec)
        if sensed is not None:
            codes = np.where(sensed, codes, 0)
        cp, cn = codes[:, 0::2], codes[:, 1::2]
        y = (cp - cn).astype(np.float64) * code_y_scale(self.spec)
        return TileOutput(y=y, i_pos_ua=sol.i_col_ua[:, 0::2], i_neg_ua=sol.i_col_ua[:, 1::2],
                          codes_pos=cp, codes_neg=cn, v_pos_v=sol.v_o[:, 0::2],
                          v_neg_v=sol.v_o[:, 1::2])
