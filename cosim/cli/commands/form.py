"""``rram-cosim form``: form an array at one or more compliance currents, twin and SPICE.

Every cell gets the same pulse; the select transistor's gate sets the compliance. The numpy
twin forms the whole ``rows x cols`` array; with ``--backend spice`` a random sample of
``--cells`` cells is also formed in ngspice with the same per-cell random draws, and the two are
compared cell by cell. The same cells (one draw of the array from ``--seed``) are formed at
every compliance current, so the sweep shows the compliance alone.

Writes ``runs/<name>/``: ``stats.csv`` (one row per compliance current and source: mean, std,
CV, skew, excess kurtosis, Anderson-Darling A^2 and Shapiro-Wilk p against a normal, unformed
count), ``agreement.csv`` and ``cells_<I_cc>.csv`` (SPICE backend: per-cell SPICE vs twin),
``histograms.png`` (and ``spice_vs_twin.png``), ``maps/g_<I_cc>.npy`` (uS, rows x cols),
``maps/formed_<I_cc>.npy`` (bool) and ``maps/w_<I_cc>.npy`` (differential G+ - G-, uS,
rows x cols/2), ``device_params.json`` and ``report.md``.

Option units: ``--icc`` in A (a comma list), ``--v-form`` in V, ``--t-pulse``, ``--t-edge`` and
``--t-step`` in s. (The option names follow the issue's CLI; the field names therefore carry no
unit suffix.)
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from ....analysis.report import markdown_table, save_figure, save_table, write_report
from ....models.checks import check_choice, check_int, check_range
from ....models.device.breakdown import (
    cell_values,
    differential_map,
    draw_cells,
    form_cells,
    gate_voltage_v,
)
from ....models.errors import ConfigError
from ....models.io import atomic_write
from ....models.params import BreakdownParams, FormingConditions, to_dict
from ...spice.forming import (
    compare_with_twin,
    load_device_params,
    pulse_conditions,
    sample_indices,
    save_device_params,
    simulate_cells,
    spice_gate_voltage_v,
)
from ..runs import RunDir

COMMAND = "form"
HELP = ("form a rows x cols 1T1R array with one pulse at each compliance current (--icc in A, "
        "--v-form in V, --t-pulse in s): conductance maps, statistics and histograms; "
        "--backend spice also forms --cells sampled cells in ngspice")

BACKENDS = ("twin", "spice")


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

    name: str = "form"
    icc: tuple[float, ...] = (5e-6, 7.5e-6, 10e-6, 20e-6)  # A; 7.5 uA: the default forming
    v_form: float = 3.0  # V
    t_pulse: float = 10e-6  # s
    t_edge: float = 10e-9  # s
    t_step: float = 10e-9  # s
    rows: int = 512
    cols: int = 512
    backend: str = "twin"
    cells: int = 64  # SPICE sample per compliance current
    cells_per_deck: int = 4
    workers: int = 0  # 0: every CPU this process may use
    seed: int = 0
    device_params: str | None = None
    card: str = "level1"

    def __post_init__(self) -> None:
        o = "FormConfig"
        check_choice(o, "backend", self.backend, BACKENDS)
        check_choice(o, "card", self.card, ["level1", "ptm45"])
        if not isinstance(self.icc, tuple) or not self.icc:
            raise ConfigError("The 'icc' parameter of FormConfig must be a non-empty comma "
                              f"list of compliance currents in A, e.g. 5e-6,10e-6. Got "
                              f"{self.icc!r}.")
        lo, hi = FormingConditions.I_CC_RANGE_A
        for i in self.icc:
            check_range(o, "icc", i, lo, hi, lo_open=True, unit="A",
                        hint="Compliance currents must be positive (e.g. 5e-6 for 5 uA).")
        if len(set(self.icc)) != len(self.icc):
            raise ConfigError(f"The 'icc' list holds a value twice: {self.icc}.")
        check_int(o, "rows", self.rows, 1, 4096)
        check_int(o, "cols", self.cols, 2, 4096)
        if self.cols % 2:
            raise ConfigError(f"The 'cols' parameter of FormConfig must be even (G+ and G- "
                              f"columns pair up). Got {self.cols}.")
        check_int(o, "cells", self.cells, 1, self.rows * self.cols,
                  hint="The SPICE sample cannot exceed the array.")
        check_int(o, "cells_per_deck", self.cells_per_deck, 1, 256)
        check_int(o, "workers", self.workers, 0, 4096)
        check_int(o, "seed", self.seed, 0, 2**63 - 1)
        vlo, vhi = FormingConditions.V_FORM_RANGE_V
        check_range(o, "v_form", self.v_form, vlo, vhi, unit="V",
                    hint="The model is valid from 1 V (no breakdown below) to the DAC's 5 V.")
        check_range(o, "t_step", self.t_step, 1e-12, 1e-3, unit="s")
        check_range(o, "t_pulse", self.t_pulse, self.t_step, 1.0, unit="s",
                    hint="The pulse must be at least one time step (--t-step) long.")
        # the forming conditions check the rest (edges; ranges named in their messages)
        for i in self.icc:
            self.conditions(i)

    def conditions(self, i_cc_a: float) -> FormingConditions:
        return pulse_conditions(self, i_cc_a)


def icc_tag(i_cc_a: float) -> str:
    """File-name tag of a compliance current, e.g. ``7.5uA``."""
    return f"{i_cc_a * 1e6:g}uA"


def anderson_darling_a2(g: np.ndarray) -> float:
    """Anderson-Darling A^2 of ``g`` against a normal with the sample's mean and std."""
    x = np.sort(np.asarray(g, dtype=np.float64).ravel())
    n = x.size
    z = (x - x.mean()) / x.std(ddof=1)
    i = np.arange(1, n + 1)
    return float(-n - np.mean((2 * i - 1) * (stats.norm.logcdf(z)
                                            + stats.norm.logsf(z[::-1]))))


