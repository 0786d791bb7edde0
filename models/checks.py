"""Input checks with one error template.

The template follows scikit-learn's: "The 'v_read_v' parameter of TileSpec must be in
(0, 0.5] V. Got 0.8 instead." Each message names the value, the valid range and, where there is
an obvious one, the fix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .errors import ConfigError


def _fmt_interval(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    left = "(" if (lo_open or lo is None) else "["
    right = ")" if (hi_open or hi is None) else "]"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    return f"{left}{lo_s}, {hi_s}{right}"


def check_range(
    owner: str,
    name: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    unit: str = "",
    hint: str = "",
) -> None:
    """Raise :class:`ConfigError` unless ``lo <= value <= hi`` (bounds open as requested)."""
    where = f"The '{name}' parameter of {owner}"
    interval = _fmt_interval(lo, hi, lo_open, hi_open) + (f" {unit}" if unit else "")
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v)
        if ok and lo is not None:
            ok = v > lo if lo_open else v >= lo
        if ok and hi is not None:
            ok = v < hi if hi_open else v <= hi
    if not ok:
        msg = f"{where} must be a number in {interval}. Got {value!r} instead."
        raise ConfigError(msg + (f" {hint}" if hint else ""))


def check_int(owner: str, name: str, value: Any, lo: int, hi: int | None = None,
              hint: str = "") -> None:
    """Raise :class:`ConfigError` unless ``value`` is an integer in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be an integer in "
            f"{_fmt_interval(lo, hi, False, False)}. Got {value!r} instead."
            + (f" {hint}" if hint else "")
        )
    check_range(owner, name, int(value), lo, hi, hint=hint)


def check_choice(owner: str, name: str, value: Any, options: Iterable[str]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``options``."""
    opts = list(options)
    if value not in opts:
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be one of {opts}. Got {value!r} instead."
        )


#: Below this, a map that is not all zero is taken for siemens given as microsiemens: a formed
#: cell conducts 1-100 uS (1e-6-1e-4 S). An unformed cell conducts about 1e-3 uS
#: (``BreakdownParams.g_pristine_us``), and an array where nothing formed is a legal (if
#: useless) map, so the library's floor sits a decade below it; maps read from files are held
#: to :data:`SIEMENS_SUSPECT_FILE_US`.
SIEMENS_SUSPECT_US = 1e-4
#: The floor for conductance maps a user gives as files (``rram-cosim tile``).
SIEMENS_SUSPECT_FILE_US = 1e-3


def as_conductance(name: str, g_us: Any, shape: tuple[int, int] | None = None, *,
                   floor_us: float = SIEMENS_SUSPECT_US) -> np.ndarray:
    """Return ``g_us`` as a float64 2-D array of finite, non-negative conductances in uS.

    Refused besides: booleans and non-numbers (a bool map would read as 0/1 uS), an empty map,
    and a map that is not all zero whose every conductance is below ``floor_us`` (siemens
    passed where microsiemens are expected; :data:`SIEMENS_SUSPECT_US`).
    """
    raw = np.asarray(g_us)
    if raw.dtype.kind not in "iuf":
        what = "booleans (they would read as 0 and 1 uS)" if raw.dtype.kind == "b" \
            else f"dtype {raw.dtype}"
        raise ConfigError(f"'{name}' must hold conductances in uS as numbers. Got {what}; "
                          "convert the map to floats in uS.")
    g = raw.astype(np.float64, copy=False)
    if g.ndim != 2:
        raise ConfigError(
            f"'{name}' must be a 2-D conductance map (rows x cols) in uS. Got shape {g.shape}."
        )
    if shape is not None and g.shape != tuple(shape):
        raise ConfigError(f"'{name}' must have shape {tuple(shape)}. Got {g.shape}.")
    if g.size == 0:
        raise ConfigError(f"'{name}' is empty (shape {g.shape}); a map needs at least one "
                          "row and one column.")
    if not np.all(np.isfinite(g)):
        bad = np.argwhere(~np.isfinite(g))[0]
        raise ConfigError(
            f"'{name}' holds a non-finite conductance at {tuple(int(i) for i in bad)}. "
            "Conductances must be finite numbers in uS."
        )
    if np.any(g < 0):
        bad = np.argwhere(g < 0)[0]
        raise ConfigError(
            f"'{name}' holds a negative conductance {g[tuple(bad)]:g} uS at "
            f"{tuple(int(i) for i in bad)}. Conductances must be >= 0 uS; a negative weight is "
            "expressed as G+ < G- in a differential pair."
        )
    top = float(g.max())
    if 0.0 < top < floor_us:
        raise ConfigError(
            f"'{name}' holds only conductances below {floor_us:g} uS (the largest is "
            f"{top:.3g} uS): are these siemens? Conductances are in microsiemens; multiply "
            "the map by 1e6."
        )
    return g


def as_inputs(x: Any, rows: int, *, allow_empty: bool = False) -> np.ndarray:
    """Return inputs as a float64 (batch, rows) array with values in [0, 1].

    0/1 spikes (bool or int) and fractional DAC levels are both accepted: 1 means the full read
    voltage. A single vector (rows,) becomes a batch of one. An empty batch is refused unless
    ``allow_empty`` (an engine's internal solve of no vectors).
    """
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise ConfigError(f"Inputs must be numbers (levels in [0, 1]) or booleans (spikes). Got "
                          f"dtype {a.dtype}.")
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != rows:
        raise ConfigError(
            f"Inputs must have shape (batch, {rows}) to drive {rows} rows. Got {np.shape(x)}."
        )
    if a.shape[0] == 0 and not allow_empty:
        raise ConfigError(f"The batch of inputs is empty (shape {a.shape}): give at least one "
                          "input vector.")
    a = a.astype(np.float64, copy=False)
    if not np.all(np.isfinite(a)):
        raise ConfigError("Inputs hold NaN or inf. Inputs must be finite levels in [0, 1].")
    if a.size and (a.min() < 0.0 or a.max() > 1.0):
        raise ConfigError(
            f"Inputs must be levels in [0, 1] (1 = the full read voltage). Got values in "
            f"[{a.min():g}, {a.max():g}]. Divide volts by TileSpec.v_read_v, or pass volts=True."
        )
    return a
