"""Energy, latency and throughput per inference: the paper's accounting and a physical one.

Two modes, always shown side by side (docs/energy.md):

``paper`` reconstructs the paper's figures ([Lin25]) from dense operation counts:

- digital: every reservoir and head MAC, dense, 2 ops a MAC at one per-op constant,
  0.4808 pJ/op, the constant of the same group's earlier open data ([ESGNN] 300 W /
  624 Tops/s). N-MNIST: (256x200 + 200x200) x 50 x 2 x 0.4808 pJ = 4.38 uJ (paper: 4.4 uJ);
- hybrid: per time step one read of every physical column of the array at
  ``paper_col_read_j`` plus the digital LIF updates (``paper_lif_ops`` a neuron) and the heads at
  the per-op constant. ``paper_col_read_j`` is fitted once to the paper's N-MNIST hybrid
  figure (0.14 uJ); the N-TIDIGITS and zero-shot hybrids are then predictions (0.374 uJ and
  0.541 uJ against the paper's 0.37 and 0.545 uJ): the paper's hybrid cost is per column read,
  independent of the number of input rows.

``physical`` prices what a run measured (active input rows and spikes per step,
:class:`~rram_cosim.models.snn.lsm.ReservoirActivity`) component by component with the
technology constants of :class:`EnergyConstants` (value, node and source of each in
:data:`CONSTANTS_INFO`): input DACs, the array (from the conductances, or from the
ngspice-measured read power, :func:`measured_read`), TIAs (quiescent and output stage), ADC
conversions (Walden figure of merit), digital adds of tile partial sums, LIF updates, spike
counters, head MACs and memory traffic; and, for the same network, a fully digital system in
two forms: dense (every MAC, as the paper's baseline) and event-driven (binary spikes turn MACs
into weight-row accumulations of the active rows only).

The entry point for a report is :func:`energy_report`; :func:`vmm_read_energy` is the
per-VMM model the ngspice cross-check compares with the deck's supply energy.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..models.checks import check_choice, check_int, check_range
from ..models.errors import ConfigError
from ..models.params import DeviceParams, ReadScheme, TileSpec
from ..models.snn.lsm import ReservoirActivity
from ..models.tile.periphery import dac_volts
from .energy_constants import (
    CONSTANTS_INFO,
    DEFAULT_REC_LEVEL,
    PAPER_FIGURES,
    PRESETS,
    SOURCES,
    EnergyConstants,
    Network,
    NetworkSize,
    PaperFigure,
)

__all__ = [
    "CONSTANTS_INFO",
    "DEFAULT_REC_LEVEL",
    "PAPER_FIGURES",
    "PRESETS",
    "SOURCES",
    "EnergyConstants",
    "EnergyReport",
    "MeasuredRead",
    "Network",
    "NetworkSize",
    "PaperFigure",
    "activity_from_dict",
    "adc_sweep",
    "energy_report",
    "integrated_spec",
    "latency_table",
    "mean_row_conductance_s",
    "measured_read",
    "paper_energy",
    "paper_figure_for",
    "physical_energy",
    "preset_activity",
    "scale_activity",
    "summarise",
    "vmm_read_energy",
]

def _network(net: NetworkSize | Network) -> Network:
    if isinstance(net, NetworkSize):
        return Network("network", (("encoder", net),))
    if isinstance(net, Network):
        return net
    raise ConfigError(f"Expected a NetworkSize or Network. Got {type(net).__name__}.")


def _row(system: str, mode: str, encoder: str, component: str, count: float,
         unit_j: float) -> dict:
    return {"system": system, "mode": mode, "encoder": encoder, "component": component,
            "count": float(count), "unit_energy_j": float(unit_j),
            "energy_j": float(count) * float(unit_j)}


# -- paper mode ------------------------------------------------------------------------------
def paper_energy(net: NetworkSize | Network, c: EnergyConstants = EnergyConstants()
                 ) -> pd.DataFrame:
    """The paper's accounting: dense digital ops and the per-column-read hybrid (uJ rules in
    the module docstring). One row per component, system and encoder."""
    e_op = c.pj_per_op_paper * 1e-12
    rows = []
    for enc, s in _network(net).encoders:
        d, h = "digital (paper mode)", "hybrid (paper mode)"
        rows += [
            _row(d, "paper", enc, "reservoir MACs (dense, 2 ops/MAC)", 2 * s.reservoir_macs, e_op),
            _row(d, "paper", enc, "head MACs (2 ops/MAC)", 2 * s.head_macs, e_op),
            _row(h, "paper", enc, "array column reads", 2 * s.hidden * s.n_steps,
                 c.paper_col_read_j),
            _row(h, "paper", enc, "LIF updates (digital ops)",
                 c.paper_lif_ops * s.hidden * s.n_steps, e_op),
            _row(h, "paper", enc, "head MACs (2 ops/MAC)", 2 * s.head_macs, e_op),
        ]
    return pd.DataFrame(rows)


# -- physical mode ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MeasuredRead:
    """Read power and current per driven row and per physical column, measured on a circuit.

    ``p_array_w``: power the row drivers deliver (array, wire and transistor losses) per unit
    ``level^2``, W; ``i_col_a``: column current into the TIAs per unit ``level``, A. Both per
    driven row and per physical column, so they scale to any column count; the TIA output
    stage then costs ``|v_neg| * I`` at whatever supply the periphery uses.
    """

    p_array_w: float
    i_col_a: float
    source: str = "ngspice supply currents"


def measured_read(dac_j: np.ndarray, i_col_sum_a: np.ndarray, levels: np.ndarray,
                  n_phys_cols: int, t_read_s: float, source: str = "ngspice supply currents"
                  ) -> MeasuredRead:
    """Fit :class:`MeasuredRead` to the VMMs of one tile.

    Parameters
    ----------
    dac_j : ndarray (B,)
        Energy the DACs delivered in each VMM over ``t_read_s`` (J).
    i_col_sum_a : ndarray (B,)
        Sum of the column currents into the TIAs of each VMM (A).
    levels : ndarray (B, R)
        Input levels of the VMMs (fractions of the read voltage).
    n_phys_cols : int
        Physical columns of the tile (2 x weight columns).
    """
    lv = np.asarray(levels, dtype=np.float64)
    sq, lin = (lv**2).sum(axis=1), lv.sum(axis=1)
    if not (sq > 0).any():
        raise ConfigError("measured_read needs at least one VMM with a driven row.")
    check_int("measured_read", "n_phys_cols", n_phys_cols, 1, 1 << 20)
    # least squares through the origin: E = k * sum(level^2), I = k * sum(level)
    k_arr = float(np.dot(sq, dac_j) / np.dot(sq, sq))
    k_i = float(np.dot(lin, i_col_sum_a) / np.dot(lin, lin))
    return MeasuredRead(k_arr / t_read_s / n_phys_cols, k_i / n_phys_cols, source)


def vmm_read_energy(spec: TileSpec, g_pos_us: np.ndarray, g_neg_us: np.ndarray,
                    levels: np.ndarray) -> dict[str, np.ndarray]:
    """Array and TIA energy of each VMM from the physical model (J, arrays of shape (B,)).

    Ideal cells (no wire or transistor drop): row i at ``v_i`` drives ``I_ij = v_i G_ij``;
    the array dissipates ``sum v_i^2 G_ij`` and every TIA output stage returns its column
    current to the negative rail, ``|v_neg| sum_j I_j``; each of the ``2K`` TIAs draws
    ``i_q (v_pos - v_neg)``; all over ``t_read_s``. This is what the ngspice deck measures on
    its DAC and supply sources (:func:`rram_cosim.cosim.spice.backend.read_energy`).
    """
    v = dac_volts(np.atleast_2d(levels), spec)
    g = np.concatenate([np.asarray(g_pos_us), np.asarray(g_neg_us)], axis=1) * 1e-6
    g_row = g.sum(axis=1)
    t, tia = spec.t_read_s, spec.tia
    array_j = (v**2) @ g_row * t
    tia_out = -tia.v_neg_v * (v @ g_row) * t
    tia_q = np.full(v.shape[0], g.shape[1] * tia.i_q_a * (tia.v_pos_v - tia.v_neg_v) * t)
    return {"array_j": array_j, "tia_quiescent_j": tia_q, "tia_output_j": tia_out,
            "total_j": array_j + tia_q + tia_out}


def integrated_spec(spec: TileSpec, c: EnergyConstants = EnergyConstants()) -> TileSpec:
    """The tile with an integrated periphery: on-chip TIA bias and supply, integrated read
    time (the board's OPA4322 draws 1.6 mA from 5 V and its read takes ~1 us) with on-chip
    switches instead of the board's multiplexers, and the ADC
    full scale inside the integrated TIA's output swing (so R_f shrinks with the supply and the
    TIA does not clip; the energies do not depend on R_f)."""
    half = c.tia_supply_v / 2
    margin = min(spec.tia.v_swing_margin_v, half / 2)
    return dataclasses.replace(
        spec, t_read_s=c.t_read_integrated_s,
        # on-chip row and column switches settle inside the integrated read time
        read=dataclasses.replace(spec.read, t_mux_settle_s=0.0),
        tia=dataclasses.replace(spec.tia, i_q_a=c.tia_i_q_a, v_pos_v=half, v_neg_v=-half,
                                v_swing_margin_v=margin),
        adc=dataclasses.replace(spec.adc,
                                v_full_scale_v=min(spec.adc.v_full_scale_v, half - margin)))




@dataclass(frozen=True)
class ReadCounts:
    """What one VMM of an (n_rows x hidden) map costs under a tile's read scheme.

    The map is split over ``row_tiles x col_tiles`` tiles (each with its own periphery, read in
    parallel); inside a tile the read scheme's row groups and column groups are read one after
    another on the same array.
    """

    row_tiles: int
    col_tiles: int
    reads: int  # reads of the slowest tile, one after another
    conversions: int  # ADC conversions, all tiles
    tias_on: int  # TIAs (and subtractors) powered during each read, all tiles
    adds_per_col: int  # digital adds per weight column: G+ - G- and partial sums
    row_drives: int  # times an active row is driven per VMM, all tiles (x column groups)
    t_vmm_s: float  # read, multiplexer settling and serial conversions of one VMM
    array_passes: int  # times every column conducts a driven row's current per VMM
    serial: int  # conversions one ADC does per read: the read lasts that many read times


def read_counts(spec: TileSpec, n_rows: int, hidden: int) -> ReadCounts:
    """Counts and time of one VMM of an ``n_rows x hidden`` map on tiles of ``spec``."""
    r = spec.read
    row_tiles = math.ceil(n_rows / spec.rows)
    col_tiles = math.ceil(hidden / spec.cols)
    tile_rows = [min(spec.rows, n_rows - k * spec.rows) for k in range(row_tiles)]
    k_tile = min(spec.cols, hidden)
    groups = [len(r.row_groups(m)) for m in tile_rows]
    col_groups = r.col_groups(k_tile)
    conversions = sum(groups) * r.outputs(hidden)

    def tias(k: int) -> int:
        """TIAs (and subtractors) powered in a read of a tile of ``k`` weight columns."""
        # held at virtual ground, every physical column's TIA is on in every read; floating
        # columns need only the multiplexed TIAs of one column group
        per_read = -(-r.outputs(k) // r.col_groups(k))
        n = (2 * k if r.unsensed == "ground" or not r.cols_per_read
             else per_read * (2 if r.differential else 1))
        return n + (per_read if r.differential else 0)  # the subtractors' op-amps

    # a narrower last column tile powers only its own columns' periphery
    tias_all = row_tiles * sum(tias(min(spec.cols, hidden - j * spec.cols))
                               for j in range(col_tiles))
    reads = max(groups) * col_groups
    serial = r.conversions_in_series(max(tile_rows), k_tile) // max(1, reads)
    t_vmm = reads * (spec.t_read_s * serial + r.t_mux_settle_s * (reads > 1))
    convs_per_col = sum(groups) * (1 if r.differential else 2)
    # grounded unsensed columns conduct in every column group's read; floating ones only in
    # their own
    passes = col_groups if r.unsensed == "ground" else 1
    return ReadCounts(row_tiles, col_tiles, reads, conversions,
                      tias_all, convs_per_col - 1,
                      col_groups, t_vmm, passes, serial)


def _drive(activity: ReservoirActivity, in_level: float, rec_level: float):
    """Driven rows per inference: count, sum of level and sum of level^2 (spikes of the last
    step drive no further read)."""
    n_in_act = float(np.sum(activity.active_in_rows))
    n_rec_act = float(np.sum(activity.spikes[:-1]))
    return (n_in_act, n_rec_act, n_in_act * in_level + n_rec_act * rec_level,
            n_in_act * in_level**2 + n_rec_act * rec_level**2)


def physical_energy(activity: ReservoirActivity, spec: TileSpec, g_row_sum_s: float,
                    n_out: int, c: EnergyConstants = EnergyConstants(), *,
                    in_level: float = 1.0, rec_level: float = DEFAULT_REC_LEVEL,
                    measured: MeasuredRead | None = None, periphery: str = "integrated",
                    encoder: str = "encoder") -> pd.DataFrame:
    """Per-component energy per inference: hybrid, digital dense, digital event-driven.

    Parameters
    ----------
    activity : ReservoirActivity
        Mean active input rows and spikes per step of one encoder, measured in a run.
    spec : TileSpec
        The physical tile. If the (n_in + hidden) x hidden map is larger, it is split over
        ``ceil((n_in + hidden) / rows) x ceil(hidden / cols)`` tiles whose partial sums are
        added digitally (every tile has its own TIAs and ADCs).
    g_row_sum_s : float
        Mean total conductance of one row over both physical columns of every weight column
        of the whole map (S): the array draws ``v^2 * g_row_sum_s`` per driven row.
    n_out : int
        Head outputs (classes, or the projection dimension).
    in_level, rec_level : float
        Drive levels of the input and recurrent rows (fractions of the read voltage); default
        1.0 and :data:`DEFAULT_REC_LEVEL` (0.25), as :func:`energy_report`.
    measured : MeasuredRead, optional
        Circuit-measured read power; replaces the conductance formula for the array and the
        TIA output stage.
    periphery : {"integrated", "spec"}
        ``integrated``: on-chip TIA and read time from the constants (:func:`integrated_spec`);
        ``spec``: the TIAs and read time of ``spec`` as simulated (the paper's board).
    """
    check_choice("physical_energy", "periphery", periphery, ["integrated", "spec"])
    check_int("physical_energy", "n_out", n_out, 1, 10_000_000)
    check_range("physical_energy", "g_row_sum_s", g_row_sum_s, 0, 1.0, unit="S")
    sp = integrated_spec(spec, c) if periphery == "integrated" else spec
    h, t, n_in = activity.hidden, activity.n_steps, activity.n_in
    rc = read_counts(sp, n_in + h, h)
    n_in_act, n_rec_act, lev, lev2 = _drive(activity, in_level, rec_level)
    v, tr = sp.v_read_v, sp.t_read_s
    # each row is driven in one read of its row group; with column groups once per group
    # (all columns conduct when the unsensed ones are grounded, only the sensed ones when
    # they float), for as long as the read's serial conversions last
    t_on = tr * rc.serial * rc.array_passes
    if measured is None:
        array_j = t_on * g_row_sum_s * v**2 * lev2
        tia_out_j = t_on * (-sp.tia.v_neg_v) * g_row_sum_s * v * lev
    else:
        array_j = t_on * measured.p_array_w * 2 * h * lev2
        tia_out_j = t_on * (-sp.tia.v_neg_v) * measured.i_col_a * 2 * h * lev
    e_adc = c.adc_fom_j_per_step * 2**sp.adc.bits
    e_lif = c.e("e_mult_8b_j") + 2 * c.e("e_add_32b_j")  # decay x u, + I, compare (subtract)
    spikes = float(np.sum(activity.spikes))
    state_traffic = 2 * c.state_bits * c.e("e_sram_state_bit_j")  # read and write u per step
    head_w = c.weight_bits * c.e("e_sram_weight_bit_j")
    e_mac8 = c.e("e_mult_8b_j") + c.e("e_add_32b_j")
    hy, mode = "hybrid (physical)", "physical"
    arr_src = "array (I.V over t_read" + (f", {measured.source})" if measured else
                                          ", from conductances)")
    out_src = "TIA output stage" + (f" ({measured.source})" if measured else "")
    sense = "differential" if sp.read.differential else "single-ended"
    rows = [
        _row(hy, mode, encoder, "input DACs (row drivers)",
             (n_in_act + n_rec_act) * rc.col_tiles * rc.row_drives, c.e_row_driver_j),
        _row(hy, mode, encoder, arr_src, 1.0, array_j),
        _row(hy, mode, encoder, "TIA quiescent", rc.tias_on * rc.reads * t,
             sp.tia.i_q_a * (sp.tia.v_pos_v - sp.tia.v_neg_v) * tr * rc.serial),
        _row(hy, mode, encoder, out_src, 1.0, tia_out_j),
        _row(hy, mode, encoder, f"ADC conversions ({sp.adc.bits} bit, {sense})",
             rc.conversions * t, e_adc),
        _row(hy, mode, encoder, "digital adds (G+ - G-, partial sums of reads and tiles)",
             rc.adds_per_col * h * t, c.e("e_add_32b_j")),
        _row(hy, mode, encoder, "LIF updates", h * t, e_lif),
        _row(hy, mode, encoder, "membrane state memory", h * t, state_traffic),
        _row(hy, mode, encoder, "spike counters", spikes, c.e("e_add_8b_j")),
        _row(hy, mode, encoder, "head MACs", h * n_out, e_mac8),
        _row(hy, mode, encoder, "head weight memory", h * n_out, head_w),
    ]
    w_read = c.weight_bits * c.e("e_sram_weight_bit_j")
    dense_macs = (n_in + h) * h * t
    active = (n_in_act + n_rec_act) * h
    for sysname, res_rows in (
        ("digital dense (physical)", [
            ("reservoir MACs (dense, 8-bit)", dense_macs, e_mac8),
            ("weight memory reads (dense)", dense_macs, w_read),
        ]),
        ("digital event-driven (physical)", [
            ("reservoir accumulations (active rows)", active, c.e("e_add_32b_j")),
            ("weight memory reads (active rows)", active, w_read),
            ("input/spike event handling", n_in_act + n_rec_act, c.e("e_add_32b_j")),
        ]),
    ):
        for name, k, e in res_rows:
            rows.append(_row(sysname, mode, encoder, name, k, e))
        rows += [
            _row(sysname, mode, encoder, "LIF updates", h * t, e_lif),
            _row(sysname, mode, encoder, "membrane state memory", h * t, state_traffic),
            _row(sysname, mode, encoder, "spike counters", spikes, c.e("e_add_8b_j")),
            _row(sysname, mode, encoder, "head MACs", h * n_out, e_mac8),
            _row(sysname, mode, encoder, "head weight memory", h * n_out, head_w),
        ]
    df = pd.DataFrame(rows)
    df.attrs.update({"row_tiles": rc.row_tiles, "col_tiles": rc.col_tiles,
                     "n_tia": rc.tias_on, "reads_per_vmm": rc.reads,
                     "conversions_per_vmm": rc.conversions, "t_read_s": tr,
                     "t_vmm_s": rc.t_vmm_s, "adc_bits": sp.adc.bits})
    return df


def summarise(*frames: pd.DataFrame) -> pd.DataFrame:
    """Total energy per system (uJ) and each system's ratio to the hybrid of its mode."""
    df = pd.concat(frames, ignore_index=True)
    if "mode" not in df:
        df["mode"] = df["system"].str.extract(r"\((\w+)")[0].fillna("")
    tot = df.groupby(["mode", "system"], sort=False)["energy_j"].sum() * 1e6
    res = tot.rename("energy_uj").reset_index()
    hyb = {m: float(g.loc[g.system.str.startswith("hybrid"), "energy_uj"].iloc[0])
           for m, g in res.groupby("mode") if g.system.str.startswith("hybrid").any()}
    res["x_vs_hybrid"] = [e / hyb[m] if m in hyb else np.nan
                          for m, e in zip(res["mode"], res["energy_uj"])]
    return res[["system", "mode", "energy_uj", "x_vs_hybrid"]]


def mean_row_conductance_s(g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> float:
    """Mean over rows of the row's total conductance (both columns of each pair), in S."""
    return float((np.asarray(g_pos_us) + np.asarray(g_neg_us)).sum(axis=1).mean() * 1e-6)


# -- activity --------------------------------------------------------------------------------
def activity_from_dict(d: dict) -> ReservoirActivity:
    """Inverse of :meth:`ReservoirActivity.to_dict` (the activity.json of classify/zeroshot)."""
    try:
        return ReservoirActivity(n_in=int(d["n_in"]), hidden=int(d["hidden"]),
                                 n_steps=int(d["n_steps"]), n_samples=int(d["n_samples"]),
                                 active_in_rows=np.asarray(d["active_in_rows"], dtype=float),
                                 spikes=np.asarray(d["spikes"], dtype=float))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"Not a ReservoirActivity record ({e!r}); expected the keys n_in, "
                          "hidden, n_steps, n_samples, active_in_rows, spikes.") from e


def scale_activity(activity: ReservoirActivity, size: NetworkSize) -> ReservoirActivity:
    """The same rates on another network size: the fraction of inputs active and the spikes a
    neuron fires per step, with the time profile resampled to ``size.n_steps``."""
    src = np.linspace(0.0, 1.0, activity.n_steps)
    dst = np.linspace(0.0, 1.0, size.n_steps)
    fin = np.interp(dst, src, np.asarray(activity.active_in_rows) / activity.n_in)
    fsp = np.interp(dst, src, np.asarray(activity.spikes) / activity.hidden)
    return ReservoirActivity(n_in=size.n_in, hidden=size.hidden, n_steps=size.n_steps,
                             n_samples=activity.n_samples, active_in_rows=fin * size.n_in,
                             spikes=fsp * size.hidden)


#: Rates used when no run supplies activity: the fraction of inputs active per step and the
#: spikes per neuron per step (assumption: typical of our embedded-data runs, docs/energy.md).
PRESET_RATES = {"image": (0.05, 0.05), "audio": (0.05, 0.05), "neural": (0.1, 0.05)}


def preset_activity(size: NetworkSize, kind: str) -> ReservoirActivity:
    """Flat activity at :data:`PRESET_RATES` for an encoder without measured activity."""
    fin, fsp = PRESET_RATES.get(kind, (0.05, 0.05))
    return ReservoirActivity(size.n_in, size.hidden, size.n_steps, 0,
                             np.full(size.n_steps, fin * size.n_in),
                             np.full(size.n_steps, fsp * size.hidden))


# -- latency and throughput ------------------------------------------------------------------
def latency_table(net: NetworkSize | Network, phys: pd.DataFrame,
                  c: EnergyConstants = EnergyConstants(), *,
                  activities: dict[str, ReservoirActivity] | None = None,
                  t_read_s: float | dict[str, float] | None = None) -> pd.DataFrame:
    """Latency per inference and effective TOPS/W (dense-equivalent ops / energy).

    Hybrid: per step one VMM (``t_read_s``: the read scheme's reads, multiplexer settling and
    serial conversions, :func:`read_counts`; all tiles in parallel) then the LIF
    updates on ``digital_lanes`` units; digital dense: the step's MACs on ``digital_lanes``
    MAC units; event-driven: only the active rows' accumulations; every system then runs
    its head. Encoders of a pair run one after the other. Paper mode: the digital ops at the
    GPU-class rating [ESGNN], the hybrid's reads at the board's ``t_read_s``. ``t_read_s``
    may name each encoder's own VMM time (their maps differ in rows, so in reads).
    """
    n = _network(net)
    lanes, f = c.digital_lanes, c.f_clk_hz
    default = phys.attrs.get("t_vmm_s", phys.attrs.get("t_read_s", c.t_read_integrated_s))
    per_enc = t_read_s if isinstance(t_read_s, dict) else {}
    if t_read_s is not None and not isinstance(t_read_s, dict):
        default = t_read_s
    ops = sum(2 * (s.reservoir_macs + s.head_macs) for _, s in n.encoders)
    lat: dict[str, float] = {}
    for enc, s in n.encoders:
        act = (activities or {}).get(enc)
        active = (float(np.sum(act.active_in_rows) + np.sum(act.spikes[:-1])) * s.hidden
                  if act is not None else s.reservoir_macs)
        head = math.ceil(s.head_macs / lanes) / f
        lif = math.ceil(s.hidden / lanes) / f
        t_read = per_enc.get(enc, default)
        add = {
            "hybrid (physical)": s.n_steps * (t_read + lif) + head,
            "digital dense (physical)":
                s.n_steps * (math.ceil((s.n_in + s.hidden) * s.hidden / lanes) / f + lif) + head,
            "digital event-driven (physical)":
                math.ceil(active / lanes) / f + s.n_steps * lif + head,
            "digital (paper mode)": 2 * (s.reservoir_macs + s.head_macs) / c.paper_ops_per_s,
            "hybrid (paper mode)": s.n_steps * TileSpec().t_read_s
                + (c.paper_lif_ops * s.hidden * s.n_steps + 2 * s.head_macs) / c.paper_ops_per_s,
        }
        for k, vv in add.items():
            lat[k] = lat.get(k, 0.0) + vv
    return pd.DataFrame([{"system": k, "latency_s": vv, "dense_equiv_ops": ops}
                         for k, vv in lat.items()])


# -- the report's numbers --------------------------------------------------------------------
@dataclass(frozen=True)
class EnergyReport:
    """Everything :func:`energy_report` computed for one network."""

    network: Network
    components: pd.DataFrame
    totals: pd.DataFrame
    paper: pd.DataFrame
    constants: pd.DataFrame
    activities: dict[str, ReservoirActivity] = field(default_factory=dict)


def energy_report(net: str | Network, activities: dict[str, ReservoirActivity] | None = None,
                  *, spec: TileSpec | None = None, c: EnergyConstants = EnergyConstants(),
                  g_row_sum_s: float | None = None, measured: MeasuredRead | None = None,
                  in_level: float = 1.0, rec_level: float = DEFAULT_REC_LEVEL,
                  levels: dict[str, tuple[float, float]] | None = None,
                  periphery: str = "integrated", include_board: bool = True,
                  read: ReadScheme | None = None) -> EnergyReport:
    """Both modes for one network: per-component table, totals with latency and TOPS/W, and
    the paper's figures beside ours.

    Parameters
    ----------
    net : str or Network
        A preset name (:data:`PRESETS`) or a network.
    activities : dict of str to ReservoirActivity, optional
        Measured activity per encoder name; an encoder without one uses
        :func:`preset_activity`. Activity of another size is rescaled (:func:`scale_activity`).
    spec : TileSpec, optional
        The physical tile; default: one macro holding the whole map, 14-bit ADC ([Lin25]),
        read with ``read``.
    read : ReadScheme, optional
        The read scheme of the default macro (default: the board's, 64 rows per read); a
        given ``spec`` carries its own.
    g_row_sum_s : float, optional
        Row conductance sum of the map (S); default: the formed-cell mean ([ESGNN]) over the
        2 x hidden physical columns.
    in_level, rec_level : float
        Drive levels of the input and recurrent rows (fractions of the read voltage), the same
        for every encoder; default 1.0 and :data:`DEFAULT_REC_LEVEL` (0.25), as
        :func:`physical_energy`. ``levels`` overrides them per encoder.
    levels : dict of str to (float, float), optional
        Per encoder ``(in_level, rec_level)``, for a pair whose encoders were driven
        differently (a zero-shot run chooses each encoder's own).
    include_board : bool
        Also price the hybrid with the simulated TileSpec periphery (the paper's board parts).

    Examples
    --------
    >>> rep = energy_report("nmnist")
    >>> rep.totals[["system", "energy_uj", "x_vs_hybrid"]]  # doctest: +SKIP
    """
    if isinstance(net, str):
        check_choice("energy_report", "net", net, list(PRESETS))
        net = PRESETS[net]
    acts: dict[str, ReservoirActivity] = {}
    frames = []
    t_vmm: dict[str, float] = {}
    board_t: dict[str, float] = {}
    for enc, size in net.encoders:
        a = (activities or {}).get(enc)
        if a is None:
            a = preset_activity(size, enc)
        elif (a.n_in, a.hidden, a.n_steps) != (size.n_in, size.hidden, size.n_steps):
            a = scale_activity(a, size)
        acts[enc] = a
        sp = spec or TileSpec(rows=max(size.n_in + size.hidden, 1), cols=size.hidden,
                              read=read or ReadScheme())
        g = g_row_sum_s if g_row_sum_s is not None else (
            2 * size.hidden * DeviceParams().g_mean_us * 1e-6)
        lv_in, lv_rec = (levels or {}).get(enc, (in_level, rec_level))
        frames.append(physical_energy(a, sp, g, size.n_out, c, in_level=lv_in,
                                      rec_level=lv_rec, measured=measured,
                                      periphery=periphery, encoder=enc))
        t_vmm[enc] = frames[-1].attrs["t_vmm_s"]
        board_t[enc] = read_counts(sp, size.n_in + size.hidden, size.hidden).t_vmm_s
        if include_board:
            b = physical_energy(a, sp, g, size.n_out, c, in_level=lv_in,
                                rec_level=lv_rec, measured=measured, periphery="spec",
                                encoder=enc)
            b = b[b.system.str.startswith("hybrid")].assign(
                system="hybrid, board periphery (physical)")
            frames.append(b)
    paper = paper_energy(net, c)
    comp = pd.concat(frames + [paper], ignore_index=True)
    totals = summarise(comp)
    lat = latency_table(net, frames[0], c, activities=acts, t_read_s=t_vmm)
    if include_board:
        board = latency_table(net, frames[0], c, activities=acts, t_read_s=board_t)
        row = board[board.system == "hybrid (physical)"].assign(
            system="hybrid, board periphery (physical)")
        lat = pd.concat([lat, row], ignore_index=True)
    totals = totals.merge(lat, on="system", how="left")
    totals["tops_per_w"] = totals["dense_equiv_ops"] / (totals["energy_uj"] * 1e-6) / 1e12
    paper_cmp = _paper_comparison(net.name, totals, paper_figure_for(net))
    return EnergyReport(net, comp, totals, paper_cmp, c.table(), acts)


def paper_figure_for(net: Network) -> PaperFigure | None:
    """The paper's figure for a preset, or for a network with a preset's sizes (a demo run at
    the N-MNIST sizes gets the N-MNIST figure)."""
    if net.name in PAPER_FIGURES:
        return PAPER_FIGURES[net.name]
    sizes = sorted(s for _, s in net.encoders)
    for name, preset in PRESETS.items():
        if sorted(s for _, s in preset.encoders) == sizes:
            return PAPER_FIGURES[name]
    return None


def _paper_comparison(name: str, totals: pd.DataFrame, fig: PaperFigure | None) -> pd.DataFrame:
    tot = dict(zip(totals.system, totals.energy_uj))
    rows = []
    for label, hyb, dig in (("paper mode (ours)", "hybrid (paper mode)", "digital (paper mode)"),
                            ("physical, vs dense digital (ours)", "hybrid (physical)",
                             "digital dense (physical)"),
                            ("physical, vs event-driven digital (ours)", "hybrid (physical)",
                             "digital event-driven (physical)")):
        if hyb in tot and dig in tot:
            rows.append({"network": name, "source": label, "hybrid_uj": tot[hyb],
                         "digital_uj": tot[dig], "ratio": tot[dig] / tot[hyb]})
    if fig is not None:
        rows.insert(0, {"network": name, "source": "paper [Lin25]",
                        "hybrid_uj": np.nan if fig.hybrid_uj is None else fig.hybrid_uj,
                        "digital_uj": np.nan if fig.digital_uj is None else fig.digital_uj,
                        "ratio": fig.ratio})
    return pd.DataFrame(rows)


def adc_sweep(net: str | Network, bits: tuple[int, ...],
              activities: dict[str, ReservoirActivity] | None = None, *,
              spec: TileSpec | None = None, c: EnergyConstants = EnergyConstants(),
              **kwargs) -> pd.DataFrame:
    """Hybrid (physical) energy per inference against the ADC resolution, by component group.

    Returns one row per resolution: ``bits``, ``hybrid_uj``, ``adc_uj``, ``digital_dense_uj``,
    ``digital_event_uj``.
    """
    if isinstance(net, str):
        check_choice("adc_sweep", "net", net, list(PRESETS))
        net = PRESETS[net]
    rows = []
    read = kwargs.pop("read", None) or ReadScheme()
    for b in bits:
        check_int("adc_sweep", "bits", b, 1, 24)
        sp = spec or TileSpec(rows=max(s.n_in + s.hidden for _, s in net.encoders),
                              cols=max(s.hidden for _, s in net.encoders), read=read)
        sp = dataclasses.replace(sp, adc=dataclasses.replace(sp.adc, bits=int(b)))
        rep = energy_report(net, activities, spec=sp, c=c, include_board=False, **kwargs)
        comp = rep.components
        hyb = comp[comp.system == "hybrid (physical)"]
        tot = dict(zip(rep.totals.system, rep.totals.energy_uj))
        rows.append({"bits": int(b), "hybrid_uj": tot["hybrid (physical)"],
                     "adc_uj": hyb.loc[hyb.component.str.startswith("ADC"),
                                       "energy_j"].sum() * 1e6,
                     "digital_dense_uj": tot["digital dense (physical)"],
                     "digital_event_uj": tot["digital event-driven (physical)"]})
    return pd.DataFrame(rows)
