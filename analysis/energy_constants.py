"""Technology constants and the paper's networks and figures, for the energy accounting.

The data half of :mod:`rram_cosim.analysis.energy` (which re-exports every name here): the
constants with their units and sources, the paper's network sizes and energy figures, the
default recurrent drive level. It imports no pandas, so a command's configuration can name
its choices (``--network``) and defaults without loading the accounting.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from ..models.checks import check_int, check_range
from ..models.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CONSTANTS_INFO",
    "DEFAULT_REC_LEVEL",
    "PAPER_FIGURES",
    "PRESETS",
    "SOURCES",
    "EnergyConstants",
    "Network",
    "NetworkSize",
    "PaperFigure",
]

# Sources:
# [Lin25] Lin et al., Nat. Comput. Sci. 5, 37-47 (2025): the figures laid beside ours.
# [ESGNN] the same group's open data (Nat. Mach. Intell. 2023): 300 W / 624 Tops/s.
# [H14] M. Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm, 0.9 V: integer add 8/32
#       bit 0.03/0.1 pJ, multiply 8/32 bit 0.2/3.1 pJ; 64-bit SRAM read 10 pJ (8 KB),
#       20 pJ (32 KB).
# [W99] R. H. Walden, IEEE JSAC 17(4), 1999: energy per conversion = FOM x 2^bits.
# [M24] B. Murmann, "ADC performance survey 1997-2024": SAR ADCs at 28-65 nm reach Walden
#       FOMs of 1-10 fJ/conversion-step.
# [OPA4322] TI OPA4322 datasheet: 1.6 mA quiescent per channel (the paper's board TIA).

#: name -> (unit, technology node, source) of every constant in :class:`EnergyConstants`.
CONSTANTS_INFO: dict[str, tuple[str, str, str]] = {
    "pj_per_op_paper": ("pJ/op", "GPU-class rating",
                        "[ESGNN] 300 W / 624 Tops/s, the constant behind [Lin25]'s digital figures"),
    "paper_ops_per_s": ("op/s", "GPU-class rating", "[ESGNN] 624 Tops/s (paper-mode latency)"),
    "paper_col_read_j": ("J per physical column read", "40 nm (as [Lin25] assumes)",
                         "fitted: [Lin25] N-MNIST hybrid 0.14 uJ with this module's paper rule"),
    "paper_lif_ops": ("op per neuron-step", "-",
                      "assumption: decay multiply, reset, add, threshold compare"),
    "node_scale": ("x", "45 nm -> 40 nm",
                   "assumption: E ~ C V^2, C ~ feature size, same supply: 40/45"),
    "e_add_8b_j": ("J", "45 nm", "[H14] 8-bit integer add"),
    "e_add_32b_j": ("J", "45 nm", "[H14] 32-bit integer add"),
    "e_mult_8b_j": ("J", "45 nm", "[H14] 8-bit integer multiply"),
    "e_mult_32b_j": ("J", "45 nm", "[H14] 32-bit integer multiply"),
    "e_sram_state_bit_j": ("J/bit", "45 nm", "[H14] 64-bit read of an 8 KB SRAM, 10 pJ / 64"),
    "e_sram_weight_bit_j": ("J/bit", "45 nm",
                            "[H14] 64-bit read of a 32 KB SRAM, 20 pJ / 64 (weights: ~90 KB)"),
    "weight_bits": ("bit", "-", "assumption: 8-bit weights in the digital systems"),
    "state_bits": ("bit", "-", "assumption: 16-bit membrane state, read and written each step"),
    "e_row_driver_j": ("J per driven row", "40 nm",
                       ("assumption: 1-bit row driver charging a ~500-cell row line (~10 fF, "
                        "0.2 V swing and driver overhead)")),
    "tia_i_q_a": ("A", "40 nm", "assumption: integrated TIA bias (board: [OPA4322] 1.6 mA)"),
    "tia_supply_v": ("V", "40 nm", "assumption: 1.1 V core supply for an integrated TIA"),
    "t_read_integrated_s": ("s", "40 nm",
                            "assumption: integrated read (row drive, TIA settle, ADC sample)"),
    "adc_fom_j_per_step": ("J/conv-step", "28-65 nm SAR",
                           "[W99]/[M24] Walden FOM of a good SAR ADC (assumption: 5 fJ)"),
    "f_clk_hz": ("Hz", "40 nm", "assumption: digital clock"),
    "digital_lanes": ("MAC or neuron units", "-",
                      "assumption: parallel datapath of both systems' digital parts"),
}

#: Short source of each constant (kept for older callers).
SOURCES = {k: v[2] for k, v in CONSTANTS_INFO.items()}

#: Accepted range of every constant, in its unit (:data:`CONSTANTS_INFO`): wide enough for any
#: technology from an advanced node to a board (a GPU-class 0.48 pJ/op to a 32-bit multiply's
#: 3.1 pJ and beyond), narrow enough to catch a unit slip (pJ given in J, or J in pJ). Energies
#: may be 0, to switch a component off in a what-if.
_RANGES: dict[str, tuple[float, float]] = {
    "pj_per_op_paper": (1e-3, 1e3),        # pJ/op: 1 fJ/op (beyond any CMOS) to 1 nJ/op
    "paper_ops_per_s": (1e6, 1e18),        # op/s: a microcontroller to an exascale rack
    "paper_col_read_j": (0.0, 1e-6),       # J per column read: up to 1 uJ (board parts)
    "paper_lif_ops": (0.0, 1e3),           # op per neuron-step
    "node_scale": (0.01, 10.0),            # energy ratio between technology nodes
    "e_add_8b_j": (0.0, 1e-9),             # J: up to 1 nJ an operation (FPGA, old nodes)
    "e_add_32b_j": (0.0, 1e-9),
    "e_mult_8b_j": (0.0, 1e-9),
    "e_mult_32b_j": (0.0, 1e-9),
    "e_sram_state_bit_j": (0.0, 1e-9),     # J/bit: SRAM ~0.1 pJ/bit to off-chip DRAM ~100 pJ
    "e_sram_weight_bit_j": (0.0, 1e-9),
    "weight_bits": (1.0, 64.0),
    "state_bits": (1.0, 64.0),
    "e_row_driver_j": (0.0, 1e-9),         # J per driven row
    "tia_i_q_a": (0.0, 0.1),               # A: up to 100 mA a TIA (board op-amps: ~1-10 mA)
    "tia_supply_v": (0.1, 30.0),           # V
    "t_read_integrated_s": (1e-12, 1e-3),  # s
    "adc_fom_j_per_step": (0.0, 1e-9),     # J/conv-step: survey FOMs span ~0.1 fJ to ~10 pJ
    "f_clk_hz": (1e3, 1e12),               # Hz
    "digital_lanes": (1.0, 1e9),
}


@dataclass(frozen=True)
class EnergyConstants:
    """Technology constants (units in :data:`CONSTANTS_INFO`); override any field by name.

    Energies in J unless the name says pJ; :meth:`table` lists value, node and source.
    """

    pj_per_op_paper: float = 0.4808
    paper_ops_per_s: float = 624e12
    paper_col_read_j: float = 6.25e-12
    paper_lif_ops: float = 4.0
    node_scale: float = 40.0 / 45.0
    e_add_8b_j: float = 0.03e-12
    e_add_32b_j: float = 0.1e-12
    e_mult_8b_j: float = 0.2e-12
    e_mult_32b_j: float = 3.1e-12
    e_sram_state_bit_j: float = 10e-12 / 64
    e_sram_weight_bit_j: float = 20e-12 / 64
    weight_bits: float = 8.0
    state_bits: float = 16.0
    e_row_driver_j: float = 10e-15
    tia_i_q_a: float = 10e-6
    tia_supply_v: float = 1.1
    t_read_integrated_s: float = 100e-9
    adc_fom_j_per_step: float = 5e-15
    f_clk_hz: float = 1e9
    digital_lanes: float = 256.0

    def __post_init__(self) -> None:
        for f in fields(self):
            lo, hi = _RANGES[f.name]
            check_range("EnergyConstants", f.name, getattr(self, f.name), lo, hi,
                        unit=CONSTANTS_INFO[f.name][0],
                        hint="Energies are in J (pJ for pj_per_op_paper), times in s.")

    def table(self) -> pd.DataFrame:
        """Every constant with its value, unit, technology node and source."""
        import pandas as pd

        return pd.DataFrame([{"constant": f.name, "value": getattr(self, f.name),
                              "unit": CONSTANTS_INFO[f.name][0], "node": CONSTANTS_INFO[f.name][1],
                              "source": CONSTANTS_INFO[f.name][2]} for f in fields(self)])

    @classmethod
    def from_overrides(cls, overrides: dict[str, float] | None) -> EnergyConstants:
        """Defaults with the named fields replaced; unknown names raise with the valid list."""
        names = {f.name for f in fields(cls)}
        bad = sorted(set(overrides or {}) - names)
        if bad:
            raise ConfigError(f"Unknown energy constant(s) {bad}. Valid names: {sorted(names)}.")
        return cls(**{k: float(v) for k, v in (overrides or {}).items()})

    def e(self, name: str) -> float:
        """A digital energy at the target node: the 45 nm table value times ``node_scale``."""
        return getattr(self, name) * self.node_scale


@dataclass(frozen=True, order=True)
class NetworkSize:
    """One LSM encoder with its head: inputs, hidden neurons, time steps, head outputs."""

    n_in: int
    hidden: int
    n_steps: int
    n_out: int

    def __post_init__(self) -> None:
        for f in ("n_in", "hidden", "n_steps", "n_out"):
            check_int("NetworkSize", f, getattr(self, f), 1, 10_000_000)

    @property
    def reservoir_macs(self) -> int:
        """Dense reservoir MACs per inference: (n_in + hidden) x hidden x n_steps."""
        return (self.n_in + self.hidden) * self.hidden * self.n_steps

    @property
    def head_macs(self) -> int:
        return self.hidden * self.n_out


@dataclass(frozen=True)
class Network:
    """A network of one or more encoders (a zero-shot pair has two), each with its head."""

    name: str
    encoders: tuple[tuple[str, NetworkSize], ...]

    def __post_init__(self) -> None:
        if not self.encoders:
            raise ConfigError(f"Network {self.name!r} needs at least one encoder.")


@dataclass(frozen=True)
class PaperFigure:
    """The paper's energy per inference (uJ) and hybrid/digital ratio; None where not given."""

    hybrid_uj: float | None
    digital_uj: float | None
    ratio: float | None
    note: str = ""


