"""TileSurrogate: a fast behavioural model of a 1T1R tile, calibrated on circuit simulations.

At read voltages the access transistor is deep in its linear region and the RRAM is ohmic,
so a tile is close to a linear network. The surrogate exploits that once per conductance map
(at ``bind``), then every VMM is one matrix product:

1. **Operating point.** The canonical tile circuit (DAC resistance, row and column wire
   segments, RRAM in series with a level-1 access transistor, TIA virtual ground behind its
   closed-loop input resistance) is solved exactly at the reference input ``d0`` (every row at
   ``linearise_level`` of the read voltage) by :func:`rram_cosim.models.tile.network.
   operating_point`.
2. **Transfer matrix.** The network linearised there (each cell replaced by its tangent
   two-port) gives ``T = dI / d v_dac`` (rows x physical columns) by hierarchical Schur
   complements (:mod:`rram_cosim.models.tile.network`); IR drop on both wire layers, sneak
   currents through unselected cells, the transistor's series resistance and its dependence on
   the source voltage, the DAC output resistance and the TIA's finite gain are all in ``T``.
3. **Apply.** ``I = I(d0) + (v - d0) @ T`` for DAC voltages ``v`` (batch x rows), plus read
   noise, then the TIA (offset, finite gain, rails) and the ADC (rounding, clipping) of
   :mod:`rram_cosim.models.tile.periphery`.

What remains is second order in ``v - d0``: mainly the source-voltage (column IR drop)
dependence of the transistor conductance between the reference input and the actual one.

**A TIA past its linear range.** The linear network holds every column at its TIA's virtual
ground. A read whose predicted currents reach a TIA's linear range is solved again exactly,
clipped TIAs as ``R_f + r_out`` to their rail (:mod:`rram_cosim.models.tile.clipping`); a
clipped column's neighbours are then right too, and ``TileOutput.resolved`` marks the VMM.

**Workload linearisation** (:class:`DriveProfile`, :meth:`TileSurrogate.with_drive`). A
reservoir drives each row at one level or not at all (spikes), and with a known frequency.
For such inputs the best linear model is not a tangent: it is, per row, the chord between the
row off and the row on (exact for each cell's own curvature at both points), with the
cross-row coupling (column IR drop raising the transistors' sources) taken at the workload's
mean state, and the constant set so that the model is unbiased on the workload. So, with a
profile, ``bind`` (1) solves the operating point at each row's mean drive, (2) takes each
cell's ``dI/dv_r`` at the midpoint of its row's swing and ``dI/dv_c`` at that operating point,
(3) builds ``T`` from those, and (4) sets the constant to the mean of ``I - v @ T`` over a few
of the workload's own drive vectors solved exactly. On the 64 x 64 fidelity network this cut
the open-loop error from 0.068 LSB RMS (tangent at the mean level) to 0.007 LSB RMS, near the
0.005 of a least-squares linear fit to the circuit's own currents
(``benchmarks/bench_linearise.py``, docs/tile.md).

The access transistor that the network model uses is the card itself for the level-1 card
(its equations, with ngspice's temperature scaling of KP and the threshold, are what the circuit
solves); for BSIM4 or a PDK card, calibration fits an effective level-1 device: its zero-bias
channel conductance ``g_on = beta (v_gate - vth)`` and its threshold ``vth`` (which sets how the
conductance falls as the column tap rises), by damped Gauss-Newton on circuit column currents.
Calibration also records the validity domain (conductance range, rows, cols, input density)
and, through :func:`rram_cosim.cosim.engines.calibrate.calibrate_tile`, the held-out error and the
circuit's read energy per VMM. Asked outside the domain the surrogate warns, or raises with
``strict=True``. Equations, validity and the measured error table: ``docs/tile.md``.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_choice, check_int, check_range
from ..device.level1 import level1_at_temperature
from ..errors import AccuracyWarning, ConfigError, DomainWarning, NotFittedError
from ..io import atomic_write_text
from ..params import AdcSpec, ReadScheme, TileSpec, from_dict, missing_fields, to_dict
from .backend import (
    AddNoise,
    TileOutput,
    check_pair,
    code_y_scale,
    input_levels,
    need_rng,
    noise_adder,
    output_from_currents,
)
from .clipping import clipped_out_v, count_reads, leaves_linear_range, margin_ua, solve_clipped
from .network import (
    CellModel,
    Terminations,
    cell_iv,
    factorise,
    operating_point,
    operating_points,
)
from .periphery import current_lsb_ua, dac_volts, tia_out_v
from .read import column_groups, scheme_apply
from .sparse_read import VMM_PATHS, choose_path, sparse_reads

__all__ = ["BoundSurrogate", "CalibrationSample", "DriveProfile", "TileSurrogate", "interleave",
           "terminations"]

_FORMAT = "rram-cosim TileSurrogate"
#: 3: the held-out error per family (formed maps and structured corner cases), the worst case
#: against the bars and the ``error_accepted`` flag. Version-2 files still load: they lack
#: those three (``validation_families_`` and ``validation_worst_`` are None, so their worst
#: case is unknown; ``validation_`` holds formed maps only).
_VERSION = 3
_READS = (2, 3)


def interleave(g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> np.ndarray:
    """Physical map (rows x 2K): column 2k holds G+ of weight column k, 2k+1 holds G-."""
    r, k = g_pos_us.shape
    phys = np.empty((r, 2 * k), dtype=np.float64)
    phys[:, 0::2] = g_pos_us
    phys[:, 1::2] = g_neg_us
    return phys


def terminations(spec: TileSpec) -> Terminations:
    """Wire, DAC and TIA conductances of the canonical tile (see network.Terminations)."""
    t = spec.tia

    def g(r_ohm: float) -> float:
        return 1.0 / r_ohm if r_ohm > 0 else math.inf

    return Terminations(
        g_row_s=g(spec.r_row_ohm),
        g_col_s=g(spec.r_col_ohm),
        g_dac_s=g(spec.dac.r_out_ohm),
        g_tia_s=(1.0 + t.a_ol) / (spec.r_f_ohm + t.r_out_ohm),
        v_t0_v=t.a_ol * t.v_offset_v / (1.0 + t.a_ol),
        both_ends=spec.read.drive == "both",
        # a clipped op-amp output: R_f and r_out in series to the rail (the nodal engine's
        # B-source clipped at the output swing)
        g_clip_s=1.0 / (spec.r_f_ohm + t.r_out_ohm),
        v_clip_lo_v=t.v_out_min_v, v_clip_hi_v=t.v_out_max_v,
    )


_LEVEL1_TNOM_C = 27.0  # the card's tnom (netlists/cards/level1.py)


def card_cell(spec: TileSpec) -> tuple[float, float]:
    """Zero-bias channel conductance (S) and threshold (V) of the card at the tile temperature.

    For the level-1 card this mirrors ngspice's ``MOS1temp`` (``mos1temp.c``) for an NMOS with
    gamma = 0, LD = 0 and default PHI: ``KP(T) = KP (T / TNOM)^-1.5`` and the threshold's
    band-gap and PHI shifts (zero at 27 degC), as the nodal engine does. For other cards the
    same formula gives the start of the fit.
    """
    m = spec.mosfet
    t = level1_at_temperature(m.vto_v, m.kp_a_per_v2, m.w_m, m.l_m, 0.0, _LEVEL1_TNOM_C,
                              spec.temperature_c)
    beta, vth = t.beta_a_per_v2, t.vth_v
    vov = spec.v_gate_read_v - vth
    if vov <= 0:
        raise ConfigError(
            f"The read gate voltage {spec.v_gate_read_v} V does not exceed the transistor "
            f"threshold ({vth:.3g} V at {spec.temperature_c} degC), so the cells do not "
            "conduct. Raise TileSpec.v_gate_read_v.")
    return beta * vov, vth


@dataclass(frozen=True)
class CalibrationSample:
    """One circuit simulation used for fitting: a map, its row voltages and column currents.

    Shapes: g_pos_us, g_neg_us (rows x K); levels (batch x rows) in [0, 1];
    i_pos_ua, i_neg_ua (batch x K) as the circuit computed them.
    """

    g_pos_us: np.ndarray
    g_neg_us: np.ndarray
    levels: np.ndarray
    i_pos_ua: np.ndarray
    i_neg_ua: np.ndarray


@dataclass(frozen=True, eq=False)
class DriveProfile:
    """How a workload drives the rows of one map: what the surrogate linearises for.

    Shapes: on_level (R,) the level a row is driven at (fraction of ``v_read_v``; its largest
    observed level, 0 for a row never driven); mean_level (R,) its mean level over the
    workload's VMMs (``on_level x`` the fraction driven, for single-level drive); samples
    (m, R) some of the workload's own drive vectors (levels), solved exactly at ``bind`` to make
    the model unbiased. Build with :meth:`from_levels`. The arrays are copied (read-only).
    """

    on_level: np.ndarray
    mean_level: np.ndarray
    samples: np.ndarray

    def __post_init__(self) -> None:
        arrs = {}
        for name in ("on_level", "mean_level", "samples"):
            a = np.array(getattr(self, name), dtype=np.float64)
            if a.size and (not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1):
                raise ConfigError(
                    f"DriveProfile.{name} must lie in [0, 1] (fractions of v_read). Got values "
                    f"in [{np.nanmin(a):.4g}, {np.nanmax(a):.4g}].")
            a.setflags(write=False)
            arrs[name] = a
            object.__setattr__(self, name, a)
        on, mean, smp = arrs["on_level"], arrs["mean_level"], arrs["samples"]
        if on.ndim != 1 or mean.shape != on.shape or smp.ndim != 2 or smp.shape[1] != on.size:
            raise ConfigError(
                f"DriveProfile needs on_level and mean_level of shape (R,) and samples (m, R). "
                f"Got {on.shape}, {mean.shape} and {smp.shape}.")
        if smp.shape[0] < 1:
            raise ConfigError("DriveProfile needs at least one sample drive vector (m >= 1). "
                              "Got 0.")
        bad = np.flatnonzero(mean > on + 1e-12)[:5]
        if bad.size:
            raise ConfigError(
                f"DriveProfile.mean_level exceeds on_level (the largest level) on rows "
                f"{bad.tolist()}: mean {mean[bad].tolist()} > on {on[bad].tolist()}. A row's "
                "mean level must lie in [0, on_level]; build the profile with "
                "DriveProfile.from_levels.")

    @property
    def rows(self) -> int:
        return int(np.asarray(self.on_level).size)

    def row_slice(self, start: int, stop: int) -> DriveProfile:
        """The profile of rows ``start:stop`` (one row block of a tiled map)."""
        sl = slice(start, stop)
        return DriveProfile(on_level=self.on_level[sl], mean_level=self.mean_level[sl],
                            samples=self.samples[:, sl])

    @classmethod
    def from_levels(cls, levels: np.ndarray, rng: np.random.Generator, *,
                    n_samples: int = 16) -> DriveProfile:
        """Profile of recorded drive vectors ``levels`` (n x R, in [0, 1]).

        ``n_samples`` of them (drawn with ``rng``, without replacement) are kept for the
        constant; 16 estimated it as well as 64 on the fidelity network (0.0050 vs 0.0049 LSB
        RMS held out).
        """
        lv = np.asarray(levels, dtype=np.float64)
        if lv.ndim != 2 or lv.shape[0] < 1:
            raise ConfigError(
                f"DriveProfile.from_levels needs recorded drive vectors of shape (n, R) with "
                f"n >= 1. Got shape {lv.shape}.")
        check_int("DriveProfile.from_levels", "n_samples", n_samples, 1)
        pick = rng.choice(lv.shape[0], min(int(n_samples), lv.shape[0]), replace=False)
        return cls(on_level=lv.max(axis=0), mean_level=lv.mean(axis=0),
                   samples=lv[np.sort(pick)])

    def to_dict(self) -> dict[str, Any]:
        return {"on_level": self.on_level.tolist(), "mean_level": self.mean_level.tolist(),
                "samples": self.samples.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriveProfile:
        return cls(on_level=d["on_level"], mean_level=d["mean_level"], samples=d["samples"])


class TileSurrogate:
    """Behavioural tile model calibrated on circuit simulations; a tile backend once fitted.

    Parameters
    ----------
    spec : TileSpec
        The tile the calibration data came from.
    read_noise_sigma_us : float
        Per-cell read noise drawn per read in ``apply`` (DeviceParams default 0.1 uS).
    strict : bool
        Raise instead of warning when bound or applied outside the calibrated domain.
    linearise_level : float
        Input level (fraction of ``v_read_v``, all rows) of the operating point the network is
        linearised at when no drive profile is set; 0.5 centres binary inputs of every density.
    vmm : {"dense", "sparse", "auto"}
        How a bound tile's ``apply`` computes a VMM's reads: ``"dense"`` (default) one matrix
        product per read; ``"sparse"`` the event-driven reads of the driven rows only, or
        ``"auto"`` the sparse path at low drive density
        (:func:`~rram_cosim.models.tile.sparse_read.choose_path`). The sparse path's currents
        agree with the dense ones to a few ulp, not bitwise, so a code on an ADC boundary can
        differ; ``"auto"``'s choice depends on the whole batch. Both paths solve reads past a
        TIA's linear range exactly (:mod:`~rram_cosim.models.tile.clipping`). A bound tile's
        ``vmm`` can be changed (validated the same way).

    Attributes (after ``fit`` or ``load``)
    --------------------------------------
    g_on_s_, vth_v_ : float
        The access transistor's zero-bias channel conductance (S) and threshold (V).
    fitted_transistor_ : bool
        Whether they were fitted (else: the level-1 card at the tile temperature).
    domain_ : dict
        Calibrated conductance range (uS, zeros excluded), rows, cols and input densities.
    fit_rms_ua_, fit_rms_lsb_ : float
        RMS error of the fitted column currents (uA, and ADC LSB).
    provenance_ : dict
        Where the calibration came from (reference engine, seeds, sizes...).
    energy_ : dict or None
        The reference circuit's read energy per VMM (set by the calibration).
    validation_ : list of dict or None
        Held-out error table rows on formed maps (set by the calibration).
    validation_families_ : list of dict or None
        The surrogate's held-out error per family (formed maps and the structured corner
        cases of :mod:`rram_cosim.cosim.engines.held_out`); None in version-2 files.
    validation_worst_ : dict or None
        The worst family by RMS and by largest error, the bars and whether they hold
        (``meets_bars``, ``failed``); None when not measured.
    error_accepted_ : bool
        The worst case missed the bars and the calibration was told to accept it
        (``calibrate --accept-error``); ``bind`` warns (:class:`AccuracyWarning`).
    drive_ : DriveProfile or None
        The workload the maps are linearised for (:meth:`with_drive`); None: the tangent at
        ``linearise_level``.
    """

    name = "surrogate"

    def __init__(self, *, spec: TileSpec | None = None, read_noise_sigma_us: float = 0.1,
                 strict: bool = False, linearise_level: float = 0.5,
                 vmm: str = "dense") -> None:
        spec = TileSpec() if spec is None else spec
        if not isinstance(spec, TileSpec):
            raise ConfigError(f"The 'spec' parameter of TileSurrogate must be a TileSpec. Got "
                              f"{type(spec).__name__}.")
        check_range("TileSurrogate", "read_noise_sigma_us", read_noise_sigma_us, 0, 10,
                    unit="uS")
        check_range("TileSurrogate", "linearise_level", linearise_level, 0, 1, lo_open=True)
        check_choice("TileSurrogate", "vmm", vmm, VMM_PATHS)
        self.vmm = vmm
        self.spec = spec
        self.read_noise_sigma_us = read_noise_sigma_us
        self.strict = strict
        self.linearise_level = linearise_level
        self.drive_: DriveProfile | None = None

    # -- the cell model ----------------------------------------------------------------------
    def cell_model(self, g_on_s: float | None = None, vth_v: float | None = None) -> CellModel:
        """The effective access transistor (fitted values unless given)."""
        if g_on_s is None or vth_v is None:
            self._check_fitted()
        g_on = self.g_on_s_ if g_on_s is None else g_on_s
        vth = float(self.vth_v_ if vth_v is None else vth_v)
        vg = self.spec.v_gate_read_v
        if vg - vth <= 1e-3:
            raise ConfigError(
                f"The access transistor's threshold ({vth:.4g} V) is not below the word line "
                f"({vg} V): the calibration data do not describe a conducting read.")
        return CellModel(beta_a_per_v2=g_on / (vg - vth), vth_v=vth,
                         lambda_per_v=self.spec.mosfet.lambda_per_v, v_gate_v=vg)

    def _predict(self, s: CalibrationSample, model: CellModel) -> np.ndarray:
        """Noise-free physical column currents (batch x 2K, uA) of one sample."""
        g_phys = interleave(s.g_pos_us, s.g_neg_us)

        def lin(sensed: np.ndarray | None) -> _Linearised:
            return _Linearised.build(self.spec, g_phys, model, self.linearise_level,
                                     sensed=sensed)

        return _scheme_currents_ua(self.spec, lin, dac_volts(s.levels, self.spec),
                                   s.g_pos_us.shape[1])

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, samples: list[CalibrationSample], *,
            provenance: dict[str, Any] | None = None, fit_transistor: bool | None = None,
            max_iter: int = 8) -> TileSurrogate:
        """Calibrate on circuit simulations: the transistor (if fitted), domain, fit error.

        Parameters
        ----------
        samples : list of CalibrationSample
            Circuit results (maps, input levels, column currents).
        provenance : dict, optional
            Stored with the model (reference engine, seeds, sizes...).
        fit_transistor : bool or None
            Fit the access transistor's ``g_on`` and ``vth``. None (default): only when the
            card is not the level-1 card, whose equations the network model already uses
            exactly (fitting them would only bend them towards the linearisation residual:
            measured 0.21 vs 0.15 LSB RMS held out at 32 x 32).
        max_iter : int
            Gauss-Newton iterations.

        Notes
        -----
        The fit is damped Gauss-Newton on the column currents in ADC LSB, with a weak prior
        that keeps the threshold at the card's value where the data cannot tell it from
        ``g_on`` (small tiles, where column taps hardly rise); two parameters, a finite-
        difference Jacobian.
        """
        if not samples:
            raise ConfigError("TileSurrogate.fit needs at least one CalibrationSample. Got 0.")
        for s in samples:
            check_pair(self.spec, s.g_pos_us, s.g_neg_us)
            input_levels(s.levels, self.spec, s.g_pos_us.shape[0], False)
        if fit_transistor is None:
            fit_transistor = self.spec.mosfet.card != "level1"
        meas = [interleave(s.i_pos_ua, s.i_neg_ua) for s in samples]
        lsb = current_lsb_ua(self.spec)
        g_on0, vth0 = card_cell(self.spec)
        prior_sigma_v = 0.01  # a 10 mV threshold shift weighs as much as one LSB on one reading

        def params(th: np.ndarray) -> tuple[float, float]:
            return g_on0 * math.exp(th[0]), vth0 + th[1]

        def residual(th: np.ndarray) -> np.ndarray:
            model = self.cell_model(*params(th))
            data = [(self._predict(s, model) - m).ravel() / lsb for s, m in zip(samples, meas)]
            return np.concatenate(data + [np.array([th[1] / prior_sigma_v])])

        theta = np.zeros(2)
        r0 = residual(theta)
        cost = float(r0 @ r0)
        damping = 1e-3
        steps = np.array([1e-4, 1e-4])
        for _ in range(max_iter if fit_transistor else 0):
            jac = np.empty((r0.size, 2))
            for k in range(2):
                e = np.zeros(2)
                e[k] = steps[k]
                jac[:, k] = (residual(theta + e) - r0) / steps[k]
            jtj, jtr = jac.T @ jac, jac.T @ r0
            improved = False
            c1 = cost
            for _ in range(8):
                delta = -np.linalg.solve(jtj + damping * np.diag(np.diag(jtj)), jtr)
                delta[1] = float(np.clip(delta[1], -0.1, 0.1))
                try:
                    r1 = residual(theta + delta)
                except ConfigError:
                    damping *= 10.0
                    continue
                c1 = float(r1 @ r1)
                if c1 < cost:
                    theta, r0, improved = theta + delta, r1, True
                    damping = max(damping / 10.0, 1e-9)
                    break
                damping *= 10.0
            if not improved or cost - c1 <= 1e-6 * cost:
                break
            cost = c1
        self.fitted_transistor_ = bool(fit_transistor)
        g_on, vth = params(theta)
        self.g_on_s_, self.vth_v_ = float(g_on), float(vth)
        data_res = r0[:-1]
        self.fit_rms_lsb_ = float(np.sqrt(np.mean(data_res**2)))
        self.fit_rms_ua_ = self.fit_rms_lsb_ * lsb
        g_all = np.concatenate([np.concatenate([s.g_pos_us.ravel(), s.g_neg_us.ravel()])
                                for s in samples])
        g_nz = g_all[g_all > 0]
        dens = np.concatenate([np.asarray(s.levels, dtype=np.float64).mean(axis=1)
                               for s in samples])
        self.domain_ = {
            "g_min_us": float(g_nz.min()) if g_nz.size else 0.0,
            "g_max_us": float(g_nz.max()) if g_nz.size else 0.0,
            "rows_max": int(max(s.g_pos_us.shape[0] for s in samples)),
            "cols_max": int(max(s.g_pos_us.shape[1] for s in samples)),
            "density_min": float(dens.min()), "density_max": float(dens.max()),
        }
        self.provenance_ = dict(provenance or {})
        self.energy_: dict[str, Any] | None = None
        self.validation_: list[dict[str, Any]] | None = None
        self.validation_families_: list[dict[str, Any]] | None = None
        self.validation_worst_: dict[str, Any] | None = None
        self.error_accepted_ = False
        return self

    # -- domain ------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "g_on_s_"):
            raise NotFittedError("This TileSurrogate is not fitted yet. Call fit() or load().")

    def _out_of_domain(self, what: str) -> None:
        msg = f"TileSurrogate used outside its calibrated domain: {what}."
        if self.strict:
            raise ConfigError(msg + " Recalibrate on a wider set or pass strict=False.")
        warnings.warn(msg + " Predictions are extrapolated.", DomainWarning, stacklevel=4)

    def check_map(self, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> None:
        """Warn (or raise if strict) when a map leaves the calibrated domain.

        Cells at exactly 0 uS (no cell, e.g. unused rows) are exact in the model and do not
        count against the conductance range.
        """
        self._check_fitted()
        d = self.domain_
        g = np.concatenate([g_pos_us.ravel(), g_neg_us.ravel()])
        g = g[g > 0]
        if g.size:
            lo, hi = float(g.min()), float(g.max())
            # 10 % slack: a fresh draw from the same distribution reaches slightly further tails.
            if lo < 0.9 * d["g_min_us"] or hi > 1.1 * d["g_max_us"]:
                self._out_of_domain(
                    f"conductances in [{lo:.3g}, {hi:.3g}] uS, calibrated "
                    f"[{d['g_min_us']:.3g}, {d['g_max_us']:.3g}] uS")
        if g_pos_us.shape[0] > d["rows_max"] or g_pos_us.shape[1] > d["cols_max"]:
            self._out_of_domain(
                f"map {g_pos_us.shape[0]}x{g_pos_us.shape[1]}, calibrated up to "
                f"{d['rows_max']}x{d['cols_max']}")

    def check_density(self, levels: np.ndarray) -> None:
        """Warn (or raise if strict) when input densities leave the calibrated range.

        Linearised for a workload, all-zero inputs (a reservoir step without events or
        spikes) are exempt: that workload's own drive sets the model's constant.
        """
        self._check_fitted()
        d = self.domain_
        dens = levels.mean(axis=1)
        if self.drive_ is not None:
            dens = dens[dens > 0]
        if dens.size and (dens.min() < d["density_min"] - 1e-12
                          or dens.max() > d["density_max"] + 1e-12):
            self._out_of_domain(
                f"input densities in [{dens.min():.3g}, {dens.max():.3g}], calibrated "
                f"[{d['density_min']:.3g}, {d['density_max']:.3g}]")

    def _warn_accuracy(self) -> None:
        """Warn when the stored worst-case held-out error misses the bars."""
        w = getattr(self, "validation_worst_", None)
        if not w or w.get("meets_bars", True):
            return
        how = ("accepted at calibration (--accept-error)" if getattr(self, "error_accepted_",
                                                                     False)
               else "not accepted at calibration")
        warnings.warn(
            f"This surrogate's worst-case held-out error misses the bars (RMS <= "
            f"{w['bars']['rms_lsb']:g} LSB, max <= {w['bars']['max_pct_fs']:g} % FS a read, "
            f"times {w.get('reads_per_vmm', 1)} reads per VMM): "
            f"{'; '.join(w.get('failed', []))}; {how}. Its outputs can be off by "
            f"{w['max_lsb']:.3g} LSB ({w['max_pct_fs']:.3g} % FS) inside the calibrated domain. "
            "Recalibrate at an operating point where the tile is closer to linear (a lower "
            "v_read_v, a higher v_gate_read_v) or use a circuit backend.",
            AccuracyWarning, stacklevel=3)

    # -- backend protocol --------------------------------------------------------------------
    def bind(self, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> BoundSurrogate:
        """Solve the map's operating point and transfer matrix (the per-map work)."""
        self._check_fitted()
        gp, gn = check_pair(self.spec, g_pos_us, g_neg_us)
        self.check_map(gp, gn)
        self._warn_accuracy()
        if self.drive_ is not None and self.drive_.rows != gp.shape[0]:
            raise ConfigError(
                f"The surrogate's drive profile describes {self.drive_.rows} rows, but the map "
                f"has {gp.shape[0]}. Measure the profile on this network's own drive vectors "
                "(rram_cosim.cosim.engines.calibrate.probe_workload), or clear it with "
                "with_drive(None).")
        return BoundSurrogate(self, gp, gn)

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON): spec, fitted transistor, domain, provenance, energy."""
        self._check_fitted()
        return {
            "format": _FORMAT, "version": _VERSION,
            "spec": to_dict(self.spec), "read_noise_sigma_us": self.read_noise_sigma_us,
            "linearise_level": self.linearise_level,
            "g_on_s": self.g_on_s_, "vth_v": self.vth_v_,
            "fitted_transistor": self.fitted_transistor_,
            "domain": self.domain_, "fit_rms_ua": self.fit_rms_ua_,
            "fit_rms_lsb": self.fit_rms_lsb_, "provenance": self.provenance_,
            "energy": self.energy_, "validation": self.validation_,
            # set by a calibration; a surrogate fitted without one has none of the three
            "validation_families": getattr(self, "validation_families_", None),
            "validation_worst": getattr(self, "validation_worst_", None),
            "error_accepted": getattr(self, "error_accepted_", False),
            "drive": None if self.drive_ is None else self.drive_.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=_json_default)

    def save(self, path: str | Path) -> Path:
        """Write the fitted surrogate as JSON (atomic), with its TileSpec and provenance.

        A drive profile is not saved: it belongs to one network's map and workload, and a
        surrogate file is a tile model that other networks load.
        """
        return atomic_write_text(path, self.with_drive(None).to_json() + "\n")

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, strict: bool = False) -> TileSurrogate:
        """Rebuild a surrogate from :meth:`to_dict`'s form. Every value must be there (a
        missing one is named, never replaced by a default: a default TIA resistor or domain
        would give other codes than the calibrated tile), except the read scheme of files
        written before read schemes existed (whole-map reads)."""
        if not isinstance(d, dict):
            raise ConfigError(f"Not a TileSurrogate file: it holds a JSON "
                              f"{type(d).__name__}, not an object. Create one with "
                              "`rram-cosim calibrate`.")
        if d.get("format") != _FORMAT:
            raise ConfigError(
                f"Not a TileSurrogate file (format {d.get('format')!r}). Create one with "
                "`rram-cosim calibrate`.")
        if d.get("version") not in _READS:
            raise ConfigError(
                f"TileSurrogate file version {d.get('version')!r} is not supported (this "
                f"version reads {', '.join(map(str, _READS))}). Recalibrate with "
                "`rram-cosim calibrate`.")
        missing = [k for k in _REQUIRED if k not in d]
        if isinstance(d.get("spec"), dict):
            missing += ["spec." + k for k in missing_fields(TileSpec, d["spec"],
                                                            optional=("read",))]
        elif "spec" in d:
            raise ConfigError(f"Key 'spec' must be an object (the TileSpec). Got "
                              f"{type(d['spec']).__name__}.")
        if isinstance(d.get("domain"), dict):
            missing += [f"domain.{k}" for k in _DOMAIN_KEYS if k not in d["domain"]]
        if missing:
            raise ConfigError(
                f"Missing key(s) {', '.join(repr(k) for k in missing)}; a surrogate file "
                "states every value it was calibrated with. Recalibrate with `rram-cosim "
                "calibrate`, or restore the key(s).")
        spec_d = dict(d["spec"])
        # files written before read schemes existed were calibrated on whole-map reads
        spec_d.setdefault("read", to_dict(ReadScheme.whole_map()))
        try:
            spec = from_dict(TileSpec, spec_d)
        except (ConfigError, TypeError) as e:
            raise ConfigError(f"Key 'spec': {e}") from e
        s = cls(spec=spec, read_noise_sigma_us=_number(d, "read_noise_sigma_us"),
                strict=strict, linearise_level=_number(d, "linearise_level"))
        s.g_on_s_, s.vth_v_ = _number(d, "g_on_s"), _number(d, "vth_v")
        if not s.g_on_s_ > 0:
            raise ConfigError(f"Key 'g_on_s' must be a positive conductance in S (the fitted "
                              f"access transistor's). Got {d['g_on_s']!r}.")
        try:
            s.cell_model()
        except ConfigError as e:
            raise ConfigError(f"Keys 'g_on_s' = {d['g_on_s']!r} and 'vth_v' = "
                              f"{d['vth_v']!r} do not describe the fitted access transistor: "
                              f"{e}") from e
        s.fitted_transistor_ = bool(d["fitted_transistor"])
        s.domain_ = dict(d["domain"])
        for k in _DOMAIN_KEYS:
            _number(s.domain_, k, "domain.")
        s.fit_rms_ua_, s.fit_rms_lsb_ = _number(d, "fit_rms_ua"), _number(d, "fit_rms_lsb")
        s.provenance_ = dict(d.get("provenance") or {})
        s.energy_ = d.get("energy")
        s.validation_ = d.get("validation")
        # absent from version-2 files: worst case unknown, nothing accepted
        s.validation_families_ = d.get("validation_families")
        s.validation_worst_ = d.get("validation_worst")
        s.error_accepted_ = bool(d.get("error_accepted", False))
        s.drive_ = None if d.get("drive") is None else DriveProfile.from_dict(d["drive"])
        return s

    @classmethod
    def load(cls, path: str | Path, *, strict: bool = False) -> TileSurrogate:
        """Read a surrogate written by :meth:`save`; an unreadable or incomplete file is a
        :class:`ConfigError` naming the file (and the key at fault)."""
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise ConfigError(f"Cannot load the surrogate file {path}: "
                              f"{e.strerror or e}.") from e
        try:
            d = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"Cannot load the surrogate file {path}: not valid JSON ({e}). "
                              "Recalibrate with `rram-cosim calibrate`.") from e
        try:
            return cls.from_dict(d, strict=strict)
        except (ConfigError, KeyError, ValueError, TypeError) as e:
            why = f"key {e.args[0]!r} is missing" if isinstance(e, KeyError) else str(e)
            raise ConfigError(f"Cannot load the surrogate file {path}: {why}") from e

    def with_noise(self, read_noise_sigma_us: float) -> TileSurrogate:
        """A copy with another read-noise level (e.g. 0 to measure model error)."""
        self._check_fitted()
        s = TileSurrogate.from_dict(self.to_dict(), strict=self.strict)
        check_range("TileSurrogate", "read_noise_sigma_us", read_noise_sigma_us, 0, 10,
                    unit="uS")
        s.read_noise_sigma_us = read_noise_sigma_us
        return s

    def with_drive(self, drive: DriveProfile | None) -> TileSurrogate:
        """A copy that linearises every map it binds for ``drive`` (None: the tangent at
        ``linearise_level``). See the module docstring, "Workload linearisation"."""
        self._check_fitted()
        if drive is not None and not isinstance(drive, DriveProfile):
            raise ConfigError(f"with_drive needs a DriveProfile or None. Got "
                              f"{type(drive).__name__}.")
        s = TileSurrogate.from_dict(self.to_dict(), strict=self.strict)
        s.drive_ = drive
        return s

    def worst_max_ua(self) -> float | None:
        """The largest held-out current error over the corner families (uA), None when the
        surrogate carries no worst case. Sets the margin at which a read counts as leaving
        the TIA's linear range (:func:`~rram_cosim.models.tile.clipping.margin_ua`)."""
        w = getattr(self, "validation_worst_", None)
        if not w:
            return None
        if "max_ua" in w:
            return float(w["max_ua"])
        return float(w["max_lsb"]) * current_lsb_ua(self.spec)

    def with_adc(self, adc: AdcSpec) -> TileSurrogate:
        """A copy behind another ADC (resolution, full scale). The calibrated circuit (array,
        transistor, wires, TIA with its R_f, pinned here) is unchanged, so the fit stays
        valid; anything else needs a recalibration. Noise, strictness and drive profile are
        kept. The stored held-out errors (per family and the worst case) are rescaled to the
        new ADC's LSB and full scale; the worst case's verdict (``meets_bars``, ``failed``)
        stays the calibration's."""
        self._check_fitted()
        if not isinstance(adc, AdcSpec):
            raise ConfigError(f"with_adc needs an AdcSpec. Got {type(adc).__name__}.")
        d = self.to_dict()
        tia = replace(self.spec.tia, r_f_ohm=self.spec.r_f_ohm)
        new = replace(self.spec, adc=adc, tia=tia)
        d["spec"] = to_dict(new)
        f = current_lsb_ua(self.spec) / current_lsb_ua(new)
        if d.get("validation_worst"):
            w = dict(d["validation_worst"])
            w.setdefault("max_ua", w["max_lsb"] * current_lsb_ua(self.spec))
            d["validation_worst"] = _rescaled(w, f, adc.n_codes)
        if d.get("validation_families"):
            d["validation_families"] = [_rescaled(dict(r), f, adc.n_codes)
                                        for r in d["validation_families"]]
        return TileSurrogate.from_dict(d, strict=self.strict)

    def row_block(self, start: int, stop: int, map_rows: int) -> TileSurrogate:
        """The backend for rows ``start:stop`` of a ``map_rows``-row map (``TiledBackend``
        asks): this surrogate, with its drive profile cut to those rows."""
        if self.drive_ is None:
            return self
        if self.drive_.rows != map_rows:
            raise ConfigError(
                f"The surrogate's drive profile describes {self.drive_.rows} rows, but the "
                f"tiled map has {map_rows}. Measure the profile on this network's own drive "
                "(rram_cosim.cosim.engines.calibrate.bind_for_workload), or clear it with "
                "with_drive(None).")
        return self.with_drive(self.drive_.row_slice(start, stop))

    def summary(self) -> dict[str, Any]:
        """The fitted numbers a report shows."""
        self._check_fitted()
        vov = self.spec.v_gate_read_v - self.vth_v_
        return {"g_on_s": self.g_on_s_, "r_on_ohm": 1.0 / self.g_on_s_, "vth_v": self.vth_v_,
                "fitted_transistor": self.fitted_transistor_,
                "beta_a_per_v2": self.g_on_s_ / vov, "fit_rms_ua": self.fit_rms_ua_,
                "fit_rms_lsb": self.fit_rms_lsb_}


