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


def tia_linear_range_ua(spec: TileSpec) -> tuple[float, float]:
    """Column currents (uA) between which the TIA holds its virtual ground.

    The op-amp's output source is ``x = A (v_os - v_t)``, clipped at the output swing; with the
    closed-loop input ``v_t = v_t0 + I (R_f + r_o) / (1 + A)`` it stays unclipped for
    ``(v_os - v_max (1 + A) / A) / (R_f + r_o) <= I <= (v_os - v_min (1 + A) / A) /
    (R_f + r_o)``. Outside, the column's virtual ground is lost (its tap voltage rises and the
    array's currents redistribute, neighbours included); inside, the TIA is exactly the
    closed-loop conductance the linear network model uses.
    """
    t = spec.tia
    r_s = spec.r_f_ohm + t.r_out_ohm
    k = (1.0 + t.a_ol) / t.a_ol
    return ((t.v_offset_v - t.v_out_max_v * k) / r_s * 1e6,
            (t.v_offset_v - t.v_out_min_v * k) / r_s * 1e6)


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


def diff_out_v(v_pos: np.ndarray, v_neg: np.ndarray, spec: TileSpec) -> np.ndarray:
    """Analogue subtractor of a differential read: ``(1 + e) v+ - v- + v_os`` (V), clipped.

    ``e`` (``read.diff_gain_error``) is the G+ path's relative gain error and ``v_os``
    (``read.diff_offset_v``) the subtractor's offset; the output swings within the TIA rails.
    """
    r, t = spec.read, spec.tia
    v = (1.0 + r.diff_gain_error) * np.asarray(v_pos, dtype=np.float64) - v_neg + r.diff_offset_v
    return np.clip(v, t.v_out_min_v, t.v_out_max_v)


def diff_lsb_v(spec: TileSpec) -> float:
    """LSB (V) of the bipolar ADC of a differential read: ``2 * v_full_scale / (2^bits - 1)``."""
    return 2.0 * spec.adc.lsb_v


def diff_codes(v_diff: np.ndarray, spec: TileSpec) -> np.ndarray:
    """Signed codes of ``-v_diff`` over ``[-v_full_scale, v_full_scale]`` (int64), so a larger
    G+ current gives a positive code, as in the single-ended reading."""
    half = spec.adc.n_codes // 2
    c = np.floor(-np.asarray(v_diff, dtype=np.float64) / diff_lsb_v(spec) + 0.5)
    return np.clip(c, -half, half - 1).astype(np.int64)
