"""The ``rram-cosim`` command line.

Every command writes ``runs/<name>/`` (or ``--out ROOT``/<name>) and can be replayed from the
``config.json`` it saved: ``rram-cosim demo --config runs/demo/config.json``. Options given on
the command line override the loaded file.

Commands live in their own modules; each exposes ``COMMAND`` (name), ``HELP``, ``CONFIG`` (a
frozen dataclass whose fields become options) and ``run(cfg, out_root, progress) -> dict``.
Comma lists are accepted wherever a field holds a tuple (``--icc 5e-6,10e-6``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import typing
from collections.abc import Sequence
from typing import Any

from ...models.errors import ConfigError, CosimError
from ...models.params import from_dict
from .runs import load_config

# module names under rram_cosim.cosim.cli.commands that provide a command; a missing one is
# skipped so a partial installation still runs the others
COMMAND_MODULES = ("demo", "classify", "form", "fit_device", "calibrate", "tile", "sweep",
                   "energy", "zeroshot")


def _commands() -> dict[str, Any]:
    out = {}
    for name in COMMAND_MODULES:
        full = f"{__package__}.commands.{name}"
        try:
            mod = importlib.import_module(full)
        except ModuleNotFoundError as e:
            if e.name != full:  # a broken import inside the module is a real error
                raise
            continue
        out[mod.COMMAND] = mod
    return out


def _parse_field(kind: Any, text: str) -> Any:
    """Parse one option value; tuples are comma lists."""
    origin = typing.get_origin(kind)
    if origin is tuple:
        inner = typing.get_args(kind)[0]
        return tuple(_parse_field(inner, t.strip()) for t in text.split(",") if t.strip())
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if text.lower() == "none":
            return None
        return _parse_field(args[0], text)
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"Expected a boolean (true/false). Got {text!r}.")
    try:
        return kind(text)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"Cannot read {text!r} as {getattr(kind, '__name__', kind)}.") from e


def _add_dataclass_options(p: argparse.ArgumentParser, cls: type) -> None:
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else "(computed)"
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                       metavar=f.name.upper(), help=f"(default: {default})")


def _resolve(cls: type, args: argparse.Namespace, command: str) -> Any:
    base: dict[str, Any] = load_config(args.config, command) if args.config else {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        text = getattr(args, f.name)
        if text is not None:
            base[f.name] = _parse_field(hints[f.name], text)
    # JSON turns tuples into lists: give the dataclass its declared type back
    for k, v in base.items():
        if isinstance(v, list) and typing.get_origin(hints.get(k)) is tuple:
            base[k] = tuple(v)
    return from_dict(cls, base)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rram-cosim",
        description="SPICE-level co-simulation of RRAM in-memory computing: from 1T1R decks "
                    "to LSM accuracy and energy.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, mod in _commands().items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        p.add_argument("--config", help="replay a saved runs/<name>/config.json")
        # a command whose CONFIG has an `out` field (its output file) names the root otherwise
        p.add_argument(getattr(mod, "ROOT_OPTION", "--out"), dest="runs_root", default="runs",
                       help="root folder of run folders (default: runs)")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")
        _add_dataclass_options(p, mod.CONFIG)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    mod = _commands()[args.command]
    try:
        cfg = _resolve(mod.CONFIG, args, args.command)
        summary = mod.run(cfg, args.runs_root, progress=not args.no_progress)
        print(f"wrote {args.runs_root}/{cfg.name}/report.md")
        print(json.dumps(summary.get("headline", {}), indent=1, default=str))
    except CosimError as e:
        print(f"rram-cosim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rram-cosim: interrupted; finished results are kept.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
