"""The differential 1T1R tile VMM deck: DAC rows, wires, cells, TIAs, ADCs, one ngspice run.

Circuit (the canonical tile shared with the nodal engine, see docs/tile.md):
a map of weight shape (R, K) uses P = 2K physical columns, G+ of weight column k on physical
column 2k and G- on 2k+1 (:func:`physical_conductances`). Node names:

=============  ==================================================================
``d{i}``       DAC output of row i (quantised row voltage)
``a{i}``       row i after the DAC output resistance (``d{i}`` when it is 0)
``r{i}_{j}``   row wire tap of cell (i, j) (``a{i}`` when ``spec.r_row_ohm`` is 0)
``m{i}_{j}``   between the RRAM (to ``r{i}_{j}``) and the access NMOS drain
``c{i}_{j}``   column wire tap of cell (i, j), NMOS source (``t{j}`` when ``spec.r_col_ohm``
               is 0)
``t{j}``       TIA input (virtual ground) of physical column j, after row R-1
``x{j}``       TIA internal node, ``clip(a_ol (v_os - v(t{j})))`` (``o{j}`` when r_out is 0)
``o{j}``       TIA output; R_f from ``o{j}`` to ``t{j}``
``q{j}``       ADC code of column j as a voltage (behavioural quantiser)
``e{i}``       east DAC output of row i (``read.drive == 'both'``), behind one more row segment
               and its own ``r_out`` (one resistor) to ``r{i}_{P-1}``, mirroring the west end
``f{k}``       differential sensing: subtractor output of weight column k,
               ``clip((1 + e) v(o{2k}) - v(o{2k+1}) + v_os)``
``u{k}``       differential sensing: bipolar ADC code of ``f{k}`` as a voltage
``wl``         the shared word line at ``v_gate_read_v``; ``vdd``/``vss`` TIA supplies
``idx``        the batch index (swept 0..N-1) when a deck carries N > 1 input vectors
=============  ==================================================================

Read schemes (``spec.read``; one deck is one read, :func:`~rram_cosim.models.tile.read.
scheme_apply` sums the reads of a VMM): rows outside the read's row group get level 0 (their
DAC at 0 V, their cells still on the columns). ``sensed`` names the physical columns with a
TIA in this read; an unsensed column floats: no TIA, R_f, ADC, quiescent source or nodeset, its
line open at ``t{j}`` (still tied to ground through the cells' transistors; a floating column
without cells is left out). ``drive='both'`` adds an east DAC per row; with the row a single
node and no DAC resistance it would be a second ideal source on ``d{i}`` and is left out.
``sense='differential'`` adds per weight column the subtractor ``f{k}`` and bipolar ADC
``u{k}`` (:func:`~rram_cosim.models.tile.periphery.diff_out_v`, ``diff_codes``); the
single-ended ADCs stay.

A batch of N input vectors runs in one ngspice invocation: a ``.dc`` sweep of ``vidx`` from 0
to N-1 in steps of 1, each row's DAC a B-source ``pwl(v(idx), ...)`` through the N quantised
voltages. The table is padded with a flat segment on each side (at -1 and N) so every sweep
point is an interior breakpoint: with the table starting exactly at the first sweep point,
ngspice 39 failed to converge the first point of some decks. N = 1 is a plain ``.op`` with
DC voltage sources.

Tolerances (:class:`SimTolerances`). ngspice's defaults (reltol 1e-3, abstol 1e-12 A,
vntol 1e-6 V) only promise that Newton's last update was below 0.1 %, while one 14-bit ADC
code is 6.1e-5 of full scale: the default guarantees nothing at code level (~16 LSB). We use
reltol 1e-7, abstol 1e-15 A (a thousandth of the smallest cell current worth resolving, 1 uS
at 1 mV) and vntol 1e-10 V (the virtual-ground nodes sit at ~0.5 mV, so the absolute voltage
floor must be far below the microvolts they move by). This costs nothing: on these decks
ngspice takes the same number of Newton steps (about 4 a sweep point) for reltol 1e-5 to
1e-9, because the nearly linear network converges quadratically; measured on an 8x8 tile, TIA
outputs differ from a reltol 1e-12 solution by 5e-13 V (3e-9 LSB), and even ngspice's
defaults gave 4e-5 LSB there. The tight values make the guarantee match the observation.

Convergence aid: the TIA is a gain of ~3e6 followed by a hard clip. From the all-zero guess
Newton lands outside the microvolt-wide linear window, the clip's zero slope opens the loop
and the iterate jumps rail to rail. ``.nodeset v(t{j}) = v_offset_v`` puts the first solve in
the linear window; after that Newton converges in a few steps. It changes no solution.

Deterministic text: numbers are written with Python's shortest round-trip ``repr``; element
order is fixed; no dates or paths except the included model files' (which enter the hash).
Wire capacitance ``c_wire_f`` and the TIA bandwidth do not act in a DC deck and are not
written. Cells with G = 0 get neither resistor nor transistor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models.checks import as_inputs, check_range
from ..models.errors import ConfigError
from ..models.params import TileSpec
from ..models.tile.backend import check_pair
from ..models.tile.periphery import dac_volts, diff_lsb_v
from .deck import Deck
from .mosfet import mosfet_card, mosfet_instance

_PWL_PAIRS_PER_LINE = 8


@dataclass(frozen=True)
class SimTolerances:
    """ngspice convergence tolerances of a calibration-grade DC deck (see module docstring)."""

    reltol: float = 1e-7  # one code is 6.1e-5 of full scale; keep the error << 1e-3 LSB
    abstol_a: float = 1e-15  # 1e-3 of a 1 uS x 1 mV cell current
    vntol_v: float = 1e-10  # virtual-ground nodes sit at ~0.5 mV

    def __post_init__(self) -> None:
        o = "SimTolerances"
        check_range(o, "reltol", self.reltol, 1e-12, 1e-2)
        check_range(o, "abstol_a", self.abstol_a, 1e-20, 1e-6, unit="A")
        check_range(o, "vntol_v", self.vntol_v, 1e-15, 1e-3, unit="V")


def _f(x: float) -> str:
    """Shortest round-trip text of a float: deterministic and exact."""
    return repr(float(x))


@dataclass(frozen=True)
class TileNodes:
    """Node names of an R x P physical tile, with the merges the canonical circuit asks for."""

    rows: int
    phys_cols: int
    row_wires: bool  # r_row_ohm > 0
    col_wires: bool  # r_col_ohm > 0
    dac_r: bool  # dac.r_out_ohm > 0
    tia_r: bool  # tia.r_out_ohm > 0

    @classmethod
    def of(cls, spec: TileSpec, rows: int, phys_cols: int) -> TileNodes:
        return cls(rows, phys_cols, spec.r_row_ohm > 0, spec.r_col_ohm > 0,
                   spec.dac.r_out_ohm > 0, spec.tia.r_out_ohm > 0)

    def dac(self, i: int) -> str:
        return f"d{i}"

    def row_east(self, i: int) -> str:
        """The east end of row i's wire (after the last cell)."""
        return self.row_tap(i, self.phys_cols - 1)

    def dac_east(self, i: int) -> str:
        """Output of row i's east DAC (``drive='both'``)."""
        return f"e{i}"

    def row_in(self, i: int) -> str:
        return f"a{i}" if self.dac_r else f"d{i}"

    def row_tap(self, i: int, j: int) -> str:
        return f"r{i}_{j}" if self.row_wires else self.row_in(i)

    def mid(self, i: int, j: int) -> str:
        return f"m{i}_{j}"

    def col_tap(self, i: int, j: int) -> str:
        return f"c{i}_{j}" if self.col_wires else f"t{j}"

    def tia_in(self, j: int) -> str:
        return f"t{j}"

    def tia_int(self, j: int) -> str:
        return f"x{j}" if self.tia_r else f"o{j}"

    def tia_out(self, j: int) -> str:
        return f"o{j}"

    def adc(self, j: int) -> str:
        return f"q{j}"

    def diff(self, k: int) -> str:
        return f"f{k}"

    def adc_diff(self, k: int) -> str:
        return f"u{k}"


