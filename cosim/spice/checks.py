"""Deck checks that need no simulator: statements, analyses, point counts, DC paths to ground.

:func:`logical_lines` reduces a deck to its statements; :func:`analyses` lists the analyses
they request and :func:`check_points` tells whether ngspice's plots hold the points those
analyses imply; :func:`floating_nodes` finds nodes without a DC path to ground, which ngspice
does not always notice (a node fed only by a current source gets an arbitrary value).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import networkx as nx
import numpy as np

from .rawfile import RawPlot

__all__ = ["PLOTNAMES", "Analysis", "analyses", "check_points", "floating_nodes",
           "logical_lines", "parse_number"]

_SCALE = {"t": 1e12, "g": 1e9, "meg": 1e6, "k": 1e3, "mil": 25.4e-6, "m": 1e-3, "u": 1e-6,
          "n": 1e-9, "p": 1e-12, "f": 1e-15, "a": 1e-18}
_NUMBER_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)(meg|mil|[tgkmunpfa])?[a-z]*$")


def parse_number(token: str) -> float | None:
    """A SPICE number (``10k``, ``1meg``, ``2.5u``, ``1e-9s``) or None (e.g. a ``{param}``)."""
    m = _NUMBER_RE.match(token.lower())
    if m is None:
        return None
    return float(m.group(1)) * _SCALE.get(m.group(2) or "", 1.0)


def logical_lines(text: str) -> list[str]:
    """Lower-case statements: title dropped, comments removed, '+' continuations joined,
    ``.control`` blocks skipped."""
    out: list[str] = []
    in_control = False
    for raw in text.lower().splitlines()[1:]:
        s = raw.strip()
        if not s or s[0] == "*":
            continue
        if ";" in s or "$" in s:
            s = re.split(r";|\s\$\s|\s\$$", s, maxsplit=1)[0].strip()
            if not s:
                continue
        if s.startswith(".control"):
            in_control = True
            continue
        if s.startswith(".endc"):
            in_control = False
            continue
        if in_control:
            continue
        if s.startswith("+"):
            if out:
                out[-1] += " " + s[1:].strip()
            continue
        out.append(s)
    return out


# --------------------------------------------------------------------------------------------
# Analyses and the points they imply


@dataclass(frozen=True)
class Analysis:
    """One analysis statement: ``kind`` (op, dc, tran, ac or another name) and its arguments."""

    kind: str
    args: tuple[str, ...]


#: The plot name ngspice gives each analysis whose points :func:`check_points` counts.
PLOTNAMES = {"op": "operating point", "dc": "dc transfer characteristic",
             "tran": "transient analysis", "ac": "ac analysis"}


def _top_level(lines: list[str]) -> list[str]:
    """The statements outside ``.subckt`` ... ``.ends`` (dot statements included)."""
    out = []
    depth = 0
    for s in lines:
        if s.startswith(".subckt"):
            depth += 1
        elif s.startswith(".ends"):
            depth -= 1
        elif depth == 0:
            out.append(s)
    return out


def analyses(lines: list[str]) -> list[Analysis]:
    """The analyses (outside subcircuits) of statements from :func:`logical_lines`."""
    found = []
    for s in _top_level(lines):
        if re.match(r"\.(op|dc|tran|ac|noise|tf|sens|pz|disto)\b", s):
            toks = s.split()
            found.append(Analysis(toks[0][1:], tuple(toks[1:])))
    return found


def check_points(plots: list[RawPlot], wanted: list[Analysis]) -> str | None:
    """None if each analysis has its plot with the expected points, else the mismatch."""
    by_name: dict[str, list[RawPlot]] = {}
    for p in plots:
        by_name.setdefault(p.plotname.strip().lower(), []).append(p)
    for kind, plotname in PLOTNAMES.items():
        mine = [a for a in wanted if a.kind == kind]
        got = by_name.get(plotname, [])
        if len(got) != len(mine):
            return (f"the deck has {len(mine)} '.{kind}' analyses but ngspice produced "
                    f"{len(got)} '{plotname}' plots")
        for a, p in zip(mine, got):
            msg = _check_one(a, p)
            if msg:
                return msg
    return None


def _check_one(a: Analysis, p: RawPlot) -> str | None:
    n = p.n_points
    if a.kind == "op":
        return None if n == 1 else f"the operating point holds {n} points instead of 1"
    if a.kind == "dc":
        expected = 1
        args = list(a.args)
        while len(args) >= 4:
            start, stop, step = (parse_number(t) for t in args[1:4])
            if None in (start, stop, step) or step == 0:
                return None  # parameterised sweep: no count to check
            expected *= int(np.floor((stop - start) / step * (1 + 1e-9) + 1e-9)) + 1
            args = args[4:]
        if n != expected:
            return f"the .dc sweep holds {n} points; '.dc {' '.join(a.args)}' implies {expected}"
        return None
    if a.kind == "tran":
        tstop = parse_number(a.args[1]) if len(a.args) > 1 else None
        t = p.vectors.get("time")
        if tstop is None or t is None:
            return None
        if n == 0 or abs(t[-1] - tstop) > 1e-6 * abs(tstop):
            last = f"{t[-1]:g}" if n else "nothing"
            return f"the transient stopped at {last} s instead of tstop = {tstop:g} s"
        return None
    if a.kind == "ac" and len(a.args) >= 4:
        kind, npts = a.args[0], parse_number(a.args[1])
        fstart, fstop = parse_number(a.args[2]), parse_number(a.args[3])
        f = p.vectors.get("frequency")
        if None in (npts, fstart, fstop) or f is None:
            return None
        if kind == "lin":
            ok = n == int(npts)
        else:
            per = np.log(10.0 if kind == "dec" else 2.0) / npts
            ok = n >= 1 and abs(f[0] - fstart) <= 1e-9 * fstart and \
                f[-1] * np.exp(per) > fstop * (1 - 1e-9)
        return None if ok else (f"the AC sweep holds {n} points, not the sweep "
                                f"'.ac {' '.join(a.args)}' implies")
    return None


# --------------------------------------------------------------------------------------------
# DC paths to ground


_NOT_A_NODE = re.compile(r"[=(){}\[\]'\"]|^params:$")


def _is_node(tok: str) -> bool:
    return _NOT_A_NODE.search(tok) is None


def floating_nodes(text: str) -> list[str]:
    """Nodes of a flat deck that have no DC path to ground.

    DC paths run through R, L, V, E, H, voltage-defined B sources, diodes, BJT and JFET
    terminals, MOSFET drain/source/bulk and switch outputs. Capacitors, current sources
    (I, F, G, current-defined B), MOSFET gates and controlled-source inputs give none. To
    avoid false alarms, a subcircuit instance (X) and any element type not listed are assumed
    to tie all their nodes to ground; element lines inside ``.subckt`` are not checked.

    Returns
    -------
    list of str
        Sorted lower-case node names; empty when every node reaches ground.
    """
    return floating(logical_lines(text))


# Element letter -> (node positions tied together by a DC path, positions only attached).
# Positions count from the first node; E, G and B depend on their values (see _dc_terminals).
_TERMINALS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    **dict.fromkeys("rlvdwh", ((0, 1), ())),
    **dict.fromkeys("cif", ((), (0, 1))),
    **dict.fromkeys("qjz", ((0, 1, 2), ())),
    "m": ((0, 2, 3), (1,)),  # the gate takes no DC current
    "s": ((0, 1), (2, 3)),  # the switch's control nodes
    "k": ((), ()),  # mutual inductance: a coupling, no nodes
}


def _dc_terminals(kind: str, nodes: list[str], toks: list[str]) -> tuple[list[str], list[str]]:
    """The nodes an element ties together by a DC path, and the nodes it only attaches."""
    if kind in _TERMINALS:
        tied, attached = _TERMINALS[kind]
    elif kind == "e":
        linear = len(nodes) >= 5 and parse_number(nodes[4]) is not None
        tied, attached = (0, 1), ((2, 3) if linear else ())  # linear VCVS: inputs attach
    elif kind == "b":
        tied, attached = ((), (0, 1)) if "".join(toks[3:]).startswith("i=") else ((0, 1), ())
    elif kind == "g":
        if len(nodes) >= 5 and parse_number(nodes[4]) is not None:
            if {nodes[0], nodes[1]} == {nodes[2], nodes[3]}:
                tied, attached = (0, 1), ()  # VCCS sensing its own output: a conductance
            else:
                tied, attached = (), (0, 1, 2, 3)
        else:
            tied, attached = (), (0, 1)
    else:
        # X instances and unlisted elements: assume every node is tied to ground.
        rest = [t for t in toks[1:] if _is_node(t)]
        return (rest[:-1] if kind == "x" else rest) + ["0"], []
    return [nodes[i] for i in tied if i < len(nodes)], \
        [nodes[i] for i in attached if i < len(nodes)]


def floating(lines: list[str]) -> list[str]:
    """:func:`floating_nodes` on statements from :func:`logical_lines`."""
    graph = nx.Graph()
    graph.add_node("0")
    for s in _top_level(lines):
        if s[0] == ".":
            continue
        toks = s.split()
        nodes = ["0" if t == "gnd" else t for t in toks[1:6]]
        tied, attached = _dc_terminals(toks[0][0], nodes, toks)
        tied = [n for n in tied if _is_node(n)]
        graph.add_nodes_from(n for n in attached if _is_node(n))
        graph.add_nodes_from(tied)
        graph.add_edges_from((tied[0], n) for n in tied[1:])
    return sorted(set(graph) - nx.node_connected_component(graph, "0"))
