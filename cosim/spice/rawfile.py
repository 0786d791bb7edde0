"""Reader of ngspice raw files (binary and ascii), the output of ``ngspice -b -r out.raw``.

A raw file is a sequence of plots (one per analysis). Each plot is a text header::

    Title: <circuit title>
    Date: ...
    Plotname: Operating Point
    Flags: real                 (or complex; optionally "unpadded")
    No. Variables: 3
    No. Points: 1
    Variables:
    \t0\tv(in)\tvoltage
    ...
    Binary:                     (or Values: for the ascii form)

followed by the data, point-major: for each point every variable in order, as native
little-endian float64 (real plots) or float64 pairs (complex plots); the ascii form writes the
point index then one value (``re,im`` when complex) per line. Plots follow each other directly.

Vector names are normalised by :func:`normalise_vector_name` (lower case, ``v(node)`` for node
voltages, ``i(source)`` for branch currents), the convention the shared-library backend in
:mod:`rram_cosim.cosim.spice.runner` follows too, so both backends name vectors identically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import SimulationError

__all__ = [
    "RawFileError",
    "RawPlot",
    "normalise_vector_name",
    "parse_raw",
    "read_raw",
]

_HEADER_KEYS = {
    "title": "title",
    "date": "date",
    "plotname": "plotname",
    "flags": "flags",
    "no. variables": "n_vars",
    "no. points": "n_points",
}
_REAL = np.dtype("<f8")


class RawFileError(SimulationError):
    """A raw file is truncated or malformed; names the file and the byte offset of the problem."""

    def __init__(self, reason: str, *, path: str | Path, offset: int) -> None:
        self.path = str(path)
        self.offset = int(offset)
        super().__init__(f"Cannot read ngspice raw file {self.path} at byte offset {offset}: "
                         f"{reason}")


@dataclass(frozen=True)
class RawPlot:
    """One plot (analysis result) of a raw file.

    Attributes
    ----------
    title : str
        The circuit title (first line of the deck).
    plotname : str
        The analysis, as ngspice names it: ``"Operating Point"``, ``"DC transfer
        characteristic"``, ``"Transient Analysis"``, ``"AC Analysis"``, ...
    flags : tuple of str
        Lower-case header flags, e.g. ``("real",)`` or ``("complex",)``.
    names : tuple of str
        Vector names in file order, normalised (lower case, ``v(...)``/``i(...)``).
    types : tuple of str
        ngspice's type of each vector (``"voltage"``, ``"current"``, ``"time"``, ...).
    vectors : dict of str to numpy.ndarray
        Name to values, shape ``(n_points,)``, float64, or complex128 in complex plots (the
        ``frequency`` scale of an AC plot is real: ngspice leaves its imaginary part undefined).
        Arrays are read-only.
    """

    title: str
    plotname: str
    flags: tuple[str, ...]
    names: tuple[str, ...]
    types: tuple[str, ...]
    vectors: dict[str, np.ndarray] = field(repr=False)

    @property
    def n_points(self) -> int:
        """Number of points (1 for an operating point)."""
        return len(next(iter(self.vectors.values()))) if self.vectors else 0

    @property
    def is_complex(self) -> bool:
        return "complex" in self.flags


def normalise_vector_name(name: str, vtype: str) -> str:
    """ngspice vector name in the raw-file convention, lower case.

    ``in`` of type voltage becomes ``v(in)``; ``vdd#branch`` becomes ``i(vdd)``; a device
    quantity such as ``@m1[id]`` of type current becomes ``i(@m1[id])``; names already of the
    form ``v(...)``/``i(...)`` and scale vectors (``time``, ``frequency``) are only lower-cased.
    This is how ``ngspice -b -r`` writes names; the shared library hands out the bare internal
    names, so the shared backend passes them through here to match.
    """
    n = name.strip().lower()
    t = vtype.strip().lower()
    if n.endswith("#branch"):
        return f"i({n[: -len('#branch')]})"
    if re.fullmatch(r"[vi]\(.*\)", n):
        return n
    if t == "voltage":
        return f"v({n})"
    if t == "current":
        return f"i({n})"
    return n


def read_raw(path: str | Path) -> list[RawPlot]:
    """Read every plot of an ngspice raw file (binary or ascii).

    Parameters
    ----------
    path : str or Path
        The raw file.

    Returns
    -------
    list of RawPlot
        In file order (ngspice writes one plot per analysis, in the order it runs them).

    Raises
    ------
    RawFileError
        If the file is missing, truncated or malformed; the message names the file and the byte
        offset where reading stopped.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise RawFileError(f"the file cannot be opened ({e.strerror}).", path=p, offset=0) from e
    return parse_raw(data, source=str(p))


