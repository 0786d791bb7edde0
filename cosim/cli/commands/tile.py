"""``rram-cosim tile``: one batch of VMMs of a conductance map through a chosen backend.

``rram-cosim tile --g-pos GP.npy [--g-neg GN.npy] --inputs X.npy --backend
spice|nodal|surrogate|ideal [--surrogate FILE] [--output codes|current|weights] --out Y.npy``

- ``GP.npy``, ``GN.npy``: conductances in uS, rows x cols (weight columns); without
  ``--g-neg`` the G- columns hold no cells (single-ended weights, W = G+ / g_ref).
- ``X.npy``: batch x rows (or one vector of rows). A float array is read as row voltages in V
  (0 to ``v_read_v``); a bool or integer array as 0/1 spikes, 1 meaning the read voltage.
- ``Y.npy``: batch x cols, differential (G+ minus G- column of each weight column):
  ``codes`` (default) the difference of the two ADC codes (int64), ``current`` the difference
  of the column currents in uA, ``weights`` the tile's ``y`` in units of ``x @ W`` with
  ``W = (G+ - G-) / g_ref_us`` and ``x`` the input levels.

By default the whole map sits on one macro (TileSpec rows x cols = the map's shape, or the
surrogate's); ``--tile RxC`` splits it over R x C tiles whose partial sums are added digitally
after the ADCs. With ``--surrogate FILE`` its TileSpec (TIA gain included) is used for every
backend, so the backends' codes compare; otherwise the spec options apply (as for
``calibrate``). Read noise (``--read-noise-us``, per cell, drawn per read from ``--seed``) acts
on the ideal, surrogate and nodal backends; ngspice is deterministic.

The run folder ``runs/<name>/`` (root: ``--runs``) gets ``config.json``, ``summary.csv`` (the
backend's ``y`` against the ideal ``x @ W``), ``y_vs_ideal.png`` and ``report.md``.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ....analysis.report import markdown_table, save_figure, save_table, write_report
from ....models.checks import check_choice, check_int, check_range
from ....models.errors import ConfigError
from ....models.io import atomic_write
from ....models.params import TileSpec
from ....models.tile.backend import TileBackend, TileOutput
from ....models.tile.ideal import IdealBackend
from ....models.tile.surrogate import TileSurrogate
from ....models.tile.tiling import TiledBackend
from ..runs import RunDir
from .calibrate import TileSpecOptions

COMMAND = "tile"
HELP = ("VMMs of a conductance map (uS, .npy) and inputs (.npy: float = volts, bool/int = "
        "spikes) through spice | nodal | surrogate | ideal; --out Y.npy (codes, current or "
        "weights)")
ROOT_OPTION = "--runs"
BACKENDS = ("spice", "nodal", "surrogate", "ideal")
OUTPUTS = ("codes", "current", "weights")


@dataclass(frozen=True)
class TileConfig(TileSpecOptions):
    """The ``tile`` run. ``rows``/``cols`` of 0 take the map's shape."""

    name: str = "tile"
    g_pos: str = ""  # .npy, uS, rows x cols
    g_neg: str = ""  # .npy, uS, rows x cols; empty: no G- cells
    inputs: str = ""  # .npy, batch x rows: float = volts, bool/int = 0/1 spikes
    backend: str = "surrogate"
    surrogate: str = ""  # surrogate file (rram-cosim calibrate); required for --backend surrogate
    output: str = "codes"  # codes | current | weights
    out: str = "y.npy"  # output file
    tile: str = ""  # "RxC": split over R x C tiles; empty: the whole map on one macro
    read_noise_us: float = 0.0
    seed: int = 0
    workers: int = 0  # ngspice worker processes; 0: one per CPU
    rows: int = 0
    cols: int = 0

    def __post_init__(self) -> None:
        o = "TileConfig"
        check_choice(o, "backend", self.backend, BACKENDS)
        check_choice(o, "output", self.output, OUTPUTS)
        check_range(o, "read_noise_us", self.read_noise_us, 0, 10, unit="uS")
        check_int(o, "seed", self.seed, 0, 2**63 - 1)
        check_int(o, "workers", self.workers, 0, 4096)
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


def tile_shape(text: str) -> tuple[int, int]:
    """``"RxC"`` -> (R, C) (rows x weight columns of each tile)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise ConfigError(f"--tile must look like 64x64 (rows x weight columns of one tile). "
                          f"Got {text!r}.")
    return int(m.group(1)), int(m.group(2))


def load_map(path: str, name: str) -> np.ndarray:
    """A conductance map (uS) from .npy; shape and values are checked by the backends."""
    try:
        g = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ConfigError(f"Cannot read --{name} {path}: {e}") from e
    if g.dtype.kind not in "biuf":
        raise ConfigError(f"--{name} {path} must hold numbers (conductances in uS). Got dtype "
                          f"{g.dtype}.")
    return np.asarray(g, dtype=np.float64)


def load_inputs(path: str, spec: TileSpec, rows: int) -> tuple[np.ndarray, bool]:
    """Inputs from .npy: (array, volts). Floats are volts; bools/ints are 0/1 spikes."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ConfigError(f"Cannot read --inputs {path}: {e}") from e
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != rows:
        raise ConfigError(f"--inputs must have shape (batch, {rows}) for a map of {rows} rows. "
                          f"Got {x.shape}.")
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


