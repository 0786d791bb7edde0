"""Field groups several configurations share: a classification task on a tile, and a TileSpec
as options."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ....models.checks import check_choice
from ....models.errors import ConfigError
from ....models.params import (
    READ_DRIVES,
    READ_SENSES,
    UNSENSED_MODES,
    AdcSpec,
    DacSpec,
    MosfetSpec,
    ReadScheme,
    TiaSpec,
    TileSpec,
    WireGeometry,
)
from .fields import option

#: Seeds: any non-negative 64-bit integer (numpy's generators take them).
SEED_MAX = 2**63 - 1

__all__ = ["ADC_RANGES", "LINEARISATIONS", "SEED_MAX", "SPLIT_RULES", "DataOptions",
           "ReadOptions", "TaskOptions", "TileSpecOptions", "adc_bits_option",
           "cal_maps_option", "cal_vectors_option", "crop_option", "describe_read",
           "linearise_option", "n_windows_option", "r_wire_ohm_option"]

ADC_RANGES = ("corner", "workload")
#: Split rules of a user's data (``cosim.data.user_data.SPLIT_RULES``; repeated here so that
#: building the parser imports no data code).
SPLIT_RULES = ("auto", "group", "sample")
LINEARISATIONS = ("tangent", "workload")


_RS = ReadScheme()
_WG = WireGeometry()


# Options several configurations share, each defined here once (the field names are config.json
# keys: a configuration names the field as before, ``r_wire_ohm: float | None =
# r_wire_ohm_option()``).
def r_wire_ohm_option(used_by: str = "") -> Any:
    """``r_wire_ohm``: one segment resistance for rows and columns; ``used_by`` prefixes the
    help where the option reaches only part of a run (``"default activity runs: "``)."""
    return option(None, f"{used_by}wire resistance per cell segment of rows and columns (ohm; "
                        f"none: from the wire geometry, {_WG.r_segment_ohm:g} ohm at its "
                        "defaults; 5 is the stressed value)", lo=0, hi=1e4)


def adc_bits_option(default: int | tuple[int, ...] = 14) -> Any:
    """``adc_bits``: the column ADC's resolution, or (a tuple default) the resolutions a run
    sweeps."""
    what = "column-ADC resolutions swept" if isinstance(default, tuple) else \
        "column-ADC resolution"
    return option(default, f"{what} (bits; [Lin25]'s board: 14)", lo=1, hi=24)


def cal_maps_option(default: int = 3) -> Any:
    """``cal_maps``: maps a run calibrates its surrogate on (nodal engine)."""
    return option(default, "surrogate calibration maps, simulated on the nodal engine", lo=1,
                  hi=1000)


def cal_vectors_option(default: int = 24) -> Any:
    """``cal_vectors``: input vectors per calibration map."""
    return option(default, "input vectors per surrogate calibration map", lo=2, hi=100_000)


def crop_option() -> Any:
    """``crop``: the centre crop of image events (0: the dataset's own default)."""
    return option(0, "images: side of the centre crop (pixels; 0: 16 for digits-events and "
                     "nmnist, [Lin25]'s crop, the whole sensor for images:FILE and events:FILE)",
                  lo=0, hi=1_000_000)


def linearise_option() -> Any:
    """``linearise``: how the surrogate is linearised. ``workload`` by default: on the
    fidelity benchmark's network it matched the circuit's class on 99.33 % of test samples
    against 96-98 % for a tangent at the mean input level (docs/tile.md; the ``tangent``
    option is the tangent at half the read voltage, further off); configs saved without the field replay as
    ``tangent``, the default they ran with."""
    return option("workload", "surrogate linearisation: workload = for the drive the "
                              "reservoir measures on training data (docs/tile.md), or tangent "
                              "at half the read voltage", choices=LINEARISATIONS)


def n_windows_option() -> Any:
    """``n_windows``: spike-count windows per sample of the readout's features."""
    return option(1, "spike-count windows per sample (1: the paper's whole-sample counts)",
                  lo=1, hi=4096)


@dataclass(frozen=True)
class ReadOptions:
    """The read scheme and the wire geometry as options (docs/tile.md, "Read schemes")."""

    rows_per_read: int = option(
        _RS.rows_per_read, "rows driven in one read; a taller map is read in row groups whose "
                           "codes add digitally (0: all rows at once; [Lin25]'s board: 64)",
        lo=0, hi=1 << 16)
    cols_per_read: int = option(
        _RS.cols_per_read, "outputs sensed in one read: physical columns, or weight columns "
                           "when differential (0: all)", lo=0, hi=1 << 16)
    unsensed: str = option(
        _RS.unsensed, "what a column not sensed in a read does: held at the virtual ground, "
                      "or float (disconnected: draws no row current)", choices=UNSENSED_MODES)
    drive: str = option(_RS.drive, "rows driven from one end or from both ends",
                        choices=READ_DRIVES)
    sense: str = option(
        _RS.sense, "single: every physical column converted, G+ - G- in digital; "
                   "differential: subtracted in analogue, one bipolar conversion per weight "
                   "column", choices=READ_SENSES)
    outputs_per_adc: int = option(
        _RS.outputs_per_adc, "outputs sharing one ADC, converted one after another "
                             "(latency; 0: one ADC for all, as the board)", lo=0, hi=1 << 16)
    wire_sheet_ohm_sq: float = option(_WG.sheet_ohm_per_sq,
                                      "sheet resistance of the array's metal lines (ohm/sq)",
                                      lo=0, hi=100)
    cell_pitch_um: float = option(_WG.pitch_um, "cell pitch along a line (um)", lo=0, hi=100,
                                  lo_open=True)
    row_wire_width_um: float = option(_WG.width_um, "bit-line (row) width (um)", lo=0, hi=100,
                                      lo_open=True)
    col_wire_width_um: float = option(_WG.width_um, "source-line (column) width (um)", lo=0,
                                      hi=100, lo_open=True)

    def read_scheme(self) -> ReadScheme:
        """The read scheme these options describe (validated by ReadScheme)."""
        return ReadScheme(rows_per_read=self.rows_per_read, cols_per_read=self.cols_per_read,
                          unsensed=self.unsensed, drive=self.drive, sense=self.sense,
                          outputs_per_adc=self.outputs_per_adc)

    def wires(self) -> dict[str, WireGeometry]:
        """``row_wire`` and ``col_wire`` for TileSpec."""
        def line(width: float) -> WireGeometry:
            return WireGeometry(sheet_ohm_per_sq=self.wire_sheet_ohm_sq,
                                pitch_um=self.cell_pitch_um, width_um=width)
        return {"row_wire": line(self.row_wire_width_um), "col_wire": line(self.col_wire_width_um)}

    def read_spec(self) -> dict[str, object]:
        """TileSpec keyword arguments for the read scheme and the wires (validated)."""
        return {"read": self.read_scheme(), **self.wires()}


def describe_read(spec: TileSpec, rows: int, weight_cols: int) -> str:
    """One sentence for a report: how a rows x weight_cols map is read on ``spec``'s tiles."""
    r = spec.read
    groups = len(r.row_groups(min(rows, spec.rows)))
    sensed = (f"{r.cols_per_read} outputs per read, the others "
              f"{'floating' if r.unsensed == 'float' else 'at virtual ground'}"
              if r.cols_per_read else "every column sensed")
    return (f"{spec.rows_per_read} rows per read ({groups} read{'s' if groups > 1 else ''} of "
            f"each row block, codes added digitally), {sensed}, rows driven from "
            f"{'both ends' if r.drive == 'both' else 'one end'}, "
            f"{'differential' if r.differential else 'single-ended'} sensing "
            f"({r.conversions_per_vmm(min(rows, spec.rows), min(weight_cols, spec.cols))} "
            f"conversions per VMM of a tile); wire segments {spec.r_row_ohm:g} ohm (rows) and "
            f"{spec.r_col_ohm:g} ohm (columns)")


@dataclass(frozen=True)
class DataOptions:
    """How a user's data (wav:DIR, images:FILE, events:FILE) is split, and the thresholds
    below which a run warns that its data are too few to conclude anything."""

    split_by: str = option(
        "auto", "split of wav:DIR, images:FILE, events:FILE without a split array: group "
                "(whole speakers / groups a split), sample, or auto (group where the data "
                "names groups)", choices=SPLIT_RULES)
    group_field: int = option(1, "wav:DIR: the underscore-separated name field that names the "
                                 "speaker (0 is the label)", lo=1, hi=1000)
    # assumption: below 10 test samples a class, one sample moves its accuracy by 10 points
    # or more and its 95 % binomial interval is wider than +-30 points
    warn_min_test_per_class: int = option(
        10, "warn when a class has fewer test samples than this", lo=0, hi=1_000_000)
    # assumption: an interval 20 points wide cannot separate results a designer compares
    # (chance from a weak model, one backend from another)
    warn_interval_width: float = option(
        0.2, "warn when a 95 % interval is wider than this (fraction of accuracy)", lo=0, hi=1)
    # assumption: validation at 100 % with test 10 points lower means validation is too small
    # or too easy to tell grid points apart
    warn_val_test_gap: float = option(
        0.1, "warn when validation is at 100 % and test lower by more than this (fraction)",
        lo=0, hi=1)

    def check_data(self, owner: str, datasets: Sequence[str] = ()) -> None:
        """Validate the split rule (the ranges are :func:`~.fields.check_options`'s), and
        refuse a ``group_field`` other than 1 when none of ``datasets`` is a WAV folder: it
        names a field of WAV file names and would be silently ignored."""
        check_choice(owner, "split_by", self.split_by, SPLIT_RULES)
        default = DataOptions.__dataclass_fields__["group_field"].default
        if self.group_field != default and not any(d.startswith("wav:") for d in datasets):
            raise ConfigError(
                f"{owner}: group_field={self.group_field} names the speaker field of WAV file "
                f"names (wav:DIR), but the data here are {', '.join(datasets)}; it would be "
                "ignored. images:FILE and events:FILE name their groups in a 'groups' array "
                f"of the .npz. Leave --group-field at its default ({default}).")


@dataclass(frozen=True)
class TaskOptions:
    """What a classification task on a tile needs, shared by ``classify`` and the sweep's
    task: data split, LIF grid, readout, ADC range, tiling and linearisation."""

    data_seed: int = option(0, "seed of the embedded data and of the train/val/test split",
                            lo=0, hi=SEED_MAX)
    n_train: int = option(0, "training samples (0: the whole split)", lo=0, hi=10_000_000)
    n_val: int = option(0, "validation samples (0: the whole split)", lo=0, hi=10_000_000)
    n_test: int = option(0, "test samples (0: the whole split)", lo=0, hi=10_000_000)
    n_steps: int = option(0, "time steps a sample is binned into (0: 50 for images, 129 for "
                             "audio, as [Lin25]'s scripts)", lo=0, hi=10_000_000)
    # the sweep's tasks are the embedded sets, whose crop is 16; a point's hash and seed read
    # this field, so its default stays; classify states its own (crop_option: 0, per dataset)
    crop: int = option(16, "images: side of the centre crop (pixels; [Lin25]: 16)", lo=1,
                       hi=1_000_000)
    hidden: int = option(200, "LIF reservoir neurons ([Lin25]: 200)", lo=1, hi=1_000_000)
    v_th: tuple[float, ...] = option((5.0, 10.0, 20.0), "firing-threshold grid, chosen on "
                                                        "validation (units of x @ W)",
                                     lo=0, hi=1e6, lo_open=True)
    decay: tuple[float, ...] = option((), "membrane-decay grid per step (empty: 0.9 images, "
                                          "0.97 audio, as [Lin25]'s scripts)", lo=0, hi=1)
    in_level: tuple[float, ...] = option((1.0,), "input-row drive grid (fraction of the read "
                                                 "voltage)", lo=0, hi=1, lo_open=True)
    rec_level: tuple[float, ...] = option((0.0, 0.25, 0.5), "recurrent-row drive grid "
                                                            "(fraction of the read voltage)",
                                          lo=0, hi=1)
    readout_epochs: int = option(80, "softmax-readout training epochs", lo=1, hi=1_000_000)
    adc_range: str = option(
        "corner", "ADC full scale: corner = the rows of one read on at g_full_scale (never clips), "
                  "workload = 1.1 x the 99.9th percentile of the reservoir's training currents",
        choices=ADC_RANGES)
    tile_rows: int = option(0, "rows of one tile (0: the whole map on one macro)", lo=0,
                            hi=10_000_000)
    tile_cols: int = option(0, "weight columns of one tile (0: the whole map on one macro)",
                            lo=0, hi=10_000_000)
    linearise: str = linearise_option()

    def check_task(self, owner: str) -> None:
        """Validate the shared fields beyond their ranges (each config's ``__post_init__`` calls
        this, and :func:`~.fields.check_options` for the ranges)."""
        check_choice(owner, "adc_range", self.adc_range, ADC_RANGES)
        check_choice(owner, "linearise", self.linearise, LINEARISATIONS)
        for f in ("v_th", "in_level", "rec_level"):
            if not getattr(self, f):
                raise ConfigError(f"The '{f}' grid of {owner} needs at least one value.")
        if (self.tile_rows == 0) != (self.tile_cols == 0):
            raise ConfigError(
                f"Give both tile_rows and tile_cols (a tile size), or neither. Got "
                f"{self.tile_rows}x{self.tile_cols}.")


@dataclass(frozen=True)
class TileSpecOptions(ReadOptions):
    """TileSpec fields as command-line options (units in the names; None: the default)."""

    rows: int = option(64, "tile rows (word lines)", lo=1, hi=4096)
    cols: int = option(64, "tile weight columns (each a G+ and a G- physical column)", lo=1,
                       hi=4096)
    r_wire_ohm: float | None = r_wire_ohm_option()
    v_read_v: float = option(0.2, "read voltage of a driven row (V)", lo=0, hi=0.5,
                             lo_open=True)
    v_gate_read_v: float = option(1.1, "word-line (access gate) voltage during a read (V)",
                                  lo=0, hi=5, lo_open=True)
    g_full_scale_us: float = option(30.0, "cell conductance the ADC range is sized for (uS)",
                                    lo=0, hi=1e4, lo_open=True)
    temperature_c: float = option(27.0, "temperature (degC)", lo=-60, hi=200)
    t_read_s: float = option(1e-6, "duration of one read (s)", lo=1e-12, hi=1.0)
    card: str = option("level1", "access-transistor model card",
                       choices=("level1", "ptm45", "custom"))
    lib_path: str = option("", "card=custom: your PDK model file")
    model_name: str = option("", "card=custom: the NMOS model's name in it")
    kp: float | None = option(None, "level-1 transconductance kp (A/V^2; none: the card's)",
                              lo=1e-6, hi=1e-2)
    vto: float | None = option(None, "level-1 threshold voltage (V; none: the card's)", lo=0,
                               hi=2)
    w: float | None = option(None, "access-transistor width (m; none: the card's)", lo=10e-9,
                             hi=100e-6)
    l: float | None = option(None, "access-transistor length (m; none: the card's)", lo=10e-9,
                             hi=100e-6)
    dac_bits: int = option(16, "row-DAC resolution (bits)", lo=1, hi=24)
    dac_r_out_ohm: float = option(1.0, "row-DAC output resistance (ohm)", lo=0, hi=1e6)
    adc_bits: int = adc_bits_option()
    adc_v_full_scale_v: float = option(2.4, "ADC input full scale (V)", lo=0, hi=20,
                                       lo_open=True)
    tia_a_ol: float = option(3.16e6, "TIA open-loop gain (V/V)", lo=1, hi=1e9)
    tia_v_offset_v: float = option(0.5e-3, "TIA input offset (V)", lo=-0.05, hi=0.05)
    r_f: float | None = option(None, "TIA feedback resistor (ohm; none: full scale at the "
                                     "calibration set's largest current)", lo=1, hi=1e9)

    def tile_spec(self) -> TileSpec:
        """The TileSpec these options describe (validated by the dataclasses)."""
        mos: dict[str, Any] = {"card": self.card}
        if self.card == "custom":
            mos.update(lib_path=self.lib_path or None, model_name=self.model_name or None)
            if self.lib_path and self.model_name:
                from ....netlists.mosfet import mosfet_card

                # the file and its model's type (NMOS), checked before anything runs
                mosfet_card(MosfetSpec(**mos))
        for opt, fld in (("kp", "kp_a_per_v2"), ("vto", "vto_v"), ("w", "w_m"), ("l", "l_m")):
            if getattr(self, opt) is not None:
                mos[fld] = getattr(self, opt)
        return TileSpec(
            rows=self.rows, cols=self.cols, r_wire_ohm=self.r_wire_ohm, v_read_v=self.v_read_v,
            v_gate_read_v=self.v_gate_read_v, g_full_scale_us=self.g_full_scale_us,
            temperature_c=self.temperature_c, t_read_s=self.t_read_s,
            mosfet=MosfetSpec(**mos),
            dac=DacSpec(bits=self.dac_bits, r_out_ohm=self.dac_r_out_ohm),
            adc=AdcSpec(bits=self.adc_bits, v_full_scale_v=self.adc_v_full_scale_v),
            tia=TiaSpec(a_ol=self.tia_a_ol, v_offset_v=self.tia_v_offset_v, r_f_ohm=self.r_f),
            **self.read_spec())
