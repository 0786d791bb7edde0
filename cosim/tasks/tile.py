"""One batch of VMMs of a conductance map through a chosen backend: the library half of
``rram-cosim tile`` (file formats in :mod:`rram_cosim.cosim.cli.commands.tile`)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...models.checks import SIEMENS_SUSPECT_FILE_US
from ...models.errors import ConfigError
from ...models.io import load_npy
from ...models.params import TileSpec
from ...models.tile.backend import TileBackend, TileOutput
from ...models.tile.surrogate import TileSurrogate
from ...models.tile.tiling import TiledBackend
from ..engines.registry import make_backend
from .configs.tile import TileConfig, tile_shape

__all__ = ["TileRun", "load_inputs", "load_map", "output_array", "run_vmm", "tile_backend"]


def load_map(path: str, name: str) -> np.ndarray:
    """A conductance map (uS) from .npy; shape and values are checked by the backends."""
    g = load_npy(path, f"--{name}")
    if g.dtype.kind not in "iuf":
        what = "booleans (they would read as 0 and 1 uS)" if g.dtype.kind == "b" \
            else f"dtype {g.dtype}"
        raise ConfigError(f"--{name} {path} must hold conductances in uS as numbers. Got "
                          f"{what}.")
    g = np.asarray(g, dtype=np.float64)
    top = float(np.nanmax(g)) if g.size else 0.0
    if 0.0 < top < SIEMENS_SUSPECT_FILE_US and not np.any(g < 0):
        raise ConfigError(
            f"--{name} {path} holds only conductances below {SIEMENS_SUSPECT_FILE_US:g} uS (the "
            f"largest is {top:.3g} uS): are these siemens? The map is read in microsiemens; "
            "multiply it by 1e6 (a map of unformed cells, about 1e-3 uS, computes nothing).")
    return g


def load_inputs(path: str, spec: TileSpec, rows: int) -> tuple[np.ndarray, bool]:
    """Inputs from .npy: (array, volts). Floats are volts; bools/ints are 0/1 spikes."""
    x = load_npy(path, "--inputs")
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != rows:
        raise ConfigError(f"--inputs {path} must have shape (batch, {rows}) for a map of {rows} "
                          f"rows. Got {x.shape}.")
    if x.shape[0] == 0:
        raise ConfigError(f"--inputs {path} holds no input vectors (shape {x.shape}): give at "
                          "least one.")
    if x.dtype.kind == "f":
        if not np.all(np.isfinite(x)):
            raise ConfigError("--inputs holds NaN or inf. Float inputs are row voltages in V.")
        if x.size and (x.min() < 0 or x.max() > spec.v_read_v):
            raise ConfigError(
                f"Float --inputs are row voltages in V within [0, v_read_v = {spec.v_read_v}]. "
                f"Got values in [{x.min():g}, {x.max():g}]. Pass spikes as a bool or integer "
                "array.")
        return x.astype(np.float64), True
    if x.dtype.kind in "biu":
        if x.size and not np.isin(x, (0, 1)).all():
            raise ConfigError("Integer --inputs are 0/1 spikes. Got values other than 0 and 1;"
                              " pass row voltages as a float array.")
        return x.astype(np.float64), False
    raise ConfigError(f"--inputs must be a float (volts), bool or integer (spikes) array. Got "
                      f"dtype {x.dtype}.")


def tile_backend(cfg: TileConfig, spec: TileSpec, sur: TileSurrogate | None) -> TileBackend:
    """The backend ``cfg.backend`` for ``spec`` (``sur`` for the surrogate), with the read
    noise of ``cfg``."""
    if cfg.backend == "surrogate":
        assert sur is not None
        return sur.with_noise(cfg.read_noise_us)
    if cfg.backend == "spice":
        return make_backend("spice", spec, n_workers=cfg.workers or None)
    return make_backend(cfg.backend, spec, read_noise_sigma_us=cfg.read_noise_us)


def output_array(out: TileOutput, kind: str) -> np.ndarray:
    """The differential output the user asked for (batch x cols)."""
    if kind == "codes":
        return (out.codes_pos - out.codes_neg).astype(np.int64)
    if kind == "current":
        return out.i_pos_ua - out.i_neg_ua
    return out.y


@dataclass
class TileRun:
    """What :func:`run_vmm` computed."""

    spec: TileSpec  # the spec the backend ran (the surrogate's, or the options')
    shape: tuple[int, int]  # the map's rows x cols
    batch: int  # input vectors
    volts: bool  # inputs were row voltages (else 0/1 spikes)
    y: np.ndarray  # the output asked for (batch x cols)
    y_tile: np.ndarray  # the tile's y, units of x @ W
    y_ideal: np.ndarray  # x @ W
    table: pd.DataFrame  # the tile's y against the ideal, and the timings


def run_vmm(cfg: TileConfig) -> TileRun:
    """Load the map and inputs of ``cfg``, run the VMMs on its backend and compare them with
    the ideal ``x @ W``."""
    gp = load_map(cfg.g_pos, "g-pos")
    gn = load_map(cfg.g_neg, "g-neg") if cfg.g_neg else np.zeros_like(gp)
    if gp.ndim != 2:
        raise ConfigError(f"--g-pos {cfg.g_pos} must be a 2-D map (rows x cols) in uS. Got "
                          f"shape {gp.shape}.")
    if gn.shape != gp.shape:
        raise ConfigError(f"--g-neg {cfg.g_neg} has shape {gn.shape}, but --g-pos {cfg.g_pos} "
                          f"has {gp.shape}: the two maps of a differential pair must have the "
                          "same shape.")
    sur = TileSurrogate.load(cfg.surrogate) if cfg.surrogate else None
    tiles = tile_shape(cfg.tile) if cfg.tile else None
    if sur is not None:
        spec = sur.spec
    else:
        shape = tiles or gp.shape
        spec = dataclasses.replace(cfg, rows=cfg.rows or shape[0],
                                   cols=cfg.cols or shape[1]).tile_spec()
    x, volts = load_inputs(cfg.inputs, spec, gp.shape[0])
    backend = tile_backend(cfg, spec, sur)
    if tiles is not None:
        if tiles[0] > spec.rows or tiles[1] > spec.cols:
            raise ConfigError(f"--tile {cfg.tile} exceeds the tile spec ({spec.rows}x"
                              f"{spec.cols}); the surrogate was calibrated for that size.")
        backend = TiledBackend(backend, *tiles)
    rng = np.random.default_rng(cfg.seed)
    t1 = time.perf_counter()
    bound = backend.bind(gp, gn)
    t2 = time.perf_counter()
    out = bound.apply(x, rng, volts=volts)
    t3 = time.perf_counter()
    y = output_array(out, cfg.output)
    levels = x / spec.v_read_v if volts else x
    ideal_y = levels @ ((gp - gn) / spec.g_ref_us)
    err = out.y - ideal_y
    scale = float(np.abs(ideal_y).max()) or 1.0
    table = pd.DataFrame([{
        "backend": cfg.backend, "batch": x.shape[0], "rows": gp.shape[0], "cols": gp.shape[1],
        "tiles": cfg.tile or "one macro", "output": cfg.output,
        "rms_y_minus_ideal": float(np.sqrt(np.mean(err**2))),
        "max_abs_y_minus_ideal": float(np.abs(err).max()),
        "max_rel_to_ideal_range": float(np.abs(err).max() / scale),
        "bind_s": t2 - t1, "apply_s": t3 - t2, "vmm_per_s": x.shape[0] / max(t3 - t2, 1e-12),
        # the surrogate's VMMs with a TIA past its linear range, solved exactly instead
        "vmm_solved_exactly": out.n_resolved,
    }])
    return TileRun(spec=spec, shape=gp.shape, batch=x.shape[0], volts=volts, y=y, y_tile=out.y,
                   y_ideal=ideal_y, table=table)

