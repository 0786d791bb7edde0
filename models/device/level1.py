"""ngspice's level-1 (Shichman-Hodges) NMOS, mirrored line by line: one copy for every engine.

The nodal engine (:mod:`rram_cosim.cosim.engines.nodal`), the tile network solver
(:mod:`.tile_network`) and the surrogate's card model all read these equations, so a change
to the transistor lands everywhere at once. Sources: ngspice ``mos1temp.c`` (temperature
scaling) and ``mos1load.c`` (channel current), with gamma = 0 (no body effect) and LD = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# ngspice constants (src/include/ngspice/const.h, ngspice 39-41).
BOLTZ_J_PER_K = 1.38064852e-23  # CONSTboltz
CHARGE_C = 1.6021766208e-19  # CHARGE
CTOK = 273.15  # CONSTCtoK
REFTEMP_K = 27.0 + CTOK  # REFTEMP; also ngspice's default TNOM and TEMP
PHI_V = 0.6  # ngspice level-1 default PHI (mos1set.c); our card does not set it


@dataclass(frozen=True)
class Level1AtTemperature:
    """Temperature-adjusted quantities of ``MOS1temp``.

    ``beta_a_per_v2 = KP(T) W / L`` with ``KP(T) = KP (T / TNOM)^-1.5``; ``vth_v`` is ``tVbi``
    (VTO plus the band-gap and PHI shifts, zero at ``T = TNOM``); ``is_a`` the junction
    saturation current ``IS(T)``; ``vt_v = k T / q``.
    """

    beta_a_per_v2: float
    vth_v: float
    is_a: float
    vt_v: float


def level1_at_temperature(vto_v: float, kp_a_per_v2: float, w_m: float, l_m: float,
                          is_a: float, tnom_c: float, temperature_c: float
                          ) -> Level1AtTemperature:
    """ngspice ``MOS1temp`` for an NMOS with gamma = 0, LD = 0 and the default PHI."""
    k, q = BOLTZ_J_PER_K, CHARGE_C
    tnom = tnom_c + CTOK
    temp = temperature_c + CTOK
    fact1 = tnom / REFTEMP_K
    vtnom = tnom * k / q
    egfet1 = 1.16 - (7.02e-4 * tnom * tnom) / (tnom + 1108.0)
    arg1 = -egfet1 / (2.0 * k * tnom) + 1.1150877 / (k * 2.0 * REFTEMP_K)
    pbfact1 = -2.0 * vtnom * (1.5 * math.log(fact1) + q * arg1)
    vt = temp * k / q
    ratio = temp / tnom
    fact2 = temp / REFTEMP_K
    egfet = 1.16 - (7.02e-4 * temp * temp) / (temp + 1108.0)
    arg = -egfet / (2.0 * k * temp) + 1.1150877 / (k * 2.0 * REFTEMP_K)
    pbfact = -2.0 * vt * (1.5 * math.log(fact2) + q * arg)
    phio = (PHI_V - pbfact1) / fact1
    t_phi = fact2 * phio + pbfact
    t_vbi = vto_v + 0.5 * (egfet1 - egfet) + 0.5 * (t_phi - PHI_V)
    t_kp = kp_a_per_v2 / (ratio * math.sqrt(ratio))
    t_is = is_a * math.exp(-egfet / vt + egfet1 / vtnom)
    return Level1AtTemperature(beta_a_per_v2=t_kp * w_m / l_m, vth_v=t_vbi, is_a=t_is, vt_v=vt)


def level1_channel(vd: np.ndarray, vs: np.ndarray, v_gate_v: float, vth_v: float,
                   beta_a_per_v2: float, lambda_per_v: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channel current drain -> source (A) and its derivatives w.r.t. vd and vs (S).

    ngspice ``mos1load.c`` with gamma = 0: terminals swap when ``vds < 0`` (``vgs -> vgd``,
    ``vds -> -vds``); ``vgst = vgs - VTH``; cutoff if ``vgst <= 0``;
    ``betap = beta (1 + lambda vds)``; saturation if ``vgst <= vds``:
    ``id = betap vgst^2 / 2``, ``gm = betap vgst``, ``gds = lambda beta vgst^2 / 2``; otherwise
    linear: ``id = betap vds (vgst - vds/2)``, ``gm = betap vds``,
    ``gds = betap (vgst - vds) + lambda beta vds (vgst - vds/2)``.
    """
    vds = vd - vs
    normal = vds >= 0.0
    vdse = np.abs(vds)
    # vgst clamped at 0 lands in the saturation branch with zero current and conductances,
    # which is exactly ngspice's cutoff branch.
    vgst = np.maximum(v_gate_v - np.where(normal, vs, vd) - vth_v, 0.0)
    sat = vgst <= vdse
    beta, lam = beta_a_per_v2, lambda_per_v
    betap = beta * (1.0 + lam * vdse)
    vlin = np.where(sat, vgst, vdse)  # vds in the linear region, vgst in saturation
    core = np.where(sat, 0.5 * vgst, vgst - 0.5 * vdse)  # id = betap * vlin * core
    cd = betap * vlin * core
    gm = betap * vlin
    gds = np.where(sat, 0.5 * lam * beta * vgst * vgst,
                   betap * (vgst - vdse) + lam * beta * vdse * core)
    ids = np.where(normal, cd, -cd)
    d_vd = np.where(normal, gds, gm + gds)
    d_vs = np.where(normal, -(gm + gds), -gds)
    return ids, d_vd, d_vs
