"""Configuration of ``rram-cosim classify``."""

from __future__ import annotations

from dataclasses import dataclass

from ....models.checks import check_choice
from ....models.errors import ConfigError
from ...engines.registry import BACKENDS, check_run_options
from .common import (
    SEED_MAX,
    DataOptions,
    ReadOptions,
    TaskOptions,
    adc_bits_option,
    cal_maps_option,
    cal_vectors_option,
    crop_option,
    n_windows_option,
    r_wire_ohm_option,
)
from .fields import check_options, option

__all__ = ["EMBEDDED", "PREFIXED", "SOLVERS", "ClassifyConfig"]

#: Datasets shipped with the package.
EMBEDDED = ("digits-events", "spoken-digits")
#: Dataset kinds read from a path, ``<kind>:PATH``.
PREFIXED = ("nmnist", "ntidigits", "wav", "images", "events")
SOLVERS = ("adam", "lbfgs")


@dataclass(frozen=True)
class ClassifyConfig(TaskOptions, ReadOptions, DataOptions):
    """Configuration of a classify run (saved as config.json; every field is an option)."""

    name: str = option("classify", "run name: the folder under the runs root")
    crop: int = crop_option()
    dataset: str = option("digits-events", "event data: digits-events, spoken-digits, or "
                                           "KIND:PATH with KIND nmnist, ntidigits, wav, images, "
                                           "events")
    backends: tuple[str, ...] = option(("ideal", "surrogate"), "tile backends to compare, the "
                                                               "first is the paired reference",
                                       choices=BACKENDS)
    seeds: int = option(3, "network seeds (each draws its own conductance map)", lo=1, hi=1000)
    seed: int = option(0, "first network seed; the others are seed+1, seed+2, ...", lo=0,
                       hi=SEED_MAX)
    surrogate: str = option("", "fitted surrogate file (JSON; empty: calibrate on the nodal "
                                "engine)")
    n_windows: int = n_windows_option()
    r_wire_ohm: float | None = r_wire_ohm_option()
    adc_bits: int = adc_bits_option()
    cal_maps: int = cal_maps_option()
    cal_vectors: int = cal_vectors_option()
    readout_solver: str = option("adam", "readout training: adam (minibatch) or lbfgs (full "
                                         "batch, deterministic)", choices=SOLVERS)

    def __post_init__(self) -> None:
        o = "ClassifyConfig"
        kind = self.dataset.split(":", 1)[0]
        if self.dataset not in EMBEDDED and (kind not in PREFIXED or ":" not in self.dataset):
            raise ConfigError(
                f"The 'dataset' parameter of {o} must be one of {list(EMBEDDED)} or "
                f"'<kind>:PATH' with kind in {list(PREFIXED)}. Got {self.dataset!r} instead.")
        check_run_options(o, self.backends, self.seeds, self.seed, self.data_seed)
        check_choice(o, "readout_solver", self.readout_solver, SOLVERS)
        check_options(self)
        self.check_task(o)
        self.check_data(o, [self.dataset])
        self.read_spec()  # validate the read scheme and wire options now
