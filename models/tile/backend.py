"""The tile-backend protocol: every way of computing a tile VMM looks the same to a network.

A backend is bound once to a differential conductance pair (G+ and G-, uS, rows x cols); the
bound tile then applies batches of inputs (batch x rows, levels in [0, 1] where 1 is the read
voltage, or volts with ``volts=True``) with a :class:`numpy.random.Generator` for read noise,
and returns a :class:`TileOutput` whose ``y`` is in the units of the ideal product
``x @ W`` with ``W = (G+ - G-) / g_ref_us``. Raw column currents and ADC codes come along.

Implementations: ``ideal`` (here), ``surrogate`` (:mod:`rram_cosim.models.tile.surrogate`), ``nodal``
and ``spice`` (:mod:`rram_cosim.cosim`). A network never changes when its backend does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..checks import as_conductance, as_inputs
from ..errors import ConfigError
from ..params import TileSpec
from .periphery import adc_codes, tia_out_v


@dataclass(frozen=True)
class TileOutput:
    """Result of one batch of VMMs on a differential tile (all arrays batch x cols).

    ``y`` is ``x @ W`` as the tile computes it (W units); ``i_pos_ua``/``i_neg_ua`` are the
    currents into the G+ and G- columns' TIAs (uA); ``codes_pos``/``codes_neg`` their ADC codes
    (summed over the reads of a VMM; with differential sensing ``codes_pos`` holds the signed
    difference codes and ``codes_neg`` is zero). ``v_pos_v``/``v_neg_v``: the TIA output
    voltages of one read where a circuit engine computed them (None: from the TIA model).
    ``resolved`` (batch,) bool: the VMMs a behavioural model did not answer from its linear
    model but solved exactly, because a TIA left its linear range in one of their reads (the
    surrogate; None for the other backends, which are exact or ideal everywhere).
    """

    y: np.ndarray
    i_pos_ua: np.ndarray
    i_neg_ua: np.ndarray
    codes_pos: np.ndarray
    codes_neg: np.ndarray
    v_pos_v: np.ndarray | None = None
    v_neg_v: np.ndarray | None = None
    resolved: np.ndarray | None = None

    @property
    def n_resolved(self) -> int:
        """How many VMMs of the batch were solved exactly (see ``resolved``)."""
        return 0 if self.resolved is None else int(np.count_nonzero(self.resolved))


@runtime_checkable
class BoundTile(Protocol):
    """A backend bound to one conductance pair; per-map work is already done."""

    spec: TileSpec
    g_pos_us: np.ndarray
    g_neg_us: np.ndarray

    def apply(self, x: np.ndarray, rng: np.random.Generator, *,
              volts: bool = False) -> TileOutput:
        """Apply a batch (batch x rows) and return outputs (batch x cols)."""
        ...


@runtime_checkable
class TileBackend(Protocol):
    """Factory of bound tiles: ``backend.bind(g_pos_us, g_neg_us) -> BoundTile``."""

    name: str

    def bind(self, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> BoundTile:
        ...


def check_pair(spec: TileSpec, g_pos_us: np.ndarray,
               g_neg_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a differential pair against a tile: same shape, within rows x cols, finite, >= 0."""
    gp = as_conductance("g_pos_us", g_pos_us)
    gn = as_conductance("g_neg_us", g_neg_us, shape=gp.shape)
    if gp.shape[0] > spec.rows or gp.shape[1] > spec.cols:
        raise ConfigError(
            f"A {gp.shape[0]}x{gp.shape[1]} map does not fit a {spec.rows}x{spec.cols} tile. "
            "Use a larger TileSpec (rows, cols) or split the matrix over tiles."
        )
    return gp, gn


