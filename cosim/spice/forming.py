"""Forming in ngspice: a sample of cells, several independent cells a deck, in parallel.

The cells get the per-cell values the numpy twin uses (:func:`rram_cosim.models.device.breakdown.
cell_values` of the same draws), so the two can be compared cell by cell
(:func:`compare_with_twin`). Decks run through :func:`rram_cosim.cosim.spice.pool.run_decks`
(process pool, disk cache keyed by the deck's hash).

Failures: a deck that fails, or whose result is implausible (a conductance that is not finite,
negative, or far above what the cell's compliance allows), is re-run cell by cell with ten
times finer steps; a cell that still fails is recorded in :attr:`SpiceForming.failures` (its
conductance NaN) and the sweep goes on. ngspice's own convergence remedies are switched off
here: the last of them loosens reltol to 1e-2, which makes forming transients silently wrong.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...models.checks import check_int
from ...models.device.breakdown import CellValues, gate_voltage_v
from ...models.errors import ConfigError
from ...models.params import IO_NMOS_25V, BreakdownParams, FormingConditions
from ...netlists.forming import (
    DEFAULT_TOLERANCES,
    FormingTolerances,
    compliance_deck,
    forming_deck,
)
from .errors import NgspiceNotFoundError, NgspiceVersionError, SimulationError
from .pool import run_decks
from .runner import RunOptions, SimResult, run_deck

__all__ = [
    "CellFailure",
    "SpiceForming",
    "compare_with_twin",
    "sample_indices",
    "simulate_cells",
    "spice_gate_voltage_v",
]

_RETRY_STEP_FACTOR = 0.1  # a failing cell is re-run alone with 10x finer largest step


@dataclass(frozen=True)
class CellFailure:
    """A cell whose SPICE forming failed twice (in its group deck and alone)."""

    cell: int  # position in the values passed to simulate_cells
    error: str  # exception type, or "implausible"
    message: str  # first line of the error


@dataclass(frozen=True)
class SpiceForming:
    """SPICE forming results of N cells.

    Attributes
    ----------
    g_us : numpy.ndarray, shape (N,)
        Conductance after the pulse, uS (pristine leakage included); NaN for failed cells.
    formed : numpy.ndarray of bool, shape (N,)
        The damage reached the cell's threshold during the simulation (False if failed).
    damage : numpy.ndarray, shape (N,)
        Final damage state (NaN if failed).
    failures : tuple of CellFailure
        Cells that failed also when re-run alone.
    retried : tuple of int
        Cells that were re-run alone (their group deck failed or was implausible).
    wall_time_s : float
        Wall time of the whole call, s.
    n_decks : int
        Decks run (first pass and retries).
    n_cached : int
        Decks served from the cache.
    """

    g_us: np.ndarray
    formed: np.ndarray
    damage: np.ndarray
    failures: tuple[CellFailure, ...]
    retried: tuple[int, ...]
    wall_time_s: float
    n_decks: int
    n_cached: int

    @property
    def ok(self) -> np.ndarray:
        """True where the cell has a result."""
        return np.isfinite(self.g_us)


def sample_indices(shape: tuple[int, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct flat cell indices of an array of ``shape``, in increasing order."""
    size = int(np.prod(shape))
    check_int("sample_indices", "n", n, 1, size,
              hint=f"The array has {size} cells; ask for at most that many.")
    return np.sort(rng.choice(size, size=n, replace=False))


def _subset(values: CellValues, idx: np.ndarray) -> CellValues:
    return CellValues(values.w_damage[idx], values.dvt_v[idx], values.tau_growth_s[idx])


def _g_bound_us(values: CellValues, params: BreakdownParams, cond: FormingConditions
                ) -> np.ndarray:
    """Generous upper bound of each cell's conductance: 2x its level-1 saturation current /
    v_hold (at least 10 mS for other cards)."""
    m = cond.mosfet
    vov = np.maximum(gate_voltage_v(params, cond) - m.vto_v - values.dvt_v, 0.0)
    isat = 0.5 * m.kp_a_per_v2 * m.w_m / m.l_m * vov**2 * (1.0 + m.lambda_per_v * cond.v_form_v)
    bound = 2.0 * isat / params.v_hold_v * 1e6 + 10.0 * params.g_pristine_us
    if m.card != "level1":
        # a BSIM or PDK card carries its own current at this gate voltage: only absurd
        # values (above 10 mS, or negative) count as failures
        bound = np.maximum(bound, 1e4)
    return bound