def _rescaled(row: dict[str, Any], f: float, n_codes: int) -> dict[str, Any]:
    """Held-out error fields in LSB scaled by ``f`` (old LSB / new LSB), % FS recomputed."""
    for k in ("rms_lsb", "max_lsb"):
        if row.get(k) is not None:
            row[k] = float(row[k]) * f
    if row.get("max_lsb") is not None and "max_pct_fs" in row:
        row["max_pct_fs"] = row["max_lsb"] / n_codes * 100
    return row


#: Top-level keys every surrogate file holds (spec and domain are checked key by key).
_REQUIRED = ("spec", "read_noise_sigma_us", "linearise_level", "g_on_s", "vth_v",
             "fitted_transistor", "domain", "fit_rms_ua", "fit_rms_lsb")
_DOMAIN_KEYS = ("g_min_us", "g_max_us", "rows_max", "cols_max", "density_min", "density_max")


def _number(d: dict[str, Any], key: str, prefix: str = "") -> float:
    """``d[key]`` as a finite float, or a ConfigError naming the key."""
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"Key '{prefix}{key}' must be a finite number. Got {v!r}.")
    return float(v)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _scheme_currents_ua(spec: TileSpec, lin_of: Any, v: np.ndarray,
                        weight_cols: int) -> np.ndarray:
    """Noise-free physical column currents (batch x 2K, uA) of one VMM under the read scheme.

    A VMM of n row groups sums n reads, each with the zero-input current. With floating
    unsensed columns each column group is its own circuit (``lin_of(mask)``); every physical
    column takes its currents from the group that senses it, as :func:`scheme_apply` does.
    """
    n_reads = len(spec.read.row_groups(v.shape[1]))
    out = np.zeros((v.shape[0], 2 * weight_cols))
    for sensed in column_groups(spec, weight_cols):
        lin = lin_of(sensed)
        i = lin.currents_ua(v) + (n_reads - 1) * lin.c_ua
        if sensed is None:
            return i
        out[:, sensed] = i[:, sensed]
    return out


