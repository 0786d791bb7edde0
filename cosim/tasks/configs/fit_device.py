"""Configuration of ``rram-cosim fit-device``."""

from __future__ import annotations

from dataclasses import dataclass

from ....models.checks import check_choice, check_range
from ....models.errors import ConfigError
from ....models.params import FormingConditions
from .common import SEED_MAX
from .fields import check_options, option
from .form import CARDS

__all__ = ["FIT_BOUNDS", "FitDeviceConfig"]

_ICC_LO, _ICC_HI = FormingConditions.I_CC_RANGE_A
_V_LO, _V_HI = FormingConditions.V_FORM_RANGE_V

#: Fittable fields and their bounds (inside BreakdownParams' valid ranges).
FIT_BOUNDS: dict[str, tuple[float, float]] = {
    "v_hold_v": (0.05, 2.0),
    "a_vt_mv_um": (0.05, 50.0),
    "tau_growth_s": (1e-10, 1e-1),
    "sigma_ln_tau": (1e-3, 3.0),
    "t63_ref_s": (1e-11, 1e2),
    "weibull_beta": (0.2, 20.0),
    "gamma_per_v": (0.05, 50.0),
    "v_growth_v": (0.01, 2.0),
}


@dataclass(frozen=True)
class FitDeviceConfig:
    """The ``fit-device`` run. Units: ``icc`` A, ``v_form`` V, times s, conductances uS.

    ``map`` and ``icc`` are comma lists of equal length (map k was formed at ``icc[k]``);
    ``fit`` empty picks the fit set automatically (see
    :mod:`rram_cosim.cosim.tasks.fit_device`); ``start_params`` is a parameter file to start
    from (default: BreakdownParams defaults; fields not fitted keep its values).
    """

    name: str = option("fit-device", "run name: the folder under the runs root")
    map: tuple[str, ...] = option((), "measured conductance maps (.npy, 2-D, uS), one per "
                                      "compliance current; required")
    icc: tuple[float, ...] = option((7.5e-6,), "compliance current of each map, in --map's "
                                               "order (A)", lo=_ICC_LO, hi=_ICC_HI, lo_open=True)
    v_form: float = option(3.0, "forming pulse amplitude the maps were made with (V)",
                           lo=_V_LO, hi=_V_HI)
    t_pulse: float = option(10e-6, "forming pulse width (s; at least --t-step)", lo=1e-12,
                            hi=1.0)
    t_edge: float = option(10e-9, "pulse rise and fall time (s; from --t-step to --t-pulse)",
                           lo=1e-12, hi=1.0)
    t_step: float = option(10e-9, "simulation time step (s)", lo=1e-12, hi=1e-3)
    fit: tuple[str, ...] = option((), "parameters to fit (empty: what the maps support)",
                                  choices=tuple(FIT_BOUNDS))
    start_params: str | None = option(None, "breakdown-parameter file to start from (JSON; "
                                            "none: BreakdownParams defaults)")
    sim_cells: int = option(16384, "cells the model forms per map and evaluation", lo=256,
                            hi=1 << 22)
    g_formed_min_us: float = option(0.1, "conductance below which a cell counts as unformed "
                                         "(uS)", lo=0, hi=1e3)
    seed: int = option(0, "seed of the model's fixed draws", lo=0, hi=SEED_MAX)
    card: str = option("level1", "select-transistor card", choices=CARDS)

    def __post_init__(self) -> None:
        o = "FitDeviceConfig"
        if not self.map:
            raise ConfigError("fit-device needs at least one measured map: --map FILE.npy "
                              "(comma list, one per compliance current).")
        if len(self.icc) != len(self.map):
            raise ConfigError(
                f"fit-device needs one compliance current per map: got {len(self.map)} map(s) "
                f"and {len(self.icc)} --icc value(s) {self.icc}. Give --icc as a comma list "
                "in the order of --map.")
        for i in self.icc:
            check_range(o, "icc", i, _ICC_LO, _ICC_HI, lo_open=True, unit="A",
                        hint="Compliance currents must be positive (e.g. 5e-6 for 5 uA).")
        for f in self.fit:
            check_choice(o, "fit", f, list(FIT_BOUNDS))
        if len(set(self.fit)) != len(self.fit):
            raise ConfigError(f"The 'fit' list names a parameter twice: {self.fit}.")
        check_range(o, "v_form", self.v_form, _V_LO, _V_HI, unit="V")
        check_range(o, "t_step", self.t_step, 1e-12, 1e-3, unit="s")
        check_range(o, "t_pulse", self.t_pulse, self.t_step, 1.0, unit="s",
                    hint="The pulse must be at least one time step (--t-step) long.")
        check_range(o, "g_formed_min_us", self.g_formed_min_us, 0, 1e3, unit="uS")
        check_options(self)
        check_choice(o, "card", self.card, CARDS)
        for i in self.icc:
            self.conditions(i)

    def conditions(self, i_cc_a: float) -> FormingConditions:
        # imported here for start-up speed: the parser needs only the fields
        from ...spice.forming import pulse_conditions

        return pulse_conditions(self, i_cc_a)
