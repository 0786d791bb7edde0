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

Heavy libraries (pandas, matplotlib) and the backends load inside :func:`run_tile`
(:mod:`rram_cosim.cosim.tasks.tile`), so building the command line's parser imports only the
configuration.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....models.io import atomic_save_npy
from ...tasks.configs.common import describe_read
from ...tasks.configs.tile import TileConfig
from ..runs import RunDir, ensure_output_file

if TYPE_CHECKING:
    import numpy as np

COMMAND = "tile"
HELP = ("VMMs of a conductance map (uS, .npy) and inputs (.npy: float = volts, bool/int = "
        "spikes) through spice | nodal | surrogate | ideal; --out Y.npy (codes, current or "
        "weights)")
ROOT_OPTION = "--runs"
CONFIG = TileConfig


def run_tile(cfg: TileConfig, runs_root: str | Path = "runs", *,
             progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Run the VMMs, write ``cfg.out`` and the run folder; return the summary."""
    from ....analysis.report import markdown_table, save_figure, save_table, write_report
    from ...tasks.tile import run_vmm

    t0 = time.perf_counter()
    ensure_output_file(cfg.out, "--out")
    run = RunDir.create(runs_root, cfg.name, command=COMMAND, overwrite=overwrite,
                        root_option=ROOT_OPTION)
    run.write_config(COMMAND, asdict(cfg))
    res = run_vmm(cfg)
    spec, y, table = res.spec, res.y, res.table
    atomic_save_npy(cfg.out, y)
    save_table(table, run.path / "summary.csv")
    save_figure(_plot(res.y_ideal, res.y_tile, cfg.backend), run.path / "y_vs_ideal.png")
    write_report(run.path / "report.md", f"rram-cosim tile: {cfg.name}", [
        ("What ran", (
            f"{res.batch} input vectors ({'volts' if res.volts else 'spikes'}) through a "
            f"{res.shape[0]}x{res.shape[1]} differential map on the `{cfg.backend}` backend "
            f"({cfg.tile + ' tiles' if cfg.tile else 'one macro'}; TileSpec {spec.rows}x"
            f"{spec.cols}, R_f {spec.r_f_ohm:.1f} ohm; read scheme: "
            f"{describe_read(spec, res.shape[0], res.shape[1])}). Output "
            f"`{cfg.output}` written to `{cfg.out}` (shape {y.shape}).")),
        ("Against the ideal x @ W", markdown_table(table) + "\n\n![](y_vs_ideal.png)"),
    ])
    summary = {"out": str(Path(cfg.out).resolve()), "shape": list(y.shape),
               "table": table.to_dict(orient="records"), "total_s": time.perf_counter() - t0}
    summary["headline"] = {"out": summary["out"], "shape": summary["shape"],
                           "max_rel_to_ideal_range": table["max_rel_to_ideal_range"][0]}
    run.finish()
    return summary


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


run = run_tile
