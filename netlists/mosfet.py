"""The access-transistor card and instance lines for a deck, chosen by ``MosfetSpec.card``.

- ``"level1"``: the generated Shichman-Hodges card (:mod:`rram_cosim.netlists.cards.level1`).
- ``"ptm45"``: ``.include`` of the bundled BSIM4 45 nm PTM card, model ``ptm45_nmos``.
- ``"custom"``: ``.include`` of the user's ``lib_path``, model ``model_name``. The file must
  define that NMOS model with a ``.model`` line (a ``.lib`` file with sections, or a
  subcircuit-wrapped device, needs a small wrapper file that does).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..models.errors import ConfigError
from ..models.params import MosfetSpec
from .cards import LEVEL1_MODEL, PTM45_NMOS_MODEL, PTM45_NMOS_PATH, level1_card


def mosfet_model_name(spec: MosfetSpec) -> str:
    """Name of the NMOS model the cell instances refer to."""
    if spec.card == "level1":
        return LEVEL1_MODEL
    if spec.card == "ptm45":
        return PTM45_NMOS_MODEL
    return str(spec.model_name).lower()


def _include_line(path: Path) -> str:
    if '"' in str(path):
        raise ConfigError(
            f"The 'lib_path' parameter of MosfetSpec must not contain a double quote. Got "
            f"{str(path)!r}. Rename the file or its folder."
        )
    return f'.include "{path}"'


def mosfet_card(spec: MosfetSpec) -> tuple[str, tuple[str, ...]]:
    """The model text for a deck and the files it includes.

    Parameters
    ----------
    spec : MosfetSpec
        The access transistor.

    Returns
    -------
    text : str
        A ``.model`` line (level 1) or an ``.include`` line (ptm45, custom), no trailing
        newline.
    includes : tuple of str
        Absolute paths of the included files (empty for level 1); they enter the deck hash.

    Raises
    ------
    ConfigError
        If a custom ``lib_path`` does not exist.
    """
    if spec.card == "level1":
        return level1_card(spec), ()
    if spec.card == "ptm45":
        return _include_line(PTM45_NMOS_PATH), (str(PTM45_NMOS_PATH),)
    path = Path(str(spec.lib_path)).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(
            f"The 'lib_path' parameter of MosfetSpec must name an existing model file. Got "
            f"{spec.lib_path!r} (resolved to {path}). Check the path to your PDK card."
        )
    check_nmos_card(path, str(spec.model_name))
    return _include_line(path), (str(path),)


_MODEL_RE = re.compile(r"^\s*\.model\s+(\S+)\s+([A-Za-z]\w*)", re.IGNORECASE)


def check_nmos_card(path: Path, model_name: str) -> None:
    """Raise :class:`ConfigError` unless the card at ``path`` defines ``model_name`` as an
    NMOS with a ``.model`` line: the access device is an n-channel transistor switched on by
    a high word line, so a PMOS (or a missing model) would give no cell current at all."""
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise ConfigError(f"Cannot read the transistor card {path}: {e.strerror or e}.") from e
    kinds = [m.group(2).lower() for line in text.splitlines()
             if (m := _MODEL_RE.match(line)) and m.group(1).lower() == model_name.lower()]
    if not kinds:
        raise ConfigError(
            f"The transistor card {path} has no '.model {model_name} nmos ...' line. The "
            "'model_name' parameter of MosfetSpec must name an NMOS model the file defines "
            "(wrap a .lib section or a subcircuit device in a file that does).")
    if any(k != "nmos" for k in kinds):
        raise ConfigError(
            f"The transistor card {path} defines '{model_name}' as {kinds[0].upper()}, but the "
            "access device of a 1T1R cell is an NMOS (a high word line switches it on); a "
            f"{kinds[0].upper()} would pass no cell current. Name an NMOS model "
            "('model_name').")


def mosfet_instance(name: str, drain: str, gate: str, source: str, bulk: str,
                    spec: MosfetSpec) -> str:
    """One NMOS instance line, e.g. ``mn0_1 m0_1 wl c0_1 0 nacc_l1 w=1.2e-07 l=4.5e-08``."""
    return (f"{name} {drain} {gate} {source} {bulk} {mosfet_model_name(spec)} "
            f"w={spec.w_m!r} l={spec.l_m!r}")