def distribution_stats(g_us: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Mean, std, CV, skew, excess kurtosis and normality of formed conductances (uS).

    Normality: Anderson-Darling A^2 against a normal with the sample's mean and std (5 %
    critical value ~0.75; grows with n for any fixed departure) and the Shapiro-Wilk p-value on
    at most 5000 cells (drawn with ``seed``; scipy's p is exact only up to 5000).
    """
    g = np.asarray(g_us, dtype=np.float64).ravel()
    nan = float("nan")
    if g.size < 3:
        return {"n": int(g.size), "mean_us": float(g.mean()) if g.size else nan,
                "std_us": nan, "cv": nan, "skew": nan, "excess_kurtosis": nan,
                "anderson_a2": nan, "shapiro_p": nan}
    m, s = float(g.mean()), float(g.std(ddof=1))
    sub = g if g.size <= 5000 else np.random.default_rng(seed).choice(g, 5000, replace=False)
    return {"n": int(g.size), "mean_us": m, "std_us": s, "cv": s / m if m else nan,
            "skew": float(stats.skew(g)), "excess_kurtosis": float(stats.kurtosis(g)),
            "anderson_a2": anderson_darling_a2(g),
            "shapiro_p": float(stats.shapiro(sub).pvalue)}


def _save_npy(path: Path, arr: np.ndarray) -> Path:
    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.save(f, arr)
    return atomic_write(path, write)


def _histograms(per_icc: list[dict[str, Any]], spice: bool):
    import matplotlib.pyplot as plt

    n = len(per_icc)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), squeeze=False)
    for ax, r in zip(axes[0], per_icc):
        g = r["twin_g"]
        lo, hi = np.quantile(g, [0.001, 0.999]) if g.size else (0.0, 1.0)
        bins = np.linspace(lo, hi + 1e-9, 40)
        if spice:
            ax.hist(g, bins=bins, density=True, alpha=0.35, color="C0",
                    label=f"twin, whole array ({g.size})")
            sg = r["spice_g"]
            if not sg.size:
                ax.text(0.5, 0.9, "no SPICE cell formed", transform=ax.transAxes,
                        ha="center", color="C3")
            # coarser bins for the sample: about sqrt(n) of them
            sb = np.linspace(bins[0], bins[-1], int(np.clip(np.sqrt(sg.size), 5, 25)) + 1)
            w = (sb[1] - sb[0]) * 0.4
            ts = r["twin_sample_g"]
            h_s = np.histogram(sg, bins=sb, density=True)[0] if sg.size else 0 * sb[1:]
            h_t = np.histogram(ts, bins=sb, density=True)[0] if ts.size else 0 * sb[1:]
            c = 0.5 * (sb[1:] + sb[:-1])
            ax.bar(c - w / 2, h_s, width=w, color="C3", label=f"SPICE sample ({sg.size})")
            ax.bar(c + w / 2, h_t, width=w, color="C2", label="twin, same cells")
        else:
            ax.hist(g, bins=bins, density=True, color="C0", label=f"twin ({g.size} cells)")
        if g.size > 2:
            x = np.linspace(bins[0], bins[-1], 200)
            ax.plot(x, stats.norm.pdf(x, g.mean(), g.std()), "k--", lw=1, label="normal fit")
        ax.set_title(f"I_cc = {r['icc'] * 1e6:g} uA")
        ax.set_xlabel("G after forming (uS)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("density")
    fig.tight_layout()
    return fig


def _scatter(per_icc: list[dict[str, Any]]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    for k, r in enumerate(per_icc):
        ax.plot(*r["pair"], ".", ms=4, color=f"C{k}", label=f"{r['icc'] * 1e6:g} uA")
    lims = ax.get_xlim()
    ax.plot(lims, lims, "k-", lw=0.7)
    ax.set_xlabel("G, ngspice (uS)")
    ax.set_ylabel("G, numpy twin (uS)")
    ax.set_title("Same cells, same draws")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def run_form(cfg: FormConfig, runs_root: str | Path = "runs", *,
             progress: bool = True) -> dict[str, Any]:
    """Form the array at every compliance current; write ``runs_root/<cfg.name>/``."""
    t_start = time.perf_counter()
    params = load_device_params(cfg.device_params) if cfg.device_params else BreakdownParams()
    run = RunDir.create(runs_root, cfg.name)
    run.write_config(COMMAND, asdict(cfg))
    save_device_params(run.path / "device_params.json", params,
                       {"source": cfg.device_params or "BreakdownParams defaults"})
    rng = np.random.default_rng(cfg.seed)
    shape = (cfg.rows, cfg.cols)
    draws = draw_cells(shape, rng)
    spice = cfg.backend == "spice"
    idx = sample_indices(shape, cfg.cells, rng) if spice else None
    rows: list[dict[str, Any]] = []
    agree: list[dict[str, Any]] = []
    per_icc: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    timings: dict[str, float] = {"twin_s": 0.0, "spice_s": 0.0}
    for i_cc in tqdm(cfg.icc, desc="form", unit="I_cc", disable=not progress):
        cond = cfg.conditions(i_cc)
        tag = icc_tag(i_cc)
        t0 = time.perf_counter()
        twin = form_cells(cell_values(draws, params, cond.mosfet), params, cond)
        timings["twin_s"] += time.perf_counter() - t0
        _save_npy(run.path / "maps" / f"g_{tag}.npy", twin.g_us)
        _save_npy(run.path / "maps" / f"formed_{tag}.npy", twin.formed)
        _save_npy(run.path / "maps" / f"w_{tag}.npy", differential_map(twin.g_us))
        g_eq = i_cc / params.v_hold_v * 1e6
        common = {"icc_a": i_cc, "v_gate_v": twin.v_gate_v, "g_eq_us": g_eq}
        tg = twin.g_us[twin.formed]
        st = distribution_stats(tg, cfg.seed)
        rows.append({**common, "source": "twin, whole array", "cells": twin.g_us.size,
                     "n_unformed": twin.n_unformed, **st,
                     "mean_over_g_eq": st["mean_us"] / g_eq})
        rec: dict[str, Any] = {"icc": i_cc, "twin_g": tg}
        if spice:
            assert idx is not None
            vals = cell_values(draws.take(idx), params, cond.mosfet)
            # a BSIM card gets the gate that gives it the same compliance current
            cond_sp = cond if cfg.card == "level1" else dataclasses.replace(
                cond, i_cc_a=None, v_gate_v=spice_gate_voltage_v(params, cond))
            sp = simulate_cells(vals, params, cond_sp, cells_per_deck=cfg.cells_per_deck,
                                n_workers=cfg.workers or None, progress=progress)
            timings["spice_s"] += sp.wall_time_s
            t_g, t_f = twin.g_us.ravel()[idx], twin.formed.ravel()[idx]
            cmp = compare_with_twin(sp, t_g, t_f)
            agree.append({"icc_a": i_cc, **cmp, "spice_wall_s": sp.wall_time_s,
                          "decks": sp.n_decks, "decks_cached": sp.n_cached,
                          "retried_cells": len(sp.retried)})
            for f in sp.failures:
                failures.append({"icc_a": i_cc, "cell": int(idx[f.cell]), "error": f.error,
                                 "message": f.message})
            ok = sp.ok
            r_i, c_i = np.unravel_index(idx, shape)
            cells = pd.DataFrame({"row": r_i, "col": c_i, "g_spice_us": sp.g_us,
                                  "g_twin_us": t_g, "formed_spice": sp.formed,
                                  "formed_twin": t_f, "spice_ok": ok,
                                  "rel_diff": np.abs(sp.g_us - t_g) / np.abs(sp.g_us)})
            save_table(cells, run.path / f"cells_{tag}.csv")
            sg = sp.g_us[ok & sp.formed]
            rows.append({**common, "v_gate_v": gate_voltage_v(params, cond_sp),
                         "source": "SPICE sample", "cells": int(idx.size),
                         "n_unformed": int(np.count_nonzero(ok & ~sp.formed)),
                         **distribution_stats(sg, cfg.seed),
                         "mean_over_g_eq": float(sg.mean()) / g_eq if sg.size else np.nan})
            ts = t_g[t_f]
            rows.append({**common, "source": "twin, same cells", "cells": int(idx.size),
                         "n_unformed": int(np.count_nonzero(~t_f)),
                         **distribution_stats(ts, cfg.seed),
                         "mean_over_g_eq": float(ts.mean()) / g_eq if ts.size else np.nan})
            both = ok & sp.formed & t_f
            rec.update(spice_g=sg, twin_sample_g=ts, pair=(sp.g_us[both], t_g[both]))
        per_icc.append(rec)

    table = pd.DataFrame(rows)
    save_table(table, run.path / "stats.csv")
    save_figure(_histograms(per_icc, spice), run.path / "histograms.png")
    agreement = pd.DataFrame(agree)
    if spice:
        save_table(agreement, run.path / "agreement.csv")
        save_figure(_scatter(per_icc), run.path / "spice_vs_twin.png")
        save_table(pd.DataFrame(failures, columns=["icc_a", "cell", "error", "message"]),
                   run.path / "spice_failures.csv")
    timings["total_s"] = time.perf_counter() - t_start
    summary: dict[str, Any] = {"stats": table.to_dict(orient="records"),
                               "agreement": agreement.to_dict(orient="records"),
                               "failures": failures, "timings_s": timings}
    _write_report(run, cfg, params, table, agreement, failures, timings)
    run.write_json("summary.json", summary)
    whole = table[table["source"] == "twin, whole array"]
    headline: dict[str, Any] = {
        f"{icc_tag(r.icc_a)}": {"mean_us": round(r.mean_us, 3), "std_us": round(r.std_us, 3),
                                "cv": round(r.cv, 4), "unformed": int(r.n_unformed)}
        for r in whole.itertuples()}
    if spice:
        headline["spice_vs_twin"] = {
            icc_tag(r.icc_a): {"median_rel": r.median_rel_diff, "p90_rel": r.p90_rel_diff,
                               "failed": r.n_failed} for r in agreement.itertuples()}
    summary["headline"] = headline
    return summary


def _write_report(run: RunDir, cfg: FormConfig, params: BreakdownParams, table: pd.DataFrame,
                  agreement: pd.DataFrame, failures: list[dict[str, Any]],
                  timings: dict[str, float]) -> None:
    cond = cfg.conditions(cfg.icc[0])
    cols = ["icc_a", "source", "cells", "n_unformed", "mean_us", "std_us", "cv", "skew",
            "excess_kurtosis", "anderson_a2", "shapiro_p", "g_eq_us", "mean_over_g_eq",
            "v_gate_v"]
    sections = [
        ("Forming operation",
         f"- pulse {cfg.v_form} V for {cfg.t_pulse:g} s (edges {cfg.t_edge:g} s, time step "
         f"{cfg.t_step:g} s); compliance currents {', '.join(f'{i * 1e6:g} uA' for i in cfg.icc)}"
         f" set by the select transistor's gate ({cond.mosfet.card} card, W/L = "
         f"{cond.mosfet.w_m * 1e6:g}/{cond.mosfet.l_m * 1e6:g} um)\n"
         f"- array {cfg.rows} x {cfg.cols}, seed {cfg.seed}; the same cells at every "
         f"compliance\n- backend: {cfg.backend}"
         + (f" ({cfg.cells} sampled cells in ngspice, {cfg.cells_per_deck} a deck)"
            if cfg.backend == "spice" else "")),
        ("Conductance statistics (formed cells)",
         markdown_table(table[cols]) + "\n\n`g_eq_us` = I_cc / V_hold, the conductance the "
         "compliance alone would give; `mean_over_g_eq` shows how close the pulse got to it. "
         "Normality: Anderson-Darling A^2 (5 % critical value 0.75) and the Shapiro-Wilk p-value "
         "on up to 5000 cells. ![histograms](histograms.png)"),
    ]
    if len(agreement):
        sections.append((
            "SPICE vs twin, cell by cell",
            markdown_table(agreement) + "\n\nRelative difference |G_spice - G_twin| / G_spice "
            "over cells formed in both. ![scatter](spice_vs_twin.png)"
            + (f"\n\n{len(failures)} cell(s) failed in ngspice also when re-run alone: see "
               "spice_failures.csv." if failures else "")))
    sections.append(("Device parameters",
                     markdown_table(pd.DataFrame({"parameter": list(to_dict(params)),
                                                  "value": list(to_dict(params).values())}))
                     + "\n\nSources and equations: docs/device.md."))
    sections.append(("Files", "stats.csv, histograms.png, maps/g_<I_cc>.npy (uS), "
                              "maps/formed_<I_cc>.npy, maps/w_<I_cc>.npy (G+ - G-, uS)"
                     + (", agreement.csv, cells_<I_cc>.csv, spice_vs_twin.png, "
                        "spice_failures.csv" if cfg.backend == "spice" else "")
                     + f", device_params.json. Times: {timings}."))
    write_report(run.path / "report.md", f"Forming: {cfg.name}", sections)


CONFIG = FormConfig
run = run_form