@dataclass(frozen=True)
class _Linearised:
    """``I = c + v @ t`` (uA) of one physical map: t (R x P, uA/V), c (P, uA)."""

    t_ua_per_v: np.ndarray
    c_ua: np.ndarray
    iterations: int

    @classmethod
    def build(cls, spec: TileSpec, g_phys_us: np.ndarray, model: CellModel,
              level: float, sensed: np.ndarray | None = None) -> _Linearised:
        """Tangent at every row driven at ``level``; ``sensed``: physical columns held at
        their TIA's virtual ground (None: all), the others float.

        With row groups a read drives one group of ``n`` and holds the rest at 0 V, so the
        columns carry about ``1/n`` of a whole-map read's current: the column taps are taken
        at every row driven at ``level / n``, and each cell's row tap at its own row driven at
        ``level`` (the chord of a read's swing); the constant is the exact zero-input current
        (the TIA offset alone), which every read carries.
        """
        term = terminations(spec)
        r = g_phys_us.shape[0]
        g_s = g_phys_us * 1e-6
        n = len(spec.read.row_groups(r))
        if n == 1:
            d0 = dac_volts(np.full((1, r), level), spec)[0]
            op = operating_point(g_s, model, term, d0, sensed=sensed)
            t = factorise(op.a_s, op.b_s, term, store=False, sensed=sensed).transfer() * 1e6
            return cls(t_ua_per_v=t, c_ua=op.i_tia_a * 1e6 - d0 @ t, iterations=op.iterations)
        d_read = np.full(r, level * spec.v_read_v / n)  # a linearisation point, not a DAC code
        ops = operating_points(g_s, model, term, np.vstack([d_read, np.zeros(r)]),
                               sensed=sensed)
        op, idle = ops
        shift = level * spec.v_read_v - d_read
        _, a_mid, _, _ = cell_iv(op.v_r + shift[:, None], op.v_c, g_s, model)
        t = factorise(a_mid, op.b_s, term, store=False, sensed=sensed).transfer() * 1e6
        return cls(t_ua_per_v=t, c_ua=idle.i_tia_a * 1e6,
                   iterations=max(o.iterations for o in ops))

    @classmethod
    def for_drive(cls, spec: TileSpec, g_phys_us: np.ndarray, model: CellModel,
                  drive: DriveProfile, sensed: np.ndarray | None = None) -> _Linearised:
        """Chord-per-row linearisation for a workload (module docstring, steps 1-4).

        With row groups the profile's drive vectors are solved read by read (each group of a
        sample driven, the other rows at 0 V) and the mean state is that of one read.
        """
        term = terminations(spec)
        g_s = g_phys_us * 1e-6
        r = g_phys_us.shape[0]
        groups = spec.read.row_groups(r)
        d_full = dac_volts(drive.samples, spec)
        d_smp = np.concatenate([np.where((np.arange(r) >= a) & (np.arange(r) < b), d_full, 0.0)
                                for a, b in groups]) if len(groups) > 1 else d_full
        # the mean state is a linearisation point, not a DAC code: unquantised volts
        d_mean = drive.mean_level * spec.v_read_v / len(groups)
        ops = operating_points(g_s, model, term, np.vstack([d_mean, d_smp]), sensed=sensed)
        op = ops[0]
        # Midpoint of each row's swing (0 -> on): its row taps move with the row's own DAC
        # voltage (the row wire drops a small, linear share of it); the column taps stay at the
        # mean state, which the other rows set.
        shift = 0.5 * dac_volts(drive.on_level, spec) - d_mean
        _, a_mid, _, _ = cell_iv(op.v_r + shift[:, None], op.v_c, g_s, model)
        t = factorise(a_mid, op.b_s, term, store=False, sensed=sensed).transfer() * 1e6
        i_smp = np.stack([o.i_tia_a for o in ops[1:]]) * 1e6
        c = (i_smp - d_smp @ t).mean(axis=0)
        return cls(t_ua_per_v=t, c_ua=c, iterations=max(o.iterations for o in ops))

    def currents_ua(self, v: np.ndarray) -> np.ndarray:
        return v @ self.t_ua_per_v + self.c_ua


