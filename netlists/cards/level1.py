"""The level-1 (Shichman-Hodges) access-transistor card, written from :class:`MosfetSpec`.

The card and :func:`level1_params` read the same fields, so the ngspice deck and the nodal
engine use one set of numbers. ngspice's level-1 drain current with these parameters
(``gamma = 0``, so no body effect; ``ld = 0``, so ``L_eff = L``) is, for ``Vds >= 0``::

    Vov = Vgs - vto
    Id  = 0                                              Vov <= 0
    Id  = beta * (Vov - Vds / 2) * Vds * (1 + lambda Vds)    0 < Vds < Vov
    Id  = beta / 2 * Vov**2 * (1 + lambda Vds)               Vds >= Vov

with ``beta = kp * W / L`` (A/V^2); drain and source swap when ``Vds < 0``. The bulk junctions
have ``is = 0``, so the only junction current left is ngspice's ``gmin`` (1e-12 S by default)
from drain and source to bulk: below 1e-6 of a cell current at read voltages; the nodal
engine mirrors it anyway. Temperatures other than ``tnom = 27 degC`` make ngspice scale ``kp``
and the threshold; the nodal engine mirrors that scaling too (checked at -40 and 85 degC).
"""

from __future__ import annotations

from ...models.params import MosfetSpec

LEVEL1_MODEL: str = "nacc_l1"
"""Model name of the generated level-1 card."""


def level1_params(spec: MosfetSpec) -> dict[str, float]:
    """Level-1 model parameters (ngspice names, SI units) written into the card.

    Parameters
    ----------
    spec : MosfetSpec
        The access transistor.

    Returns
    -------
    dict of str to float
        ``vto`` (V), ``kp`` (A/V^2), ``lambda`` (1/V), ``gamma`` (sqrt(V), 0: no body effect),
        ``is`` (A, 0: no junction current beyond gmin), ``tnom`` (degC).
    """
    return {
        "vto": float(spec.vto_v),
        "kp": float(spec.kp_a_per_v2),
        "lambda": float(spec.lambda_per_v),
        "gamma": 0.0,
        "is": 0.0,
        "tnom": 27.0,
    }


def level1_card(spec: MosfetSpec, model_name: str = LEVEL1_MODEL) -> str:
    """The ``.model`` line of the level-1 NMOS card (no trailing newline).

    Parameters
    ----------
    spec : MosfetSpec
        The access transistor; W and L go on the instance lines, not here.
    model_name : str
        Name of the model in the deck.

    Returns
    -------
    str
        E.g. ``.model nacc_l1 nmos (level=1 vto=0.47 kp=0.0004 lambda=0.1 gamma=0.0 ...)``.
    """
    fields = " ".join(f"{k}={v!r}" for k, v in level1_params(spec).items())
    return f".model {model_name} nmos (level=1 {fields})"
