"""Configuration of ``rram-cosim calibrate``."""

from __future__ import annotations

from dataclasses import dataclass

from ....models.checks import check_choice
from ....models.errors import ConfigError
from ...engines.registry import REFERENCES
from .common import SEED_MAX, TileSpecOptions
from .fields import check_options, option

__all__ = ["FIT_TRANSISTOR", "REFERENCES", "CalibrateConfig"]

FIT_TRANSISTOR = ("auto", "yes", "no")


@dataclass(frozen=True)
class CalibrateConfig(TileSpecOptions):
    """The ``calibrate`` run: tile spec options, reference engine, sizes, output file."""

    name: str = option("calibrate", "run name: the folder under the runs root (--runs)")
    out: str = option("surrogate.json", "the surrogate file written (JSON)")
    reference: str = option("spice", "circuit engine: spice (ngspice, in parallel) or nodal",
                            choices=REFERENCES)
    n_maps: int = option(3, "calibration maps (plus the full-scale corner map)", lo=1, hi=1000)
    n_test_maps: int = option(2, "held-out maps the error is measured on", lo=1, hi=1000)
    n_vectors: int = option(32, "input vectors per map", lo=2, hi=100_000)
    workers: int = option(0, "ngspice worker processes (0: one per CPU)", lo=0, hi=4096)
    seed: int = option(0, "seed of the maps and inputs", lo=0, hi=SEED_MAX)
    fit_transistor: str = option("auto", "fit the access transistor to the circuit (auto: "
                                         "not for the level-1 card, whose values are known)",
                                 choices=FIT_TRANSISTOR)
    accept_error: bool = option(
        False, "write the surrogate although its worst-case held-out error misses the bars "
               "(RMS <= 8 LSB, max <= 0.5 % FS); the file then carries the flag and bind warns")

    def __post_init__(self) -> None:
        o = "CalibrateConfig"
        check_choice(o, "reference", self.reference, REFERENCES)
        check_choice(o, "fit_transistor", self.fit_transistor, FIT_TRANSISTOR)
        if not self.out.endswith(".json"):
            raise ConfigError(
                f"The 'out' parameter of CalibrateConfig names the surrogate file, written as "
                f"JSON. Got {self.out!r}; use a name ending in .json.")
        check_options(self)
        self.tile_spec()  # validate the spec options now