def input_levels(x: np.ndarray, spec: TileSpec, rows: int, volts: bool, *,
                 allow_empty: bool = False) -> np.ndarray:
    """Inputs as levels in [0, 1] (batch x rows); volts are divided by the read voltage.
    Booleans and numbers only; an empty batch is refused unless ``allow_empty``."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise ConfigError(f"Inputs must be numbers (levels in [0, 1], or volts) or booleans "
                          f"(spikes). Got dtype {a.dtype}.")
    a = a.astype(np.float64, copy=False)
    if volts:
        a = a / spec.v_read_v
    return as_inputs(a, rows, allow_empty=allow_empty)


def need_rng(owner: str, sigma_us: float, rng: np.random.Generator | None,
             hint: str = "") -> None:
    """Refuse a noisy VMM without a generator to draw its read noise from (every engine's
    ``apply``), so that a forgotten generator does not quietly read noise-free."""
    if sigma_us > 0 and rng is None:
        raise ConfigError(
            f"{owner}(read_noise_sigma_us={sigma_us:g}) needs a numpy.random.Generator: pass "
            f"rng=np.random.default_rng(seed){hint}.")


def read_noise_ua(v: np.ndarray, sigma_us: float, n_cols: int,
                  rng: np.random.Generator | None) -> np.ndarray:
    """Column-current read noise (uA) for row voltages ``v`` (batch x rows).

    Independent Gaussian noise of ``sigma_us`` on every cell, drawn per read, sums on a column
    to a Gaussian of standard deviation ``sigma_us * sqrt(sum_i v_i^2)``; drawing that directly
    is exact in distribution and costs batch x cols draws instead of batch x rows x cols.
    ``rng`` None asks for a noise-free read (a differential scheme's stored zero-input
    reference); every engine's ``apply`` refuses None when its noise is on.
    """
    if sigma_us == 0.0 or rng is None:
        return np.zeros((v.shape[0], n_cols))
    scale = sigma_us * np.sqrt(np.einsum("br,br->b", v, v))
    return rng.standard_normal((v.shape[0], n_cols)) * scale[:, None]


#: Adds one read's noise to its G+ and G- currents, in place: ``(i_pos, i_neg) -> None``.
AddNoise = Callable[[np.ndarray, np.ndarray], None]


def noise_adder(v: np.ndarray, sigma_us: float, rng: np.random.Generator | None) -> AddNoise:
    """The read noise of one read with row voltages ``v`` (batch x rows), as every engine
    draws it: :func:`read_noise_ua` for the G+ columns, then for the G- columns, added in
    place (nothing drawn without ``rng`` or noise)."""
    def add(i_pos: np.ndarray, i_neg: np.ndarray) -> None:
        if sigma_us > 0 and rng is not None:
            i_pos += read_noise_ua(v, sigma_us, i_pos.shape[1], rng)
            i_neg += read_noise_ua(v, sigma_us, i_neg.shape[1], rng)
    return add


def ideal_codes(i_ua: np.ndarray, spec: TileSpec) -> np.ndarray:
    """ADC codes of a column current through the nominal TIA (no offset, infinite gain)."""
    v = np.clip(-np.asarray(i_ua) * 1e-6 * spec.r_f_ohm, spec.tia.v_out_min_v,
                spec.tia.v_out_max_v)
    return adc_codes(v, spec)


def output_from_currents(spec: TileSpec, i_pos_ua: np.ndarray, i_neg_ua: np.ndarray,
                         y_scale: float, resolved: np.ndarray | None = None,
                         v_out: tuple[np.ndarray, np.ndarray] | None = None) -> TileOutput:
    """Codes through the TIA/ADC model and ``y`` reconstructed digitally from the codes;
    ``v_out``: the TIA output voltages (G+, G-) where known, used instead of the model's."""
    vp, vn = v_out if v_out is not None else (tia_out_v(i_pos_ua, spec),
                                              tia_out_v(i_neg_ua, spec))
    cp, cn = adc_codes(vp, spec), adc_codes(vn, spec)
    y = (cp - cn).astype(np.float64) * y_scale
    known = v_out is not None
    return TileOutput(y=y, i_pos_ua=i_pos_ua, i_neg_ua=i_neg_ua, codes_pos=cp, codes_neg=cn,
                      v_pos_v=vp if known else None, v_neg_v=vn if known else None,
                      resolved=resolved)


def merge_resolved(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """``resolved`` of a VMM made of several reads or tiles: solved exactly in any of them."""
    if a is None or b is None:
        return b if a is None else a
    return a | b


def code_y_scale(spec: TileSpec) -> float:
    """W-units per code difference: one LSB of current over (g_ref * v_read)."""
    lsb_ua = spec.adc.lsb_v / spec.r_f_ohm * 1e6
    return lsb_ua / (spec.g_ref_us * spec.v_read_v)
