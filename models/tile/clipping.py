"""Reads in which a TIA leaves its linear range: found on the surrogate's prediction, solved exactly.

Inside its linear range (:func:`~rram_cosim.models.tile.periphery.tia_linear_range_ua`) a TIA is
the closed-loop conductance to its virtual ground that the surrogate's linear network holds. A
column current beyond it clips the op-amp's output: the column's virtual ground is lost, its
taps rise and the array's currents redistribute, so the columns next to it read wrong too
(166 codes, 1.0 % of full scale, on the columns inside the calibrated domain in the measured
case of docs/tile.md, "A TIA past its linear range"). Clipping the output alone
gets the clipped column's code right (the ADC clips first) but not its neighbours'.

So the surrogate flags every read whose predicted currents reach the range (less a margin in
uA, twice the surrogate's stored worst-case error: :func:`margin_ua`) and solves those reads
again with the nonlinear network of :mod:`~rram_cosim.models.tile.network`, each clipped TIA
replaced by ``R_f + r_out`` to its rail (the nodal engine's model), by an active-set iteration
on which TIAs clip. For the level-1 card this is the circuit's own equations, so those reads
are exact (to the chord iteration's 1e-13 V); what a clipped read costs is an operating point
(the reads of one clip set share its chord factorisation and are solved together).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import AccuracyWarning, ConfigError
from ..params import TileSpec
from .network import CellModel, Terminations, tia_currents
from .periphery import tia_linear_range_ua

__all__ = ["RESOLVED_WARN_SHARE", "ReadTally", "clip_state", "clipped_out_v",
           "leaves_linear_range", "margin_ua", "solve_clipped", "tally_reads"]

#: A task warns when more than this share of its surrogate reads were solved exactly: each
#: costs an operating point, and so many reads past the TIA range mean the ADC range or R_f
#: is set too tight for the workload.
RESOLVED_WARN_SHARE = 0.01


@dataclass
class ReadTally:
    """Surrogate reads seen inside :func:`tally_reads`, and how many were solved exactly."""

    reads: int = 0
    resolved: int = 0

    def summary(self) -> dict[str, Any]:
        """What a task's summary records: the counts and the share solved exactly."""
        return {"surrogate_reads": self.reads, "reads_solved_exactly": self.resolved,
                "share_solved_exactly": self.resolved / self.reads if self.reads else 0.0}

    def warn(self, task: str) -> None:
        """Warn (:class:`AccuracyWarning`) when the share solved exactly exceeds
        :data:`RESOLVED_WARN_SHARE`."""
        if self.reads and self.resolved > RESOLVED_WARN_SHARE * self.reads:
            warnings.warn(
                f"{task}: {self.resolved} of {self.reads} surrogate reads "
                f"({100 * self.resolved / self.reads:.2g} %) drove a TIA past its linear range "
                "and were solved exactly (slow, one operating point each). The ADC full scale "
                "is too tight for this workload: use a larger full scale (--adc-range corner, "
                "or a smaller R_f).", AccuracyWarning, stacklevel=2)


_TALLIES: list[ReadTally] = []


@contextlib.contextmanager
def tally_reads() -> Iterator[ReadTally]:
    """Count the surrogate reads (and those solved exactly) made inside the block."""
    t = ReadTally()
    _TALLIES.append(t)
    try:
        yield t
    finally:
        _TALLIES.remove(t)


def count_reads(reads: int, resolved: int) -> None:
    """Add a batch of reads to every open :func:`tally_reads` (``BoundSurrogate`` calls it)."""
    for t in _TALLIES:
        t.reads += reads
        t.resolved += resolved


#: Predicted currents within this many times the surrogate's worst-case held-out error (its
#: largest current error over the corner families, in uA) of the TIA's linear range count as
#: leaving it: the prediction can be off by that much, and a read that clips by less barely
#: moves its neighbours.
MARGIN_WORST = 2.0
#: The margin's floor, as a fraction of the linear range's largest current.
MARGIN_FLOOR = 1e-3
#: The margin when the surrogate carries no worst case (no held-out check): the bars' largest
#: error, 0.5 %, of the linear range's largest current.
MARGIN_UNKNOWN = 5e-3

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


def margin_ua(spec: TileSpec, worst_max_ua: float | None) -> float:
    """Margin (uA) inside the TIA's linear range at which a predicted current counts as
    leaving it: :data:`MARGIN_WORST` times the surrogate's worst-case error ``worst_max_ua``
    (None: unknown, :data:`MARGIN_UNKNOWN` of the range), at least :data:`MARGIN_FLOOR` of the
    range. In currents, so independent of the ADC's resolution."""
    span = max(abs(v) for v in tia_linear_range_ua(spec))
    if worst_max_ua is None:
        return MARGIN_UNKNOWN * span
    return max(MARGIN_WORST * float(worst_max_ua), MARGIN_FLOOR * span)


def leaves_linear_range(i_ua: np.ndarray, spec: TileSpec, sensed: np.ndarray | None = None,
                        margin: float | None = None) -> np.ndarray:
    """(B,) bool: reads whose predicted currents ``i_ua`` (B x P) reach a TIA's linear range
    less ``margin`` uA (None: :func:`margin_ua` with the worst case unknown) on a sensed
    column."""
    st = clip_state(i_ua, spec, margin_ua(spec, None) if margin is None else margin)
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
    factorisation and are solved together), until none changes. Starting unclipped keeps the
    chord iteration fast where only the surrogate's prediction, not the circuit, crossed the
    range.
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
