"""Reads in which a TIA leaves its linear range: found on the surrogate's prediction, solved exactly.

Inside its linear range (:func:`~rram_cosim.models.tile.periphery.tia_linear_range_ua`) a TIA is
the closed-loop conductance to its virtual ground that the surrogate's linear network holds. A
column current beyond it clips the op-amp's output: the column's virtual ground is lost, its
taps rise and the array's currents redistribute, so the columns next to it read wrong too
(166 codes, 1.0 % of full scale, on the columns inside the calibrated domain in the measured
case of docs/tile.md, "A TIA past its linear range"). Clipping the output alone
gets the clipped column's code right (the ADC clips first) but not its neighbours'.

So the surrogate flags every read whose predicted currents reach the range (less a margin of
:data:`MARGIN_LSB` codes, the surrogate's own worst-case error scale) and solves those reads
again with the nonlinear network of :mod:`~rram_cosim.models.tile.network`, each clipped TIA
replaced by ``R_f + r_out`` to its rail (the nodal engine's model), by an active-set iteration
on which TIAs clip. For the level-1 card this is the circuit's own equations, so those reads
are exact (to the chord iteration's 1e-13 V); what a clipped read costs is an operating point
(0.1 s at 64 x 128 physical, ~3 s at 456 x 402).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..params import TileSpec
from .network import CellModel, Terminations, tia_currents
from .periphery import current_lsb_ua, tia_linear_range_ua

__all__ = ["MARGIN_LSB", "clip_state", "clipped_out_v", "leaves_linear_range", "solve_clipped"]

#: Predicted currents this many ADC codes inside the linear range count as leaving it: the
#: surrogate's held-out error reaches a few codes (the bars allow 8 LSB RMS), and a read that
#: clips by less than that barely moves its neighbours.
MARGIN_LSB = 8.0

_MAX_ROUNDS = 32  # active-set rounds; a clip set settles in 2-3 (measured)
# A clipped column's taps rise by a tenth of a volt, where the access transistors' tangent is
# further from the chord's zero-bias one, so the iteration gains fewer digits a step
_MAX_CHORD_STEPS = 200


def clip_state(i_ua: np.ndarray, spec: TileSpec, margin_ua: float = 0.0) -> np.ndarray:
    """Clip state of every TIA (-1: output at the low rail, the column sinking more than the
    range; +1: at the high rail; 0: linear) for column currents ``i_ua`` (..., P)."""
    lo, hi = tia_linear_range_ua(spec)
    return np.where(i_ua > hi - margin_ua, -1, np.where(i_ua < lo + margin_ua, 1, 0)).astype(
        np.int8)


def leaves_linear_range(i_ua: np.ndarray, spec: TileSpec,
                        sensed: np.ndarray | None = None) -> np.ndarray:
    """(B,) bool: reads whose predicted currents ``i_ua`` (B x P) reach a TIA's linear range
    less :data:`MARGIN_LSB` codes on a sensed column."""
    st = clip_state(i_ua, spec, MARGIN_LSB * current_lsb_ua(spec))
    if sensed is not None:
        st = st * sensed
    return (st != 0).any(axis=1)


def clipped_out_v(v_tia: np.ndarray, i_ua: np.ndarray, state: np.ndarray,
                  spec: TileSpec) -> np.ndarray:
    """TIA output voltages with the clipped ones corrected: ``v_tia`` from the linear TIA
    model (which puts a clipped output at the swing limit), replaced where ``state`` is
    nonzero by the rail plus the drop on ``r_out`` (``v_o = x + I r_out``, as the circuit)."""
    t = spec.tia
    rail = np.where(state < 0, t.v_out_min_v, t.v_out_max_v)
    return np.where(state != 0, rail + np.asarray(i_ua) * 1e-6 * t.r_out_ohm, v_tia)


def solve_clipped(g_s: np.ndarray, model: CellModel, term: Terminations, spec: TileSpec,
                  d: np.ndarray, sensed: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Exact column currents (m x P, uA) of reads ``d`` (m x R, DAC volts) with clipping TIAs,
    and the final clip state of every TIA (m x P; see :func:`clip_state`).

    The first round solves every read with no TIA clipped (the ordinary operating point, which
    the chord iteration solves best); each round then sets each TIA's state from its input
    voltage (inside the op-amp's unclipped window or not, as the nodal engine's TIA regions)
    and solves again the reads whose set changed (reads that share a set share one chord
    factorisation), until none changes. Starting from the linear model's guess instead made the
    chord iteration crawl where the surrogate's prediction, not the circuit, crossed the range
    (0.5 V reads on a 0.7 V word line: 40 steps without reaching 1e-13 V).
    """
    t = spec.tia
    a = t.a_ol
    w_lo, w_hi = t.v_offset_v - t.v_out_max_v / a, t.v_offset_v - t.v_out_min_v / a
    g_clip = float(term.g_clip_s)
    mask = np.ones(g_s.shape[1], dtype=bool) if sensed is None else np.asarray(sensed)
    state = np.zeros((d.shape[0], g_s.shape[1]), dtype=np.int8)
    out = np.zeros(state.shape)
    pending = np.arange(d.shape[0])
    for _ in range(_MAX_ROUNDS):
        if pending.size == 0:
            return out, state
        sets, which = np.unique(state[pending], axis=0, return_inverse=True)
        still = []
        for k, st in enumerate(sets):
            idx = pending[which.ravel() == k]
            i_a = tia_currents(g_s, model, term, d[idx], sensed=sensed, clipped=st,
                               max_iter=_MAX_CHORD_STEPS)
            # the TIA input voltage, from the current through the column's termination
            v_in = np.where(st < 0, term.v_clip_lo_v + i_a / g_clip,
                            np.where(st > 0, term.v_clip_hi_v + i_a / g_clip,
                                     term.v_t0_v + i_a / term.g_tia_s))
            new = np.where(v_in > w_hi, -1, np.where(v_in < w_lo, 1, 0)) * mask
            ok = (new == st).all(axis=1)
            out[idx[ok]] = i_a[ok] * 1e6
            state[idx] = new
            still.append(idx[~ok])
        pending = np.concatenate(still)
    raise ConfigError(
        f"The clipped TIAs of {pending.size} read(s) did not settle in {_MAX_ROUNDS} rounds. "
        "The map drives its columns far beyond the TIA range; lower the conductances or "
        "lower the feedback resistor TileSpec.tia.r_f_ohm (a higher current full scale).")
