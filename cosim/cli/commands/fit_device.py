"""``rram-cosim fit-device``: fit the breakdown model to measured conductance maps.

Give one map per compliance current (``--map a.npy,b.npy --icc 5e-6,10e-6``; maps in uS, 2-D
``.npy``) and the forming conditions they were made with. The fit varies a few
:class:`~rram_cosim.models.params.BreakdownParams` fields so that the numpy twin, forming
``--sim-cells`` cells with fixed draws (common random numbers: the objective is a smooth
function of the parameters), reproduces the measured distributions: residuals are the
differences of 49 quantiles (2 % ... 98 %) of the formed cells, relative to the measured
median, plus the unformed fractions. ``scipy.optimize.least_squares`` works in log-parameter
space; relative standard errors come from the Jacobian at the optimum.

What a map can tell (the default fit set follows it):

- ``v_hold_v`` sets the scale (G ~ I_cc / V_hold) and ``a_vt_mv_um`` the spread from the
  select transistor's mismatch: both from one map.
- ``tau_growth_s`` (the slow tail of cells that did not finish growing) trades off against
  ``a_vt_mv_um`` in one map; maps at several compliance currents separate them, because the
  mismatch spread shrinks as 1/sqrt(I_cc) and the growth spread does not. It is fitted when
  two or more maps are given.
- ``t63_ref_s`` (breakdown time) is fitted when some map has between 0.5 % and 99.5 %
  unformed cells (G below ``--g-formed-min-us``).

Writes ``runs/<name>/device_params.json`` (read by ``rram-cosim form --device-params FILE``),
``fit.csv`` (parameters, start, fitted, relative standard error), ``quality.csv`` (per map:
measured vs fitted mean, std, CV, unformed fraction, Kolmogorov-Smirnov distance, quantile
RMS error), ``fit.png`` (quantile-quantile and histograms) and ``report.md``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ....analysis.report import markdown_table, save_figure, save_table, write_report
from ....models.checks import check_choice, check_int, check_range
from ....models.device.breakdown import cell_values, draw_cells, form_cells
from ....models.errors import ConfigError
from ....models.params import BreakdownParams, FormingConditions, to_dict
from ...spice.forming import load_device_params, pulse_conditions, save_device_params
from ..runs import RunDir

COMMAND = "fit-device"
HELP = ("fit the breakdown model to measured conductance maps (--map a.npy,b.npy in uS, one per "
        "compliance current --icc in A; --v-form V, --t-pulse s); writes device_params.json for "
        "form --device-params")

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
_LEVELS = np.linspace(0.02, 0.98, 49)
_W_UNFORMED = 5.0  # weight of an unformed-fraction residual against the quantile residuals


@dataclass(frozen=True)
class FitDeviceConfig:
    """The ``fit-device`` run. Units: ``icc`` A, ``v_form`` V, times s, conductances uS.

    ``map`` and ``icc`` are comma lists of equal length (map k was formed at ``icc[k]``);
    ``fit`` empty picks the fit set automatically (module docstring); ``start_params`` is a
    parameter file to start from (default: BreakdownParams defaults; fields not fitted keep
    its values).
    """

    name: str = "fit-device"
    map: tuple[str, ...] = ()
    icc: tuple[float, ...] = (7.5e-6,)
    v_form: float = 3.0
    t_pulse: float = 10e-6
    t_edge: float = 10e-9
    t_step: float = 10e-9
    fit: tuple[str, ...] = ()
    start_params: str | None = None
    sim_cells: int = 16384
    g_formed_min_us: float = 0.1  # below: unformed (DeviceParams.g_min_us)
    seed: int = 0
    card: str = "level1"

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
        lo, hi = FormingConditions.I_CC_RANGE_A
        for i in self.icc:
            check_range(o, "icc", i, lo, hi, lo_open=True, unit="A",
                        hint="Compliance currents must be positive (e.g. 5e-6 for 5 uA).")
        for f in self.fit:
            check_choice(o, "fit", f, list(FIT_BOUNDS))
        if len(set(self.fit)) != len(self.fit):
            raise ConfigError(f"The 'fit' list names a parameter twice: {self.fit}.")
        vlo, vhi = FormingConditions.V_FORM_RANGE_V
        check_range(o, "v_form", self.v_form, vlo, vhi, unit="V")
        check_range(o, "t_step", self.t_step, 1e-12, 1e-3, unit="s")
        check_range(o, "t_pulse", self.t_pulse, self.t_step, 1.0, unit="s",
                    hint="The pulse must be at least one time step (--t-step) long.")
        check_int(o, "sim_cells", self.sim_cells, 256, 1 << 22)
        check_range(o, "g_formed_min_us", self.g_formed_min_us, 0, 1e3, unit="uS")
        check_int(o, "seed", self.seed, 0, 2**63 - 1)
        check_choice(o, "card", self.card, ["level1", "ptm45"])
        for i in self.icc:
            self.conditions(i)

    def conditions(self, i_cc_a: float) -> FormingConditions:
        return pulse_conditions(self, i_cc_a)


@dataclass(frozen=True)
class DeviceFit:
    """Result of :func:`fit_breakdown`.

    Attributes
    ----------
    params : BreakdownParams
        Fitted parameters (fields not fitted as in ``start``).
    start : BreakdownParams
        Starting point.
    names : tuple of str
        Fitted fields.
    rel_std_err : dict of str to float
        Relative standard error of each fitted field (from the Jacobian; inf if not
        identifiable).
    quality : pandas.DataFrame
        One row per map: measured and fitted statistics, KS distance, quantile RMS error.
    cost : float
        Final least-squares cost (half the sum of squared residuals).
    nfev : int
        Objective evaluations.
    success : bool
        The optimiser's convergence flag.
    message : str
        The optimiser's message.
    """

    params: BreakdownParams
    start: BreakdownParams
    names: tuple[str, ...]
    rel_std_err: dict[str, float]
    quality: pd.DataFrame
    cost: float
    nfev: int
    success: bool
    message: str


def auto_fit_names(maps: list[np.ndarray], g_formed_min_us: float) -> tuple[str, ...]:
    """The fit set the maps can support (module docstring)."""
    names = ["v_hold_v", "a_vt_mv_um"]
    if len(maps) >= 2:
        names.append("tau_growth_s")
    fr = [float(np.mean(np.asarray(g) < g_formed_min_us)) for g in maps]
    if any(0.005 < f < 0.995 for f in fr):
        names.append("t63_ref_s")
    return tuple(names)


def _formed_quantiles(g: np.ndarray, g_min: float) -> tuple[np.ndarray | None, float]:
    g = np.asarray(g, dtype=np.float64).ravel()
    formed = g[g >= g_min]
    frac_unformed = 1.0 - formed.size / g.size
    if formed.size < 2:
        return None, frac_unformed
    return np.quantile(formed, _LEVELS), frac_unformed


def fit_breakdown(maps: list[np.ndarray], conds: list[FormingConditions], *,
                  start: BreakdownParams | None = None,
                  names: tuple[str, ...] | None = None, sim_cells: int = 16384,
                  g_formed_min_us: float = 0.1, seed: int = 0) -> DeviceFit:
    """Fit breakdown parameters to measured maps.

    Parameters
    ----------
    maps : list of numpy.ndarray
        Measured conductances, uS, one 2-D map per forming condition.
    conds : list of FormingConditions
        How each map was formed (same length as ``maps``).
    start : BreakdownParams, optional
        Starting point (default: BreakdownParams defaults); fields not fitted keep its
        values.
    names : tuple of str, optional
        Fields to fit (keys of :data:`FIT_BOUNDS`); default :func:`auto_fit_names`.
    sim_cells : int
        Cells the twin forms per map at each evaluation.
    g_formed_min_us : float
        Conductance below which a cell counts as unformed, uS (measured and model alike).
    seed : int
        Seed of the model's fixed draws.

    Returns
    -------
    DeviceFit
    """
    if len(maps) != len(conds) or not maps:
        raise ConfigError(f"fit_breakdown needs one forming condition per map. Got "
                          f"{len(maps)} map(s) and {len(conds)} condition(s).")
    maps = [_as_map(f"map[{k}]", m) for k, m in enumerate(maps)]
    start = start if start is not None else BreakdownParams()
    names = tuple(names) if names else auto_fit_names(maps, g_formed_min_us)
    for n in names:
        check_choice("fit_breakdown", "names", n, list(FIT_BOUNDS))
    measured = [_formed_quantiles(g, g_formed_min_us) for g in maps]
    for k, (q, f) in enumerate(measured):
        if q is None:
            raise ConfigError(f"Measured map {k} has fewer than 2 formed cells (G >= "
                              f"{g_formed_min_us:g} uS): nothing to fit. Check its units (uS) "
                              "or lower g_formed_min_us.")
    children = np.random.SeedSequence(seed).spawn(len(maps))
    draws = [draw_cells((sim_cells,), np.random.default_rng(c)) for c in children]
    lo = np.log([FIT_BOUNDS[n][0] for n in names])
    hi = np.log([FIT_BOUNDS[n][1] for n in names])
    x0 = np.clip(np.log([float(getattr(start, n)) for n in names]), lo + 1e-9, hi - 1e-9)

    def params_at(x: np.ndarray) -> BreakdownParams:
        return dataclasses.replace(start, **{n: float(v) for n, v in zip(names, np.exp(x))})

    def simulate(p: BreakdownParams) -> list[np.ndarray]:
        return [form_cells(cell_values(d, p, c.mosfet), p, c).g_us for d, c in zip(draws, conds)]

    def residuals(x: np.ndarray) -> np.ndarray:
        try:
            sims = simulate(params_at(x))
        except ConfigError:
            # a trial point where the compliance cannot act: a large, smooth penalty
            return np.full(len(maps) * (_LEVELS.size + 1), 10.0)
        out = []
        for g, (q_meas, f_meas) in zip(sims, measured):
            q_mod, f_mod = _formed_quantiles(g, g_formed_min_us)
            scale = float(np.median(q_meas))
            out.append((q_mod - q_meas) / scale if q_mod is not None
                       else np.full(_LEVELS.size, 10.0))
            out.append(np.array([_W_UNFORMED * (f_mod - f_meas)]))
        return np.concatenate(out)

    sol = optimize.least_squares(residuals, x0, bounds=(lo, hi), diff_step=1e-3,
                                 x_scale=1.0, max_nfev=200)
    fitted = params_at(sol.x)
    m, n = sol.fun.size, len(names)
    try:
        cov = np.linalg.inv(sol.jac.T @ sol.jac) * (2.0 * sol.cost / max(m - n, 1))
        err = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        err = np.full(n, np.inf)
    rel_err = {k: float(np.expm1(e)) for k, e in zip(names, err)}
    quality = _quality(maps, simulate(fitted), conds, g_formed_min_us)
    return DeviceFit(params=fitted, start=start, names=names, rel_std_err=rel_err,
                     quality=quality, cost=float(sol.cost), nfev=int(sol.nfev),
                     success=bool(sol.success), message=str(sol.message))


def _quality(maps: list[np.ndarray], sims: list[np.ndarray], conds: list[FormingConditions],
             g_min: float) -> pd.DataFrame:
    rows = []
    for k, (g, s, c) in enumerate(zip(maps, sims, conds)):
        gm, sm = g[g >= g_min].ravel(), s[s >= g_min].ravel()
        qm, qs = np.quantile(gm, _LEVELS), np.quantile(sm, _LEVELS)
        rows.append({
            "map": k, "icc_a": c.i_cc_a,
            "mean_meas_us": gm.mean(), "mean_fit_us": sm.mean(),
            "std_meas_us": gm.std(ddof=1), "std_fit_us": sm.std(ddof=1),
            "cv_meas": gm.std(ddof=1) / gm.mean(), "cv_fit": sm.std(ddof=1) / sm.mean(),
            "unformed_meas": float(np.mean(g < g_min)), "unformed_fit": float(np.mean(s < g_min)),
            "ks_distance": float(stats.ks_2samp(gm, sm).statistic),
            "quantile_rms_us": float(np.sqrt(np.mean((qm - qs) ** 2))),
        })
    return pd.DataFrame(rows)


def _as_map(name: str, g: Any) -> np.ndarray:
    """A measured map as a finite 2-D float array (slightly negative reads of unformed cells
    are kept: they count as unformed)."""
    a = np.asarray(g, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ConfigError(f"'{name}' must be a 2-D conductance map (rows x cols) in uS. Got "
                          f"shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ConfigError(f"'{name}' holds a non-finite value at {bad}. Conductances must be "
                          "finite numbers in uS (mark failed reads as 0).")
    return a


def load_map(path: str | Path) -> np.ndarray:
    """A measured conductance map from a 2-D ``.npy`` file (uS)."""
    try:
        arr = np.load(Path(path), allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ConfigError(f"Cannot read the conductance map {path}: {e}. Give a 2-D .npy array "
                          "of conductances in uS.") from e
    return _as_map(str(path), arr)


def _fit_figure(maps: list[np.ndarray], sims: list[np.ndarray], conds: list[FormingConditions],
                g_min: float):
    import matplotlib.pyplot as plt

    n = len(maps)
    fig, axes = plt.subplots(2, n, figsize=(3.8 * n, 6.4), squeeze=False)
    for k, (g, s, c) in enumerate(zip(maps, sims, conds)):
        gm, sm = g[g >= g_min].ravel(), s[s >= g_min].ravel()
        lv = np.linspace(0.005, 0.995, 199)
        qm, qs = np.quantile(gm, lv), np.quantile(sm, lv)
        ax = axes[0][k]
        ax.plot(qm, qs, ".", ms=3)
        lims = [min(qm[0], qs[0]), max(qm[-1], qs[-1])]
        ax.plot(lims, lims, "k-", lw=0.7)
        ax.set_xlabel("measured quantile (uS)")
        ax.set_ylabel("fitted model quantile (uS)")
        ax.set_title(f"map {k}: I_cc = {c.i_cc_a * 1e6:g} uA")
        ax.grid(alpha=0.3)
        ax = axes[1][k]
        bins = np.linspace(lims[0], lims[1], 40)
        ax.hist(gm, bins=bins, density=True, alpha=0.5, label="measured")
        ax.hist(sm, bins=bins, density=True, histtype="step", lw=1.5, label="fitted model")
        ax.set_xlabel("G (uS)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def run_fit_device(cfg: FitDeviceConfig, runs_root: str | Path = "runs", *,
                   progress: bool = True) -> dict[str, Any]:
    """Fit the maps of ``cfg`` and write ``runs_root/<cfg.name>/``."""
    t0 = time.perf_counter()
    maps = [load_map(p) for p in cfg.map]
    conds = [cfg.conditions(i) for i in cfg.icc]
    start = load_device_params(cfg.start_params) if cfg.start_params else BreakdownParams()
    run = RunDir.create(runs_root, cfg.name)
    run.write_config(COMMAND, asdict(cfg))
    fit = fit_breakdown(maps, conds, start=start, names=cfg.fit or None,
                        sim_cells=cfg.sim_cells, g_formed_min_us=cfg.g_formed_min_us,
                        seed=cfg.seed)
    save_device_params(run.path / "device_params.json", fit.params,
                       {"fitted": list(fit.names), "maps": list(cfg.map),
                        "icc_a": list(cfg.icc), "v_form_v": cfg.v_form,
                        "t_pulse_s": cfg.t_pulse, "rel_std_err": fit.rel_std_err,
                        "cost": fit.cost})
    ptable = pd.DataFrame([{"parameter": n, "start": getattr(fit.start, n),
                            "fitted": getattr(fit.params, n),
                            "rel_std_err": fit.rel_std_err[n]} for n in fit.names])
    save_table(ptable, run.path / "fit.csv")
    save_table(fit.quality, run.path / "quality.csv")
    children = np.random.SeedSequence(cfg.seed + 1).spawn(len(maps))
    sims = [form_cells(cell_values(draw_cells((cfg.sim_cells,), np.random.default_rng(ch)),
                                   fit.params, c.mosfet), fit.params, c).g_us
            for ch, c in zip(children, conds)]
    save_figure(_fit_figure(maps, sims, conds, cfg.g_formed_min_us), run.path / "fit.png")
    elapsed = time.perf_counter() - t0
    write_report(run.path / "report.md", f"Device fit: {cfg.name}", [
        ("Data", "\n".join(f"- map {k}: `{p}` ({m.shape[0]} x {m.shape[1]}), formed at "
                           f"I_cc = {i * 1e6:g} uA, {cfg.v_form} V, {cfg.t_pulse:g} s"
                           for k, (p, m, i) in enumerate(zip(cfg.map, maps, cfg.icc)))),
        ("Fitted parameters",
         markdown_table(ptable) + f"\n\nOptimiser: {fit.message} ({fit.nfev} evaluations, "
         f"cost {fit.cost:.3g}, {elapsed:.1f} s). A relative standard error near or above 1 "
         "means the maps do not determine that parameter (see the module docstring of "
         "cosim/cli/commands/fit_device.py)."),
        ("Fit quality", markdown_table(fit.quality)
         + "\n\nKS distance: largest gap between the measured and fitted distribution functions"
           " of formed cells. ![fit](fit.png)"),
        ("Use", f"`rram-cosim form --device-params {run.path / 'device_params.json'}`"),
        ("All parameters", markdown_table(pd.DataFrame(
            {"parameter": list(to_dict(fit.params)),
             "value": list(to_dict(fit.params).values())}))),
    ])
    summary = {"fitted": {n: getattr(fit.params, n) for n in fit.names},
               "rel_std_err": fit.rel_std_err, "quality": fit.quality.to_dict(orient="records"),
               "success": fit.success, "elapsed_s": elapsed}
    run.write_json("summary.json", summary)
    summary["headline"] = {"fitted": summary["fitted"],
                           "ks_distance": [round(float(v), 4)
                                           for v in fit.quality["ks_distance"]],
                           "device_params": str(run.path / "device_params.json")}
    return summary


CONFIG = FitDeviceConfig
run = run_fit_device