class BoundSurrogate:
    """A fitted surrogate bound to one map: operating point and transfer matrix solved once.

    Attributes
    ----------
    t_pos_, t_neg_ : ndarray (R, K)
        Transfer matrices of the G+ and G- columns, uA per V of DAC voltage.
    c_pos_, c_neg_ : ndarray (K,)
        Column currents at zero input (uA): the TIA offset driving current back into the rows.
    vmm : str
        ``"dense"``, ``"sparse"`` or ``"auto"``: how ``apply`` computes a VMM's reads (the
        model's ``vmm`` at binding; see :class:`TileSurrogate`). Setting it validates it.

    n_resolved_ : int
        Reads solved exactly so far because a TIA left its linear range
        (:mod:`rram_cosim.models.tile.clipping`); each ``apply`` marks its VMMs in
        ``TileOutput.resolved``.

    These describe the tile with every column sensed. With floating unsensed columns
    (``read.unsensed == 'float'``) each column group is its own circuit, linearised on first
    use and kept (per sensed-column mask).
    """

    def __init__(self, model: TileSurrogate, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> None:
        self.model = model
        self.spec = model.spec
        self.g_pos_us, self.g_neg_us = g_pos_us, g_neg_us
        self._g_phys = interleave(g_pos_us, g_neg_us)
        self._lins: dict[bytes, _Linearised] = {}
        lin = self._lin(None)
        t = lin.t_ua_per_v
        self.t_pos_ = np.ascontiguousarray(t[:, 0::2])
        self.t_neg_ = np.ascontiguousarray(t[:, 1::2])
        self.c_pos_, self.c_neg_ = lin.c_ua[0::2].copy(), lin.c_ua[1::2].copy()
        self.y_scale_ = code_y_scale(self.spec)
        self.vmm = model.vmm
        self.n_resolved_ = 0
        self._margin_ua = margin_ua(self.spec, model.worst_max_ua())
        self._zero_codes: dict = {}  # a differential scheme's offset references (read.py)

    @property
    def vmm(self) -> str:
        """How ``apply`` computes a VMM's reads (see :class:`TileSurrogate`)."""
        return self._vmm

    @vmm.setter
    def vmm(self, path: str) -> None:
        check_choice("BoundSurrogate", "vmm", path, VMM_PATHS)
        self._vmm = path

    @functools.cached_property
    def _t_both(self) -> np.ndarray:
        """Transfer of the G+ columns, then of the G- columns (uA per V), built once."""
        return np.concatenate([self.t_pos_, self.t_neg_], axis=1)

    def _lin(self, sensed: np.ndarray | None) -> _Linearised:
        """The linearisation with physical columns ``sensed`` held at virtual ground (None:
        all), cached per mask."""
        key = b"all" if sensed is None else np.asarray(sensed, dtype=bool).tobytes()
        lin = self._lins.get(key)
        if lin is None:
            m = self.model
            if m.drive_ is None:
                lin = _Linearised.build(self.spec, self._g_phys, m.cell_model(),
                                        m.linearise_level, sensed=sensed)
            else:
                lin = _Linearised.for_drive(self.spec, self._g_phys, m.cell_model(), m.drive_,
                                            sensed=sensed)
            self._lins[key] = lin
        return lin

    def currents(self, x: np.ndarray, rng: np.random.Generator | None = None, *,
                 volts: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Column currents (uA) of the G+ and G- columns, batch x K, summed over the reads of
        the read scheme (one zero-input current per read); noise if rng is given. The linear
        model alone: reads whose TIAs clip are solved exactly only by :meth:`apply`."""
        lv = input_levels(x, self.spec, self.g_pos_us.shape[0], volts)
        self.model.check_density(lv)
        v = dac_volts(lv, self.spec)
        i = _scheme_currents_ua(self.spec, self._lin, v, self.g_pos_us.shape[1])
        i_pos, i_neg = i[:, 0::2], i[:, 1::2]
        noise_adder(v, self.model.read_noise_sigma_us, rng)(i_pos, i_neg)
        return i_pos, i_neg

    def apply(self, x: np.ndarray, rng: np.random.Generator, *,
              volts: bool = False) -> TileOutput:
        """Apply a batch (batch x rows) and return outputs (batch x cols) through TIA and ADC,
        read as the tile's read scheme says. ``rng`` may be None only for a noise-free
        surrogate: with read noise it is refused, as the other backends refuse it, so a
        forgotten generator does not quietly read noise-free."""
        need_rng("TileSurrogate", self.model.read_noise_sigma_us, rng,
                 ", or read noise-free with surrogate.with_noise(0.0)")
        lv = input_levels(x, self.spec, self.g_pos_us.shape[0], volts)
        self.model.check_density(lv)
        k = self.g_pos_us.shape[1]
        if choose_path(self.vmm, self.spec, lv, k) == "sparse":
            return sparse_reads(self.spec, dac_volts(lv, self.spec), self._t_both, self.c_pos_,
                                self.c_neg_, self.model.read_noise_sigma_us, rng,
                                self._finish, exact_y=False)
        return scheme_apply(self.spec, lv, rng, self._read, k, zero_cache=self._zero_codes)

    def _read(self, lv: np.ndarray, rng: np.random.Generator | None, rows: slice,
              sensed: np.ndarray | None) -> TileOutput:
        """One read: the rows in ``rows`` driven, the others at 0 V; the physical columns in
        ``sensed`` held at virtual ground and sensed, the others floating (None: all sensed).
        Unsensed columns read 0 (``scheme_apply`` keeps only the sensed ones)."""
        v = dac_volts(lv[:, rows], self.spec)
        if sensed is None:
            tp, tn, cp, cn = self.t_pos_, self.t_neg_, self.c_pos_, self.c_neg_
        else:
            lin = self._lin(sensed)
            t, c = lin.t_ua_per_v, lin.c_ua
            tp, tn, cp, cn = t[:, 0::2], t[:, 1::2], c[0::2], c[1::2]
        i_pos = v @ tp[rows] + cp
        i_neg = v @ tn[rows] + cn
        return self._finish(i_pos, i_neg, v, rows,
                            noise_adder(v, self.model.read_noise_sigma_us, rng), sensed)

    def _finish(self, i_pos: np.ndarray, i_neg: np.ndarray, v: np.ndarray, rows: slice,
                add_noise: AddNoise, sensed: np.ndarray | None = None) -> TileOutput:
        """A read after its linear product, on the dense and the event-driven path alike: the
        exact solve of reads past a TIA's linear range, the noise, the TIA and ADC."""
        flag, state = self._resolve_clipped(v, rows, sensed, i_pos, i_neg)
        add_noise(i_pos, i_neg)
        v_out = None
        if state is not None:  # a clipped TIA's output sits at its rail, not at the swing
            v_out = (clipped_out_v(tia_out_v(i_pos, self.spec), i_pos, state[:, 0::2],
                                   self.spec),
                     clipped_out_v(tia_out_v(i_neg, self.spec), i_neg, state[:, 1::2],
                                   self.spec))
        return output_from_currents(self.spec, i_pos, i_neg, self.y_scale_, flag, v_out)

    @functools.cached_property
    def _exact_circuit(self) -> tuple[np.ndarray, CellModel, Terminations]:
        """Conductances (S), cell model and terminations of the exact solve of clipped reads:
        built on the first such read, kept for the others."""
        return self._g_phys * 1e-6, self.model.cell_model(), terminations(self.spec)

    def _resolve_clipped(self, v: np.ndarray, rows: slice, sensed: np.ndarray | None,
                         i_pos: np.ndarray, i_neg: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray | None]:
        """Solve exactly, in place, the reads whose predicted currents reach a TIA's linear
        range (:mod:`rram_cosim.models.tile.clipping`); return which (B,) bool and the clip
        state of every TIA (B x P; None when no read was solved)."""
        i_phys = interleave(i_pos, i_neg)
        flag = leaves_linear_range(i_phys, self.spec, sensed, self._margin_ua)
        count_reads(len(flag), int(flag.sum()))
        if not flag.any():
            return flag, None
        d = np.zeros((int(flag.sum()), self._g_phys.shape[0]))
        d[:, rows] = v[flag]
        try:
            i, st = solve_clipped(*self._exact_circuit, self.spec, d, sensed)
        except ConfigError as e:
            which = np.flatnonzero(flag)
            raise ConfigError(
                f"The exact solve of {which.size} read(s) whose predicted currents leave the "
                f"TIA linear range failed (inputs {which[:5].tolist()}"
                f"{' ...' if which.size > 5 else ''} of this batch, rows "
                f"{rows.start or 0}-{(rows.stop or self._g_phys.shape[0]) - 1}): {e} To avoid "
                "reads past the TIA range, raise the ADC current full scale (--adc-range corner, "
                "or a smaller TileSpec.tia.r_f_ohm) or lower the map's conductances.") from e
        i_pos[flag], i_neg[flag] = i[:, 0::2], i[:, 1::2]
        state = np.zeros(i_phys.shape, dtype=np.int8)
        state[flag] = st
        self.n_resolved_ += int(flag.sum())
        return flag, state