def parse_raw(data: bytes, source: str = "<bytes>") -> list[RawPlot]:
    """Parse the bytes of a raw file; see :func:`read_raw`. ``source`` names it in errors."""
    plots: list[RawPlot] = []
    pos = _skip_preamble(data, 0, source)
    if pos is None:
        raise RawFileError("no 'Title:' line found; this is not an ngspice raw file "
                           "(or ngspice wrote nothing).", path=source, offset=0)
    while pos is not None:
        plot, pos = _parse_plot(data, pos, source)
        plots.append(plot)
        pos = _skip_preamble(data, pos, source, strict=True)
    return plots


def _skip_preamble(data: bytes, pos: int, source: str, strict: bool = False) -> int | None:
    """Offset of the next ``Title:`` line at or after ``pos``, None at end of data.

    Some ngspice versions print notes ("Note: No compatibility mode selected!") into the file
    before the first header; those lines are skipped. Between plots only whitespace may occur
    (``strict``): anything else means the previous plot held more data than its header says.
    """
    if pos >= len(data) or not data[pos:].strip():
        return None
    if data.startswith(b"Title:", pos):
        return pos
    if strict:
        rest = data[pos:]
        stripped = rest.lstrip()
        if stripped.startswith(b"Title:"):
            return pos + len(rest) - len(stripped)
        raise RawFileError("unexpected bytes after the end of a plot's data: the header's "
                           "'No. Points' does not match the data (was ngspice interrupted "
                           "while writing?).", path=source, offset=pos)
    m = re.compile(rb"(?m)^Title:").search(data, pos)
    return m.start() if m else None


def _read_line(data: bytes, pos: int, source: str, what: str) -> tuple[str, int]:
    end = data.find(b"\n", pos)
    if end < 0:
        raise RawFileError(f"the file ends inside the header while reading {what}.",
                           path=source, offset=len(data))
    return data[pos:end].decode("latin-1").rstrip("\r"), end + 1


