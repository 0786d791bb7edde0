"""The ngspice tile backend: every VMM is a DC solution of the canonical tile circuit.

``SpiceBackend(spec).bind(g_pos_us, g_neg_us)`` validates and keeps a differential map;
``apply(x, rng)`` writes one deck per block of input vectors
(:func:`rram_cosim.netlists.tile.tile_deck`: a ``.dc`` sweep of the batch index, so a block
costs one ngspice start and one matrix ordering), runs the blocks on a local process pool with
a disk cache (:func:`rram_cosim.cosim.spice.pool.run_decks`) and reads the TIA outputs and the
deck's own ADC codes. Like the other backends, ``y = (codes_pos - codes_neg) *
code_y_scale(spec)`` and column currents are ``(v(t) - v(o)) / R_f`` in uA.

Energy per VMM (:class:`ReadEnergy`), from the DC solution held for ``spec.t_read_s``:

- DAC drivers: ``sum_i v(d_i) * I_i``, the power the row sources deliver (array dissipation,
  wire and transistor losses included);
- TIA quiescent: ``-(v_pos * i(vdd) + v_neg * i(vss))``, measured on the supply sources, which
  carry the ``i_q_a`` current source of every TIA;
- TIA output stage: the TIA output sinks each column current into ``vss`` (or sources it from
  ``vdd`` when negative), so its supply draws ``|v_neg| I`` (or ``v_pos |I|``). The canonical
  circuit's B-source output is referenced to ground, so this term is computed from the solved
  column currents rather than read from the supplies.

ngspice is deterministic: ``apply`` ignores ``rng`` (read noise is not part of the deck; the
ideal and nodal backends add it). Results that converged only with the runner's
``loose_tolerances`` remedy (reltol 1e-2) are rejected: they are not calibration grade.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...models.checks import check_int
from ...models.errors import ConfigError
from ...models.params import TileSpec
from ...models.tile.backend import TileOutput, check_pair, code_y_scale, input_levels
from ...models.tile.read import scheme_apply
from ...netlists.deck import Deck
from ...netlists.tile import SimTolerances, tile_deck
from .errors import ConvergenceError
from .pool import run_decks
from .runner import RunOptions, SimResult

__all__ = ["BoundSpice", "ReadEnergy", "SpiceBackend", "SpiceSolution", "read_energy",
           "solution_from_vectors"]

_REJECTED_REMEDIES = ("loose_tolerances",)


@dataclass(frozen=True)
class ReadEnergy:
    """Supply energy of each VMM over one read of ``t_read_s`` (arrays of shape (B,), J)."""

    t_read_s: float
    dac_j: np.ndarray
    tia_quiescent_j: np.ndarray
    tia_output_j: np.ndarray

    @property
    def tia_j(self) -> np.ndarray:
        """TIA supply energy: quiescent plus output stage (J, shape (B,))."""
        return self.tia_quiescent_j + self.tia_output_j

    @property
    def total_j(self) -> np.ndarray:
        """DAC driver plus TIA supply energy (J, shape (B,))."""
        return self.dac_j + self.tia_j


@dataclass(frozen=True)
class SpiceSolution:
    """What ngspice solved for a batch of B input vectors (P = 2K physical columns, R rows).

    Attributes
    ----------
    v_d : ndarray (B, R)
        DAC (row) voltages, V.
    i_dac_a : ndarray (B, R)
        Current each DAC delivers into its row, A (positive when sourcing).
    v_t, v_o : ndarray (B, P)
        TIA input and output voltages, V.
    codes : ndarray (B, P), int64
        ADC codes computed by the deck's quantisers.
    i_col_ua : ndarray (B, P)
        Column currents into the TIAs, ``(v_t - v_o) / R_f``, uA.
    energy : ReadEnergy
        Supply energy per VMM.
    remedies : tuple of (str or None)
        The runner's convergence remedy of each deck (None: converged as written).
    v_diff, codes_diff : ndarray (B, K) or None
        Differential sensing: the deck's subtractor outputs (V) and bipolar ADC codes (0 for
        weight columns not sensed in this read); None for single-ended decks.

    Columns a read leaves floating have no TIA: their ``v_o``, ``codes`` and ``i_col_ua`` are
    0 and ``v_t`` is the open line end's voltage (0 for a floating column without cells).
    """

    v_d: np.ndarray
    i_dac_a: np.ndarray
    v_t: np.ndarray
    v_o: np.ndarray
    codes: np.ndarray
    i_col_ua: np.ndarray
    energy: ReadEnergy
    remedies: tuple[str | None, ...] = ()
    v_diff: np.ndarray | None = None
    codes_diff: np.ndarray | None = None

    def output(self, spec: TileSpec) -> TileOutput:
        """The backend-protocol output of one read: G+ columns are the even physical columns;
        ``v_pos_v``/``v_neg_v`` are the solved TIA outputs."""
        cp, cn = self.codes[:, 0::2], self.codes[:, 1::2]
        y = (cp - cn).astype(np.float64) * code_y_scale(spec)
        return TileOutput(y=y, i_pos_ua=self.i_col_ua[:, 0::2],
                          i_neg_ua=self.i_col_ua[:, 1::2], codes_pos=cp, codes_neg=cn,
                          v_pos_v=self.v_o[:, 0::2], v_neg_v=self.v_o[:, 1::2])


def read_energy(spec: TileSpec, v_d: np.ndarray, i_dac_a: np.ndarray, i_col_a: np.ndarray,
                p_quiescent_w: np.ndarray) -> ReadEnergy:
    """Supply energy of each VMM over ``spec.t_read_s`` (see the module docstring).

    Parameters
    ----------
    v_d, i_dac_a : ndarray (B, R)
        DAC voltages (V) and the currents they deliver into their rows (A).
    i_col_a : ndarray (B, P)
        Column currents into the TIAs (A).
    p_quiescent_w : ndarray (B,)
        TIA quiescent supply power (W).
    """
    t = spec.tia
    p_dac = np.einsum("br,br->b", v_d, i_dac_a)
    # The output sinks a positive column current into vss, sources a negative one from vdd.
    p_out = (-t.v_neg_v * np.clip(i_col_a, 0.0, None)
             + t.v_pos_v * np.clip(-i_col_a, 0.0, None)).sum(axis=1)
    return ReadEnergy(t_read_s=spec.t_read_s, dac_j=p_dac * spec.t_read_s,
                      tia_quiescent_j=np.asarray(p_quiescent_w) * spec.t_read_s,
                      tia_output_j=p_out * spec.t_read_s)


def _stack(vectors: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.stack([np.asarray(vectors[n], dtype=np.float64) for n in names], axis=-1)


def _stack_or_zero(vectors: dict[str, np.ndarray], nm: Mapping[str, str], key: str,
                   count: int) -> np.ndarray:
    """Vectors ``key[0..count-1]`` of the node map; 0 where the deck has no such node."""
    n_pts = np.asarray(next(iter(vectors.values()))).shape
    cols = [np.asarray(vectors[nm[f"{key}[{j}]"]], dtype=np.float64) if f"{key}[{j}]" in nm
            else np.zeros(n_pts) for j in range(count)]
    return np.stack(cols, axis=-1)


def solution_from_vectors(spec: TileSpec, deck: Deck, vectors: dict[str, np.ndarray],
                          rows: int, phys_cols: int) -> SpiceSolution:
    """Read a tile deck's result vectors (``SimResult.vectors``) into a :class:`SpiceSolution`.

    Parameters
    ----------
    spec : TileSpec
        The tile the deck was built for.
    deck : Deck
        The deck (its ``node_map`` names the vectors).
    vectors : dict of str to ndarray
        ngspice vectors, each of shape (B,).
    rows, phys_cols : int
        R and P of the deck.
    """
    nm = deck.node_map
    v_d = _stack(vectors, [nm[f"dac[{i}]"] for i in range(rows)])
    # a row driven from both ends: both DACs deliver at the same voltage
    i_dac = -_stack(vectors, [nm[f"i_dac[{i}]"] for i in range(rows)]) - _stack_or_zero(
        vectors, nm, "i_dac_e", rows)
    v_t = _stack_or_zero(vectors, nm, "tia_in", phys_cols)
    v_o = _stack_or_zero(vectors, nm, "tia_out", phys_cols)
    q = _stack_or_zero(vectors, nm, "adc", phys_cols)
    codes = np.rint(q).astype(np.int64)
    sensed = np.array([f"tia_out[{j}]" in nm for j in range(phys_cols)])
    i_col_a = np.where(sensed, (v_t - v_o) / spec.r_f_ohm, 0.0)
    v_diff = codes_diff = None
    if spec.read.differential:
        v_diff = _stack_or_zero(vectors, nm, "diff", phys_cols // 2)
        codes_diff = np.rint(_stack_or_zero(vectors, nm, "adc_diff", phys_cols // 2)
                             ).astype(np.int64)
    t = spec.tia
    i_vdd = np.asarray(vectors[nm["i_vdd"]], dtype=np.float64)
    i_vss = np.asarray(vectors[nm["i_vss"]], dtype=np.float64)
    p_q = -(t.v_pos_v * i_vdd + t.v_neg_v * i_vss)
    energy = read_energy(spec, v_d, i_dac, i_col_a, p_q)
    return SpiceSolution(v_d=v_d, i_dac_a=i_dac, v_t=v_t, v_o=v_o, codes=codes,
                         i_col_ua=i_col_a * 1e6, energy=energy, v_diff=v_diff,
                         codes_diff=codes_diff)


def _concat(parts: list[SpiceSolution], t_read_s: float) -> SpiceSolution:
    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts], axis=0)

    def ecat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p.energy, name) for p in parts])

    def ocat(name: str) -> np.ndarray | None:
        return None if getattr(parts[0], name) is None else cat(name)

    energy = ReadEnergy(t_read_s=t_read_s, dac_j=ecat("dac_j"),
                        tia_quiescent_j=ecat("tia_quiescent_j"),
                        tia_output_j=ecat("tia_output_j"))
    return SpiceSolution(v_d=cat("v_d"), i_dac_a=cat("i_dac_a"), v_t=cat("v_t"),
                         v_o=cat("v_o"), codes=cat("codes"), i_col_ua=cat("i_col_ua"),
                         energy=energy,
                         remedies=tuple(r for p in parts for r in p.remedies),
                         v_diff=ocat("v_diff"), codes_diff=ocat("codes_diff"))


@dataclass(frozen=True)
class SpiceBackend:
    """Tile backend that runs every VMM in ngspice.

    Parameters
    ----------
    spec : TileSpec
        Tile, transistor card and periphery.
    run_options : RunOptions
        How each deck runs (executable, batch/shared mode, run folder, timeout, retries).
    max_vectors_per_deck : int
        Input vectors per deck (one ``.dc`` sweep point each). A deck pays one matrix
        ordering (seconds at 64x64 with ngspice's Sparse 1.3) and then ~4 Newton steps per
        vector, so larger decks amortise better; batches are also split so every worker
        gets a deck.
    n_workers : int or None
        Worker processes for :func:`run_decks`; None: the CPUs this process may use.
    cache : bool
        Read and write the deck-hash disk cache (identical decks are not rerun).
    cache_dir : str or None
        Cache folder; None: :func:`rram_cosim.cosim.spice.pool.default_cache_dir`.
    tolerances : SimTolerances
        ngspice convergence tolerances written into every deck.
    progress : bool
        Show the pool's progress bar.
    """

    spec: TileSpec = field(default_factory=TileSpec)
    run_options: RunOptions = field(default_factory=RunOptions)
    max_vectors_per_deck: int = 64
    n_workers: int | None = None
    cache: bool = True
    cache_dir: str | None = None
    tolerances: SimTolerances = field(default_factory=SimTolerances)
    progress: bool = False
    name: str = "spice"

    def __post_init__(self) -> None:
        o = "SpiceBackend"
        if not isinstance(self.spec, TileSpec):
            raise ConfigError(f"The 'spec' parameter of {o} must be a TileSpec. Got "
                              f"{type(self.spec).__name__}.")
        if not isinstance(self.run_options, RunOptions):
            raise ConfigError(f"The 'run_options' parameter of {o} must be a RunOptions. Got "
                              f"{type(self.run_options).__name__}.")
        check_int(o, "max_vectors_per_deck", self.max_vectors_per_deck, 1, 100_000)
        if self.n_workers is not None:
            check_int(o, "n_workers", self.n_workers, 1, 4096)

    def bind(self, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> BoundSpice:
        """Validate a differential pair (R x K, uS) against the tile and keep it."""
        return BoundSpice(self, g_pos_us, g_neg_us)


class BoundSpice:
    """A :class:`SpiceBackend` bound to one differential conductance pair.

    ``last_solution`` keeps the most recent :meth:`solve` result (the last read of the last
    :meth:`apply`), ``last_reads`` every read of the last :meth:`apply`, so the energy of the
    last batch is at hand: :attr:`last_energy_j` (summed over the reads of each VMM).
    """

    def __init__(self, backend: SpiceBackend, g_pos_us: np.ndarray,
                 g_neg_us: np.ndarray) -> None:
        self.backend = backend
        self.spec = backend.spec
        self.g_pos_us, self.g_neg_us = check_pair(self.spec, g_pos_us, g_neg_us)
        self.last_solution: SpiceSolution | None = None
        self.last_reads: tuple[SpiceSolution, ...] = ()
        self._zero_codes: dict = {}  # a differential scheme's offset references (read.py)

    @property
    def last_energy_j(self) -> np.ndarray | None:
        """Supply energy (DAC + TIA) of each VMM of the last batch, J, shape (B,): the sum
        over the reads of each VMM."""
        if not self.last_reads:
            return None
        return np.sum([r.energy.total_j for r in self.last_reads], axis=0)

    def _blocks(self, n: int) -> list[np.ndarray]:
        b = self.backend
        workers = b.n_workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                  else (os.cpu_count() or 1))
        n_decks = max(math.ceil(n / b.max_vectors_per_deck), min(workers, n))
        return [a for a in np.array_split(np.arange(n), n_decks) if a.size]

    def decks(self, levels: np.ndarray, sensed: np.ndarray | None = None) -> list[Deck]:
        """The decks :meth:`solve` runs for validated levels (B x R in [0, 1]), in order."""
        return [tile_deck(self.spec, self.g_pos_us, self.g_neg_us, levels[idx], sensed=sensed,
                          tolerances=self.backend.tolerances)
                for idx in self._blocks(levels.shape[0])]

    def solve(self, x: np.ndarray, *, volts: bool = False,
              sensed: np.ndarray | None = None) -> SpiceSolution:
        """Run ngspice for a batch of inputs (one read) and return the solved periphery nodes.

        Parameters
        ----------
        x : ndarray, shape (B, R) or (R,)
            Input levels in [0, 1] (1 = ``v_read_v``), or volts with ``volts=True``.
        sensed : ndarray of bool, shape (2K,), or None
            Physical columns with a TIA in this read (None: all); the others float.

        Raises
        ------
        ConfigError
            Inputs of the wrong shape, non-finite or out of range.
        SimulationError
            ngspice failed (subclasses say how), or converged only with loose tolerances.
        """
        rows, k = self.g_pos_us.shape
        levels = input_levels(x, self.spec, rows, volts)
        if levels.shape[0] == 0:
            raise ConfigError("apply/solve needs at least one input vector. Got an empty "
                              f"batch of shape {levels.shape}.")
        b = self.backend
        decks = self.decks(levels, sensed)
        results: list[SimResult] = run_decks(
            decks, b.run_options, n_workers=b.n_workers, cache_dir=b.cache_dir,
            cache=b.cache, progress=b.progress)
        parts = []
        for deck, res in zip(decks, results):
            if res.remedy in _REJECTED_REMEDIES:
                raise ConvergenceError(
                    f"The tile deck converged only with the runner's {res.remedy!r} remedy "
                    "(reltol 1e-2), too coarse for ADC-code accuracy. Check the map and "
                    "inputs (conductances far above g_full_scale_us saturate the TIAs).",
                    deck_path=Path(res.run_dir) / "deck.cir" if res.run_dir else None)
            part = solution_from_vectors(self.spec, deck, res.vectors, rows, 2 * k)
            parts.append(dataclasses.replace(part, remedies=(res.remedy,)))
        sol = parts[0] if len(parts) == 1 else _concat(parts, self.spec.t_read_s)
        self.last_solution = sol
        self.last_reads = (sol,)
        return sol

    def apply(self, x: np.ndarray, rng: np.random.Generator | None = None, *,
              volts: bool = False) -> TileOutput:
        """Apply a batch (B x R) and return outputs (B x K); ``rng`` is unused (deterministic).

        :func:`~rram_cosim.models.tile.read.scheme_apply` runs the reads of ``spec.read``
        through :meth:`_read` (one set of decks per read) and adds their codes. Single-ended
        codes are the deck's ADC outputs; ``y = (codes_pos - codes_neg) * code_y_scale``.
        """
        rows = self.g_pos_us.shape[0]
        levels = input_levels(x, self.spec, rows, volts)
        reads: list[SpiceSolution] = []
        out = scheme_apply(self.spec, levels, rng,
                           lambda lv, r, rs, se: self._read(lv, r, rs, se, reads),
                           self.g_pos_us.shape[1], zero_read=self._read,
                           zero_cache=self._zero_codes)
        self.last_reads = tuple(reads)
        return out

    def _read(self, lv: np.ndarray, rng: np.random.Generator | None, rows: slice,
              sensed: np.ndarray | None,
              log: list[SpiceSolution] | None = None) -> TileOutput:
        """One read: the rows in ``rows`` at their levels, the others at 0 V; columns not in
        ``sensed`` float. ``rng`` is unused."""
        driven = np.zeros_like(lv)
        driven[:, rows] = lv[:, rows]
        sol = self.solve(driven, sensed=sensed)
        if log is not None:
            log.append(sol)
        return sol.output(self.spec)
