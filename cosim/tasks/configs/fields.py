"""Config fields that carry their command-line help."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import Field, field
from typing import Any

__all__ = ["choices_of", "help_of", "option"]


def option(default: Any, help: str, *, choices: Sequence[Any] = ()) -> Any:
    """A dataclass field whose option is documented by ``help``.

    ``help`` is one line: what the value is, with its unit in parentheses (``"compliance
    currents (A)"``). ``choices`` lists the allowed values of a choice (or of every item of a
    list); the parser shows them, the config's ``__post_init__`` still checks them.
    """
    meta: dict[str, Any] = {"help": help}
    if choices:
        meta["choices"] = tuple(choices)
    return field(default=default, metadata=meta)


def help_of(f: Field) -> str:
    """The field's help line ('' when it has none)."""
    return str(f.metadata.get("help", ""))


def choices_of(f: Field) -> tuple[Any, ...]:
    """The field's allowed values (empty: any value of its type)."""
    return tuple(f.metadata.get("choices", ()))
