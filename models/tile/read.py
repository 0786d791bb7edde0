"""A VMM under a read scheme: row groups, column groups, single-ended or differential sensing.

Every tile backend computes one *read* (some rows driven, the other rows of the map at 0 V with
their cells still on the columns; some columns sensed) and hands it to :func:`scheme_apply`,
which runs the reads of one VMM and adds their codes in digital, as the counters after the ADCs
would. So the ideal model, the surrogate, the nodal engine and ngspice read the same way, and a
network never knows which scheme or backend it runs on.

Single-ended: each physical column is converted; ``y`` is the code difference of the G+ and G-
columns times one LSB in W units. Differential: the two TIA outputs of a weight column are
subtracted in analogue (:func:`~rram_cosim.models.tile.periphery.diff_out_v`) and converted once
by a bipolar ADC; ``codes_pos`` then holds the signed difference codes and ``codes_neg`` is
zero.

Offset calibration: a differential read subtracts, from each read's codes, the codes of a
zero-input read (every row at 0 V, no noise) of the same sensed columns, as a controller does
once after power-up. Single-ended reading needs none: the G+ and G- columns of a weight column
carry the same TIA offset, which cancels in their digital difference, whereas the subtractor's
offset has no partner and would add ``diff_offset_v`` worth of codes to every read (several
codes per read, summed over the row groups of a VMM).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..params import TileSpec
from .backend import TileOutput, code_y_scale, merge_resolved
from .periphery import diff_codes, diff_out_v, tia_out_v

__all__ = ["ReadFn", "column_groups", "scheme_apply", "single_read", "zero_codes"]

# read(levels (B x R), rng, rows: slice of driven rows, sensed: physical-column mask or None)
ReadFn = Callable[[np.ndarray, np.random.Generator | None, slice, np.ndarray | None], TileOutput]


def single_read(spec: TileSpec, rows: int) -> bool:
    """True when one VMM is one read of the whole map, single-ended: the plain path."""
    r = spec.read
    return (len(r.row_groups(rows)) == 1 and not r.differential
            and not (r.cols_per_read and r.unsensed == "float"))


def column_groups(spec: TileSpec, weight_cols: int) -> list[np.ndarray | None]:
    """Sensed physical-column masks of the reads of one row group.

    ``[None]`` when every column is sensed at once, or when unsensed columns are held at the
    virtual ground: the circuit is then the same in every column group, only the conversions
    differ, so one read gives every column's result.
    """
    r = spec.read
    n_out = r.outputs(weight_cols)
    if not r.cols_per_read or r.cols_per_read >= n_out or r.unsensed == "ground":
        return [None]
    masks = []
    for start in range(0, n_out, r.cols_per_read):
        m = np.zeros(2 * weight_cols, dtype=bool)
        if r.differential:  # a weight column's two physical columns are sensed together
            k = np.arange(start, min(start + r.cols_per_read, n_out))
            m[2 * k] = m[2 * k + 1] = True
        else:
            m[start:start + r.cols_per_read] = True
        masks.append(m)
    return masks


def _diff_read_codes(out: TileOutput, spec: TileSpec) -> np.ndarray:
    """Signed codes of a differential read's subtractor outputs."""
    v_pos = out.v_pos_v if out.v_pos_v is not None else tia_out_v(out.i_pos_ua, spec)
    v_neg = out.v_neg_v if out.v_neg_v is not None else tia_out_v(out.i_neg_ua, spec)
    return diff_codes(diff_out_v(v_pos, v_neg, spec), spec)


def zero_codes(spec: TileSpec, read: ReadFn, n_rows: int, sensed: np.ndarray | None,
               rows: slice) -> np.ndarray:
    """Differential codes (1 x K) of a zero-input read: the offset calibration's reference."""
    out = read(np.zeros((1, n_rows)), None, rows, sensed)
    return _diff_read_codes(out, spec)


def _cached_zero(spec: TileSpec, read: ReadFn, n_rows: int, sensed: np.ndarray | None,
                 rows: slice, cache: dict | None) -> np.ndarray:
    """:func:`zero_codes`, looked up in ``cache`` (when given) by map height and column group."""
    if cache is None:
        return zero_codes(spec, read, n_rows, sensed, rows)
    key = (n_rows, None if sensed is None else sensed.tobytes())
    if key not in cache:
        cache[key] = zero_codes(spec, read, n_rows, sensed, rows)
    return cache[key]


