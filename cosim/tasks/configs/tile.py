"""Configuration of ``rram-cosim tile``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ....models.checks import check_choice
from ....models.errors import ConfigError
from ...engines.registry import BACKENDS
from .common import SEED_MAX, TileSpecOptions
from .fields import check_options, option

__all__ = ["BACKENDS", "OUTPUTS", "TileConfig", "tile_shape"]

OUTPUTS = ("codes", "current", "weights")


def tile_shape(text: str) -> tuple[int, int]:
    """``"RxC"`` -> (R, C) (rows x weight columns of each tile)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise ConfigError(f"--tile must look like 64x64 (rows x weight columns of one tile). "
                          f"Got {text!r}.")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class TileConfig(TileSpecOptions):
    """The ``tile`` run. ``rows``/``cols`` of 0 take the map's shape."""

    name: str = option("tile", "run name: the folder under the runs root (--runs)")
    g_pos: str = option("", "G+ conductance map (.npy, uS, rows x cols); required")
    g_neg: str = option("", "G- conductance map (.npy, uS, rows x cols; empty: no G- cells)")
    inputs: str = option("", "inputs (.npy, batch x rows: float = row volts, bool/int = 0/1 "
                             "spikes); required")
    backend: str = option("surrogate", "backend the VMMs run on", choices=BACKENDS)
    surrogate: str = option("", "surrogate file from rram-cosim calibrate (required for "
                                "--backend surrogate; its TileSpec then applies to every "
                                "backend)")
    output: str = option("codes", "what --out holds: G+ minus G- ADC codes, column currents "
                                  "(uA) or y in units of x @ W", choices=OUTPUTS)
    out: str = option("y.npy", "output array (.npy, batch x cols)")
    tile: str = option("", "tile size RxC, e.g. 64x64: split the map over tiles (empty: one "
                           "macro)")
    read_noise_us: float = option(0.0, "read noise per cell and read (uS, std; not on spice)",
                                  lo=0, hi=10)
    seed: int = option(0, "seed of the read noise", lo=0, hi=SEED_MAX)
    workers: int = option(0, "ngspice worker processes (0: one per CPU)", lo=0, hi=4096)
    rows: int = option(0, "tile rows (0: the map's rows)", lo=0, hi=4096)
    cols: int = option(0, "tile weight columns (0: the map's columns)", lo=0, hi=4096)

    def __post_init__(self) -> None:
        o = "TileConfig"
        check_choice(o, "backend", self.backend, BACKENDS)
        check_choice(o, "output", self.output, OUTPUTS)
        check_options(self)
        for f in ("g_pos", "inputs", "out"):
            if not getattr(self, f):
                raise ConfigError(f"The 'tile' command needs --{f.replace('_', '-')} FILE.")
        if not self.out.endswith(".npy"):
            raise ConfigError(f"--out names the output array, written as .npy. Got {self.out!r}.")
        if self.backend == "surrogate" and not self.surrogate:
            raise ConfigError("--backend surrogate needs --surrogate FILE (a surrogate from "
                              "`rram-cosim calibrate`).")
        if self.tile:
            tile_shape(self.tile)
