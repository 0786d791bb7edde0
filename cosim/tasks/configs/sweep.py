"""Configuration of ``rram-cosim sweep`` (the sweep itself: :mod:`..sweep`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ....models.checks import check_choice, check_range
from ....models.errors import ConfigError
from ....models.params import (
    READ_DRIVES,
    READ_SENSES,
    UNSENSED_MODES,
    FormingConditions,
    ReadScheme,
    WireGeometry,
)
from .common import (
    SEED_MAX,
    TaskOptions,
    adc_bits_option,
    cal_maps_option,
    cal_vectors_option,
)
from .fields import check_options, option

__all__ = ["TASKS", "SweepConfig"]

TASKS = ("digits-events", "spoken-digits", "zeroshot:image+neural-sim")
_ICC_LO, _ICC_HI = FormingConditions.I_CC_RANGE_A
_V_LO, _V_HI = FormingConditions.V_FORM_RANGE_V


@dataclass(frozen=True)
class SweepConfig(TaskOptions):
    """A sweep (saved as config.json; every field is an option of ``rram-cosim sweep``).

    Units: ``icc`` A, ``v_form`` V, ``t_pulse``/``t_edge``/``t_step`` s, ``r_wire`` ohm per
    segment (short option names, like form's, so the fields carry no unit suffix).
    """

    name: str = option(
        "sweep", "run name: the folder under the runs root (rerun the same name to resume)")
    icc: tuple[float, ...] = option(
        (5e-6, 10e-6, 20e-6, 40e-6), "compliance currents (A; 7.5e-6 gives [ESGNN]'s 14.2 uS)",
        lo=_ICC_LO, hi=_ICC_HI, lo_open=True)
    v_form: tuple[float, ...] = option((3.0,), "forming pulse amplitudes (V)", lo=_V_LO,
                                       hi=_V_HI)
    t_pulse: tuple[float, ...] = option((10e-6,), "forming pulse widths (s)", lo=1e-12, hi=1.0)
    r_wire: tuple[float, ...] = option(
        (), "wire resistances per cell segment, rows and columns (ohm; empty: from the wire "
            "geometry, see --wire-width)", lo=0, hi=1e4)
    wire_width: tuple[float, ...] = option(
        (WireGeometry().width_um,), "widths of the row and column lines (um), each giving a "
                                    "segment resistance from the sheet resistance and pitch "
                                    "(used when --r-wire is empty)", lo=0, hi=100, lo_open=True)
    adc_bits: tuple[int, ...] = adc_bits_option((14,))
    rows_per_read: tuple[int, ...] = option(
        (ReadScheme().rows_per_read,), "rows driven per read (0: all at once; [Lin25]'s board: "
                                       "64)", lo=0, hi=1 << 16)
    cols_per_read: tuple[int, ...] = option(
        (0,), "outputs sensed per read (0: all; the others as --unsensed says)", lo=0,
        hi=1 << 16)
    sense: tuple[str, ...] = option(("single",), "sensing: single-ended or differential",
                                    choices=READ_SENSES)
    drive: tuple[str, ...] = option(("one",), "rows driven from one end or from both",
                                    choices=READ_DRIVES)
    unsensed: str = option("ground", "columns not sensed in a read: at the virtual ground, or "
                                     "float", choices=UNSENSED_MODES)
    chips: int = option(1, "independently formed arrays per point", lo=1, hi=10_000)
    seeds: int = option(3, "network seeds per chip", lo=1, hi=1000)
    seed: int = option(0, "base seed: every point, chip and network seed is a hash of it",
                       lo=0, hi=SEED_MAX)
    task: str = option("digits-events", "what runs on each chip", choices=TASKS)
    t_edge: float = option(10e-9, "forming pulse rise and fall time (s; at least --t-step)",
                           lo=1e-12, hi=1.0)
    t_step: float = option(10e-9, "forming simulation time step (s)", lo=1e-12, hi=1e-3)
    spot_cells: int = option(4, "cells per chip formed again in ngspice as a spot check (0: none)",
                             lo=0, hi=4096)
    # the task's data, LIF grid, readout, ADC range ('corner' here: every cell at the domain's
    # top, all rows on), tiling and linearisation: TaskOptions, as classify's
    v_th_scaled: bool = option(True, "scale the v_th grid by each chip's weight spread")
    # surrogate calibration: maps (plus the corner map) and vectors a map. With the level-1
    # card the surrogate fits no parameter (models/tile/surrogate.py): calibration fixes the ADC
    # full scale, the domain, the fit error and the read energy, so a small set does
    cal_maps: int = cal_maps_option(2)
    cal_vectors: int = cal_vectors_option(16)
    workers: int = option(0, "local worker processes (0: every CPU this process may use)",
                          lo=0, hi=4096)
    scheduler: str = option("", "Dask scheduler address tcp://HOST:PORT (empty: the local pool)")
    # one: a unit's matrices are small and workers run one per core (models/blas.py)
    blas_threads: int = option(1, "BLAS threads of every worker (local or Dask) and of this "
                                  "process; 1 when workers fill the cores", lo=1, hi=1024)
    retry_failed: bool = option(False, "compute units recorded as failed again")
    cache_dir: str = option(
        "", "cache of surrogates and spot-check decks (empty: $RRAM_COSIM_CACHE/sweep)")

    def __post_init__(self) -> None:
        o = "SweepConfig"
        check_choice(o, "task", self.task, TASKS)
        for f in ("icc", "v_form", "t_pulse", "r_wire", "wire_width"):
            vals = getattr(self, f)
            if f == "r_wire" and vals == ():
                continue  # empty: segment resistance from the wire geometry
            if not isinstance(vals, tuple) or not vals:
                raise ConfigError(f"The '{f}' parameter of {o} must be a non-empty comma list. "
                                  f"Got {vals!r}.")
            if len(set(vals)) != len(vals):
                raise ConfigError(f"The '{f}' list of {o} holds a value twice: {vals}.")
        if not self.adc_bits or len(set(self.adc_bits)) != len(self.adc_bits):
            raise ConfigError(f"The 'adc_bits' list of {o} must be non-empty without repeats. "
                              f"Got {self.adc_bits!r}.")
        if self.r_wire and self.wire_width != (WireGeometry().width_um,):
            raise ConfigError("Give wire resistances (--r-wire) or wire widths (--wire-width), "
                              f"not both. Got r_wire={self.r_wire}, wire_width={self.wire_width}.")
        for f in ("rows_per_read", "cols_per_read", "sense", "drive"):
            vals = getattr(self, f)
            if not isinstance(vals, tuple) or not vals or len(set(vals)) != len(vals):
                raise ConfigError(f"The '{f}' list of {o} must be non-empty without repeats. "
                                  f"Got {vals!r}.")
        check_options(self)
        for rp, cp, se, dr in self.read_points():
            ReadScheme(rows_per_read=rp, cols_per_read=cp, unsensed=self.unsensed, drive=dr,
                       sense=se)  # validates each value
        self.check_task(o)
        check_range(o, "t_edge", self.t_edge, self.t_step, 1.0, unit="s")
        if self.scheduler and not re.match(r"^[a-z]+://\S+$", self.scheduler):
            raise ConfigError(
                f"The 'scheduler' parameter of {o} must be a Dask scheduler address such as "
                f"tcp://10.0.0.5:8786 (empty: local process pool). Got {self.scheduler!r}.")
        if self.task.startswith("zeroshot:") and self.adc_range != "corner":
            raise ConfigError("adc_range='workload' is measured on a classification "
                              "task; the zero-shot task uses the 'corner' range.")

    def wire_ohms(self) -> tuple[float, ...]:
        """The segment resistances swept: --r-wire, or those of the --wire-width lines."""
        if self.r_wire:
            return self.r_wire
        return tuple(WireGeometry(width_um=w).r_segment_ohm for w in self.wire_width)

    def read_points(self) -> list[tuple[int, int, str, str]]:
        """(rows_per_read, cols_per_read, sense, drive) of every read scheme swept."""
        return [(rp, cp, se, dr) for rp in self.rows_per_read for cp in self.cols_per_read
                for se in self.sense for dr in self.drive]

    def n_units(self) -> int:
        return (len(self.icc) * len(self.v_form) * len(self.t_pulse) * len(self.wire_ohms())
                * len(self.read_points())
                * len(self.adc_bits) * self.chips * self.seeds)
