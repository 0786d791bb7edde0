"""Default transistor cards for the 1T1R access device.

Two defaults ship with the package:

- ``level1``: a Shichman-Hodges card written from :class:`~rram_cosim.models.params.MosfetSpec`
  by :func:`level1_card`; :func:`level1_params` returns the same numbers so the nodal engine
  can mirror the card exactly.
- ``ptm45``: the published 45 nm PTM high-performance BSIM4 NMOS card (level 54), bundled as
  ``ptm45_nmos.lib`` (:data:`PTM45_NMOS_PATH`, model :data:`PTM45_NMOS_MODEL`); its header
  names the source.
"""

from __future__ import annotations

from pathlib import Path

from .level1 import LEVEL1_MODEL, level1_card, level1_params

PTM45_NMOS_PATH: Path = Path(__file__).resolve().with_name("ptm45_nmos.lib")
"""Absolute path of the bundled PTM 45 nm HP NMOS card."""

PTM45_NMOS_MODEL: str = "ptm45_nmos"
"""Model name defined in :data:`PTM45_NMOS_PATH`."""

__all__ = ["LEVEL1_MODEL", "PTM45_NMOS_MODEL", "PTM45_NMOS_PATH", "level1_card",
           "level1_params"]
