"""Calibration of the tile surrogate on circuit-level simulations, and its error table.

A calibration set is a few conductance maps drawn across the device's range (formed maps from
the device model, one map uniform over [g_min, g_full_scale]), each driven by spike-like
sparse binary inputs over the whole density range (all rows off and all rows on included),
plus the corner case of every cell at ``g_full_scale_us`` with all rows on. A reference
engine (``spice``: ngspice; ``nodal``: the scipy engine, equal to ngspice to 1e-12) simulates
them; the surrogate is fitted on them and its error is measured on maps and inputs not used in
fitting.

Full scale. Unless the TileSpec fixes ``tia.r_f_ohm``, :func:`calibrate_tile` sets the TIA
feedback resistor so that the largest column current of the calibration set (the corner)
lands on the ADC's full scale: one LSB is then one code of that 14-bit ADC, the tile's
error unit (docs/tile.md). The nominal rule of :class:`TileSpec` (rows x v_read x g_full_scale) ignores
IR drop, which at 512 rows with 5 ohm wires would leave three quarters of the codes unused.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ...models.checks import check_choice, check_int, check_range
from ...models.device.conductance import differential_pair
from ...models.errors import AccuracyWarning, ConfigError
from ...models.params import DeviceParams, LIFParams, TileSpec
from ...models.snn.lsm import run_reservoir
from ...models.tile.backend import BoundTile, TileBackend, TileOutput, ideal_codes
from ...models.tile.periphery import adc_codes, current_lsb_ua, dac_volts, tia_out_v
from ...models.tile.surrogate import CalibrationSample, DriveProfile, TileSurrogate
from ..spice.backend import ReadEnergy, read_energy
from .held_out import ErrorBars, family_errors, rms_max, structured_cases, worst_case
from .registry import REFERENCES, make_backend

__all__ = [
    "TASK_FAMILIES",
    "CalibrationResult",
    "DriveRun",
    "Workload",
    "bind_for_workload",
    "calibrate_tile",
    "calibration_inputs",
    "calibration_maps",
    "check_families",
    "corner_map",
    "energy_summary",
    "error_table",
    "fit_surrogate",
    "full_scale_spec",
    "probe_workload",
    "record_drive",
    "simulate",
    "simulate_with_energy",
    "with_full_scale",
    "with_idle",
    "workload_full_scale_ua",
]


def calibration_inputs(rows: int, n_vectors: int, rng: np.random.Generator) -> np.ndarray:
    """Binary inputs (n_vectors x rows): densities spread over (0, 1], last vector all on."""
    check_int("calibration_inputs", "rows", rows, 1)
    check_int("calibration_inputs", "n_vectors", n_vectors, 1)
    dens = np.linspace(1.0 / rows, 1.0, n_vectors)
    x = (rng.random((n_vectors, rows)) < dens[:, None]).astype(np.float64)
    x[-1] = 1.0
    return x


def with_idle(x: np.ndarray) -> np.ndarray:
    """Inputs with an all-off vector first: the idle tile, where only the TIA offset drives
    (reverse) currents, so the calibrated densities start at 0."""
    return np.concatenate([np.zeros((1, x.shape[1])), x], axis=0)


def calibration_maps(shape: tuple[int, int], n_maps: int, rng: np.random.Generator,
                     device: DeviceParams, spec: TileSpec) -> list[tuple[np.ndarray, np.ndarray]]:
    """Formed-distribution maps, plus (from the second on) one spanning [g_min, full scale]."""
    maps = [differential_pair(shape, rng, device) for _ in range(max(n_maps - 1, 1))]
    if n_maps > 1:
        lo, hi = device.g_min_us, spec.g_full_scale_us
        maps.append((rng.uniform(lo, hi, shape), rng.uniform(lo, hi, shape)))
    return maps


def corner_map(shape: tuple[int, int], spec: TileSpec) -> tuple[np.ndarray, np.ndarray]:
    """Every cell at ``g_full_scale_us``: with all rows on, the largest column currents."""
    g = np.full(shape, spec.g_full_scale_us)
    return g, g.copy()


def _nodal_energy(spec: TileSpec, sol: Any) -> ReadEnergy:
    """Read energy of a nodal solution by the same rules as the ngspice backend's.

    The row current a DAC delivers equals the sum of its row's cell currents (the row line
    connects only the DAC and the cells); the quiescent supply current is ``i_q`` per TIA.
    """
    i_row = sol.i_cell_a.sum(axis=2)
    # a TIA draws its quiescent current only on a sensed column (a floating one has none: the
    # engine reports 0 V at its output)
    p = int(np.count_nonzero((sol.v_o != 0.0).any(axis=0)))
    t = spec.tia
    p_q = np.full(sol.v_d.shape[0], t.i_q_a * (t.v_pos_v - t.v_neg_v) * p)
    return read_energy(spec, sol.v_d, i_row, sol.i_col_ua * 1e-6, p_q)


def sum_energies(parts: list[ReadEnergy]) -> ReadEnergy:
    """Energy of a VMM read in several reads: each component summed over the reads."""
    return ReadEnergy(t_read_s=sum(p.t_read_s for p in parts),
                      dac_j=np.sum([p.dac_j for p in parts], axis=0),
                      tia_quiescent_j=np.sum([p.tia_quiescent_j for p in parts], axis=0),
                      tia_output_j=np.sum([p.tia_output_j for p in parts], axis=0))


def simulate_with_energy(reference: TileBackend, maps: list[tuple[np.ndarray, np.ndarray]],
                         inputs: list[np.ndarray], rng: np.random.Generator
                         ) -> tuple[list[CalibrationSample], list[ReadEnergy | None]]:
    """Run every (map, inputs) pair through the reference; keep the read energy where known.

    ngspice (:class:`rram_cosim.cosim.spice.backend.BoundSpice`) measures it on its supply
    sources; for the nodal engine it is computed from the solved node voltages and currents.
    """
    samples, energies = [], []
    for (gp, gn), x in zip(maps, inputs):
        bound = reference.bind(gp, gn)
        res = bound.apply(x, rng)
        # every read of the VMM (one per row group and floating column group) draws energy
        reads = getattr(bound, "last_reads", ())
        if getattr(reference, "name", "") == "nodal":
            parts = [_nodal_energy(reference.spec, s) for s in reads]
        else:
            parts = [s.energy for s in reads]
        energies.append(sum_energies(parts) if parts else None)
        samples.append(CalibrationSample(gp, gn, x, res.i_pos_ua, res.i_neg_ua))
    return samples, energies


def simulate(reference: TileBackend, maps: list[tuple[np.ndarray, np.ndarray]],
             inputs: list[np.ndarray], rng: np.random.Generator) -> list[CalibrationSample]:
    """Run every (map, inputs) pair through the reference backend."""
    out = []
    for (gp, gn), x in zip(maps, inputs):
        res = reference.bind(gp, gn).apply(x, rng)
        out.append(CalibrationSample(gp, gn, x, res.i_pos_ua, res.i_neg_ua))
    return out


@dataclass(frozen=True)
class ErrorRow:
    backend: str
    rms_lsb: float
    max_lsb: float
    rms_code_lsb: float
    max_code_lsb: float
    rms_pct_fs: float
    max_pct_fs: float


def error_table(spec: TileSpec, held_out: list[CalibrationSample],
                predictions: dict[str, list[tuple[np.ndarray, np.ndarray]]]) -> pd.DataFrame:
    """Error of each model's column currents against the reference, in ADC LSB and % of FS.

    ``predictions[name]`` holds, per held-out sample, the model's (i_pos_ua, i_neg_ua). Current
    error is measured before quantisation (in units of one LSB of current); code error after
    the TIA and ADC (the ideal model goes through the ideal TIA, as the ideal G.V model has none).
    Full scale is the ADC's ``2**bits`` codes: those of one read. With row groups a VMM's
    currents are sums over reads, which no single conversion sees, so the code columns are
    NaN there (the current error, in LSB of one read, is the measure).
    """
    lsb = current_lsb_ua(spec)
    multi_read = bool(held_out) and len(spec.read.row_groups(held_out[0].levels.shape[1])) > 1
    ref_i = np.concatenate([np.stack([s.i_pos_ua, s.i_neg_ua]).ravel() for s in held_out])
    ref_c = adc_codes(tia_out_v(ref_i, spec), spec)
    rows = []
    for name, preds in predictions.items():
        pi = np.concatenate([np.stack(p).ravel() for p in preds])
        pc = ideal_codes(pi, spec) if name == "ideal" else adc_codes(tia_out_v(pi, spec), spec)
        rms, mx = rms_max((pi - ref_i) / lsb)
        c_rms, c_max = (np.nan, np.nan) if multi_read else rms_max((pc - ref_c).astype(float))
        n_codes = spec.adc.n_codes
        rows.append(ErrorRow(name, rms, mx, c_rms, c_max, rms / n_codes * 100,
                             mx / n_codes * 100).__dict__)
    return pd.DataFrame(rows)


def fit_surrogate(spec: TileSpec, samples: list[CalibrationSample], *,
                  read_noise_sigma_us: float, provenance: dict,
                  fit_transistor: bool | None = None) -> TileSurrogate:
    """Fit a :class:`TileSurrogate` on calibration samples (see :meth:`TileSurrogate.fit`)."""
    return TileSurrogate(spec=spec, read_noise_sigma_us=read_noise_sigma_us).fit(
        samples, provenance=provenance, fit_transistor=fit_transistor)


def full_scale_spec(spec: TileSpec, reference: Callable[[TileSpec], TileBackend],
                    shape: tuple[int, int], rng: np.random.Generator) -> tuple[TileSpec, float]:
    """Set R_f so the corner's largest column current in one read is the ADC full scale.

    The corner map read group by group: one vector per row group of the read scheme, that
    group on and the other rows at 0 V, each solved as a single read (every row group; the
    one nearest the TIAs draws most, the farthest loses most to the column IR drop).

    Returns the spec (unchanged if ``spec.tia.r_f_ohm`` is already given) and that current
    (uA). R_f hardly moves the currents themselves: the TIA input sees ``(R_f + r_o) / (1 + A)``,
    milliohms.
    """
    gp, gn = corner_map(shape, spec)
    groups = spec.read.row_groups(shape[0])
    x = np.zeros((len(groups), shape[0]))
    for k, (a, b) in enumerate(groups):
        x[k, a:b] = 1.0
    # each vector as one read of the whole array (a whole-map read of a partly driven map)
    single = dataclasses.replace(spec, read=dataclasses.replace(spec.read, rows_per_read=0,
                                                                 cols_per_read=0,
                                                                 sense="single"))
    res = reference(single).bind(gp, gn).apply(x, rng)
    i_max = float(max(res.i_pos_ua.max(), res.i_neg_ua.max()))
    if i_max <= 0:
        raise ConfigError(f"The corner map drew no column current ({i_max:g} uA); check "
                          "v_read_v and the transistor.")
    if spec.tia.r_f_ohm is not None:
        return spec, i_max
    return with_full_scale(spec, i_max), i_max


class _Probe:
    """A bound tile that records, for every VMM, its largest column current and mean drive,
    and keeps one drive vector of every batch (the k-th call keeps row k mod batch, so the
    kept vectors spread over samples and time steps), or all of them with ``keep_all``."""

    def __init__(self, tile: BoundTile, keep_all: bool = False) -> None:
        self.tile, self.spec = tile, tile.spec
        self.keep_all = keep_all
        self.g_pos_us, self.g_neg_us = tile.g_pos_us, tile.g_neg_us
        self.peaks_ua: list[np.ndarray] = []
        self.levels: list[np.ndarray] = []
        self.kept: list[np.ndarray] = []
        rows = tile.g_pos_us.shape[0]
        self.row_on = np.zeros(rows)
        self.row_sum = np.zeros(rows)
        self.row_max = np.zeros(rows)

    def apply(self, x: np.ndarray, rng: np.random.Generator, *,
              volts: bool = False) -> TileOutput:
        out = self.tile.apply(x, rng, volts=volts)
        lv = np.asarray(x, dtype=np.float64)
        if volts:
            lv = lv / self.spec.v_read_v
        self.peaks_ua.append(self._peaks(out, lv))
        self.levels.append(lv.mean(axis=1))
        self.kept.append(lv.copy() if self.keep_all
                         else lv[len(self.kept) % lv.shape[0]][None].copy())
        self.row_on += (lv > 0).sum(axis=0)
        self.row_sum += lv.sum(axis=0)
        self.row_max = np.maximum(self.row_max, lv.max(axis=0))
        return out


    def _peaks(self, out: TileOutput, lv: np.ndarray) -> np.ndarray:
        """Largest column current of one read per VMM: the ADC sees each read, not their sum.

        With several row groups per VMM the tile reports summed currents, so the per-read
        peak is the ideal ``G . V`` of each group (an upper bound of the circuit's)."""
        # row groups inside each tile's rows (a tiled map reads every tile on its own)
        step = min(self.spec.rows, lv.shape[1])
        groups = [(b0 + a, b0 + b) for b0 in range(0, lv.shape[1], step)
                  for a, b in self.spec.read.row_groups(min(step, lv.shape[1] - b0))]
        if len(groups) == 1:
            return np.maximum(out.i_pos_ua.max(axis=1), out.i_neg_ua.max(axis=1))
        v = lv * self.spec.v_read_v
        peak = np.zeros(lv.shape[0])
        for a, b in groups:
            for g in (self.g_pos_us, self.g_neg_us):
                peak = np.maximum(peak, (v[:, a:b] @ g[a:b]).max(axis=1))
        return peak


@dataclass(frozen=True)
class Workload:
    """What a reservoir asks of its tile, per VMM (from :func:`probe_workload`)."""

    peaks_ua: np.ndarray  # largest column current of each VMM (uA)
    levels: np.ndarray  # mean input level over the rows of each VMM (fraction of v_read)
    row_on_level: np.ndarray | None = None  # (R,) largest level each row was driven at
    row_p_on: np.ndarray | None = None  # (R,) fraction of VMMs that drove each row
    row_mean_level: np.ndarray | None = None  # (R,) mean level of each row over the VMMs
    drives: np.ndarray | None = None  # (m, R) some drive vectors, one per batch of VMMs

    def drive_profile(self, rng: np.random.Generator, n_samples: int = 16) -> DriveProfile:
        """The rows' drive statistics, for :meth:`TileSurrogate.with_drive`."""
        if self.row_on_level is None or self.row_mean_level is None or self.drives is None:
            raise ConfigError("This Workload has no per-row statistics; measure it with "
                              "probe_workload.")
        check_int("Workload.drive_profile", "n_samples", n_samples, 1)
        pick = rng.choice(len(self.drives), min(n_samples, len(self.drives)), replace=False)
        return DriveProfile(on_level=self.row_on_level, mean_level=self.row_mean_level,
                            samples=self.drives[np.sort(pick)])

    @property
    def mean_level(self) -> float:
        """Mean drive level: where a linearised surrogate is most accurate for this workload."""
        return float(self.levels.mean())

    def full_scale_ua(self, quantile: float = 0.999, margin: float = 1.1) -> float:
        """ADC full-scale current: ``margin`` x the ``quantile`` of the per-VMM peak currents.

        The default full scale (all rows on at ``g_full_scale_us``) never clips, but a
        reservoir drives a small fraction of its rows at once, so most of that range goes
        unused and a low-resolution ADC has only a few codes left for the currents that occur
        (measured: 8 bits on the 456x201 map left digits-events at 19 % accuracy). Currents
        above the returned value clip at the top code.
        """
        check_range("Workload.full_scale_ua", "quantile", quantile, 0, 1, lo_open=True)
        check_range("Workload.full_scale_ua", "margin", margin, 1, 100)
        i_fs = float(np.quantile(self.peaks_ua, quantile)) * margin
        if not np.isfinite(i_fs) or i_fs <= 0:
            raise ConfigError(
                f"The workload drew no column current (largest {self.peaks_ua.max():g} uA), so "
                "it cannot set the ADC range; check the inputs (all zero?) or use the corner "
                "range.")
        return i_fs


def probe_workload(tile: BoundTile, frames: np.ndarray, lif: LIFParams,
                   rng: np.random.Generator) -> Workload:
    """Run the reservoir on ``frames`` through ``tile`` and record what each VMM drew.

    Typically the ideal backend on training data: its currents bound the circuit's from above
    (the circuit loses some to IR drop).
    """
    probe = _Probe(tile)
    run_reservoir(probe, frames, lif, rng)
    return _workload(probe)


def _workload(probe: _Probe) -> Workload:
    """What a probe recorded, as a :class:`Workload`."""
    levels = np.concatenate(probe.levels)
    return Workload(np.concatenate(probe.peaks_ua), levels, row_on_level=probe.row_max,
                    row_p_on=probe.row_on / max(levels.size, 1),
                    row_mean_level=probe.row_sum / max(levels.size, 1),
                    drives=np.concatenate(probe.kept))


def record_drive(tile: BoundTile, frames: np.ndarray, lif: LIFParams,
                 rng: np.random.Generator) -> np.ndarray:
    """Every drive vector (levels, n_vmm x rows) a reservoir run on ``frames`` asks of
    ``tile``: the inputs to solve exactly when checking a tile model on that workload."""
    probe = _Probe(tile, keep_all=True)
    run_reservoir(probe, frames, lif, rng)
    return np.concatenate(probe.kept)


#: How a reservoir drives a bound map: (view of the bound map it reads, training frames, LIF).
#: The view is the identity for a classifier; an encoder of a shared map reads its own rows.
DriveRun = tuple[Callable[[BoundTile], BoundTile], np.ndarray, LIFParams]


def _surrogate_of(backend: Any) -> tuple[TileSurrogate, Callable[[TileSurrogate], Any]]:
    """The surrogate inside ``backend`` (itself, or the ``inner`` of dataclass wrappers such
    as ``TiledBackend``) and a function that rebuilds the wrapper around another one."""
    if isinstance(backend, TileSurrogate):
        return backend, lambda s: s
    inner = getattr(backend, "inner", None)
    if inner is not None and dataclasses.is_dataclass(backend):
        sur, wrap = _surrogate_of(inner)
        return sur, lambda s: dataclasses.replace(backend, inner=wrap(s))
    raise ConfigError(
        f"bind_for_workload linearises a TileSurrogate (alone or inside a TiledBackend). "
        f"Got {type(backend).__name__}; other backends need no linearisation: call "
        "backend.bind(g_pos_us, g_neg_us) instead.")


def bind_for_workload(backend: Any, g_pos_us: np.ndarray, g_neg_us: np.ndarray,
                      frames: np.ndarray | None, lif: LIFParams | None,
                      rng: np.random.Generator, *, n_samples: int = 16,
                      runs: list[DriveRun] | None = None) -> BoundTile:
    """Bind a map with the surrogate linearised for the reservoir's own drive.

    ``backend`` is a fitted surrogate, or a wrapper around one (``TiledBackend``: each row
    block then gets its rows' share of the profile). The reservoir runs once on ``frames``
    through the default (tangent) binding; the rows' measured drive
    (:meth:`Workload.drive_profile`, ``n_samples`` vectors solved exactly) then linearises the
    map (:meth:`TileSurrogate.with_drive`). On the 64 x 64 fidelity network: 0.0068 LSB RMS
    open-loop error against 0.068 for the tangent at the mean level and 0.173 at half the read
    voltage (``benchmarks/bench_linearise.py``).

    Several reservoirs on one map (the zero-shot encoders, each reading its own input rows and
    the shared recurrent rows): ``runs`` lists each one's view of the bound map, frames and
    LIF (``frames`` and ``lif`` are then None); every VMM of every run goes into one profile,
    so each row is linearised for the drive of the encoder(s) that use it.
    """
    sur, wrap = _surrogate_of(backend)
    if runs is None:
        if frames is None or lif is None:
            raise ConfigError("bind_for_workload needs the training frames and the LIF of the "
                              "reservoir, or runs=[(view, frames, lif), ...].")
        runs = [(lambda t: t, frames, lif)]
    # the probe runs on the plain surrogate: a profile it may carry belongs to another network
    probe = _Probe(wrap(sur.with_drive(None)).bind(g_pos_us, g_neg_us))
    for view, fr, lf in runs:
        run_reservoir(view(probe), fr, lf, rng)
    wl = _workload(probe)
    return wrap(sur.with_drive(wl.drive_profile(rng, n_samples))).bind(g_pos_us, g_neg_us)


def workload_full_scale_ua(tile: BoundTile, frames: np.ndarray, lif: LIFParams,
                           rng: np.random.Generator, *, quantile: float = 0.999,
                           margin: float = 1.1) -> float:
    """ADC full-scale current (uA) for a workload; see :meth:`Workload.full_scale_ua`."""
    return probe_workload(tile, frames, lif, rng).full_scale_ua(quantile, margin)


def with_full_scale(spec: TileSpec, i_full_scale_ua: float) -> TileSpec:
    """``spec`` with R_f chosen so ``i_full_scale_ua`` is the ADC full scale."""
    check_range("with_full_scale", "i_full_scale_ua", i_full_scale_ua, 0, 1e9, lo_open=True,
                unit="uA")
    r_f = spec.adc.v_full_scale_v / (i_full_scale_ua * 1e-6)
    return dataclasses.replace(spec, tia=dataclasses.replace(spec.tia, r_f_ohm=r_f))


def energy_summary(spec: TileSpec, energies: list[ReadEnergy | None],
                   inputs: list[np.ndarray]) -> dict[str, Any] | None:
    """Read energy per VMM over ``t_read_s``: means by component and a fit against activity.

    ``total ~ idle + per_active_row * sum(levels)`` by least squares (the array and TIA
    output energies scale with the driven rows; the TIA quiescent part does not).
    """
    pairs = [(e, x) for e, x in zip(energies, inputs) if e is not None]
    if not pairs:
        return None
    tot = np.concatenate([e.total_j for e, _ in pairs])
    act = np.concatenate([np.asarray(x, dtype=np.float64).sum(axis=1) for _, x in pairs])
    a = np.stack([np.ones_like(act), act], axis=1)
    coef, *_ = np.linalg.lstsq(a, tot, rcond=None)
    return {
        "t_read_s": spec.t_read_s,
        "n_vmm": int(tot.size),
        "mean_total_j": float(tot.mean()),
        "mean_dac_j": float(np.concatenate([e.dac_j for e, _ in pairs]).mean()),
        "mean_tia_quiescent_j": float(np.concatenate([e.tia_quiescent_j
                                                      for e, _ in pairs]).mean()),
        "mean_tia_output_j": float(np.concatenate([e.tia_output_j for e, _ in pairs]).mean()),
        "idle_j": float(coef[0]),
        "per_active_row_j": float(coef[1]),
        "mean_active_rows": float(act.mean()),
    }


@dataclass
class CalibrationResult:
    """What :func:`calibrate_tile` produced (also saved with the surrogate)."""

    surrogate: TileSurrogate
    spec: TileSpec
    i_full_scale_ua: float
    errors: pd.DataFrame
    held_out: list[CalibrationSample]
    predictions: dict[str, list[tuple[np.ndarray, np.ndarray]]]
    energy: dict[str, Any] | None
    timings_s: dict[str, float] = field(default_factory=dict)
    families: pd.DataFrame = field(default_factory=pd.DataFrame)  # surrogate error per family
    worst: dict[str, Any] | None = None  # worst family and the bars (held_out.worst_case)
    held_families: list[str] = field(default_factory=list)  # family of each held-out sample

    @property
    def meets_bars(self) -> bool:
        """Whether the worst-case held-out error meets the bars (True when none was measured)."""
        return self.worst is None or bool(self.worst["meets_bars"])


def calibrate_tile(spec: TileSpec, *, reference: str = "nodal", n_maps: int = 3,
                   n_test_maps: int = 2, n_vectors: int = 32, seed: int = 0,
                   device: DeviceParams | None = None,
                   reference_options: dict[str, Any] | None = None,
                   progress: Callable[[str], None] | None = None,
                   fit_transistor: bool | None = None, structured: bool = True,
                   bars: ErrorBars | None = None) -> CalibrationResult:
    """Calibrate a surrogate for ``spec`` (a ``rows x cols`` tile) and measure its error.

    1. R_f from the corner map (every cell at ``g_full_scale_us``, all rows on) unless given;
    2. ``n_maps`` calibration maps (:func:`calibration_maps`) and the corner, ``n_vectors``
       inputs each (the idle vector and :func:`calibration_inputs`), simulated by the
       reference; the surrogate is fitted on them;
    3. ``n_test_maps`` fresh formed maps with fresh inputs: the held-out error of the
       surrogate and of the ideal G.V model (:func:`error_table`), stored in the surrogate
       (``validation_``) with the reference's read energy (``energy_``);
    4. with ``structured``, the corner families of :mod:`.held_out` beside them: the
       surrogate's error per family (``validation_families_``) and the worst case against
       ``bars`` (``validation_worst_``; :attr:`CalibrationResult.meets_bars`).
    """
    check_choice("calibrate_tile", "reference", reference, REFERENCES)
    check_int("calibrate_tile", "n_maps", n_maps, 1, 1000)
    check_int("calibrate_tile", "n_test_maps", n_test_maps, 0, 1000)
    check_int("calibrate_tile", "n_vectors", n_vectors, 2, 100_000)
    opts = dict(reference_options or {})
    device = device or DeviceParams()
    say = progress or (lambda _msg: None)
    rng = np.random.default_rng(seed)
    shape = (spec.rows, spec.cols)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    say("full scale: corner map through the reference")
    spec, i_fs = full_scale_spec(spec, lambda s: make_backend(reference, s, **opts), shape,
                                 rng)
    timings["full_scale"] = time.perf_counter() - t0
    ref = make_backend(reference, spec, **opts)
    maps = calibration_maps(shape, n_maps, rng, device, spec) + [corner_map(shape, spec)]
    inputs = [with_idle(calibration_inputs(spec.rows, n_vectors - 1, rng)) for _ in maps]
    tests = [differential_pair(shape, rng, device) for _ in range(n_test_maps)]
    test_inputs = [with_idle(calibration_inputs(spec.rows, n_vectors - 1, rng))
                   for _ in tests]
    # inside the domain the fit records: the smallest formed cell of the calibration maps to
    # full scale (the uniform map reaches g_min, but a map of such cells alone, 0.1-0.3 uS,
    # did not converge in ngspice with the BSIM4 card at calibration tolerances)
    formed = maps[:max(n_maps - 1, 1)]
    g_cal = np.concatenate([np.concatenate([gp.ravel(), gn.ravel()]) for gp, gn in formed])
    corners = (structured_cases(shape, float(g_cal[g_cal > 0].min()), spec.g_full_scale_us)
               if structured else [])
    t0 = time.perf_counter()
    say(f"calibration: {len(maps)} maps x {n_vectors} vectors through {reference}")
    cal, cal_energy = simulate_with_energy(ref, maps, inputs, rng)
    held, held_energy = simulate_with_energy(ref, tests, test_inputs, rng)
    if corners:
        say(f"held out: {len(corners)} structured maps x {len(corners[0].levels)} vectors")
    held_c = simulate(ref, [(c.g_pos_us, c.g_neg_us) for c in corners],
                      [c.levels for c in corners], rng)
    timings["reference"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say("fit")
    sur = fit_surrogate(spec, cal, read_noise_sigma_us=device.read_noise_sigma_us,
                        provenance={"reference": reference, "seed": seed, "n_maps": len(maps),
                                    "n_vectors": n_vectors, "n_test_maps": n_test_maps,
                                    "i_full_scale_ua": i_fs, "device": dataclasses.asdict(device)},
                        fit_transistor=fit_transistor)
    timings["fit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    preds = predictions_on(spec, sur, held)
    errors = error_table(spec, held, preds) if held else pd.DataFrame()
    held_all = held + held_c
    fams = ["formed"] * len(held) + [c.family for c in corners]
    fam_tab, worst = pd.DataFrame(), None
    if held_all:
        sur_preds = preds["surrogate"] + predictions_on(spec, sur, held_c)["surrogate"]
        fam_tab = family_errors(spec, held_all, fams, sur_preds, current_lsb_ua(spec))
        worst = worst_case(fam_tab, bars or ErrorBars(),
                           reads=len(spec.read.row_groups(spec.rows)),
                           lsb_ua=current_lsb_ua(spec))
    timings["validate"] = time.perf_counter() - t0
    energy = energy_summary(spec, cal_energy + held_energy, inputs + test_inputs)
    if energy is not None:
        energy["source"] = "ngspice supply currents" if reference == "spice" else (
            "nodal engine node voltages and currents")
    sur.energy_ = energy
    sur.validation_ = errors.to_dict(orient="records") if len(errors) else None
    sur.validation_families_ = fam_tab.to_dict(orient="records") if len(fam_tab) else None
    sur.validation_worst_ = worst
    return CalibrationResult(sur, spec, i_fs, errors, held, preds, energy, timings,
                             families=fam_tab, worst=worst, held_families=fams)


#: The corner families a task's own surrogate is checked on: the worst by RMS (full-scale) and
#: by largest error (G+ only) in every row of the measured worst-case table (docs/tile.md).
TASK_FAMILIES = ("full-scale", "g-pos-only")


def check_families(spec: TileSpec, surrogate: TileSurrogate, g_lo_us: float,
                   rng: np.random.Generator, families: tuple[str, ...] = TASK_FAMILIES,
                   bars: ErrorBars | None = None) -> dict[str, Any]:
    """Hold out the structured ``families`` (:mod:`.held_out`, one map each, its five input
    vectors, on the nodal engine) against ``surrogate``; store the error per family and the
    worst case in it (so ``bind`` warns when they miss the bars) and return the worst case.
    Warns (:class:`~rram_cosim.models.errors.AccuracyWarning`) when the bars are missed."""
    cases = [c for c in structured_cases((spec.rows, spec.cols), g_lo_us, spec.g_full_scale_us)
             if c.family in families]
    held = simulate(make_backend("nodal", spec), [(c.g_pos_us, c.g_neg_us) for c in cases],
                    [c.levels for c in cases], rng)
    preds = predictions_on(spec, surrogate, held)["surrogate"]
    lsb = current_lsb_ua(spec)
    fam = family_errors(spec, held, [c.family for c in cases], preds, lsb)
    worst = worst_case(fam, bars or ErrorBars(), reads=len(spec.read.row_groups(spec.rows)),
                       lsb_ua=lsb)
    surrogate.validation_families_ = fam.to_dict(orient="records")
    surrogate.validation_worst_ = worst
    if not worst["meets_bars"]:
        warnings.warn(
            f"The surrogate calibrated for this run misses the accuracy bars on the held-out "
            f"corner families: {'; '.join(worst['failed'])}. Its outputs can be off by "
            f"{worst['max_lsb']:.3g} LSB inside the calibrated domain; calibrate at an "
            "operating point closer to linear or use a circuit backend.", AccuracyWarning,
            stacklevel=2)
    return worst


def predictions_on(spec: TileSpec, surrogate: TileSurrogate, samples: list[CalibrationSample]
                   ) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Noise-free column currents of the ideal G.V model and of the surrogate per sample
    (the surrogate's as ``apply`` gives them: reads whose TIAs clip solved exactly)."""
    preds: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"ideal": [], "surrogate": []}
    quiet = surrogate.with_noise(0.0)
    rng = np.random.default_rng(0)  # no noise is drawn: the generator is never used
    for s in samples:
        v = dac_volts(s.levels, spec)
        preds["ideal"].append((v @ s.g_pos_us, v @ s.g_neg_us))
        out = quiet.bind(s.g_pos_us, s.g_neg_us).apply(s.levels, rng)
        preds["surrogate"].append((out.i_pos_ua, out.i_neg_ua))
    return preds

