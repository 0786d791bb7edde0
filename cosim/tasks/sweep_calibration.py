"""A sweep point's surrogate calibration, cut into tasks: a plan, the solves, the fit.

A point's surrogate is calibrated on the nodal engine: a few maps (formed-like, one uniform over
the conductance domain, the corner), each driven by ``cal_vectors`` input vectors. The solves
are the work (about 1.5 s a vector on the 456x201 macro on one core); they are independent of
each other, so the sweep's executor runs them as separate tasks, a chunk of vectors of one map
each, on as many workers as it has, and only the fit (a second) waits for all of them.

:func:`calibrate` does the same steps in one process, in the same chunks: a surrogate is the
same whether its solves ran as tasks or in a row. At the macro's size, with resistive wires,
each vector is a Newton block of its own in the nodal engine (more unknowns than
``max_block_unknowns``), so the chunks also equal one solve of the whole batch bitwise; on
small maps (or without wire resistance) several vectors share a block and a chunked solve
differs from a one-batch solve within the Newton tolerance (1e-14 relative measured).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from ...models.params import BreakdownParams, TileSpec
from ...models.tile.surrogate import CalibrationSample, TileSurrogate
from ..engines.calibrate import (
    calibration_inputs,
    corner_map,
    energy_summary,
    fit_surrogate,
    full_scale_spec,
    simulate_with_energy,
    with_idle,
)
from ..engines.registry import make_backend
from ..spice.backend import ReadEnergy
from .seeds import derive_seed

__all__ = ["CHUNK_VECTORS", "CalibrationPlan", "ChunkSolve", "calibrate", "fit_calibration",
           "plan_calibration", "solve_chunk"]

#: Vectors per solve task: a map of 16 vectors (15 and the idle one) in four tasks, about 5 s
#: each on the macro: long enough that a task's overhead (pickling a 1.5 MB map,
#: about 10 ms) is noise, short enough that a point's solves spread over a dozen workers.
CHUNK_VECTORS = 4


@dataclass(frozen=True)
class CalibrationPlan:
    """What a calibration solves: the spec (R_f set to the corner's full scale), the maps and
    their input vectors. ``key`` names the surrogate in the cache."""

    key: str
    spec: TileSpec
    i_full_scale_ua: float
    domain: tuple[float, float, float, float]
    maps: tuple[tuple[np.ndarray, np.ndarray], ...]
    inputs: tuple[np.ndarray, ...]
    cal_vectors: int
    plan_s: float

    def chunks(self) -> list[tuple[int, int, int]]:
        """The solve tasks as (map index, first vector, end vector), maps in order."""
        out = []
        for m, x in enumerate(self.inputs):
            n = x.shape[0]
            cuts = np.linspace(0, n, -(-n // CHUNK_VECTORS) + 1).round().astype(int)
            out += [(m, int(a), int(b)) for a, b in itertools.pairwise(cuts)]
        return out


@dataclass(frozen=True)
class ChunkSolve:
    """The nodal engine's column currents (uA) and read energy of one chunk of vectors."""

    i_pos_ua: np.ndarray
    i_neg_ua: np.ndarray
    energy: ReadEnergy | None
    wall_s: float


def plan_calibration(spec: TileSpec, domain: tuple[float, float, float, float], cal_maps: int,
                     cal_vectors: int, key: str) -> CalibrationPlan:
    """Set the full scale on the corner map and draw the calibration maps and inputs.

    Maps: formed-like ones at the domain's mean and spread (``cal_maps - 1``, at least one),
    one uniform over the domain (from two maps on), and the corner; each gets ``cal_vectors``
    input vectors, the first of them the idle one (all rows off). Everything is drawn from a seed of ``key``.
    """
    lo, hi, mean, std = domain
    t0 = time.perf_counter()
    rng = np.random.default_rng(derive_seed("calibration", key))
    shape = (spec.rows, spec.cols)
    spec, i_fs = full_scale_spec(spec, lambda s: make_backend("nodal", s), shape, rng)
    maps = [(np.clip(rng.normal(mean, std, shape), lo, hi),
             np.clip(rng.normal(mean, std, shape), lo, hi))
            for _ in range(max(cal_maps - 1, 1))]
    if cal_maps > 1:
        maps.append((rng.uniform(lo, hi, shape), rng.uniform(lo, hi, shape)))
    maps.append(corner_map(shape, spec))
    inputs = [with_idle(calibration_inputs(spec.rows, cal_vectors - 1, rng)) for _ in maps]
    return CalibrationPlan(key=key, spec=spec, i_full_scale_ua=i_fs, domain=domain,
                           maps=tuple(maps), inputs=tuple(inputs), cal_vectors=cal_vectors,
                           plan_s=time.perf_counter() - t0)


def solve_chunk(spec: TileSpec, g_pos_us: np.ndarray, g_neg_us: np.ndarray,
                x: np.ndarray) -> ChunkSolve:
    """Solve one chunk of input vectors ``x`` on one map with the nodal engine (noise-free:
    the generator is never drawn from)."""
    t0 = time.perf_counter()
    samples, energies = simulate_with_energy(make_backend("nodal", spec), [(g_pos_us, g_neg_us)],
                                             [x], np.random.default_rng(0))
    return ChunkSolve(samples[0].i_pos_ua, samples[0].i_neg_ua, energies[0],
                      time.perf_counter() - t0)


def fit_calibration(plan: CalibrationPlan, solves: list[ChunkSolve]) -> TileSurrogate:
    """Fit the surrogate on the solved chunks (in :meth:`CalibrationPlan.chunks` order)."""
    chunks = plan.chunks()
    if len(solves) != len(chunks):
        raise ValueError(f"{len(solves)} solved chunks for a plan of {len(chunks)}")
    samples = []
    for m, ((gp, gn), x) in enumerate(zip(plan.maps, plan.inputs)):
        mine = [s for (mi, _, _), s in zip(chunks, solves) if mi == m]
        samples.append(CalibrationSample(gp, gn, x,
                                         np.concatenate([s.i_pos_ua for s in mine]),
                                         np.concatenate([s.i_neg_ua for s in mine])))
    lo, hi = plan.domain[:2]
    sur = fit_surrogate(plan.spec, samples,
                        read_noise_sigma_us=BreakdownParams().read_noise_sigma_us,
                        provenance={"reference": "nodal", "n_maps": len(plan.maps),
                                    "n_vectors": plan.cal_vectors, "domain_us": [lo, hi],
                                    "i_full_scale_ua": plan.i_full_scale_ua,
                                    "sweep_key": plan.key})
    # chunk by chunk: the energy fit sees the same rows in the same order as one batch
    sur.energy_ = energy_summary(plan.spec, [s.energy for s in solves],
                                 [plan.inputs[m][a:b] for m, a, b in chunks])
    return sur


def calibrate(spec: TileSpec, domain: tuple[float, float, float, float], cal_maps: int,
              cal_vectors: int, key: str) -> tuple[TileSurrogate, float]:
    """Plan, solve and fit in this process; returns the surrogate and the time (s)."""
    t0 = time.perf_counter()
    plan = plan_calibration(spec, domain, cal_maps, cal_vectors, key)
    solves = [solve_chunk(plan.spec, *plan.maps[m], plan.inputs[m][a:b])
              for m, a, b in plan.chunks()]
    return fit_calibration(plan, solves), time.perf_counter() - t0
