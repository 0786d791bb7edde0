"""The deck type every netlist builder returns: text plus what a runner and reader need."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Deck:
    """An ngspice deck.

    Attributes
    ----------
    text : str
        The complete netlist, deterministic for the same inputs (golden-file testable).
    node_map : Mapping[str, str]
        Meaningful names (e.g. ``"tia_out[3]"``) to ngspice vector names (e.g. ``"v(o3p)"``),
        lower case as ngspice writes them.
    analysis : str
        The analysis the deck runs (``"op"``, ``"dc"``, ``"tran"``), for the raw-file reader.
    includes : tuple of str
        Absolute paths of files the deck includes (model cards); part of the hash.
    """

    text: str
    node_map: Mapping[str, str] = field(default_factory=dict)
    analysis: str = "op"
    includes: tuple[str, ...] = ()

    @property
    def sha256(self) -> str:
        """Content hash of the deck text and its included files: the run's identity."""
        h = hashlib.sha256(self.text.encode())
        for path in self.includes:
            with open(path, "rb") as f:
                h.update(f.read())
        return h.hexdigest()