def _backend(cfg: TileConfig, spec: TileSpec, sur: TileSurrogate | None) -> TileBackend:
    if cfg.backend == "surrogate":
        assert sur is not None
        return sur.with_noise(cfg.read_noise_us)
    if cfg.backend == "ideal":
        return IdealBackend(spec, read_noise_sigma_us=cfg.read_noise_us)
    if cfg.backend == "nodal":
        from ...engines.nodal import NodalBackend

        return NodalBackend(spec, read_noise_sigma_us=cfg.read_noise_us)
    from ...spice.backend import SpiceBackend

    return SpiceBackend(spec, n_workers=cfg.workers or None)


def output_array(out: TileOutput, kind: str) -> np.ndarray:
    """The differential output the user asked for (batch x cols)."""
    if kind == "codes":
        return (out.codes_pos - out.codes_neg).astype(np.int64)
    if kind == "current":
        return out.i_pos_ua - out.i_neg_ua
    return out.y


def run_tile(cfg: TileConfig, runs_root: str | Path = "runs", *,
             progress: bool = True) -> dict[str, Any]:
    """Run the VMMs, write ``cfg.out`` and the run folder; return the summary."""
    t0 = time.perf_counter()
    run = RunDir.create(runs_root, cfg.name)
    run.write_config(COMMAND, asdict(cfg))
    gp = load_map(cfg.g_pos, "g-pos")
    gn = load_map(cfg.g_neg, "g-neg") if cfg.g_neg else np.zeros_like(gp)
    if gp.ndim != 2:
        raise ConfigError(f"--g-pos must be a 2-D map (rows x cols) in uS. Got shape {gp.shape}.")
    sur = TileSurrogate.load(cfg.surrogate) if cfg.surrogate else None
    tiles = tile_shape(cfg.tile) if cfg.tile else None
    if sur is not None:
        spec = sur.spec
    else:
        shape = tiles or gp.shape
        spec = dataclasses.replace(cfg, rows=cfg.rows or shape[0],
                                   cols=cfg.cols or shape[1]).tile_spec()
    x, volts = load_inputs(cfg.inputs, spec, gp.shape[0])
    backend = _backend(cfg, spec, sur)
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
    atomic_write(cfg.out, lambda p: _save_npy(p, y))
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
    }])
    save_table(table, run.path / "summary.csv")
    save_figure(_plot(ideal_y, out.y, cfg.backend), run.path / "y_vs_ideal.png")
    write_report(run.path / "report.md", f"rram-cosim tile: {cfg.name}", [
        ("What ran", (
            f"{x.shape[0]} input vectors ({'volts' if volts else 'spikes'}) through a "
            f"{gp.shape[0]}x{gp.shape[1]} differential map on the `{cfg.backend}` backend "
            f"({cfg.tile + ' tiles' if cfg.tile else 'one macro'}; TileSpec {spec.rows}x"
            f"{spec.cols}, r_wire {spec.r_wire_ohm} ohm, R_f {spec.r_f_ohm:.1f} ohm). Output "
            f"`{cfg.output}` written to `{cfg.out}` (shape {y.shape}).")),
        ("Against the ideal x @ W", markdown_table(table) + "\n\n![](y_vs_ideal.png)"),
    ])
    summary = {"out": str(Path(cfg.out).resolve()), "shape": list(y.shape),
               "table": table.to_dict(orient="records"), "total_s": time.perf_counter() - t0}
    summary["headline"] = {"out": summary["out"], "shape": summary["shape"],
                           "max_rel_to_ideal_range": table["max_rel_to_ideal_range"][0]}
    return summary


def _save_npy(path: Path, a: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append .npy to a temp name
        np.save(f, a, allow_pickle=False)


def _plot(ideal: np.ndarray, y: np.ndarray, backend: str) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(ideal.ravel(), y.ravel(), ".", ms=2)
    lim = [float(min(ideal.min(), y.min())), float(max(ideal.max(), y.max()))]
    ax.plot(lim, lim, "k--", lw=0.8, label="y = x @ W")
    ax.set_xlabel("ideal x @ W")
    ax.set_ylabel(f"{backend} y")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


CONFIG = TileConfig
run = run_tile
