"""The 1T1R forming testbench deck: breakdown cells with state variables, a real NMOS card.

Every cell of the deck is an independent copy of::

    te --[RRAM k]-- m{k} --[NMOS k: gate g{k}, source 0, bulk 0]-- 0

driven by one trapezoidal pulse source ``vte`` (0 -> ``v_form_v`` in ``t_edge_s``, held for
``t_pulse_s``, back to 0 in ``t_edge_s``). Cell ``k`` receives its own random values as numbers
in the text (drawn once in Python, :mod:`rram_cosim.models.device.breakdown`; an ``agauss`` in the deck
would draw new values on every run): its gate voltage ``v_gate - dVt_k`` (a threshold offset is
a gate offset for a transistor whose source and bulk sit at 0, exact for level 1 with
``gamma = 0``), its damage threshold ``w_k`` and its growth charge ``Q_k``.

State variables live on 1 F capacitors driven by behavioural current sources (node voltage =
state; the B-source current = its time derivative):

=============  ==========================================================================
``xd{k}``      breakdown damage D (dimensionless): ``dD/dt = exp(gamma (V_cell - v_ref)) / t63``
``xg{k}``      filament conductance G in uS: ``dG/dt = [D >= w_k] I h(V_cell) / Q_k``
=============  ==========================================================================

with ``I = (g_pristine + G) V_cell`` the RRAM current (the B-source ``brr{k}``) and ``h`` the
capped growth drive of :class:`~rram_cosim.models.params.BreakdownParams`. A 1e15 ohm resistor
gives each state node the DC path ngspice's operating point needs (its leak, 1e-15 of the state
per second, is negligible).

Numerics (measured on ngspice 39, details in docs/device.md): the state nodes need initial
conditions (``.ic v(x..)=0``), or the operating point integrates the rate sources to absurd
values. Right after breakdown the growth is the stiffest part of the transient; without the
growth cap of the model, reltol 1e-3 or a 1 ns step made the trapezoidal rule ring and gave
silently wrong (even negative) conductances. With the cap, reltol 1e-4 and 1e-6, largest steps
of 1, 10 and 100 ns and methods trap and gear all agree with the numpy twin to better than
0.08 %; the deck uses ``reltol = 1e-6`` (about 60 % more time points than 1e-4, for margin) and
a largest step of ``t_step_s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..models.checks import check_range
from ..models.device.breakdown import CellValues, gate_voltage_v, growth_charge_v_s
from ..models.errors import ConfigError
from ..models.params import BreakdownParams, FormingConditions
from .deck import Deck
from .mosfet import mosfet_card, mosfet_instance

__all__ = ["DEFAULT_TOLERANCES", "FormingTolerances", "compliance_deck", "forming_deck",
           "pulse_times_s"]

_R_STATE_OHM = 1e15  # DC path of the state nodes; leak 1e-15 of the state per second


@dataclass(frozen=True)
class FormingTolerances:
    """Transient settings of the forming deck (see module docstring for why these values)."""

    reltol: float = 1e-6  # 1e-3 gave silently wrong G; 1e-4..1e-6 agree to 1e-4
    abstol_a: float = 1e-12  # ngspice default; cell currents are microamperes
    vntol_v: float = 1e-9  # states are volts of O(1..100): 1e-9 V is far below any change
    max_step_factor: float = 1.0  # largest step = factor * t_step_s

    def __post_init__(self) -> None:
        o = "FormingTolerances"
        check_range(o, "reltol", self.reltol, 1e-12, 1e-4, unit="",
                    hint="Looser than 1e-4 gave silently wrong forming transients.")
        check_range(o, "abstol_a", self.abstol_a, 1e-20, 1e-6, unit="A")
        check_range(o, "vntol_v", self.vntol_v, 1e-15, 1e-3, unit="V")
        check_range(o, "max_step_factor", self.max_step_factor, 1e-3, 1.0)



DEFAULT_TOLERANCES = FormingTolerances()


def pulse_times_s(cond: FormingConditions) -> tuple[float, float, float, float]:
    """Corners of the trapezoidal pulse: start of plateau, end of plateau, end of fall, stop."""
    t1 = cond.t_edge_s
    t2 = t1 + cond.t_pulse_s
    t3 = t2 + cond.t_edge_s
    return t1, t2, t3, t3 + cond.t_edge_s  # one edge of settling after the fall


def _num(x: float) -> str:
    return repr(float(x))


def forming_deck(values: CellValues, params: BreakdownParams, cond: FormingConditions, *,
                 tolerances: FormingTolerances = DEFAULT_TOLERANCES,
                 title: str = "rram-cosim 1T1R forming testbench") -> Deck:
    """The forming testbench for a few cells.

    Parameters
    ----------
    values : CellValues
        Per-cell values, 1-D arrays of length N (N independent cells in one deck).
    params : BreakdownParams
        The compact model (shared by the twin).
    cond : FormingConditions
        Pulse, compliance and the select transistor (``cond.mosfet``: level 1, ptm45 or
        custom card from :mod:`rram_cosim.netlists.mosfet`).
    tolerances : FormingTolerances
        Transient settings.
    title : str
        First line of the deck (one line, no newline).

    Returns
    -------
    Deck
        ``analysis="tran"``; ``node_map`` has ``"g_us[k]" -> "v(xg{k})"`` and
        ``"damage[k]" -> "v(xd{k})"``.
    """
    w = np.asarray(values.w_damage, dtype=np.float64)
    dvt = np.asarray(values.dvt_v, dtype=np.float64)
    tau = np.asarray(values.tau_growth_s, dtype=np.float64)
    if w.ndim != 1 or dvt.shape != w.shape or tau.shape != w.shape or w.size == 0:
        raise ConfigError(f"forming_deck needs 1-D per-cell values of one length N >= 1. Got "
                          f"shapes {w.shape}, {dvt.shape}, {tau.shape}.")
    for name, arr in (("w_damage", w), ("dvt_v", dvt), ("tau_growth_s", tau)):
        if not np.all(np.isfinite(arr)):
            raise ConfigError(f"CellValues.{name} holds non-finite values; per-cell values "
                              "must be finite numbers.")
    if np.any(w < 0) or np.any(tau <= 0):
        raise ConfigError("CellValues.w_damage must be >= 0 and tau_growth_s > 0. Got "
                          f"min w {w.min():g}, min tau {tau.min():g} s.")
    if "\n" in title:
        raise ConfigError("The deck title must be a single line.")
    q = growth_charge_v_s(tau, params)
    v_gate = gate_voltage_v(params, cond)
    t1, t2, t3, t_stop = pulse_times_s(cond)
    card, includes = mosfet_card(cond.mosfet)
    p = params
    lines = [
        title,
        (f"* {w.size} independent 1T1R cells, pulse {cond.v_form_v!r} V for "
         f"{cond.t_pulse_s!r} s, nominal gate {v_gate!r} V"),
        card,
        (f"vte te 0 pwl(0 0 {_num(t1)} {_num(cond.v_form_v)} {_num(t2)} "
         f"{_num(cond.v_form_v)} {_num(t3)} 0)"),
        # growth drive h(V): 0 below v_hold, exp above, capped at growth_rate_max
        f".func hx(vf) {{max(exp((vf-{_num(p.v_hold_v)})/{_num(p.v_growth_v)})-1, 0)}}",
        f".func hgrow(vf) {{hx(vf)/(1+hx(vf)/{_num(p.growth_rate_max)})}}",
    ]
    saves, ics, node_map = [], [], {}
    gp = _num(p.g_pristine_us)
    for k in range(w.size):
        m, g, xd, xg = f"m{k}", f"g{k}", f"xd{k}", f"xg{k}"
        vc = f"v(te,{m})"
        lines += [
            f"* cell {k}: w={_num(w[k])} dvt={_num(dvt[k])} V tau={_num(tau[k])} s",
            f"vg{k} {g} 0 {_num(v_gate - dvt[k])}",
            mosfet_instance(f"mn{k}", m, g, "0", "0", cond.mosfet),
            f"brr{k} te {m} i = ({gp} + v({xg})) * 1e-6 * {vc}",
            (f"bd{k} 0 {xd} i = exp({_num(p.gamma_per_v)} * ({vc} - {_num(p.v_ref_v)})) / "
             f"{_num(p.t63_ref_s)}"),
            f"cd{k} {xd} 0 1",
            f"rd{k} {xd} 0 {_R_STATE_OHM!r}",
            (f"bg{k} 0 {xg} i = (v({xd}) >= {_num(w[k])} ? 1 : 0) * ({gp} + v({xg})) * {vc} "
             f"* hgrow({vc}) / {_num(q[k])}"),
            f"cg{k} {xg} 0 1",
            f"rg{k} {xg} 0 {_R_STATE_OHM!r}",
        ]
        ics += [f"v({xd})=0", f"v({xg})=0"]
        saves += [f"v({xg})", f"v({xd})"]
        node_map[f"g_us[{k}]"] = f"v({xg})"
        node_map[f"damage[{k}]"] = f"v({xd})"
    lines += _wrap(".ic", ics)
    t = tolerances
    lines += [
        f".options reltol={t.reltol!r} abstol={t.abstol_a!r} vntol={t.vntol_v!r}",
        (f".tran {_num(cond.t_step_s)} {_num(t_stop)} 0 "
         f"{_num(cond.t_step_s * t.max_step_factor)}"),
    ]
    lines += _wrap(".save", saves)
    lines.append(".end")
    return Deck(text="\n".join(lines) + "\n", node_map=node_map, analysis="tran",
                includes=includes)


def compliance_deck(params: BreakdownParams, cond: FormingConditions, *,
                    v_gate_max_v: float = 5.0, step_v: float = 5e-3) -> Deck:
    """DC sweep of the nominal select transistor's current against its gate voltage.

    The drain sits at ``v_form_v - v_hold_v``, the bias of a formed cell under compliance, so
    the sweep gives the compliance current of any card (BSIM, PDK) at each gate voltage; the
    gate for a target ``i_cc_a`` is read off it (:func:`rram_cosim.cosim.spice.forming.
    spice_gate_voltage_v`). ``node_map``: ``"i_drain"`` -> ``"i(vds)"`` (minus the drain
    current), ``"v_gate"`` -> ``"v(v-sweep)"``.
    """
    check_range("compliance_deck", "v_gate_max_v", v_gate_max_v, 0, 10, lo_open=True, unit="V")
    check_range("compliance_deck", "step_v", step_v, 1e-6, 0.1, unit="V")
    card, includes = mosfet_card(cond.mosfet)
    lines = [
        "rram-cosim select transistor compliance sweep",
        card,
        f"vds d 0 {_num(cond.v_form_v - params.v_hold_v)}",
        "vgs g 0 0",
        mosfet_instance("mn", "d", "g", "0", "0", cond.mosfet),
        ".options reltol=1e-6 abstol=1e-15",
        f".dc vgs 0 {_num(v_gate_max_v)} {_num(step_v)}",
        ".end",
    ]
    return Deck(text="\n".join(lines) + "\n", node_map={"i_drain": "i(vds)",
                                                        "v_gate": "v(v-sweep)"},
                analysis="dc", includes=includes)


def _wrap(head: str, items: Sequence[str], per_line: int = 8) -> list[str]:
    out = []
    for i in range(0, len(items), per_line):
        out.append(("+ " if i else head + " ") + " ".join(items[i:i + per_line]))
    return out
