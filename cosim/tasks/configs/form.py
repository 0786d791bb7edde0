"""Configuration of ``rram-cosim form``."""

from __future__ import annotations

from dataclasses import dataclass

from ....models.checks import check_choice, check_int, check_range
from ....models.errors import ConfigError
from ....models.params import FormingConditions
from .common import SEED_MAX
from .fields import check_options, option

__all__ = ["BACKENDS", "CARDS", "FormConfig"]

BACKENDS = ("twin", "spice")
CARDS = ("level1", "ptm45")
_ICC_LO, _ICC_HI = FormingConditions.I_CC_RANGE_A
_V_LO, _V_HI = FormingConditions.V_FORM_RANGE_V


@dataclass(frozen=True)
class FormConfig:
    """The ``form`` run. Units: ``icc`` A, ``v_form`` V, ``t_pulse``/``t_edge``/``t_step`` s.

    ``device_params`` names a parameter file (from ``rram-cosim fit-device``); None uses the
    defaults of :class:`~rram_cosim.models.params.BreakdownParams`. ``card`` picks the select
    transistor's model card for the SPICE side: with ``ptm45`` (a BSIM4 1.0 V core device) the
    gate that gives it each compliance current is found by a DC sweep in ngspice, and the twin
    keeps its level-1 equations, so the comparison shows how far the card moves the result. The
    core device is only within its rating for forming voltages up to ~1.5 V; above, the run
    stops with an error that says so.
    """

    name: str = option("form", "run name: the folder under the runs root")
    icc: tuple[float, ...] = option((5e-6, 7.5e-6, 10e-6, 20e-6),
                                    "compliance currents (A; 7.5e-6 is the default forming)",
                                    lo=_ICC_LO, hi=_ICC_HI, lo_open=True)
    v_form: float = option(3.0, "forming pulse amplitude (V)", lo=_V_LO, hi=_V_HI)
    t_pulse: float = option(10e-6, "forming pulse width (s; at least --t-step)", lo=1e-12,
                            hi=1.0)
    t_edge: float = option(10e-9, "pulse rise and fall time (s; from --t-step to --t-pulse)",
                           lo=1e-12, hi=1.0)
    t_step: float = option(10e-9, "simulation time step (s)", lo=1e-12, hi=1e-3)
    rows: int = option(512, "array rows", lo=1, hi=4096)
    cols: int = option(512, "array columns (even: G+ and G- pair up)", lo=2, hi=4096)
    backend: str = option("twin", "twin: the numpy model forms the array; spice: also --cells "
                                  "sampled cells in ngspice", choices=BACKENDS)
    cells: int = option(64, "cells formed in ngspice per compliance current (--backend spice; "
                            "at most rows x cols)", lo=1, hi=4096 * 4096)
    cells_per_deck: int = option(4, "cells per ngspice deck", lo=1, hi=256)
    workers: int = option(0, "ngspice worker processes (0: every CPU this process may use)",
                          lo=0, hi=4096)
    seed: int = option(0, "seed of the array's per-cell draws (the same cells at every I_cc)",
                       lo=0, hi=SEED_MAX)
    device_params: str | None = option(None, "breakdown-parameter file from fit-device (JSON; "
                                             "none: BreakdownParams defaults)")
    card: str = option("level1", "select-transistor card of the SPICE side (ptm45: BSIM4 "
                                 "45 nm core device, up to ~1.5 V forming)", choices=CARDS)

    def __post_init__(self) -> None:
        o = "FormConfig"
        check_choice(o, "backend", self.backend, BACKENDS)
        check_choice(o, "card", self.card, CARDS)
        if not isinstance(self.icc, tuple) or not self.icc:
            raise ConfigError("The 'icc' parameter of FormConfig must be a non-empty comma "
                              f"list of compliance currents in A, e.g. 5e-6,10e-6. Got "
                              f"{self.icc!r}.")
        for i in self.icc:
            check_range(o, "icc", i, _ICC_LO, _ICC_HI, lo_open=True, unit="A",
                        hint="Compliance currents must be positive (e.g. 5e-6 for 5 uA).")
        if len(set(self.icc)) != len(self.icc):
            raise ConfigError(f"The 'icc' list holds a value twice: {self.icc}.")
        check_range(o, "v_form", self.v_form, _V_LO, _V_HI, unit="V",
                    hint="The model is valid from 1 V (no breakdown below) to the DAC's 5 V.")
        check_range(o, "t_step", self.t_step, 1e-12, 1e-3, unit="s")
        check_range(o, "t_pulse", self.t_pulse, self.t_step, 1.0, unit="s",
                    hint="The pulse must be at least one time step (--t-step) long.")
        check_options(self)
        if self.cols % 2:
            raise ConfigError(f"The 'cols' parameter of FormConfig must be even (G+ and G- "
                              f"columns pair up). Got {self.cols}.")
        check_int(o, "cells", self.cells, 1, self.rows * self.cols,
                  hint="The SPICE sample cannot exceed the array.")
        # the forming conditions check the rest (edges; ranges named in their messages)
        for i in self.icc:
            self.conditions(i)

    def conditions(self, i_cc_a: float) -> FormingConditions:
        # imported here for start-up speed: the parser needs only the fields
        from ...spice.forming import pulse_conditions

        return pulse_conditions(self, i_cc_a)