def _read(result: SimResult | BaseException, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    if isinstance(result, BaseException):
        return None
    try:
        g = np.array([result.vectors[f"v(xg{k})"][-1] for k in range(n)], dtype=np.float64)
        d = np.array([result.vectors[f"v(xd{k})"][-1] for k in range(n)], dtype=np.float64)
    except (KeyError, IndexError):
        return None
    return g, d


def simulate_cells(values: CellValues, params: BreakdownParams, cond: FormingConditions, *,
                   cells_per_deck: int = 4,
                   tolerances: FormingTolerances = DEFAULT_TOLERANCES,
                   options: RunOptions | None = None, n_workers: int | None = None,
                   cache: bool = True, cache_dir: str | Path | None = None,
                   progress: bool = False) -> SpiceForming:
    """Form N cells in ngspice.

    Parameters
    ----------
    values : CellValues
        1-D per-cell values (length N), e.g. ``cell_values(draws.take(idx), params, mosfet)``.
    params : BreakdownParams
        The compact model.
    cond : FormingConditions
        The forming operation.
    cells_per_deck : int
        Independent cells simulated in one deck (4 ran fastest per cell on ngspice 39; more
        cells share every time step any of them needs).
    tolerances : FormingTolerances
        Transient settings of the decks.
    options : RunOptions, optional
        Runner options (batch or shared mode, run folder, timeout); ``retry`` is forced off
        (see module docstring).
    n_workers : int, optional
        Worker processes (default: the CPUs available).
    cache, cache_dir : bool, str or Path
        Disk cache of :func:`~rram_cosim.cosim.spice.pool.run_decks`.
    progress : bool
        Show a progress bar.

    Returns
    -------
    SpiceForming
    """
    t0 = time.perf_counter()
    n = int(np.asarray(values.w_damage).size)
    if np.asarray(values.w_damage).ndim != 1 or n == 0:
        raise ConfigError(f"simulate_cells needs 1-D per-cell values with at least one cell. "
                          f"Got shape {np.shape(values.w_damage)}.")
    check_int("simulate_cells", "cells_per_deck", cells_per_deck, 1, 256)
    opts = dataclasses.replace(options or RunOptions(), retry=False)
    bound = _g_bound_us(values, params, cond)
    g = np.full(n, np.nan)
    dmg = np.full(n, np.nan)
    groups = [np.arange(i, min(i + cells_per_deck, n)) for i in range(0, n, cells_per_deck)]
    kw: dict[str, Any] = {"n_workers": n_workers, "cache": cache, "cache_dir": cache_dir,
                          "progress": progress, "on_error": "return"}

    def run(group_list: list[np.ndarray], tol: FormingTolerances
            ) -> tuple[list[tuple[np.ndarray, str, str]], int]:
        decks = [forming_deck(_subset(values, gi), params, cond, tolerances=tol)
                 for gi in group_list]
        results = run_decks(decks, opts, **kw)
        for res in results:
            # no ngspice (or too old a one), or a file system error (an unwritable cache, a
            # full disk): nothing can run, so it is not a cell's failure
            if isinstance(res, (NgspiceNotFoundError, NgspiceVersionError)) or (
                    isinstance(res, OSError) and not isinstance(res, SimulationError)):
                raise res
        bad: list[tuple[np.ndarray, str, str]] = []
        cached = 0
        for gi, res in zip(group_list, results):
            cached += int(getattr(res, "from_cache", False))
            got = _read(res, gi.size)
            if got is None:
                err = res if isinstance(res, BaseException) else None
                bad.append((gi, type(err).__name__ if err else "SimulationError",
                            str(err).split("\n")[0] if err else "missing state vectors"))
                continue
            gg, dd = got
            g_tot = gg + params.g_pristine_us
            ok = np.isfinite(g_tot) & (gg > -1e-6 * bound[gi]) & (g_tot <= bound[gi])
            if not np.all(ok):
                bad.append((gi, "implausible",
                            (f"final conductance {g_tot[~ok][0]:g} uS outside [0, "
                             f"{bound[gi][~ok][0]:g}] uS")))
                continue
            g[gi], dmg[gi] = g_tot, dd
        return bad, cached

    bad, n_cached = run(groups, tolerances)
    n_decks = len(groups)
    retried: list[int] = []
    failures: list[CellFailure] = []
    if bad:
        singles = [np.array([k]) for gi, _, _ in bad for k in gi]
        retried = [int(s[0]) for s in singles]
        fine = dataclasses.replace(tolerances,
                                   max_step_factor=tolerances.max_step_factor
                                   * _RETRY_STEP_FACTOR)
        still, c2 = run(singles, fine)
        n_decks += len(singles)
        n_cached += c2
        failures = [CellFailure(int(gi[0]), err, msg) for gi, err, msg in still]
    formed = np.isfinite(dmg) & (dmg >= np.asarray(values.w_damage))
    return SpiceForming(g_us=g, formed=formed, damage=dmg, failures=tuple(failures),
                        retried=tuple(retried), wall_time_s=time.perf_counter() - t0,
                        n_decks=n_decks, n_cached=n_cached)


def spice_gate_voltage_v(params: BreakdownParams, cond: FormingConditions,
                         options: RunOptions | None = None) -> float:
    """Gate voltage at which ``cond.mosfet``'s card carries ``cond.i_cc_a`` in ngspice, V.

    For a level-1 card this equals :func:`rram_cosim.models.device.breakdown.gate_voltage_v`; for a
    BSIM or PDK card it is how the target compliance is set on the SPICE side (the twin keeps
    its level-1 gate). With ``cond.v_gate_v`` given, that voltage is returned unchanged.
    """
    if cond.v_gate_v is not None:
        return float(cond.v_gate_v)
    res = run_deck(compliance_deck(params, cond), options or RunOptions(retry=False))
    vg = np.asarray(res.vectors["v(v-sweep)"], dtype=np.float64)
    i_d = -np.asarray(res.vectors["i(vds)"], dtype=np.float64)
    target = float(cond.i_cc_a)
    above = np.flatnonzero(i_d >= target)
    if above.size == 0 or above[0] == 0:
        raise ConfigError(
            f"The {cond.mosfet.card} select transistor cannot carry i_cc_a={target:g} A at "
            f"gate voltages in (0, {vg[-1]:g}] V (it carries {i_d[0]:.3g}..{i_d.max():.3g} A). "
            "Choose a compliance current in that range."
            + (" The bundled ptm45 card is a 1.0 V core device: at a drain bias of "
               f"{cond.v_form_v - params.v_hold_v:g} V it is far outside its rating; forming at "
               "this voltage needs an I/O device (card level1 with IO_NMOS_25V, or a custom "
               "card)." if cond.mosfet.card == "ptm45" else ""))
    k = int(above[0])
    # between the bracketing points sqrt(I) is nearly linear in the gate (exactly, for a
    # square-law device in saturation)
    r = np.sqrt(np.maximum(i_d[k - 1:k + 1], 0.0))
    return float(np.interp(np.sqrt(target), r, vg[k - 1:k + 1]))


def compare_with_twin(spice: SpiceForming, twin_g_us: np.ndarray,
                      twin_formed: np.ndarray) -> dict[str, float]:
    """Per-cell agreement of SPICE and twin on cells both formed.

    Returns
    -------
    dict
        ``n_compared``, ``median_rel_diff``, ``p90_rel_diff``, ``max_rel_diff`` (``|G_spice -
        G_twin| / G_spice``), ``n_formed_mismatch`` (cells formed in one and not the other)
        and ``n_failed``.
    """
    tg = np.asarray(twin_g_us, dtype=np.float64).ravel()
    tf = np.asarray(twin_formed, dtype=bool).ravel()
    ok = spice.ok
    both = ok & spice.formed & tf
    rel = np.abs(spice.g_us[both] - tg[both]) / np.abs(spice.g_us[both])
    nan = float("nan")
    return {
        "n_compared": int(both.sum()),
        "median_rel_diff": float(np.median(rel)) if rel.size else nan,
        "p90_rel_diff": float(np.quantile(rel, 0.9)) if rel.size else nan,
        "max_rel_diff": float(rel.max()) if rel.size else nan,
        "n_formed_mismatch": int(np.count_nonzero(ok & (spice.formed != tf))),
        "n_failed": int(np.count_nonzero(~ok)),
    }


def pulse_conditions(cfg: Any, i_cc_a: float) -> FormingConditions:
    """FormingConditions of a form / fit-device config (fields v_form, t_pulse, t_edge, t_step,
    card) at compliance ``i_cc_a``; forming uses the 2.5 V I/O select transistor."""
    return FormingConditions(v_form_v=cfg.v_form, t_pulse_s=cfg.t_pulse, i_cc_a=i_cc_a,
                             t_edge_s=cfg.t_edge, t_step_s=cfg.t_step,
                             mosfet=dataclasses.replace(IO_NMOS_25V, card=cfg.card))
