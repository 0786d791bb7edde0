"""TileSurrogate: a fast behavioural model of a 1T1R tile, fitted on circuit simulations.

At read voltages the access transistor is deep in its linear region and the RRAM is ohmic, so a
tile is close to a linear network: its column currents are an effective transfer matrix times
the row voltages. The surrogate builds that matrix once per conductance map (at ``bind``) from a
closed-form first-order solution of the wire network, with two parameters fitted on SPICE (or
nodal) results, then applies the TIA and ADC transfer curves of :mod:`.periphery`:

``g_eff = g / (1 + g r_s)``  (transistor on-resistance ``r_s`` in series with each cell)

``A_ij = g_eff_ij / (1 + r_dac S_i + k_w r_w (c_ij + q_ij))``  (IR drop on row and column lines)

where ``S_i`` is row i's total conductance, ``c_ij`` the row-line drop factor at tap j
(cumulative sum of reverse cumulative sums along the row) and ``q_ij`` the column-line factor
(reverse cumulative sum of cumulative sums down the column). The column current is
``I = (v - v_t) @ A`` with ``v_t`` the TIA's virtual ground (its offset times A/(1+A)), which
also makes idle rows draw a small reverse current. The first-order wire terms are exact in the
limit of small ``r_w g N^2``; the fitted ``k_w`` absorbs part of the next order.

Fitting is least squares over column currents (scipy-free: Gauss-Newton on two parameters).
The surrogate records its validity domain (conductance range, rows, cols, input density) and
its held-out error; asked outside the domain it warns, or raises with ``strict=True``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_text
from .backend import (
    TileOutput,
    check_pair,
    code_y_scale,
    input_levels,
    output_from_currents,
    read_noise_ua,
)
from .errors import ConfigError, DomainWarning, NotFittedError
from .params import TileSpec, from_dict, to_dict
from .periphery import dac_volts


def interleave(g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> np.ndarray:
    """Physical map (rows x 2K): column 2k holds G+ of weight column k, 2k+1 holds G-."""
    r, k = g_pos_us.shape
    phys = np.empty((r, 2 * k), dtype=np.float64)
    phys[:, 0::2] = g_pos_us
    phys[:, 1::2] = g_neg_us
    return phys


def transfer_matrix(g_phys_us: np.ndarray, spec: TileSpec, r_s_ohm: float,
                    k_wire: float) -> np.ndarray:
    """Effective transfer matrix (uS, rows x physical cols) of one tile, see module docstring."""
    g = g_phys_us * 1e-6  # siemens
    g_eff = g / (1.0 + g * r_s_ohm)
    row_total = g_eff.sum(axis=1, keepdims=True)
    rev_row = np.cumsum(g_eff[:, ::-1], axis=1)[:, ::-1]  # current share through row segment k
    c = np.cumsum(rev_row, axis=1)
    down = np.cumsum(g_eff, axis=0)  # current share through column segment below tap k
    q = np.cumsum(down[::-1, :], axis=0)[::-1, :]
    denom = 1.0 + spec.dac.r_out_ohm * row_total + k_wire * spec.r_wire_ohm * (c + q)
    return g_eff / denom * 1e6


def level1_on_resistance_ohm(spec: TileSpec) -> float:
    """Linear-region on-resistance of the level-1 access transistor at the read gate voltage."""
    vov = spec.v_gate_read_v - spec.mosfet.vto_v
    if vov <= 0:
        raise ConfigError(
            f"The read gate voltage {spec.v_gate_read_v} V does not exceed the transistor "
            f"threshold {spec.mosfet.vto_v} V, so the cells do not conduct. Raise "
            "TileSpec.v_gate_read_v."
        )
    return 1.0 / (spec.mosfet.beta_a_per_v2 * vov)


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


class TileSurrogate:
    """Behavioural tile model fitted on circuit simulations; a tile backend once fitted.

    Parameters
    ----------
    spec : TileSpec
        The tile the calibration data came from.
    read_noise_sigma_us : float
        Per-cell read noise drawn per read in ``apply`` (DeviceParams default 0.1 uS).
    strict : bool
        Raise instead of warning when bound or applied outside the calibrated domain.
    """

    name = "surrogate"

    def __init__(self, *, spec: TileSpec = TileSpec(), read_noise_sigma_us: float = 0.1,
                 strict: bool = False) -> None:
        self.spec = spec
        self.read_noise_sigma_us = read_noise_sigma_us
        self.strict = strict

    # -- fitting ---------------------------------------------------------------------------
    def _predict_currents(self, s: CalibrationSample, r_s: float, k_w: float) -> np.ndarray:
        a = transfer_matrix(interleave(s.g_pos_us, s.g_neg_us), self.spec, r_s, k_w)
        v = dac_volts(s.levels, self.spec)
        return (v - self._v_virtual_ground()) @ a

    def _v_virtual_ground(self) -> float:
        t = self.spec.tia
        return t.v_offset_v * t.a_ol / (1.0 + t.a_ol)

    def fit(self, samples: list[CalibrationSample], *, provenance: dict[str, Any] | None = None
            ) -> TileSurrogate:
        """Fit ``r_s_ohm_`` and ``k_wire_`` to the samples' column currents (least squares)."""
        if not samples:
            raise ConfigError("TileSurrogate.fit needs at least one CalibrationSample. Got 0.")
        meas = [interleave(s.i_pos_ua, s.i_neg_ua) for s in samples]
        theta = np.array([level1_on_resistance_ohm(self.spec), 1.0])

        def residual(th: np.ndarray) -> np.ndarray:
            return np.concatenate([(self._predict_currents(s, th[0], th[1]) - m).ravel()
                                   for s, m in zip(samples, meas)])

        # Gauss-Newton with a finite-difference Jacobian: two parameters, smooth model.
        scale = np.array([max(theta[0], 1.0), 1.0])
        for _ in range(30):
            r0 = residual(theta)
            jac = np.empty((r0.size, 2))
            for k in range(2):
                step = np.zeros(2)
                step[k] = 1e-4 * scale[k]
                jac[:, k] = (residual(theta + step) - r0) / step[k]
            delta, *_ = np.linalg.lstsq(jac, -r0, rcond=None)
            theta = theta + delta
            theta[0] = max(theta[0], 0.0)
            if np.all(np.abs(delta) <= 1e-9 * scale + 1e-12):
                break
        self.r_s_ohm_ = float(theta[0])
        self.k_wire_ = float(theta[1])
        g_all = np.concatenate([np.concatenate([s.g_pos_us.ravel(), s.g_neg_us.ravel()])
                                for s in samples])
        dens = np.concatenate([s.levels.mean(axis=1) for s in samples])
        self.domain_ = {
            "g_min_us": float(g_all.min()), "g_max_us": float(g_all.max()),
            "rows_max": int(max(s.g_pos_us.shape[0] for s in samples)),
            "cols_max": int(max(s.g_pos_us.shape[1] for s in samples)),
            "density_min": float(dens.min()), "density_max": float(dens.max()),
        }
        fit_err = residual(theta)
        self.fit_rms_ua_ = float(np.sqrt(np.mean(fit_err**2)))
        self.provenance_ = dict(provenance or {})
        return self

    # -- domain ------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "r_s_ohm_"):
            raise NotFittedError("This TileSurrogate is not fitted yet. Call fit() or load().")

    def _out_of_domain(self, what: str) -> None:
        msg = f"TileSurrogate used outside its calibrated domain: {what}."
        if self.strict:
            raise ConfigError(msg + " Recalibrate on a wider set or pass strict=False.")
        warnings.warn(msg + " Predictions are extrapolated.", DomainWarning, stacklevel=3)

    def check_map(self, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> None:
        """Warn (or raise if strict) when a map leaves the calibrated domain."""
        self._check_fitted()
        d = self.domain_
        lo = min(g_pos_us.min(), g_neg_us.min())
        hi = max(g_pos_us.max(), g_neg_us.max())
        # 10 % slack: a fresh draw from the same distribution reaches slightly further tails.
        if lo < 0.9 * d["g_min_us"] or hi > 1.1 * d["g_max_us"]:
            self._out_of_domain(
                f"conductances in [{lo:.3g}, {hi:.3g}] uS, calibrated "
                f"[{d['g_min_us']:.3g}, {d['g_max_us']:.3g}] uS")
        if g_pos_us.shape[0] > d["rows_max"] or g_pos_us.shape[1] > d["cols_max"]:
            self._out_of_domain(
                f"map {g_pos_us.shape[0]}x{g_pos_us.shape[1]}, calibrated up to "
                f"{d['rows_max']}x{d['cols_max']}")

    # -- backend protocol --------------------------------------------------------------------
    def bind(self, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> BoundSurrogate:
        self._check_fitted()
        gp, gn = check_pair(self.spec, g_pos_us, g_neg_us)
        self.check_map(gp, gn)
        return BoundSurrogate(self, gp, gn)

    # -- persistence ------------------------------------------------------------------------
    def to_json(self) -> str:
        self._check_fitted()
        return json.dumps({
            "spec": to_dict(self.spec), "read_noise_sigma_us": self.read_noise_sigma_us,
            "r_s_ohm": self.r_s_ohm_, "k_wire": self.k_wire_, "domain": self.domain_,
            "fit_rms_ua": self.fit_rms_ua_, "provenance": self.provenance_,
        }, indent=2, sort_keys=True)

    def save(self, path: str | Path) -> Path:
        """Write the fitted surrogate (JSON, atomic) with its TileSpec and provenance."""
        return atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path, *, strict: bool = False) -> TileSurrogate:
        try:
            d = json.loads(Path(path).read_text())
            s = cls(spec=from_dict(TileSpec, d["spec"]),
                    read_noise_sigma_us=d["read_noise_sigma_us"], strict=strict)
            s.r_s_ohm_, s.k_wire_ = float(d["r_s_ohm"]), float(d["k_wire"])
            s.domain_, s.fit_rms_ua_ = d["domain"], float(d["fit_rms_ua"])
            s.provenance_ = d.get("provenance", {})
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise ConfigError(f"Cannot load a TileSurrogate from {path}: {e}.") from e
        return s


class BoundSurrogate:
    """A fitted surrogate bound to one map: the transfer matrices are computed once."""

    def __init__(self, model: TileSurrogate, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> None:
        self.model = model
        self.spec = model.spec
        self.g_pos_us, self.g_neg_us = g_pos_us, g_neg_us
        a = transfer_matrix(interleave(g_pos_us, g_neg_us), self.spec, model.r_s_ohm_,
                            model.k_wire_)
        self.a_pos_, self.a_neg_ = a[:, 0::2].copy(), a[:, 1::2].copy()
        self.v_t_ = model._v_virtual_ground()
        self.y_scale_ = code_y_scale(self.spec)

    def apply(self, x: np.ndarray, rng: np.random.Generator, *,
              volts: bool = False) -> TileOutput:
        lv = input_levels(x, self.spec, self.g_pos_us.shape[0], volts)
        v = dac_volts(lv, self.spec)
        dv = v - self.v_t_
        n = self.a_pos_.shape[1]
        sig = self.model.read_noise_sigma_us
        i_pos = dv @ self.a_pos_ + read_noise_ua(v, sig, n, rng)
        i_neg = dv @ self.a_neg_ + read_noise_ua(v, sig, n, rng)
        return output_from_currents(self.spec, i_pos, i_neg, self.y_scale_)
