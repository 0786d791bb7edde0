"""Configuration of ``rram-cosim energy``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ....analysis.energy_constants import DEFAULT_REC_LEVEL, PRESETS, EnergyConstants
from ....models.checks import check_choice
from ....models.errors import ConfigError
from ....models.params import LIFParams
from ...engines.registry import BACKENDS
from .common import (
    LINEARISATIONS,
    SEED_MAX,
    ReadOptions,
    adc_bits_option,
    linearise_option,
    r_wire_ohm_option,
)
from .fields import check_options, option

__all__ = ["ARRAY_SOURCES", "PERIPHERIES", "EnergyConfig", "parse_constants"]

PERIPHERIES = ("integrated", "spec")
ARRAY_SOURCES = ("ngspice", "conductance")


def parse_constants(text: str) -> dict[str, float]:
    """``"a=1e-15,b=2"`` (or a JSON file of such a mapping) -> dict."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.endswith(".json"):
        try:
            return {k: float(v) for k, v in json.loads(Path(text).read_text()).items()}
        except (OSError, ValueError, AttributeError) as e:
            raise ConfigError(f"Cannot read energy constants from {text}: {e}.") from e
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ConfigError(f"Energy constant overrides are 'name=value' pairs separated by "
                              f"commas. Got {part!r}.")
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError as e:
            raise ConfigError(f"Energy constant {k.strip()!r}: {v!r} is not a number.") from e
    return out


@dataclass(frozen=True)
class EnergyConfig(ReadOptions):
    """Configuration of an energy run (saved as config.json; every field is an option)."""

    name: str = option("energy", "run name: the folder under the runs root")
    network: str = option("nmnist", "the paper's network priced, at its sizes ([Lin25])",
                          choices=tuple(PRESETS))
    from_run: str = option("", "classify, zeroshot or demo run folder whose activity.json is "
                               "priced, also --from (empty: a small default classify run per "
                               "encoder)")
    backend: str = option("surrogate", "whose activity to read from that run",
                          choices=BACKENDS)
    seed: int = option(0, "seed of the default activity run and the ngspice cross-check", lo=0,
                       hi=SEED_MAX)
    # default activity run per encoder (classify, one seed, surrogate-backed): paper sizes
    hidden: int = option(200, "default activity run: reservoir neurons ([Lin25]: 200)", lo=1,
                         hi=1_000_000)
    n_train: int = option(150, "default activity run: training samples", lo=1, hi=1_000_000)
    n_val: int = option(60, "default activity run: validation samples", lo=1, hi=1_000_000)
    n_test: int = option(60, "default activity run: test samples", lo=1, hi=1_000_000)
    v_th: float = option(10.0, "default activity run: firing threshold (units of x @ W; the "
                               "demo's validated value)", lo=0, hi=1e6, lo_open=True)
    rec_level: float = option(DEFAULT_REC_LEVEL, "recurrent-row drive (fraction of the read "
                                                 "voltage; the demo's validated value) where "
                                                 "the run does not say", lo=0, hi=1)
    sim_tile_rows: int = option(32, "default activity run: rows of the simulated surrogate "
                                    "tile", lo=1, hi=4096)
    sim_tile_cols: int = option(32, "default activity run: weight columns of that tile", lo=1,
                                hi=4096)
    readout_epochs: int = option(40, "default activity run: readout training epochs", lo=1,
                                 hi=1_000_000)
    adc_range: str = option("workload", "default activity run's ADC full scale: workload = "
                                        "fitted to the currents that occur (low resolutions "
                                        "keep their codes), corner = one read's rows on at "
                                        "g_full_scale", choices=("workload", "corner"))
    # default activity run's surrogate linearisation; a saved config without the field
    # replays as ``tangent``, the linearisation it ran with
    linearise: str = linearise_option()
    # energy accounting
    energy_tile_rows: int = option(0, "priced tile rows (0: the whole map on one macro, as "
                                      "[Lin25]'s board)", lo=0, hi=4096)
    energy_tile_cols: int = option(0, "priced tile weight columns (0: one macro)", lo=0,
                                   hi=4096)
    periphery: str = option("integrated", "periphery priced: integrated (on-chip TIA) or spec "
                                          "(the board's OPA4322)", choices=PERIPHERIES)
    array_source: str = option("ngspice", "array energy: ngspice (measured on a small tile) or "
                                          "conductance (the model alone)",
                               choices=ARRAY_SOURCES)
    r_wire_ohm: float | None = r_wire_ohm_option(
        "default activity runs and ngspice cross-check tile: ")
    spice_rows: int = option(16, "rows of the ngspice cross-check tile", lo=1, hi=4096)
    spice_cols: int = option(8, "weight columns of the ngspice cross-check tile", lo=1, hi=4096)
    spice_vectors: int = option(8, "input vectors of the ngspice cross-check", lo=1,
                                hi=1_000_000)
    constants: str = option("", "technology-constant overrides: name=value,... or a JSON file "
                                "(names and units: the report's constants table)")
    # ADC sweep: energy at each resolution, accuracy from surrogate-backed runs
    adc_bits: tuple[int, ...] = adc_bits_option((4, 6, 8, 10, 12, 14))
    sweep_accuracy: bool = option(True, "also measure accuracy at each ADC resolution "
                                        "(needs a classify activity run)")

    def __post_init__(self) -> None:
        o = "EnergyConfig"
        check_choice(o, "network", self.network, list(PRESETS))
        check_choice(o, "periphery", self.periphery, PERIPHERIES)
        check_choice(o, "array_source", self.array_source, ARRAY_SOURCES)
        check_choice(o, "adc_range", self.adc_range, ["workload", "corner"])
        check_choice(o, "linearise", self.linearise, LINEARISATIONS)
        check_choice(o, "backend", self.backend, list(BACKENDS))
        check_options(self)
        self.read_spec()  # validate the read scheme options now
        if (self.energy_tile_rows == 0) != (self.energy_tile_cols == 0):
            raise ConfigError("Give both energy_tile_rows and energy_tile_cols, or neither. Got "
                              f"{self.energy_tile_rows}x{self.energy_tile_cols}.")
        if not self.adc_bits:
            raise ConfigError(f"The 'adc_bits' parameter of {o} needs at least one resolution.")
        if self.from_run and not Path(self.from_run).is_dir():
            raise ConfigError(f"--from {self.from_run!r} is not a run folder. Give the folder "
                              "of a classify, zeroshot or demo run (it holds activity.json).")
        EnergyConstants.from_overrides(parse_constants(self.constants))

    def lif(self, in_level: float = 1.0, rec_level: float | None = None,
            v_th: float | None = None, decay: float = 0.9) -> LIFParams:
        return LIFParams(hidden=self.hidden, decay=decay, v_th=v_th or self.v_th,
                         in_level=in_level,
                         rec_level=self.rec_level if rec_level is None else rec_level)