#: The paper's network sizes ([Lin25] scripts and text). The N-TIDIGITS head has 11
#: classes (zero to nine and "oh"); zero-shot heads project to 64 dimensions. BMI: [Lin25]'s
#: brain-machine-interface variant: an image encoder with 784 inputs and a neural
#: encoder with 192 inputs, 2048 hidden neurons each, 256-dimensional projection heads (22 seen
#: and 4 unseen classes, which do not enter the energy); its T = 50 time steps are our
#: assumption (the paper gives none).
PRESETS: dict[str, Network] = {
    "nmnist": Network("nmnist", (("image", NetworkSize(256, 200, 50, 10)),)),
    "ntidigits": Network("ntidigits", (("audio", NetworkSize(64, 200, 129, 11)),)),
    "zeroshot": Network("zeroshot", (("image", NetworkSize(256, 200, 50, 64)),
                                     ("audio", NetworkSize(64, 200, 129, 64)))),
    "bmi": Network("bmi", (("image", NetworkSize(784, 2048, 50, 256)),
                           ("neural", NetworkSize(192, 2048, 50, 256)))),
}

#: [Lin25]'s figures. The zero-shot digital figure follows from 0.545 uJ x 23.34.
PAPER_FIGURES: dict[str, PaperFigure] = {
    "nmnist": PaperFigure(0.14, 4.4, 29.97),
    "ntidigits": PaperFigure(0.37, 8.28, 22.07),
    "zeroshot": PaperFigure(0.545, 0.545 * 23.34, 23.34, "digital = 0.545 uJ x 23.34"),
    "bmi": PaperFigure(None, None, 160.0,
                       "the paper gives '> 160x' (a lower bound) and no energies; sizes from "
                       "its BMI variant, T = 50 steps assumed"),
}


#: Default drive level of the recurrent rows (fraction of the read voltage) in
#: :func:`physical_energy` and :func:`energy_report`: 0.25, the demo's validated recurrent level
#: (DemoConfig, and EnergyConfig.rec_level). Input rows default to the full read voltage (1.0).
#: A caller with a run's chosen levels passes them (array and TIA output energy scale with
#: level^2 and level).
DEFAULT_REC_LEVEL = 0.25
