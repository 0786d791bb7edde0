"""Transfer curves of the read periphery: DAC, TIA and ADC, vectorised over batches.

These are the equations the deck's behavioural elements implement, so a backend that computes
column currents some other way (ideal product, surrogate) ends in the same codes as ngspice.
"""

from __future__ import annotations

import numpy as np

from ..params import TileSpec


def dac_volts(levels: np.ndarray, spec: TileSpec) -> np.ndarray:
    """Row voltages (V) for input levels in [0, 1] (1 = ``v_read_v``), quantised to the DAC LSB."""
    lsb = spec.dac.lsb_v
    return np.round(np.asarray(levels, dtype=np.float64) * (spec.v_read_v / lsb)) * lsb


def tia_out_v(i_ua: np.ndarray, spec: TileSpec) -> np.ndarray:
    """Inverting TIA output (V) for a column current ``i_ua`` flowing into its input node.

    Finite open-loop gain ``A``, input offset ``v_os`` and output resistance ``r_o`` give the
    closed form ``v_n = (A v_os + I (R_f + r_o)) / (1 + A)``, ``v_out = v_n - I R_f``, clipped
    at the output swing.
    """
    t = spec.tia
    i_a = np.asarray(i_ua, dtype=np.float64) * 1e-6
    r_f = spec.r_f_ohm
    v_n = (t.a_ol * t.v_offset_v + i_a * (r_f + t.r_out_ohm)) / (1.0 + t.a_ol)
    return np.clip(v_n - i_a * r_f, t.v_out_min_v, t.v_out_max_v)


def adc_codes(v_tia: np.ndarray, spec: TileSpec) -> np.ndarray:
    """ADC codes of ``-v_tia`` over ``[0, adc.v_full_scale_v]``, rounded and clipped (int64)."""
    a = spec.adc
    c = np.floor(-np.asarray(v_tia, dtype=np.float64) / a.lsb_v + 0.5)
    return np.clip(c, 0, a.n_codes - 1).astype(np.int64)


def codes_to_ua(codes: np.ndarray, spec: TileSpec) -> np.ndarray:
    """Digital reconstruction of a column current (uA) from its code, with the nominal R_f."""
    return np.asarray(codes, dtype=np.float64) * spec.adc.lsb_v / spec.r_f_ohm * 1e6


def current_lsb_ua(spec: TileSpec) -> float:
    """Column current (uA) of one ADC code: the unit in which tile errors are reported."""
    return spec.adc.lsb_v / spec.r_f_ohm * 1e6
