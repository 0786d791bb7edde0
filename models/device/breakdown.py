"""Stochastic breakdown (forming) of 1T1R cells: the numpy twin of the ngspice forming deck.

One parameter set (:class:`~rram_cosim.models.params.BreakdownParams`) and one forming
operation (:class:`~rram_cosim.models.params.FormingConditions`) drive both this module and
:mod:`rram_cosim.netlists.forming`. Per-cell randomness is drawn once, here, from an explicit
``numpy.random.Generator`` (:func:`draw_cells`); :func:`cell_values` turns the draws into the
per-cell numbers that the SPICE cells receive as values, so both sides simulate the same cells.

The cell (docs/device.md): a top electrode at the pulse voltage ``V(t)``, the RRAM, the
select NMOS (level-1 equations of :class:`MosfetSpec`, gate at ``V_g - dVt_i``), source at 0.

- Breakdown: damage ``dD/dt = exp(gamma (V_cell - v_ref)) / t63_ref``; the cell breaks down when
  ``D = w_i`` (``w_i`` Weibull, shape ``beta``, unit scale). Before breakdown only the pristine
  leakage flows, the transistor drops microvolts and ``V_cell = V(t)``.
- Growth: ``dG/dt = I h(V_f) / Q_i`` with ``I = (g_p + G) V_f`` the cell current,
  ``h(V) = x / (1 + x / h_max)``, ``x = max(exp((V - V_hold) / V_a) - 1, 0)``,
  ``Q_i = tau_i V_hold^2 / V_a``.

How the twin integrates it, exactly rather than step by step: on the pulse plateau ``V`` is
constant. While the transistor is in its linear region the current is small and the time spent
there is a per-cell quadrature over ``V_ds`` (16-point Gauss-Legendre in ``ln V_ds``). Once it
saturates, ``I = I_sat0 (1 + lambda V_ds)`` ties ``G + g_p = a_i / V_f - b_i`` with
``b_i / a_i = lambda / (1 + lambda V)`` the same for every cell, so
``dt = -Q_i dV_f / (V_f^2 (1 - c V_f) h(V_f))``: the antiderivative ``Phi(V_f)`` is one table
for the whole array, and each cell's final ``V_f`` is ``Phi^-1(Phi(V_start) + t / Q_i)``.
The edges of the pulse enter the damage exactly (ramp integrals; a cell may break down on
either edge). Growth on the falling edge is the one approximation: a saturated cell keeps
growing at its plateau rate while the transistor stays saturated, a cell still in its initial
exponential growth grows at ``V(t) h(V(t)) / Q``; growth on the rising edge is left out.
Measured against ngspice and against a direct ODE solve (tests/models/test_breakdown.py): below
0.01 % for pulses of 3 us and longer with 10 ns edges, ~0.7 % for cells still growing at the end
of a 1 us pulse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_int, check_range
from ..errors import ConfigError
from ..params import BreakdownParams, FormingConditions, MosfetSpec

__all__ = [
    "DEFAULT_CONDITIONS",
    "DEFAULT_PARAMS",
    "CellDraws",
    "CellValues",
    "FormingResult",
    "breakdown_time_s",
    "cell_values",
    "compliance_current_a",
    "differential_map",
    "draw_cells",
    "form_array",
    "form_cells",
    "gate_voltage_v",
    "growth_charge_v_s",
    "growth_h",
    "read_conductance",
    "sigma_vt_v",
]

DEFAULT_PARAMS = BreakdownParams()
DEFAULT_CONDITIONS = FormingConditions()

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)
_PHI_POINTS = 6001
_PHI_FLOOR_V = 1e-12  # closest approach to V_hold tabulated; beyond it Phi is extrapolated
_CHUNK = 65536  # cells per block of the linear-phase quadrature (bounded memory)


# --------------------------------------------------------------------------------------------
# Per-cell randomness


@dataclass(frozen=True)
class CellDraws:
    """Standard random variates of each cell, independent of the parameters.

    Keeping draws and parameters apart gives common random numbers: a fit varies parameters
    over the same cells, and SPICE and the twin receive the same cells.

    Attributes
    ----------
    u_bd : numpy.ndarray
        Uniform (0, 1): the Weibull quantile of the cell's breakdown damage threshold.
    z_vt : numpy.ndarray
        Standard normal: the select transistor's threshold offset in units of sigma(Vt).
    z_growth : numpy.ndarray
        Standard normal: the filament growth time constant in units of ``sigma_ln_tau``.
    """

    u_bd: np.ndarray
    z_vt: np.ndarray
    z_growth: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.u_bd.shape)

    def take(self, flat_index: np.ndarray) -> CellDraws:
        """The draws of the cells at ``flat_index`` (indices into the flattened array)."""
        idx = np.asarray(flat_index, dtype=np.int64)
        return CellDraws(self.u_bd.ravel()[idx], self.z_vt.ravel()[idx],
                         self.z_growth.ravel()[idx])


def draw_cells(shape: tuple[int, ...], rng: np.random.Generator) -> CellDraws:
    """Draw the random variates of an array of cells.

    Parameters
    ----------
    shape : tuple of int
        Array shape, e.g. ``(rows, cols)``.
    rng : numpy.random.Generator
        The only source of randomness; the same seed gives the same cells.

    Returns
    -------
    CellDraws
        Three arrays of ``shape``, drawn in a fixed order (u_bd, z_vt, z_growth).
    """
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"'rng' must be a numpy.random.Generator (np.random.default_rng(seed))."
                          f" Got {type(rng).__name__}.")
    shape = tuple(int(s) for s in shape)
    for k, s in enumerate(shape):
        check_int("draw_cells", f"shape[{k}]", s, 1, 1 << 24)
    u = rng.random(shape)
    z_vt = rng.standard_normal(shape)
    z_g = rng.standard_normal(shape)
    return CellDraws(u, z_vt, z_g)


@dataclass(frozen=True)
class CellValues:
    """Per-cell physical values: what the SPICE cells receive, what the twin integrates.

    Attributes
    ----------
    w_damage : numpy.ndarray
        Breakdown damage threshold (dimensionless, Weibull with unit scale).
    dvt_v : numpy.ndarray
        Threshold-voltage offset of the select transistor, V.
    tau_growth_s : numpy.ndarray
        Filament growth time constant, s.
    """

    w_damage: np.ndarray
    dvt_v: np.ndarray
    tau_growth_s: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.w_damage.shape)


def sigma_vt_v(params: BreakdownParams, mosfet: MosfetSpec) -> float:
    """Pelgrom threshold mismatch of the select transistor, ``a_vt / sqrt(W L)``, in V."""
    area_um2 = (mosfet.w_m * 1e6) * (mosfet.l_m * 1e6)
    return params.a_vt_mv_um * 1e-3 / np.sqrt(area_um2)


def cell_values(draws: CellDraws, params: BreakdownParams, mosfet: MosfetSpec) -> CellValues:
    """Turn standard draws into per-cell physical values for ``params`` and ``mosfet``."""
    u = np.clip(draws.u_bd, 0.0, 1.0 - 1e-16)
    w = (-np.log1p(-u)) ** (1.0 / params.weibull_beta)
    dvt = sigma_vt_v(params, mosfet) * draws.z_vt
    tau = params.tau_growth_s * np.exp(params.sigma_ln_tau * draws.z_growth)
    return CellValues(w, dvt, tau)


# --------------------------------------------------------------------------------------------
# Compliance


def _beta_a_per_v2(mosfet: MosfetSpec) -> float:
    return mosfet.kp_a_per_v2 * mosfet.w_m / mosfet.l_m


def gate_voltage_v(params: BreakdownParams, cond: FormingConditions) -> float:
    """Gate voltage of the forming operation, V.

    ``cond.v_gate_v`` if given; else the voltage at which the nominal transistor (no mismatch)
    carries ``cond.i_cc_a`` in saturation at ``V_ds = v_form - v_hold``.
    """
    if cond.v_gate_v is not None:
        return float(cond.v_gate_v)
    m = cond.mosfet
    vds = cond.v_form_v - params.v_hold_v
    vov = np.sqrt(2.0 * float(cond.i_cc_a) / (_beta_a_per_v2(m) * (1.0 + m.lambda_per_v * vds)))
    return float(m.vto_v + vov)


def compliance_current_a(params: BreakdownParams, cond: FormingConditions) -> float:
    """Nominal compliance current, A: the saturation current at ``V_ds = v_form - v_hold``."""
    m = cond.mosfet
    vov = gate_voltage_v(params, cond) - m.vto_v
    vds = cond.v_form_v - params.v_hold_v
    return float(0.5 * _beta_a_per_v2(m) * vov**2 * (1.0 + m.lambda_per_v * vds))


def _check_compliance_acts(params: BreakdownParams, cond: FormingConditions) -> None:
    """The transistor must saturate before the filament voltage falls to V_hold."""
    vov = gate_voltage_v(params, cond) - cond.mosfet.vto_v
    room = cond.v_form_v - params.v_hold_v
    if vov >= room:
        raise ConfigError(
            f"The forming voltage v_form_v={cond.v_form_v:g} V leaves "
            f"{room:g} V above v_hold_v={params.v_hold_v:g} V, not more than the select "
            f"transistor's overdrive {vov:.3g} V: the compliance cannot act. Raise v_form_v "
            f"above {params.v_hold_v + vov:.3g} V or lower the compliance (i_cc_a or v_gate_v).")


# --------------------------------------------------------------------------------------------
# Growth law


def growth_h(v_f: np.ndarray | float, params: BreakdownParams) -> np.ndarray:
    """Dimensionless growth drive ``h(V_f)``: 0 at and below ``v_hold``, capped near the top."""
    x = np.maximum(np.expm1((np.asarray(v_f, dtype=np.float64) - params.v_hold_v)
                            / params.v_growth_v), 0.0)
    return x / (1.0 + x / params.growth_rate_max)


def growth_charge_v_s(tau_s: np.ndarray | float, params: BreakdownParams) -> np.ndarray:
    """``Q = tau V_hold^2 / V_a`` (V s): with it, ``tau`` is the time constant of the final
    approach to ``I / V_hold`` behind an ideal current source."""
    return np.asarray(tau_s, dtype=np.float64) * params.v_hold_v**2 / params.v_growth_v


def _phi_table(params: BreakdownParams, c: float, v_top: float
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """``Phi(y) = int_{V(y)}^{v_top} dv / (v^2 (1 - c v) h(v))`` on ``y = ln(V - V_hold)``.

    Returns the y grid (increasing), Phi on it (decreasing) and the slope ``-dPhi/dy`` as
    ``y -> -inf`` (where ``h ~ (V - V_hold) / V_a``), used to extrapolate below the grid.
    """
    vh = params.v_hold_v
    y = np.linspace(np.log(_PHI_FLOOR_V), np.log(v_top - vh), _PHI_POINTS)
    e = np.exp(y)
    v = vh + e
    # h(v) / (v - vh) in closed form keeps precision near v_hold
    x = np.expm1(e / params.v_growth_v)
    f = e / (v * v * (1.0 - c * v) * (x / (1.0 + x / params.growth_rate_max)))
    # cumulative Simpson (ends and midpoint of each interval): the integrand is smooth in y
    dy = y[1] - y[0]
    mid_v = vh + np.exp(0.5 * (y[1:] + y[:-1]))
    xm = np.expm1((mid_v - vh) / params.v_growth_v)
    fm = (mid_v - vh) / (mid_v * mid_v * (1.0 - c * mid_v)
                         * (xm / (1.0 + xm / params.growth_rate_max)))
    seg = (f[1:] + 4.0 * fm + f[:-1]) * dy / 6.0
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    phi = cum[-1] - cum
    slope = params.v_growth_v / (vh * vh * (1.0 - c * vh))
    return y, phi, slope


# --------------------------------------------------------------------------------------------
# Forming


@dataclass(frozen=True)
class FormingResult:
    """The outcome of forming an array.

    Attributes
    ----------
    g_us : numpy.ndarray
        Conductance after the pulse, uS (pristine leakage included; unformed cells read
        ``g_pristine_us``).
    formed : numpy.ndarray of bool
        True where the cell broke down during the pulse.
    t_bd_s : numpy.ndarray
        Breakdown time from the start of the pulse, s (inf: no breakdown during the pulse).
    i_sat_a : numpy.ndarray
        Each cell's saturation (compliance) current at ``V_ds = v_form - v_hold``, A.
    v_gate_v : float
        Gate voltage of the operation, V.
    i_cc_a : float
        Nominal compliance current, A.
    """

    g_us: np.ndarray
    formed: np.ndarray
    t_bd_s: np.ndarray
    i_sat_a: np.ndarray
    v_gate_v: float
    i_cc_a: float

    @property
    def n_unformed(self) -> int:
        return int(np.count_nonzero(~self.formed))


def breakdown_time_s(w_damage: np.ndarray, params: BreakdownParams,
                     cond: FormingConditions) -> np.ndarray:
    """Time (s from the pulse start) at which the damage reaches ``w_damage``; inf if it does
    not before the pulse has fallen. ``V_cell = V(t)`` before breakdown (module docstring);
    the damage on the linear edges is integrated in closed form."""
    g, te, v = params.gamma_per_v, cond.t_edge_s, cond.v_form_v
    rate = np.exp(g * (v - params.v_ref_v)) / params.t63_ref_s  # 1/s on the plateau
    gv = g * v
    # damage collected on one edge: int_0^te exp(g (v t / te - v_ref)) / t63 dt
    scale = te * np.exp(-g * params.v_ref_v) / params.t63_ref_s
    d_edge = scale * (np.expm1(gv) / gv if gv > 0 else 1.0)
    d_plateau = d_edge + rate * cond.t_pulse_s
    t2 = te + cond.t_pulse_s
    w = np.asarray(w_damage, dtype=np.float64)
    t = np.full_like(w, np.inf)
    rise = w <= d_edge
    plateau = ~rise & (w <= d_plateau)
    fall = (w > d_plateau) & (w < d_plateau + d_edge)
    if gv > 0:
        t[rise] = te / gv * np.log1p(w[rise] * gv / scale)
        t[fall] = t2 - te / gv * np.log1p(-(w[fall] - d_plateau) * gv / (scale * np.exp(gv)))
    else:
        t[rise] = w[rise] / scale * te
        t[fall] = t2 + (w[fall] - d_plateau) / scale * te
    t[plateau] = te + (w[plateau] - d_edge) / rate
    return t


def _linear_phase(vov: np.ndarray, q: np.ndarray, v: float, beta: float, lam: float,
                  params: BreakdownParams) -> np.ndarray:
    """Time each cell spends growing with its transistor in the linear region, s."""
    gp = params.g_pristine_us * 1e-6
    out = np.empty_like(vov)
    for lo in range(0, vov.size, _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        vo, qq = vov[sl, None], q[sl, None]
        vds0 = gp * v / (beta * vo + gp)  # where (g_p + 0) carries the linear current
        s0, s1 = np.log(vds0), np.log(vo)
        s = 0.5 * (s1 - s0) * _GL_NODES + 0.5 * (s1 + s0)
        vds = np.exp(s)
        dln_g = (-1.0 / (2.0 * vo - vds) + 1.0 / vds + lam / (1.0 + lam * vds)
                 + 1.0 / (v - vds))
        vf = v - vds
        integrand = qq * vds * dln_g / (vf * growth_h(vf, params))
        # a compliance below the pristine leakage saturates the transistor at once
        out[sl] = np.where(s1[:, 0] > s0[:, 0],
                           0.5 * (s1 - s0)[:, 0] * (integrand @ _GL_WEIGHTS), 0.0)
    return out


def _inside_linear_phase(vov: np.ndarray, q: np.ndarray, t_avail: np.ndarray, v: float,
                         beta: float, lam: float, params: BreakdownParams) -> np.ndarray:
    """Total conductance (S) of cells whose pulse ended before their transistor saturated."""
    gp = params.g_pristine_us * 1e-6
    n = 257
    vo, qq, ta = vov[:, None], q[:, None], t_avail[:, None]
    vds0 = gp * v / (beta * vo + gp)
    s = np.log(vds0) + (np.log(vo) - np.log(vds0)) * np.linspace(0.0, 1.0, n)[None, :]
    vds = np.exp(s)
    dln_g = (-1.0 / (2.0 * vo - vds) + 1.0 / vds + lam / (1.0 + lam * vds) + 1.0 / (v - vds))
    dt_ds = qq * vds * dln_g / ((v - vds) * growth_h(v - vds, params))
    cum = np.concatenate([np.zeros((len(vov), 1)),
                          np.cumsum(0.5 * (dt_ds[:, 1:] + dt_ds[:, :-1]) * np.diff(s, axis=1),
                                    axis=1)], axis=1)
    k = np.clip(np.argmax(cum >= ta, axis=1), 1, n - 1)
    rows = np.arange(len(vov))
    c0, c1 = cum[rows, k - 1], cum[rows, k]
    frac = np.clip((t_avail - c0) / np.maximum(c1 - c0, 1e-300), 0.0, 1.0)
    vd = np.exp(s[rows, k - 1] + frac * (s[rows, k] - s[rows, k - 1]))
    i_lin = beta * (vov - 0.5 * vd) * vd * (1.0 + lam * vd)
    return np.maximum(i_lin / (v - vd), gp)


def _fall_equivalent_time(v_top: np.ndarray, v: float, t_edge_s: float,
                          params: BreakdownParams) -> np.ndarray:
    """Plateau time (at ``v``) equivalent to exponential growth on a falling edge from
    ``v_top`` to 0: ``t_edge / v * int_{V_hold}^{v_top} u h(u) du / (v h(v))``."""
    u = np.linspace(params.v_hold_v, v, 2001)
    f = u * growth_h(u, params)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(u))])
    h_v = float(growth_h(v, params))
    if h_v <= 0:
        return np.zeros_like(v_top)
    return t_edge_s / v * np.interp(v_top, u, cum) / (v * h_v)


def _grow(vo: np.ndarray, q: np.ndarray, t_grow: np.ndarray, t_lin: np.ndarray,
          table: tuple[np.ndarray, np.ndarray, float], v: float, beta: float, lam: float,
          params: BreakdownParams) -> tuple[np.ndarray, np.ndarray]:
    """Total conductance (S) and filament voltage (V) after growing ``t_grow`` s at ``v``."""
    g_cell = np.empty(vo.size)
    vf = np.empty(vo.size)
    sat = t_grow > t_lin
    if np.any(~sat):
        g_cell[~sat] = _inside_linear_phase(vo[~sat], q[~sat], t_grow[~sat], v, beta, lam,
                                            params)
        vf[~sat] = v  # still near the full pulse voltage (only used to size the fall)
    if np.any(sat):
        y, phi, slope = table
        vs = np.maximum(v - vo[sat], params.v_hold_v + _PHI_FLOOR_V)
        ys = np.log(vs - params.v_hold_v)
        # Phi decreases in y: interpolate on the reversed arrays
        phi_start = np.interp(-ys, -y[::-1], phi[::-1])
        target = phi_start + (t_grow[sat] - t_lin[sat]) / q[sat]
        ye = np.where(target > phi[0], y[0] - (target - phi[0]) / slope,
                      np.interp(target, phi[::-1], y[::-1]))
        vf[sat] = params.v_hold_v + np.exp(ye)
        isat0 = 0.5 * beta * vo[sat] ** 2
        g_cell[sat] = isat0 * (1.0 + lam * v) / vf[sat] - lam * isat0
    return g_cell, vf


def form_cells(values: CellValues, params: BreakdownParams,
               cond: FormingConditions) -> FormingResult:
    """Form cells with given per-cell values (the twin of the SPICE forming deck).

    Parameters
    ----------
    values : CellValues
        Per-cell values from :func:`cell_values`; any shape.
    params : BreakdownParams
        The compact model.
    cond : FormingConditions
        The pulse and the compliance; ``cond.mosfet`` must be a level-1 description (its
        ``vto_v``, ``kp_a_per_v2``, ``lambda_per_v``, W and L are used).

    Returns
    -------
    FormingResult
        Arrays of ``values.shape``.
    """
    _check_compliance_acts(params, cond)
    m = cond.mosfet
    beta, lam, v = _beta_a_per_v2(m), m.lambda_per_v, cond.v_form_v
    shape = values.shape
    v_gate = gate_voltage_v(params, cond)
    vov = (v_gate - m.vto_v - values.dvt_v).ravel()
    i_sat = np.where(vov > 0, 0.5 * beta * np.maximum(vov, 0) ** 2
                     * (1.0 + lam * (v - params.v_hold_v)), 0.0)
    t_bd = breakdown_time_s(values.w_damage.ravel(), params, cond)
    t_bd[vov <= 0] = np.inf  # a cell whose transistor is off sees no voltage: no breakdown
    formed = np.isfinite(t_bd)
    gp = params.g_pristine_us * 1e-6
    g_s = np.full(vov.shape, gp)

    idx = np.flatnonzero(formed)
    if idx.size:
        vo = vov[idx]
        q = growth_charge_v_s(values.tau_growth_s.ravel()[idx], params)
        t1, t2 = cond.t_edge_s, cond.t_edge_s + cond.t_pulse_s
        tb = t_bd[idx]
        t_lin = _linear_phase(vo, q, v, beta, lam, params)
        table = _phi_table(params, lam / (1.0 + lam * v), v)
        # plateau, then the falling edge. A saturated cell keeps its filament voltage, and so
        # its growth rate, while V(t) stays above V_f + Vov: the edge adds that part,
        # t_edge (V - V_f - Vov) / V, to its plateau time. A cell still in its initial
        # exponential growth (linear-region transistor, V_f ~ V(t)) grows at V(t) h(V(t)) / Q:
        # the edge adds the plateau-equivalent time of that integral.
        t_grow = np.maximum(t2 - np.maximum(tb, t1), 0.0)
        g_cell, vf = _grow(vo, q, t_grow, t_lin, table, v, beta, lam, params)
        v_top = np.where(tb > t2, v * (1.0 - (tb - t2) / cond.t_edge_s), v)
        t_extra = np.where(
            vf < v,
            cond.t_edge_s * np.maximum(np.minimum(v_top - vf, v_top - params.v_hold_v) - vo,
                                       0.0) / v,
            _fall_equivalent_time(v_top, v, cond.t_edge_s, params))
        grew = t_extra > 0
        if np.any(grew):
            g_cell[grew], _ = _grow(vo[grew], q[grew], t_grow[grew] + t_extra[grew],
                                    t_lin[grew], table, v, beta, lam, params)
        g_s[idx] = np.maximum(g_cell, gp)  # the filament only grows: G + g_p >= g_p
    return FormingResult(g_us=(g_s * 1e6).reshape(shape), formed=formed.reshape(shape),
                         t_bd_s=t_bd.reshape(shape), i_sat_a=i_sat.reshape(shape),
                         v_gate_v=v_gate, i_cc_a=compliance_current_a(params, cond))


def form_array(shape: tuple[int, int], rng: np.random.Generator,
               params: BreakdownParams = DEFAULT_PARAMS,
               cond: FormingConditions = DEFAULT_CONDITIONS) -> FormingResult:
    """Draw an array of cells and form it: ``form_cells(cell_values(draw_cells(...)))``."""
    draws = draw_cells(shape, rng)
    return form_cells(cell_values(draws, params, cond.mosfet), params, cond)


# --------------------------------------------------------------------------------------------
# Maps and reads


def differential_map(g_us: np.ndarray) -> np.ndarray:
    """Weights ``G+ - G-`` (uS) pairing physical columns as the tile does: 2k is G+, 2k+1 G-.

    Parameters
    ----------
    g_us : numpy.ndarray, shape (rows, cols)
        Conductance map; ``cols`` must be even.

    Returns
    -------
    numpy.ndarray, shape (rows, cols // 2)
    """
    g = np.asarray(g_us, dtype=np.float64)
    if g.ndim != 2 or g.shape[1] % 2:
        raise ConfigError(f"A differential map needs a 2-D map with an even number of columns "
                          f"(G+ on column 2k, G- on 2k+1). Got shape {g.shape}.")
    return g[:, 0::2] - g[:, 1::2]


def read_conductance(g_us: np.ndarray, rng: np.random.Generator,
                     params: BreakdownParams = DEFAULT_PARAMS, *, n_reads: int = 1,
                     t_between_reads_s: float = 1e-6,
                     rtn_cells: np.ndarray | None = None) -> np.ndarray:
    """Conductance seen by ``n_reads`` successive reads, uS.

    Each read adds Gaussian noise ``read_noise_sigma_us``. Cells in ``rtn_cells`` (a boolean
    mask; default: a random ``rtn_fraction`` of cells) also carry a two-state trap that lowers
    G by ``rtn_amplitude_rel`` while occupied; it switches between reads with probability
    ``1 - exp(-t_between_reads_s / rtn_dwell_s)`` and starts in a random state. The filament
    is ohmic: the read conductance does not depend on the read voltage.

    Parameters
    ----------
    g_us : numpy.ndarray
        Formed conductances, uS, any shape.
    rng : numpy.random.Generator
        Source of the read noise.
    params : BreakdownParams
        Read-noise parameters.
    n_reads : int
        Number of successive reads.
    t_between_reads_s : float
        Time between reads, s (sets the telegraph switching probability).
    rtn_cells : numpy.ndarray of bool, optional
        Cells with a trap (shape of ``g_us``).

    Returns
    -------
    numpy.ndarray, shape (n_reads, *g_us.shape)
        Non-negative read conductances.
    """
    check_int("read_conductance", "n_reads", n_reads, 1, 1_000_000)
    check_range("read_conductance", "t_between_reads_s", t_between_reads_s, 0, None,
                lo_open=True, unit="s")
    g = np.asarray(g_us, dtype=np.float64)
    noise = rng.normal(0.0, params.read_noise_sigma_us, size=(n_reads, *g.shape)) \
        if params.read_noise_sigma_us > 0 else np.zeros((n_reads, *g.shape))
    out = g[None] + noise
    if rtn_cells is None:
        rtn_cells = rng.random(g.shape) < params.rtn_fraction
    rtn_cells = np.asarray(rtn_cells, dtype=bool)
    if rtn_cells.shape != g.shape:
        raise ConfigError(f"'rtn_cells' must have the map's shape {g.shape}. "
                          f"Got {rtn_cells.shape}.")
    if np.any(rtn_cells):
        p_switch = -np.expm1(-t_between_reads_s / params.rtn_dwell_s)
        state = rng.random(g.shape) < 0.5
        for k in range(n_reads):  # a Markov chain in time; vectorised over cells
            if k:
                state ^= rng.random(g.shape) < p_switch
            out[k] -= np.where(rtn_cells & state, params.rtn_amplitude_rel * g, 0.0)
    return np.maximum(out, 0.0)
