"""Config fields that carry their command-line help and their allowed values."""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Sequence
from dataclasses import Field, field
from types import UnionType
from typing import Any, NamedTuple

from ....models.checks import check_int, check_range

__all__ = ["Bounds", "check_options", "choices_of", "help_of", "option", "range_of",
           "range_text"]


class Bounds(NamedTuple):
    """The allowed interval of a numeric option (None: unbounded on that side)."""

    lo: float | None
    hi: float | None
    lo_open: bool = False
    hi_open: bool = False


def option(default: Any, help: str, *, choices: Sequence[Any] = (), lo: float | None = None,
           hi: float | None = None, lo_open: bool = False, hi_open: bool = False) -> Any:
    """A dataclass field whose option is documented by ``help``.

    ``help`` is one line: what the value is, with its unit in parentheses (``"compliance
    currents (A)"``). ``choices`` lists the allowed values of a choice (or of every item of a
    list); ``lo``/``hi`` bound a number (or every item of a list of numbers), each bound
    closed unless ``lo_open``/``hi_open``. The parser shows both; the config's
    ``__post_init__`` checks them (:func:`check_options` reads the bounds given here).
    """
    meta: dict[str, Any] = {"help": help}
    if choices:
        meta["choices"] = tuple(choices)
    if lo is not None or hi is not None:
        meta["range"] = Bounds(lo, hi, lo_open, hi_open)
    return field(default=default, metadata=meta)


def help_of(f: Field) -> str:
    """The field's help line ('' when it has none)."""
    return str(f.metadata.get("help", ""))


def choices_of(f: Field) -> tuple[Any, ...]:
    """The field's allowed values (empty: any value of its type)."""
    return tuple(f.metadata.get("choices", ()))


def range_of(f: Field) -> Bounds | None:
    """The field's allowed interval (None: not a bounded number)."""
    return f.metadata.get("range")


def _number(v: float) -> str:
    """A bound as a reader types it: 4096, 1e+07, 2^63-1, 0.5."""
    if isinstance(v, int) and abs(v) >= 10**7:
        if v + 1 == 1 << (v + 1).bit_length() - 1:
            return f"2^{(v + 1).bit_length() - 1}-1"
        return f"{v:g}" if float(f"{v:g}") == v else str(v)
    return str(v) if isinstance(v, int) else f"{v:g}"


def range_text(f: Field) -> str:
    """The field's interval as help shows it, ``[0, 1e+04]`` or ``(0, 0.5]`` ('' if none)."""
    b = range_of(f)
    if b is None:
        return ""
    left = "(" if b.lo_open or b.lo is None else "["
    right = ")" if b.hi_open or b.hi is None else "]"
    lo = "-inf" if b.lo is None else _number(b.lo)
    hi = "inf" if b.hi is None else _number(b.hi)
    return f"{left}{lo}, {hi}{right}"


@functools.cache
def _integer_fields(cls: type) -> frozenset[str]:
    """Fields of ``cls`` that hold integers (or tuples, or optionals, of integers)."""
    out = set()
    for name, kind in typing.get_type_hints(cls).items():
        if typing.get_origin(kind) in (typing.Union, UnionType):
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if typing.get_origin(kind) is tuple:
            kind = typing.get_args(kind)[0]
        if kind is int:
            out.add(name)
    return frozenset(out)


def check_options(cfg: Any) -> None:
    """Check every bounded field of the config ``cfg`` against the interval its option states
    (a list item by item; None, where the field allows it, passes)."""
    owner = type(cfg).__name__
    integers = _integer_fields(type(cfg))
    for f in dataclasses.fields(cfg):
        b = range_of(f)
        if b is None:
            continue
        value = getattr(cfg, f.name)
        for v in value if isinstance(value, tuple) else (value,):
            if v is None:
                continue
            if f.name in integers:
                check_int(owner, f.name, v, b.lo, b.hi)
            else:
                check_range(owner, f.name, v, b.lo, b.hi, lo_open=b.lo_open, hi_open=b.hi_open)