def _parse_plot(data: bytes, pos: int, source: str) -> tuple[RawPlot, int]:
    start = pos
    head: dict[str, str] = {}
    while True:
        line, pos = _read_line(data, pos, source, "the plot header")
        key, sep, value = line.partition(":")
        k = key.strip().lower()
        if k == "variables":
            break
        if sep and k in _HEADER_KEYS:
            head[_HEADER_KEYS[k]] = value.strip()
        # Other keys (Command:, Option:, Dimensions:) carry nothing the reader needs.
    try:
        n_vars = int(head["n_vars"])
        n_points = int(head["n_points"])
    except (KeyError, ValueError):
        raise RawFileError("the plot header lacks a valid 'No. Variables' or 'No. Points' "
                           f"line (got {head}).", path=source, offset=start) from None
    flags = tuple(head.get("flags", "real").lower().split())
    if "unpadded" in flags:
        raise RawFileError("unpadded raw files (vectors of unequal length) are not supported; "
                           "do not set 'nopadding'.", path=source, offset=start)
    names, types = [], []
    for i in range(n_vars):
        line, pos = _read_line(data, pos, source, f"variable {i} of {n_vars}")
        parts = line.split()
        if len(parts) < 3 or parts[0] != str(i):
            raise RawFileError(f"expected variable {i} of {n_vars} as '<index> <name> <type>', "
                               f"got {line!r}.", path=source, offset=pos - len(line) - 1)
        names.append(normalise_vector_name(parts[1], parts[2]))
        types.append(parts[2].lower())
    while True:
        line, pos = _read_line(data, pos, source, "the 'Binary:'/'Values:' line")
        tag = line.strip().lower()
        if tag in ("binary:", "values:"):
            break
        if tag:
            raise RawFileError(f"expected 'Binary:' or 'Values:', got {line!r}.", path=source,
                               offset=pos - len(line) - 1)
    cplx = "complex" in flags
    if tag == "binary:":
        table, pos = _binary_table(data, pos, n_points, n_vars, cplx, source)
    else:
        table, pos = _ascii_table(data, pos, n_points, n_vars, cplx, source)
    vectors: dict[str, np.ndarray] = {}
    for j, (name, vtype) in enumerate(zip(names, types)):
        col = table[:, j]
        if cplx and vtype == "frequency":
            # ngspice stores the AC scale as complex and leaves the imaginary part undefined.
            col = col.real
        col = np.ascontiguousarray(col)
        col.flags.writeable = False
        vectors[name] = col
    plot = RawPlot(title=head.get("title", ""), plotname=head.get("plotname", ""), flags=flags,
                   names=tuple(names), types=tuple(types), vectors=vectors)
    return plot, pos


def _binary_table(data: bytes, pos: int, n_points: int, n_vars: int, cplx: bool,
                  source: str) -> tuple[np.ndarray, int]:
    width = 2 if cplx else 1
    n_bytes = n_points * n_vars * width * _REAL.itemsize
    if pos + n_bytes > len(data):
        have = len(data) - pos
        raise RawFileError(
            f"truncated binary data: the header promises {n_points} points x {n_vars} "
            f"variables ({n_bytes} bytes) but only {have} bytes follow "
            f"({have // max(n_vars * width * _REAL.itemsize, 1)} complete points).",
            path=source, offset=len(data))
    flat = np.frombuffer(data, dtype=_REAL, count=n_points * n_vars * width, offset=pos)
    if cplx:
        table = flat.reshape(n_points, n_vars, 2)
        table = table[..., 0] + 1j * table[..., 1]
    else:
        table = flat.reshape(n_points, n_vars).astype(np.float64)
    return table, pos + n_bytes


def _ascii_table(data: bytes, pos: int, n_points: int, n_vars: int, cplx: bool,
                 source: str) -> tuple[np.ndarray, int]:
    # The ascii block ends at the next plot's "Title:" or at the end of the file.
    m = re.compile(rb"(?m)^Title:").search(data, pos)
    end = m.start() if m else len(data)
    tokens = data[pos:end].decode("latin-1").split()
    per_point = n_vars + 1
    if len(tokens) < n_points * per_point:
        raise RawFileError(
            f"truncated ascii data: the header promises {n_points} points x {n_vars} variables "
            f"but only {len(tokens) // per_point} complete points follow.",
            path=source, offset=end)
    if len(tokens) > n_points * per_point:
        raise RawFileError(
            f"the ascii data holds more values than {n_points} points x {n_vars} variables.",
            path=source, offset=pos)
    idx = tokens[::per_point]
    if idx != [str(i) for i in range(n_points)]:
        raise RawFileError("ascii point indices are not 0, 1, 2, ...: malformed data.",
                           path=source, offset=pos)
    vals = [t for i, t in enumerate(tokens) if i % per_point]
    try:
        if cplx:
            re_im = np.array(",".join(vals).split(","), dtype=np.float64)
            re_im = re_im.reshape(n_points, n_vars, 2)
            table = re_im[..., 0] + 1j * re_im[..., 1]
        else:
            table = np.array(vals, dtype=np.float64)
    except ValueError as e:
        raise RawFileError(f"a value cannot be read as a number ({e}).", path=source,
                           offset=pos) from None
    return table.reshape(n_points, n_vars), end