def _merge(into: dict[str, np.ndarray], out: TileOutput, sensed: np.ndarray | None,
           differential: bool, spec: TileSpec, zero: np.ndarray | None = None) -> None:
    """Add one read's results of its sensed physical columns (None: all).

    Single-ended, a weight column's G+ and G- columns may fall in different column groups, so
    each side keeps its own physical column's mask.
    """
    kp = slice(None) if sensed is None else sensed[0::2]
    kn = slice(None) if sensed is None else sensed[1::2]
    into["i_pos_ua"][:, kp] += out.i_pos_ua[:, kp]
    into["i_neg_ua"][:, kn] += out.i_neg_ua[:, kn]
    if differential:  # both columns of a weight column are sensed together (column_groups)
        codes = _diff_read_codes(out, spec)
        if zero is not None:
            codes = codes - zero
        into["codes_pos"][:, kp] += codes[:, kp]
    else:
        into["codes_pos"][:, kp] += out.codes_pos[:, kp]
        into["codes_neg"][:, kn] += out.codes_neg[:, kn]


def scheme_apply(spec: TileSpec, levels: np.ndarray, rng: np.random.Generator | None,
                 read: ReadFn, weight_cols: int, *, exact_y: bool = False,
                 zero_read: ReadFn | None = None,
                 zero_cache: dict | None = None) -> TileOutput:
    """One VMM of ``levels`` (B x R, in [0, 1]) as the reads of ``spec.read``.

    ``read`` computes one read: the rows in its ``rows`` slice driven at their levels, the
    others at 0 V; ``sensed`` None (every column sensed) or a physical-column mask (the others
    float). Currents and codes add over reads; ``y`` comes from the summed codes, or, with
    ``exact_y``, is the sum of the reads' own ``y`` (the ideal model's exact product).
    ``zero_read`` computes the offset calibration's zero-input reads of a differential scheme
    (default ``read``); an engine that logs its reads for the energy of a VMM passes one that
    does not log, since a controller calibrates once, not per VMM. ``zero_cache``, a dict
    owned by the bound tile, keeps those reference codes between VMMs: a zero-input read has no
    noise, so it is computed once per map height and column group, not once per VMM (on the
    nodal engine and ngspice, one circuit solve each).
    """
    b, n_rows = levels.shape
    if single_read(spec, n_rows):
        return read(levels, rng, slice(0, n_rows), None)
    r = spec.read
    masks = column_groups(spec, weight_cols)
    k = weight_cols
    acc = {f: np.zeros((b, k)) for f in ("i_pos_ua", "i_neg_ua", "y")}
    acc.update({f: np.zeros((b, k), dtype=np.int64) for f in ("codes_pos", "codes_neg")})
    groups = r.row_groups(n_rows)
    resolved = None
    # all rows at 0 V whichever group is "driven": one zero read per column group
    zeros = ([_cached_zero(spec, zero_read or read, n_rows, m, slice(*groups[0]), zero_cache)
              for m in masks] if r.differential else [None] * len(masks))
    for start, stop in groups:
        for sensed, zero in zip(masks, zeros):
            out = read(levels, rng, slice(start, stop), sensed)
            _merge(acc, out, sensed, r.differential, spec, zero)
            resolved = merge_resolved(resolved, out.resolved)
            if exact_y:  # the ideal read's exact y: G+ and G- parts by their own masks
                if sensed is None:
                    acc["y"] += out.y
                else:
                    scale = spec.g_ref_us * spec.v_read_v
                    acc["y"] += (np.where(sensed[0::2], out.i_pos_ua, 0.0)
                                 - np.where(sensed[1::2], out.i_neg_ua, 0.0)) / scale
    if not exact_y:
        if r.differential:
            acc["y"] = acc["codes_pos"] * (2.0 * code_y_scale(spec))
        else:
            acc["y"] = (acc["codes_pos"] - acc["codes_neg"]) * code_y_scale(spec)
    return TileOutput(y=acc["y"], i_pos_ua=acc["i_pos_ua"], i_neg_ua=acc["i_neg_ua"],
                      codes_pos=acc["codes_pos"], codes_neg=acc["codes_neg"], resolved=resolved)
