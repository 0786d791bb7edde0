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
    in :mod:`rram_cosim.models.breakdown`; here are the numbers every read path needs.
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


@dataclass(frozen=True)
class TileSpec:
    """A rows x cols differential 1T1R tile with its periphery.

    Each weight column uses two physical columns (G+ and G-), each with its own TIA and ADC.
    Row ``i`` is driven by a DAC; column ``j`` is a source line held at virtual ground by its
    TIA. Wire resistance is per segment between neighbouring cells.
    """

    rows: int = 64
    cols: int = 64
    v_read_v: float = 0.2  # assumption: typical RRAM read voltage, well below forming (~3 V)
    v_gate_read_v: float = 1.1  # assumption: 40 nm core supply on the word lines during read
    g_ref_us: float = 1.0  # W = (G+ - G-) / g_ref_us; 1 uS keeps W in uS as the paper's scripts
    g_full_scale_us: float = 30.0  # assumption: ~6 sigma above the formed mean [ESGNN]
    # assumption: 40 nm Cu M1/M2 at ~4 ohm/um (size-effect resistivity) x ~0.25 um cell pitch
    r_wire_ohm: float = 1.0
    c_wire_f: float = 0.05e-15  # assumption: ~0.2 fF/um x 0.25 um pitch
    t_read_s: float = 1e-6  # assumption: one read (DAC settle + TIA + ADC sample)
    temperature_c: float = 27.0
    mosfet: MosfetSpec = field(default_factory=MosfetSpec)
    dac: DacSpec = field(default_factory=DacSpec)
    tia: TiaSpec = field(default_factory=TiaSpec)
    adc: AdcSpec = field(default_factory=AdcSpec)

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
        check_range(o, "r_wire_ohm", self.r_wire_ohm, 0, 1e4, unit="ohm")
        check_range(o, "c_wire_f", self.c_wire_f, 0, 1e-9, unit="F")
        check_range(o, "t_read_s", self.t_read_s, 1e-12, 1.0, unit="s")
        check_range(o, "temperature_c", self.temperature_c, -60, 200, unit="degC")

    @property
    def i_full_scale_ua(self) -> float:
        """Column current (uA) that maps to the ADC full scale: all rows on at g_full_scale."""
        return self.rows * self.v_read_v * self.g_full_scale_us

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
    rec_level: float = 0.5  # prototype: recurrent scale >= 1 hurt (DESIGN.md)

    def __post_init__(self) -> None:
        o = "LIFParams"
        check_int(o, "hidden", self.hidden, 1, 100_000)
        check_range(o, "decay", self.decay, 0, 1)
        check_range(o, "v_th", self.v_th, 0, 1e6, lo_open=True)
        check_range(o, "in_level", self.in_level, 0, 1, lo_open=True,
                    hint="Levels are fractions of the read voltage.")
        check_range(o, "rec_level", self.rec_level, 0, 1,
                    hint="Levels are fractions of the read voltage.")


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
