"""Parameter dataclasses shared by every package: device, transistor, periphery, tile, LIF.

All are frozen, carry units in their field names, validate in ``__post_init__`` and round-trip
through JSON with :func:`to_dict` / :func:`from_dict`. Each default names its source; values
marked *assumption* are ours, chosen where neither the paper nor a datasheet fixes them.

Sources cited below:

- [Lin25] Lin et al., Nat. Comput. Sci. 5, 37-47 (2025): 40 nm 1T1R macro, 512x512, 16-bit DAC
  0-5 V, OPA4322-class TIAs, ADS8324-class 14-bit ADC, read variation < 0.14 uS.
- [ESGNN] the same group's open code (Nat. Mach. Intell. 2023): formed cells of this macro,
  conductance mean 14.2 uS, standard deviation 2.46 uS.
- [OPA4322] TI OPA4322 datasheet (SBOS538): open-loop gain 130 dB, GBW 20 MHz, offset 0.5 mV
  typ., quiescent current 1.6 mA per channel, rail-to-rail output.
- [ADS8324] TI ADS8324 datasheet: 14-bit SAR ADC.
- [PTM] Predictive Technology Model, 45 nm (ASU): threshold ~0.47 V, tox 1.25 nm.
- [INA132] Burr-Brown/TI INA132 datasheet (PDS-1353A): unity-gain difference amplifier
  (op-amp and laser-trimmed resistor network), gain error +-0.075 % max.
- [CD4051B] TI CD4051B datasheet (SCHS047): 8-channel analogue multiplexer; channel turn-on
  and propagation times of a few hundred ns at 5 V.
- [Steinhogl05] W. Steinhogl et al., "Comprehensive study of the resistivity of copper wires
  with lateral dimensions of 100 nm and smaller", J. Appl. Phys. 97, 023706 (2005): grain-boundary
  and surface scattering raise Cu resistivity to ~4-5 uOhm cm at 50-70 nm line widths.

Sources of the stochastic breakdown (forming) model, :class:`BreakdownParams` (details and the
equations in docs/device.md):

- [McPherson12] J. W. McPherson, "Time dependent dielectric breakdown physics - Models
  revisited", Microelectron. Reliab. 52, 1753-1760 (2012): Weibull time-to-breakdown statistics,
  exponential (E-model) voltage acceleration.
- [Lorenzi13] P. Lorenzi, R. Rao, F. Irrera, "Forming kinetics in HfO2-based RRAM cells", IEEE
  TED 60(1), 438-443 (2013): forming is a time-dependent dielectric breakdown, Weibull in time,
  accelerated exponentially by the voltage.
- [Ielmini11] D. Ielmini, "Modeling the universal set/reset characteristics of bipolar RRAM by
  field- and temperature-driven filament growth", IEEE TED 58(12), 4309-4317 (2011): filament
  growth rate exponential in the voltage across it (field-lowered migration barrier); the
  formed resistance follows R = V_C / I_C with a nearly constant V_C of a few tenths of a volt.
- [Pelgrom89] M. J. M. Pelgrom, A. C. J. Duinmaijer, A. P. G. Welbers, "Matching properties of
  MOS transistors", IEEE JSSC 24(5), 1433-1439 (1989): sigma(Vt) = A_VT / sqrt(W L).
- [Pelgrom98] M. J. M. Pelgrom, H. P. Tuinhout, M. Vertregt, "Transistor matching in analog
  CMOS applications", IEDM 1998: A_VT scales with the gate-oxide thickness, about
  1 mV um per nm.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .checks import check_choice, check_int, check_range
from .errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class DeviceParams:
    """Formed-cell statistics and read behaviour of the RRAM device.

    The stochastic breakdown model that produces these statistics from forming conditions lives
    in :mod:`rram_cosim.models.device.breakdown`; here are the numbers every read path needs.
    """

    g_mean_us: float = 14.2  # [ESGNN] formed-cell mean conductance
    g_std_us: float = 2.46  # [ESGNN] formed-cell standard deviation
    g_min_us: float = 0.1  # assumption: floor of a formed filament (an unformed cell reads ~0)
    read_noise_sigma_us: float = 0.1  # [Lin25] read variation < 0.14 uS over 30,000 cycles

    def __post_init__(self) -> None:
        o = "DeviceParams"
        check_range(o, "g_mean_us", self.g_mean_us, 0, 1000, lo_open=True, unit="uS")
        check_range(o, "g_std_us", self.g_std_us, 0, 1000, unit="uS")
        check_range(o, "g_min_us", self.g_min_us, 0, self.g_mean_us, unit="uS")
        check_range(o, "read_noise_sigma_us", self.read_noise_sigma_us, 0, 10, unit="uS")


@dataclass(frozen=True)
class MosfetSpec:
    """The access (select) transistor of a 1T1R cell.

    ``card="level1"`` (default) writes an ngspice level-1 card from the fields below; the nodal
    engine implements exactly these Shichman-Hodges equations, so the two can be compared to
    1e-6. ``card="ptm45"`` uses the bundled BSIM4 card with published 45 nm PTM values.
    ``card="custom"`` includes the user's PDK file ``lib_path`` and uses ``model_name``.
    """

    card: str = "level1"
    lib_path: str | None = None  # only for card="custom"
    model_name: str | None = None  # only for card="custom"
    w_m: float = 120e-9  # assumption: minimum-width 1T1R select device at 40-45 nm
    l_m: float = 45e-9  # [PTM] 45 nm drawn length
    vto_v: float = 0.47  # [PTM] 45 nm NMOS vth0 ~0.47 V
    # assumption: effective u0*Cox of a 45 nm NMOS after mobility degradation; with W/L=2.67
    # it gives an on-resistance of ~1.5 kOhm at Vgs=1.1 V, Vds~0.
    kp_a_per_v2: float = 400e-6
    lambda_per_v: float = 0.1  # assumption: short-channel output conductance

    def __post_init__(self) -> None:
        o = "MosfetSpec"
        check_choice(o, "card", self.card, ["level1", "ptm45", "custom"])
        if self.card == "custom" and (not self.lib_path or not self.model_name):
            raise ConfigError(
                "MosfetSpec(card='custom') needs 'lib_path' (your PDK .lib/.mod file) and "
                f"'model_name' (the NMOS model in it). Got lib_path={self.lib_path!r}, "
                f"model_name={self.model_name!r}."
            )
        check_range(o, "w_m", self.w_m, 10e-9, 100e-6, unit="m")
        check_range(o, "l_m", self.l_m, 10e-9, 100e-6, unit="m")
        check_range(o, "vto_v", self.vto_v, 0.0, 2.0, unit="V")
        check_range(o, "kp_a_per_v2", self.kp_a_per_v2, 1e-6, 1e-2, unit="A/V^2")
        check_range(o, "lambda_per_v", self.lambda_per_v, 0.0, 1.0, unit="1/V")

    @property
    def beta_a_per_v2(self) -> float:
        """Level-1 gain factor KP * W / L in A/V^2."""
        return self.kp_a_per_v2 * self.w_m / self.l_m


@dataclass(frozen=True)
class DacSpec:
    """Input DAC driving one row: quantised level behind an output resistance."""

    bits: int = 16  # [Lin25] 16-bit DAC
    v_full_scale_v: float = 5.0  # [Lin25] 0-5 V
    r_out_ohm: float = 1.0  # assumption: buffered DAC output

    def __post_init__(self) -> None:
        check_int("DacSpec", "bits", self.bits, 1, 24)
        check_range("DacSpec", "v_full_scale_v", self.v_full_scale_v, 0, 20, lo_open=True,
                    unit="V")
        check_range("DacSpec", "r_out_ohm", self.r_out_ohm, 0, 1e6, unit="ohm")

    @property
    def lsb_v(self) -> float:
        return self.v_full_scale_v / (2**self.bits - 1)


@dataclass(frozen=True)
class TiaSpec:
    """Op-amp transimpedance amplifier macromodel, one per physical column.

    Inverting: the column is held at the virtual ground ``v_offset_v`` and the output is
    ``-I * R_f`` (finite gain, clipped at the rails). ``r_f_ohm=None`` lets the tile choose
    R_f so the ADC full scale matches the tile's full-scale column current.
    """

    a_ol: float = 3.16e6  # [OPA4322] 130 dB open-loop gain
    gbw_hz: float = 20e6  # [OPA4322]
    v_offset_v: float = 0.5e-3  # [OPA4322] typical input offset
    i_q_a: float = 1.6e-3  # [OPA4322] quiescent current per channel
    v_pos_v: float = 2.5  # assumption: +-2.5 V split supply (5 V total, OPA4322 max 5.5 V)
    v_neg_v: float = -2.5
    v_swing_margin_v: float = 0.02  # [OPA4322] rail-to-rail output within ~20 mV
    r_out_ohm: float = 50.0  # assumption: open-loop output resistance
    r_f_ohm: float | None = None

    def __post_init__(self) -> None:
        o = "TiaSpec"
        check_range(o, "a_ol", self.a_ol, 1.0, 1e9, unit="V/V")
        check_range(o, "gbw_hz", self.gbw_hz, 1e3, 1e11, unit="Hz")
        check_range(o, "v_offset_v", self.v_offset_v, -0.05, 0.05, unit="V")
        check_range(o, "i_q_a", self.i_q_a, 0, 0.1, unit="A")
        check_range(o, "v_pos_v", self.v_pos_v, 0, 20, lo_open=True, unit="V")
        check_range(o, "v_neg_v", self.v_neg_v, -20, 0, hi_open=True, unit="V")
        check_range(o, "v_swing_margin_v", self.v_swing_margin_v, 0, 1, unit="V")
        check_range(o, "r_out_ohm", self.r_out_ohm, 0, 1e6, unit="ohm")
        if self.r_f_ohm is not None:
            check_range(o, "r_f_ohm", self.r_f_ohm, 1.0, 1e9, unit="ohm")

    @property
    def v_out_max_v(self) -> float:
        return self.v_pos_v - self.v_swing_margin_v

    @property
    def v_out_min_v(self) -> float:
        return self.v_neg_v + self.v_swing_margin_v


@dataclass(frozen=True)
class AdcSpec:
    """Behavioural quantiser digitising the inverted TIA output, ``-v_tia``, over
    ``[0, v_full_scale_v]`` (an inverting front end, so positive column currents give positive
    codes)."""

    bits: int = 14  # [Lin25], [ADS8324]
    v_full_scale_v: float = 2.4  # assumption: just inside the TIA's negative swing

    def __post_init__(self) -> None:
        check_int("AdcSpec", "bits", self.bits, 1, 24)
        check_range("AdcSpec", "v_full_scale_v", self.v_full_scale_v, 0, 20, lo_open=True,
                    unit="V")

    @property
    def n_codes(self) -> int:
        return 2**self.bits

    @property
    def lsb_v(self) -> float:
        return self.v_full_scale_v / (2**self.bits - 1)


READ_DRIVES = ("one", "both")
READ_SENSES = ("single", "differential")
UNSENSED_MODES = ("ground", "float")


@dataclass(frozen=True)
class WireGeometry:
    """One metal line of the array: sheet resistance, cell pitch along the line, line width.

    A segment between neighbouring cells is ``sheet_ohm_per_sq * pitch_um / width_um`` ohm.
    """

    # [Steinhogl05]: ~4.5 uOhm cm at 70 nm width over an assumed 0.13 um thickness (aspect
    # ratio ~1.8) gives ~0.35 ohm/sq
    sheet_ohm_per_sq: float = 0.35
    pitch_um: float = 0.25  # assumption: 1T1R cell pitch of a 40 nm macro (~0.06 um^2 cells)
    width_um: float = 0.07  # assumption: minimum-width 40 nm Mx line (140 nm pitch)

    def __post_init__(self) -> None:
        o = "WireGeometry"
        check_range(o, "sheet_ohm_per_sq", self.sheet_ohm_per_sq, 0, 100, unit="ohm/sq")
        check_range(o, "pitch_um", self.pitch_um, 0, 100, lo_open=True, unit="um")
        check_range(o, "width_um", self.width_um, 0, 100, lo_open=True, unit="um")

    @property
    def r_segment_ohm(self) -> float:
        """Resistance of one segment between neighbouring cells (ohm)."""
        # 12 significant digits: the deck text and hashes do not carry float dust
        return float(f"{self.sheet_ohm_per_sq * self.pitch_um / self.width_um:.12g}")


@dataclass(frozen=True)
class ReadScheme:
    """How the array is read: row groups, sensed columns, drive, sensing and ADC sharing.

    A VMM of a map taller than ``rows_per_read`` is several reads of the same physical array:
    each read drives one group of consecutive rows (the others held at 0 V, their cells still
    on the columns), digitises the sensed columns, and the partial sums add in digital. The
    defaults follow the paper's board (docs/tile.md, "Read schemes").
    """

    # [Lin25] Methods: "the system offers parallel 64-way analogue voltages"; 0 = all rows
    rows_per_read: int = 64
    # physical columns (weight columns when differential) sensed in one read; 0 = all.
    # assumption: the board description names no source-line multiplexer, so every column of
    # the map is held at its TIA's virtual ground and sensed in each read
    cols_per_read: int = 0
    # what a column does while others are sensed: "ground" (held at the virtual ground) or
    # "float" (disconnected by its multiplexer: it draws no current from the rows)
    unsensed: str = "ground"
    drive: str = "one"  # rows driven from the west end ("one") or from both ends ("both")
    # "single": every physical column converted, G+ - G- in digital; "differential": the two
    # TIA outputs subtracted in analogue, one bipolar conversion per weight column
    sense: str = "single"
    # relative gain error of the G+ path of the analogue subtractor: the order of an integrated
    # difference amplifier's trimmed resistor network ([INA132]: +-0.075 % max), rounded up
    diff_gain_error: float = 1e-3
    diff_offset_v: float = 0.5e-3  # [OPA4322] typical input offset of the subtractor's op-amp
    # conversions sharing one ADC in series (latency); 1 = one ADC per converted output.
    # assumption: per-column ADCs as on a macro; the board shares one ADS8324 [Lin25] (0 = all)
    outputs_per_adc: int = 1
    # [CD4051B] switch turn-on plus settling, charged to every read of a multi-read VMM
    t_mux_settle_s: float = 0.5e-6

    def __post_init__(self) -> None:
        o = "ReadScheme"
        check_int(o, "rows_per_read", self.rows_per_read, 0, 1 << 16)
        check_int(o, "cols_per_read", self.cols_per_read, 0, 1 << 16)
        check_choice(o, "unsensed", self.unsensed, UNSENSED_MODES)
        check_choice(o, "drive", self.drive, READ_DRIVES)
        check_choice(o, "sense", self.sense, READ_SENSES)
        check_range(o, "diff_gain_error", self.diff_gain_error, -0.1, 0.1)
        check_range(o, "diff_offset_v", self.diff_offset_v, -0.05, 0.05, unit="V")
        check_int(o, "outputs_per_adc", self.outputs_per_adc, 0, 1 << 16)
        check_range(o, "t_mux_settle_s", self.t_mux_settle_s, 0, 1e-3, unit="s")

    @classmethod
    def whole_map(cls) -> ReadScheme:
        """Every row driven at once, every column sensed, single-ended (the simplest read)."""
        return cls(rows_per_read=0)

    @property
    def differential(self) -> bool:
        return self.sense == "differential"

    def row_groups(self, rows: int) -> list[tuple[int, int]]:
        """``(start, stop)`` of each read's row group over ``rows`` map rows."""
        step = self.rows_per_read or rows
        return [(r, min(r + step, rows)) for r in range(0, rows, step)]

    def rows_driven(self, rows: int) -> int:
        """Rows driven in one read of a ``rows``-row map."""
        return min(rows, self.rows_per_read) if self.rows_per_read else rows

    def outputs(self, weight_cols: int) -> int:
        """Converted outputs of one full read: physical columns, or weight columns if
        differential."""
        return weight_cols if self.differential else 2 * weight_cols

    def col_groups(self, weight_cols: int) -> int:
        """Reads needed to sense every output once (column multiplexing)."""
        n = self.outputs(weight_cols)
        return -(-n // self.cols_per_read) if self.cols_per_read else 1

    def reads_per_vmm(self, rows: int, weight_cols: int) -> int:
        """Array reads (row groups x column groups) of one VMM."""
        return len(self.row_groups(rows)) * self.col_groups(weight_cols)

    def conversions_per_vmm(self, rows: int, weight_cols: int) -> int:
        """ADC conversions of one VMM: every output once per row group."""
        return len(self.row_groups(rows)) * self.outputs(weight_cols)

    def conversions_in_series(self, rows: int, weight_cols: int) -> int:
        """Conversions one ADC does one after another per VMM (the ADC part of latency)."""
        per_read = -(-self.outputs(weight_cols) // self.col_groups(weight_cols))
        share = min(self.outputs_per_adc or per_read, per_read)
        return self.reads_per_vmm(rows, weight_cols) * share


@dataclass(frozen=True)
class TileSpec:
    """A rows x cols differential 1T1R tile with its periphery and its read scheme.

    Each weight column uses two physical columns (G+ and G-), each held at virtual ground by its
    own TIA. Row ``i`` is driven by a DAC; column ``j`` is a source line. Wire resistance is per
    segment between neighbouring cells: from the metal geometry of the row and column lines
    (``row_wire``, ``col_wire``) unless ``r_wire_ohm`` overrides both. ``read`` says how a VMM
    reads the array (row groups, sensed columns, drive, sensing).
    """

    rows: int = 64
    cols: int = 64
    v_read_v: float = 0.2  # assumption: typical RRAM read voltage, well below forming (~3 V)
    v_gate_read_v: float = 1.1  # assumption: 40 nm core supply on the word lines during read
    g_ref_us: float = 1.0  # W = (G+ - G-) / g_ref_us; 1 uS keeps W in uS as the paper's scripts
    g_full_scale_us: float = 30.0  # assumption: ~6 sigma above the formed mean [ESGNN]
    # direct override of both lines' segment resistance (ohm); None: from the wire geometry
    r_wire_ohm: float | None = None
    c_wire_f: float = 0.05e-15  # assumption: ~0.2 fF/um x 0.25 um pitch
    t_read_s: float = 1e-6  # assumption: one read (DAC settle + TIA + ADC sample)
    temperature_c: float = 27.0
    mosfet: MosfetSpec = field(default_factory=MosfetSpec)
    dac: DacSpec = field(default_factory=DacSpec)
    tia: TiaSpec = field(default_factory=TiaSpec)
    adc: AdcSpec = field(default_factory=AdcSpec)
    row_wire: WireGeometry = field(default_factory=WireGeometry)  # bit lines, driven by DACs
    col_wire: WireGeometry = field(default_factory=WireGeometry)  # source lines, to the TIAs
    read: ReadScheme = field(default_factory=ReadScheme)

    def __post_init__(self) -> None:
        o = "TileSpec"
        check_int(o, "rows", self.rows, 1, 4096)
        check_int(o, "cols", self.cols, 1, 4096)
        check_range(o, "v_read_v", self.v_read_v, 0, 0.5, lo_open=True, unit="V",
                    hint="Read voltages above 0.5 V risk disturbing formed cells.")
        if self.v_read_v > self.dac.v_full_scale_v:
            raise ConfigError(
                f"The 'v_read_v' parameter of TileSpec ({self.v_read_v} V) exceeds the DAC full "
                f"scale ({self.dac.v_full_scale_v} V). Lower v_read_v or raise "
                "dac.v_full_scale_v."
            )
        check_range(o, "v_gate_read_v", self.v_gate_read_v, 0, 5, lo_open=True, unit="V")
        check_range(o, "g_ref_us", self.g_ref_us, 0, 1e4, lo_open=True, unit="uS")
        check_range(o, "g_full_scale_us", self.g_full_scale_us, 0, 1e4, lo_open=True, unit="uS")
        if self.r_wire_ohm is not None:
            check_range(o, "r_wire_ohm", self.r_wire_ohm, 0, 1e4, unit="ohm",
                        hint="Leave it unset (None) to derive it from the wire geometry.")
        check_range(o, "c_wire_f", self.c_wire_f, 0, 1e-9, unit="F")
        check_range(o, "t_read_s", self.t_read_s, 1e-12, 1.0, unit="s")
        check_range(o, "temperature_c", self.temperature_c, -60, 200, unit="degC")

    @property
    def r_row_ohm(self) -> float:
        """Row (bit-line) segment resistance (ohm)."""
        return self.r_wire_ohm if self.r_wire_ohm is not None else self.row_wire.r_segment_ohm

    @property
    def r_col_ohm(self) -> float:
        """Column (source-line) segment resistance (ohm)."""
        return self.r_wire_ohm if self.r_wire_ohm is not None else self.col_wire.r_segment_ohm

    @property
    def rows_per_read(self) -> int:
        """Rows driven in one read of this tile."""
        return self.read.rows_driven(self.rows)

    @property
    def i_full_scale_ua(self) -> float:
        """Column current (uA) that maps to the ADC full scale: every row of one read on, all
        at g_full_scale."""
        return self.rows_per_read * self.v_read_v * self.g_full_scale_us

    @property
    def r_f_ohm(self) -> float:
        """TIA feedback resistance: the given one, or ADC full scale / full-scale current."""
        if self.tia.r_f_ohm is not None:
            return self.tia.r_f_ohm
        return self.adc.v_full_scale_v / (self.i_full_scale_ua * 1e-6)


@dataclass(frozen=True)
class LIFParams:
    """Leaky integrate-and-fire reservoir, [Lin25] Methods Eq. 1-3.

    Per step: ``I = W_in x_t + W_rec s_{t-1}``; ``u = decay * u * (1 - s_{t-1}) + I``;
    ``s = u > v_th`` (hard reset). Input and recurrent rows are driven at ``in_level`` and
    ``rec_level`` times the read voltage, the analogue way to scale the two weight blocks.
    """

    hidden: int = 200  # [Lin25] h = 200
    decay: float = 0.9  # [Lin25] N-MNIST script
    v_th: float = 5.0  # [Lin25] N-MNIST script
    in_level: float = 1.0
    rec_level: float = 0.5  # the project's prototype: recurrent scale >= 1 hurt accuracy

    def __post_init__(self) -> None:
        o = "LIFParams"
        check_int(o, "hidden", self.hidden, 1, 100_000)
        check_range(o, "decay", self.decay, 0, 1)
        check_range(o, "v_th", self.v_th, 0, 1e6, lo_open=True)
        check_range(o, "in_level", self.in_level, 0, 1, lo_open=True,
                    hint="Levels are fractions of the read voltage.")
        check_range(o, "rec_level", self.rec_level, 0, 1,
                    hint="Levels are fractions of the read voltage.")


#: The 1T1R select transistor during forming: a 2.5 V I/O NMOS. A 3 V forming pulse across a
#: 1.1 V core device would break its gate oxide, so RRAM macros put I/O devices in the cell;
#: their longer channel is also what keeps the saturation (compliance) current matched to the
#: ~17 % spread of formed conductances [ESGNN] (a 45 nm core device, A_VT / L large, gives ~50 %).
#: All values: assumption, typical of the 2.5 V I/O option of 40-65 nm processes (tox ~5 nm,
#: minimum L ~0.28 um, Vt ~0.55 V; kp = mu_eff Cox with mu_eff ~300 cm^2/Vs).
IO_NMOS_25V = MosfetSpec(w_m=0.4e-6, l_m=0.28e-6, vto_v=0.55, kp_a_per_v2=200e-6,
                         lambda_per_v=0.05)


@dataclass(frozen=True)
class BreakdownParams:
    """Stochastic breakdown (forming) compact model of a TaN/TaOx/Ta/TiN cell.

    One parameter set for both implementations: the ngspice cell
    (:mod:`rram_cosim.netlists.forming`) and the numpy twin (:mod:`rram_cosim.models.device.breakdown`).
    Equations (docs/device.md):

    - breakdown: a damage state ``D`` grows as ``dD/dt = exp(gamma (V_cell - v_ref)) / t63_ref``
      and the cell breaks down when ``D`` reaches its own Weibull draw ``w`` (shape
      ``weibull_beta``, unit scale), so at a constant voltage ``t_bd ~ Weibull(t63(V), beta)``
      with ``t63(V) = t63_ref exp(-gamma (V - v_ref))``;
    - growth after breakdown: ``dG/dt = I h(V_f) / Q``, ``I = (g_pristine + G) V_f`` the filament
      current, ``h(V) = x / (1 + x / growth_rate_max)``, ``x = max(exp((V - v_hold) / v_growth)
      - 1, 0)``, ``Q = tau V_hold^2 / v_growth`` with a per-cell lognormal ``tau``; growth
      stalls where ``V_f = v_hold``, so under a compliance current ``I_cc`` the conductance
      settles at ``I_cc / v_hold``;
    - select transistor threshold mismatch ``sigma(Vt) = a_vt / sqrt(W L)``;
    - read: the filament is ohmic (no read nonlinearity); each read adds Gaussian noise
      ``read_noise_sigma_us`` and, in a fraction ``rtn_fraction`` of cells, random telegraph
      noise of ``rtn_amplitude_rel`` times G.
    """

    # breakdown statistics
    t63_ref_s: float = 1e-6  # assumption: 63 % of cells formed after 1 us at v_ref [Lorenzi13]
    v_ref_v: float = 3.0  # reference voltage of t63_ref: the forming voltage of the CLI example
    gamma_per_v: float = 4.6  # assumption: 1 decade per 0.5 V, E-model range [McPherson12]
    weibull_beta: float = 1.5  # assumption: Weibull slope of a few-nm oxide [McPherson12]
    g_pristine_us: float = 1e-3  # assumption: 1 nS (nA leakage at 1 V) of an unformed cell
    # filament growth
    v_hold_v: float = 0.5  # [Ielmini11] V_C of the R = V_C / I_C law, a few tenths of a V
    v_growth_v: float = 0.25  # [Ielmini11] kT / (alpha q) at forming temperature; assumption
    growth_rate_max: float = 100.0  # assumption: caps the burst right after breakdown
    tau_growth_s: float = 5e-6  # assumption: fitted to [ESGNN] at the default forming
    sigma_ln_tau: float = 0.8  # assumption: fitted to [ESGNN] at the default forming
    # select transistor mismatch
    a_vt_mv_um: float = 5.5  # [Pelgrom89], [Pelgrom98]: ~1.1 mV um per nm x ~5 nm I/O oxide
    # read
    read_noise_sigma_us: float = 0.1  # [Lin25] read variation < 0.14 uS over 30,000 cycles
    rtn_fraction: float = 0.0  # optional random telegraph noise: off by default
    rtn_amplitude_rel: float = 0.02  # assumption: a few % of G for one trap
    rtn_dwell_s: float = 1e-3  # assumption: mean dwell time of each trap state

    def __post_init__(self) -> None:
        o = "BreakdownParams"
        check_range(o, "t63_ref_s", self.t63_ref_s, 1e-12, 1e3, unit="s")
        check_range(o, "v_ref_v", self.v_ref_v, 0.5, 10.0, unit="V")
        check_range(o, "gamma_per_v", self.gamma_per_v, 0.0, 50.0, unit="1/V")
        check_range(o, "weibull_beta", self.weibull_beta, 0.2, 20.0)
        check_range(o, "g_pristine_us", self.g_pristine_us, 1e-6, 1.0, unit="uS")
        check_range(o, "v_hold_v", self.v_hold_v, 0.05, 2.0, unit="V")
        check_range(o, "v_growth_v", self.v_growth_v, 0.01, 2.0, unit="V")
        check_range(o, "growth_rate_max", self.growth_rate_max, 1.0, 1e6)
        check_range(o, "tau_growth_s", self.tau_growth_s, 1e-12, 1e3, unit="s")
        check_range(o, "sigma_ln_tau", self.sigma_ln_tau, 0.0, 3.0)
        check_range(o, "a_vt_mv_um", self.a_vt_mv_um, 0.0, 50.0, unit="mV um")
        check_range(o, "read_noise_sigma_us", self.read_noise_sigma_us, 0, 10, unit="uS")
        check_range(o, "rtn_fraction", self.rtn_fraction, 0.0, 1.0)
        check_range(o, "rtn_amplitude_rel", self.rtn_amplitude_rel, 0.0, 1.0)
        check_range(o, "rtn_dwell_s", self.rtn_dwell_s, 1e-12, 1e6, unit="s")


@dataclass(frozen=True)
class FormingConditions:
    """One uniform forming operation: the same pulse on every cell, compliance by the gate.

    The pulse is a trapezoid: 0 -> ``v_form_v`` in ``t_edge_s``, ``t_pulse_s`` at
    ``v_form_v``, back to 0 in ``t_edge_s``. The select transistor's gate sets the compliance:
    give the target current ``i_cc_a`` (the gate voltage is then chosen so that the nominal
    transistor carries ``i_cc_a`` in saturation at ``V_ds = v_form_v - v_hold_v``) or the gate
    voltage ``v_gate_v`` itself, not both. ``t_step_s`` is the time step of the transient: the
    largest step ngspice may take, and the resolution of the pulse.
    """

    v_form_v: float = 3.0  # README's `form` example; inside the DAC range 0-5 V [Lin25]
    t_pulse_s: float = 10e-6  # README's `form` example
    # assumption: chosen so the default forming gives [ESGNN]'s 14.2 uS mean
    i_cc_a: float | None = 7.5e-6
    v_gate_v: float | None = None
    t_edge_s: float = 10e-9  # assumption: DAC edge of a programming pulse
    t_step_s: float = 10e-9  # assumption: resolves the edges; 1000 steps over 10 us
    mosfet: MosfetSpec = field(default_factory=lambda: IO_NMOS_25V)

    V_FORM_RANGE_V: typing.ClassVar[tuple[float, float]] = (1.0, 5.0)
    I_CC_RANGE_A: typing.ClassVar[tuple[float, float]] = (0.0, 1e-3)

    def __post_init__(self) -> None:
        o = "FormingConditions"
        lo, hi = self.V_FORM_RANGE_V
        check_range(o, "v_form_v", self.v_form_v, lo, hi, unit="V",
                    hint="The model is valid from 1 V (no breakdown below) to the DAC's 5 V.")
        check_range(o, "t_step_s", self.t_step_s, 1e-12, 1e-3, unit="s")
        check_range(o, "t_pulse_s", self.t_pulse_s, self.t_step_s, 1.0, unit="s",
                    hint="The pulse must be at least one time step (t_step_s) long; shorten "
                         "t_step_s or lengthen the pulse.")
        check_range(o, "t_edge_s", self.t_edge_s, self.t_step_s, self.t_pulse_s, unit="s",
                    hint="Edges take between one time step and the pulse width.")
        if (self.i_cc_a is None) == (self.v_gate_v is None):
            raise ConfigError(
                "FormingConditions needs exactly one of 'i_cc_a' (target compliance current, "
                f"A) and 'v_gate_v' (gate voltage, V). Got i_cc_a={self.i_cc_a!r}, "
                f"v_gate_v={self.v_gate_v!r}. Set the other one to None.")
        if self.i_cc_a is not None:
            check_range(o, "i_cc_a", self.i_cc_a, *self.I_CC_RANGE_A, lo_open=True, unit="A",
                        hint="The compliance current must be positive.")
        else:
            check_range(o, "v_gate_v", self.v_gate_v, 0.0, 5.0, lo_open=True, unit="V",
                        hint="(Below the threshold the select transistor is off and no cell "
                             "forms.)")


def to_dict(obj: Any) -> dict[str, Any]:
    """Nested plain-dict form of a parameter dataclass, for JSON run configs."""
    if not dataclasses.is_dataclass(obj):
        raise ConfigError(f"to_dict expects a parameter dataclass. Got {type(obj).__name__}.")
    return dataclasses.asdict(obj)


def from_dict(cls: type[T], data: dict[str, Any] | None) -> T:
    """Build ``cls`` from a (possibly partial, possibly nested) dict; unknown keys are an error."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"Unknown parameter(s) {unknown} for {cls.__name__}. Valid names: {sorted(names)}."
        )
    kwargs: dict[str, Any] = {}
    for k, v in data.items():
        hint = hints.get(k)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(v, dict):
            kwargs[k] = from_dict(hint, v)
        else:
            kwargs[k] = v
    return cls(**kwargs)


def missing_fields(cls: type, data: dict[str, Any], *, optional: tuple[str, ...] = (),
                   prefix: str = "") -> list[str]:
    """Dotted names (``tia.r_f_ohm``) of the fields of dataclass ``cls``, nested ones
    included, that ``data`` lacks: for files that must state every value (no silent
    default). ``optional``: dotted names that may be absent."""
    out: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        if key in optional:
            continue
        if f.name not in data:
            out.append(key)
            continue
        hint = hints.get(f.name)
        v = data[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(v, dict):
            out += missing_fields(hint, v, optional=optional, prefix=key + ".")
    return out


def isclose_params(a: Any, b: Any) -> bool:
    """Equality of two parameter dataclasses up to float rounding (JSON round trips)."""
    da, db = to_dict(a), to_dict(b)

    def eq(x: Any, y: Any) -> bool:
        if isinstance(x, dict):
            return isinstance(y, dict) and x.keys() == y.keys() and all(eq(x[k], y[k]) for k in x)
        if isinstance(x, float) and isinstance(y, (int, float)):
            return math.isclose(x, y, rel_tol=1e-12, abs_tol=0.0)
        return x == y

    return type(a) is type(b) and eq(da, db)