def check_sensed(sensed: np.ndarray | None, phys_cols: int) -> np.ndarray:
    """A read's sensed physical-column mask as a bool array (None: every column)."""
    if sensed is None:
        return np.ones(phys_cols, dtype=bool)
    m = np.asarray(sensed)
    if m.shape != (phys_cols,) or m.dtype != bool:
        raise ConfigError(
            f"The sensed-column mask must be a bool array of shape ({phys_cols},) (one entry "
            f"per physical column). Got dtype {m.dtype} and shape {m.shape}.")
    return m


def physical_conductances(g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> np.ndarray:
    """Interleave a differential pair into physical columns: (R, K) x 2 -> (R, 2K), uS.

    Column 2k holds G+ of weight column k and column 2k+1 holds G-.
    """
    gp = np.asarray(g_pos_us, dtype=np.float64)
    gn = np.asarray(g_neg_us, dtype=np.float64)
    g = np.empty((gp.shape[0], 2 * gp.shape[1]))
    g[:, 0::2] = gp
    g[:, 1::2] = gn
    return g


def dac_source_name(i: int, n_vectors: int, east: bool = False) -> str:
    """Element name of row i's DAC source: ``vdac{i}`` for one vector, ``bdac{i}`` for a sweep;
    ``vdace{i}``/``bdace{i}`` for the east DAC of a row driven from both ends."""
    return f"{'v' if n_vectors == 1 else 'b'}dac{'e' if east else ''}{i}"


def _source_lines(name: str, node: str, col: np.ndarray) -> list[str]:
    """A DAC source at ``node``: a DC source for one vector, else a pwl of the batch index."""
    n = col.shape[0]
    if n == 1:
        return [f"{name} {node} 0 dc {_f(col[0])}"]
    xs = np.arange(-1, n + 1)
    ys = np.concatenate([col[:1], col, col[-1:]])
    pairs = [f"{int(a)}, {_f(b)}" for a, b in zip(xs, ys)]
    chunks = [", ".join(pairs[k:k + _PWL_PAIRS_PER_LINE])
              for k in range(0, len(pairs), _PWL_PAIRS_PER_LINE)]
    return [f"{name} {node} 0 v = pwl(v(idx),",
            *(f"+ {c}{',' if k < len(chunks) - 1 else ')'}" for k, c in enumerate(chunks))]


def east_dac(nodes: TileNodes) -> bool:
    """Whether a row driven from both ends gets a second source: not when the row is one node
    with the DAC's (no wire, no output resistance: a second ideal source there would be a loop
    of sources)."""
    return nodes.row_wires or nodes.dac_r


def dac_lines(spec: TileSpec, nodes: TileNodes, v_rows: np.ndarray) -> list[str]:
    """Row DACs: the quantised voltages (``v_rows``, N x R, V) and their output resistances.

    With ``read.drive == 'both'`` each row also gets an east DAC of the same voltage and its
    own ``r_out`` at the row wire's east end.
    """
    n = v_rows.shape[0]
    both = spec.read.drive == "both" and east_dac(nodes)
    out = ["* DAC rows"]
    if n > 1:
        out.append("vidx idx 0 dc 0")
    for i in range(nodes.rows):
        out.extend(_source_lines(dac_source_name(i, n), nodes.dac(i), v_rows[:, i]))
        if nodes.dac_r:
            out.append(f"rdac{i} {nodes.dac(i)} {nodes.row_in(i)} {_f(spec.dac.r_out_ohm)}")
        if both:
            out.extend(_source_lines(dac_source_name(i, n, east=True), nodes.dac_east(i),
                                     v_rows[:, i]))
            # the east end mirrors the west: one row segment, then the DAC's output resistance
            r_east = (spec.r_row_ohm if nodes.row_wires else 0.0) + spec.dac.r_out_ohm
            out.append(f"rdace{i} {nodes.dac_east(i)} {nodes.row_east(i)} {_f(r_east)}")
    return out


def row_wire_lines(spec: TileSpec, nodes: TileNodes) -> list[str]:
    """Row wires: ``a{i}`` -Rr- ``r{i}_0`` -Rr- ... ``r{i}_{P-1}``; none when Rr is 0."""
    if not nodes.row_wires:
        return []
    rw = _f(spec.r_row_ohm)
    out = ["* row wires"]
    for i in range(nodes.rows):
        prev = [nodes.row_in(i)] + [nodes.row_tap(i, j) for j in range(nodes.phys_cols - 1)]
        out.extend(f"rr{i}_{j} {prev[j]} {nodes.row_tap(i, j)} {rw}"
                   for j in range(nodes.phys_cols))
    return out


def column_wire_lines(spec: TileSpec, nodes: TileNodes, present: np.ndarray) -> list[str]:
    """Column wires: ``c{0}_{j}`` -Rc- ... ``c{R-1}_{j}`` -Rc- ``t{j}``; none when Rc is 0.

    Only columns in ``present``: a floating column without cells is left out (no island)."""
    if not nodes.col_wires:
        return []
    rw = _f(spec.r_col_ohm)
    out = ["* column wires"]
    for j in np.flatnonzero(present):
        j = int(j)
        nxt = [nodes.col_tap(i, j) for i in range(1, nodes.rows)] + [nodes.tia_in(j)]
        out.extend(f"rc{i}_{j} {nodes.col_tap(i, j)} {nxt[i]} {rw}" for i in range(nodes.rows))
    return out


def cell_lines(spec: TileSpec, nodes: TileNodes, g_phys_us: np.ndarray) -> list[str]:
    """1T1R cells: RRAM ``1e6/G`` ohm from the row tap to ``m{i}_{j}``, NMOS to the column tap.

    Cells with G = 0 are left out entirely (no floating ``m`` node).
    """
    out = ["* 1T1R cells"]
    for i, j in np.argwhere(g_phys_us > 0):
        i, j = int(i), int(j)
        m = nodes.mid(i, j)
        out.append(f"rg{i}_{j} {nodes.row_tap(i, j)} {m} {_f(1e6 / g_phys_us[i, j])}")
        out.append(mosfet_instance(f"mn{i}_{j}", m, "wl", nodes.col_tap(i, j), "0", spec.mosfet))
    return out


def tia_lines(spec: TileSpec, nodes: TileNodes, sensed: np.ndarray) -> list[str]:
    """Inverting TIAs of the sensed columns: clipped high-gain B-source, output resistance,
    feedback resistor."""
    t = spec.tia
    out = ["* TIAs: x = clip(a_ol (v_os - v(t)), v_out_min, v_out_max)"]
    for j in np.flatnonzero(sensed):
        j = int(j)
        x, o, ti = nodes.tia_int(j), nodes.tia_out(j), nodes.tia_in(j)
        out.append(f"btia{j} {x} 0 v = max(min({_f(t.a_ol)}*({_f(t.v_offset_v)} - v({ti})), "
                   f"{_f(t.v_out_max_v)}), {_f(t.v_out_min_v)})")
        if nodes.tia_r:
            out.append(f"rto{j} {x} {o} {_f(t.r_out_ohm)}")
        out.append(f"rf{j} {o} {ti} {_f(spec.r_f_ohm)}")
    return out


def adc_lines(spec: TileSpec, nodes: TileNodes, sensed: np.ndarray) -> list[str]:
    """Behavioural ADCs: ``q{j} = clip(floor(-v(o{j}) / lsb + 0.5), 0, 2**bits - 1)``."""
    a = spec.adc
    out = ["* ADCs"]
    out.extend(f"badc{j} {nodes.adc(j)} 0 v = max(min(floor(-v({nodes.tia_out(j)})/"
               f"{_f(a.lsb_v)} + 0.5), {a.n_codes - 1}), 0)" for j in np.flatnonzero(sensed))
    return out


def diff_pairs(sensed: np.ndarray) -> list[int]:
    """Weight columns whose two physical columns are both sensed."""
    return [int(k) for k in np.flatnonzero(sensed[0::2] & sensed[1::2])]


def diff_lines(spec: TileSpec, nodes: TileNodes, sensed: np.ndarray) -> list[str]:
    """Differential sensing: analogue subtractor and bipolar ADC per weight column k.

    ``f{k} = clip((1 + e) v(o{2k}) - v(o{2k+1}) + v_os, v_out_min, v_out_max)``
    (:func:`~rram_cosim.models.tile.periphery.diff_out_v`) and
    ``u{k} = clip(floor(-v(f{k}) / lsb_d + 0.5), -2**(bits-1), 2**(bits-1) - 1)``
    (:func:`~rram_cosim.models.tile.periphery.diff_codes`).
    """
    r, t = spec.read, spec.tia
    half = spec.adc.n_codes // 2
    lsb = _f(diff_lsb_v(spec))
    out = ["* differential sensing: subtractor and bipolar ADC per weight column"]
    for k in diff_pairs(sensed):
        vp, vn = nodes.tia_out(2 * k), nodes.tia_out(2 * k + 1)
        out.append(f"bdiff{k} {nodes.diff(k)} 0 v = max(min({_f(1.0 + r.diff_gain_error)}*v({vp})"
                   f" - v({vn}) + {_f(r.diff_offset_v)}, {_f(t.v_out_max_v)}), "
                   f"{_f(t.v_out_min_v)})")
        out.append(f"badcd{k} {nodes.adc_diff(k)} 0 v = max(min(floor(-v({nodes.diff(k)})/"
                   f"{lsb} + 0.5), {half - 1}), {-half})")
    return out


def supply_lines(spec: TileSpec, nodes: TileNodes, sensed: np.ndarray) -> list[str]:
    """Word line, TIA supplies and one quiescent current source per TIA (vdd to vss)."""
    t = spec.tia
    out = ["* word line and TIA supplies",
           f"vwl wl 0 dc {_f(spec.v_gate_read_v)}",
           f"vdd vdd 0 dc {_f(t.v_pos_v)}",
           f"vss vss 0 dc {_f(t.v_neg_v)}"]
    out.extend(f"iq{j} vdd vss dc {_f(t.i_q_a)}" for j in np.flatnonzero(sensed))
    return out


def tile_node_map(nodes: TileNodes, n_vectors: int, sensed: np.ndarray | None = None,
                  present: np.ndarray | None = None, *, east: bool = False,
                  differential: bool = False) -> dict[str, str]:
    """Meaningful names to ngspice vector names (lower case).

    Keys: ``tia_out[j]``, ``adc[j]`` for each sensed physical column j; ``tia_in[j]`` (the
    column line's end node, the TIA input when sensed) for each column in the deck;
    ``dac[i]`` (row DAC voltage) and ``i_dac[i]`` (branch current of row i's DAC source,
    ngspice sign: negative when the DAC sources current into the row), ``i_dac_e[i]`` for the
    east DAC of a row driven from both ends; ``diff[k]``, ``adc_diff[k]`` (subtractor output
    and bipolar code of weight column k) with differential sensing; ``i_vdd``, ``i_vss``
    (supply branch currents, same sign convention).
    """
    all_cols = np.ones(nodes.phys_cols, dtype=bool)
    sensed = all_cols if sensed is None else sensed
    present = all_cols if present is None else present
    m: dict[str, str] = {}
    for j in range(nodes.phys_cols):
        if sensed[j]:
            m[f"tia_out[{j}]"] = f"v({nodes.tia_out(j)})"
        if present[j]:
            m[f"tia_in[{j}]"] = f"v({nodes.tia_in(j)})"
        if sensed[j]:
            m[f"adc[{j}]"] = f"v({nodes.adc(j)})"
    if differential:
        for k in diff_pairs(sensed):
            m[f"diff[{k}]"] = f"v({nodes.diff(k)})"
            m[f"adc_diff[{k}]"] = f"v({nodes.adc_diff(k)})"
    for i in range(nodes.rows):
        m[f"dac[{i}]"] = f"v({nodes.dac(i)})"
        m[f"i_dac[{i}]"] = f"i({dac_source_name(i, n_vectors)})"
        if east:
            m[f"i_dac_e[{i}]"] = f"i({dac_source_name(i, n_vectors, east=True)})"
    m["i_vdd"] = "i(vdd)"
    m["i_vss"] = "i(vss)"
    return m


def analysis_lines(spec: TileSpec, nodes: TileNodes, n_vectors: int,
                   node_map: dict[str, str], tol: SimTolerances,
                   sensed: np.ndarray) -> list[str]:
    """Temperature, tolerances, the TIA nodeset, the saved vectors and the analysis."""
    out = ["* analysis",
           f".temp {_f(spec.temperature_c)}",
           (f".options reltol={_f(tol.reltol)} abstol={_f(tol.abstol_a)} "
            f"vntol={_f(tol.vntol_v)}")]
    vos = _f(spec.tia.v_offset_v)
    sets = [f"v({nodes.tia_in(j)})={vos}" for j in np.flatnonzero(sensed)]
    out.extend(".nodeset " + " ".join(sets[k:k + 8]) for k in range(0, len(sets), 8))
    names = list(node_map.values())
    out.extend(".save " + " ".join(names[k:k + 8]) for k in range(0, len(names), 8))
    out.append(".op" if n_vectors == 1 else f".dc vidx 0 {n_vectors - 1} 1")
    return out


def tile_deck(spec: TileSpec, g_pos_us: np.ndarray, g_neg_us: np.ndarray, x: np.ndarray,
              *, sensed: np.ndarray | None = None,
              tolerances: SimTolerances = SimTolerances()) -> Deck:
    """The DC VMM deck of a differential tile for a batch of input vectors.

    Parameters
    ----------
    spec : TileSpec
        Tile, transistor and periphery parameters.
    g_pos_us, g_neg_us : ndarray, shape (R, K)
        Differential conductance pair in uS (finite, >= 0, fitting in ``spec.rows x
        spec.cols``). The deck has R rows and P = 2K physical columns: the map is the
        circuit; pad it with zeros to simulate unused cells of a larger tile.
    x : ndarray, shape (N, R) or (R,)
        Input levels in [0, 1] (1 = ``v_read_v``), quantised by
        :func:`~rram_cosim.models.tile.periphery.dac_volts`.
    sensed : ndarray of bool, shape (2K,), or None
        Physical columns sensed in this read (None: all). An unsensed column floats: no TIA,
        feedback resistor, ADC or quiescent source; its line ends open at ``t{j}`` (a column
        without cells is left out entirely).
    tolerances : SimTolerances
        ngspice convergence tolerances.

    Returns
    -------
    Deck
        ``analysis`` is ``"op"`` for N = 1, else ``"dc"`` (one sweep point per vector, in
        order); ``node_map`` as in :func:`tile_node_map`.

    Raises
    ------
    ConfigError
        Non-finite or negative conductances, mismatched or oversized maps, inputs of the
        wrong shape, outside [0, 1], non-finite, an empty batch, or a ``sensed`` mask of the
        wrong shape.
    """
    gp, gn = check_pair(spec, g_pos_us, g_neg_us)
    levels = as_inputs(x, gp.shape[0])
    if levels.shape[0] == 0:
        raise ConfigError("A tile deck needs at least one input vector. Got an empty batch.")
    v_rows = dac_volts(levels, spec)
    g = physical_conductances(gp, gn)
    n = v_rows.shape[0]
    nodes = TileNodes.of(spec, g.shape[0], g.shape[1])
    sense = check_sensed(sensed, g.shape[1])
    present = sense | (g > 0).any(axis=0)
    card, includes = mosfet_card(spec.mosfet)
    east = spec.read.drive == "both" and east_dac(nodes)
    node_map = tile_node_map(nodes, n, sense, present, east=east,
                             differential=spec.read.differential)
    lines = [
        (f"* rram-cosim tile VMM: {nodes.rows} rows x {gp.shape[1]} weight columns "
         f"({nodes.phys_cols} physical), {n} input vector{'s' if n > 1 else ''}"),
        "* access transistor model",
        card,
        *supply_lines(spec, nodes, sense),
        *dac_lines(spec, nodes, v_rows),
        *row_wire_lines(spec, nodes),
        *cell_lines(spec, nodes, g),
        *column_wire_lines(spec, nodes, present),
        *tia_lines(spec, nodes, sense),
        *adc_lines(spec, nodes, sense),
        *(diff_lines(spec, nodes, sense) if spec.read.differential else []),
        *analysis_lines(spec, nodes, n, node_map, tolerances, sense),
        ".end",
    ]
    return Deck(text="\n".join(lines) + "\n", node_map=node_map,
                analysis="op" if n == 1 else "dc", includes=includes)
