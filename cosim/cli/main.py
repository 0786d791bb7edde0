"""The ``rram-cosim`` command line.

Every command writes ``runs/<name>/`` (or ``--out ROOT``/<name>) and can be replayed from the
``config.json`` it saved: ``rram-cosim demo --config runs/demo/config.json``. Options given on
the command line override the loaded file.

Commands live in their own modules; each exposes ``COMMAND`` (name), ``HELP``, ``CONFIG`` (a
frozen dataclass whose fields become options, help from the fields' metadata) and
``run(cfg, out_root, progress) -> dict``. Comma lists are accepted wherever a field holds a
tuple (``--icc 5e-6,10e-6``); booleans are ``--x`` / ``--no-x``. The command modules import
their heavy libraries inside ``run``, so ``--help`` stays quick.

A run claims its folder before computing (:mod:`rram_cosim.cosim.cli.runs`): a finished run of
the same name is refused unless ``--overwrite``, a name another live run holds is refused
naming that run's PID, and the runs root, the output file and the cache are checked to be
writable. Exit codes: :data:`EXIT_OK`, :data:`EXIT_FAILURES` (finished, some units failed),
:data:`EXIT_ERROR` (one line on stderr), :data:`EXIT_INTERRUPTED`, :data:`EXIT_TERMINATED`.
A run stopped by Ctrl-C, SIGTERM or a timeout stops its pool workers and ngspice runs first.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import re
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType, UnionType
from typing import Any

from ...models.errors import ConfigError, CosimError
from ...models.io import cache_root
from ...models.params import from_dict
from ..spice.processes import Terminated, raise_on_termination
from ..tasks.configs.fields import choices_of, help_of, range_text
from .runs import RunLock, load_config, replay_note

#: Exit codes: the run finished; it finished but some of its units failed (the report lists
#: them); an error stopped it (one line on stderr names the option or file at fault);
#: interrupted (Ctrl-C); terminated (SIGTERM or SIGHUP).
EXIT_OK, EXIT_FAILURES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143

# module names under rram_cosim.cosim.cli.commands that provide a command; a missing one is
# skipped so a partial installation still runs the others
COMMAND_MODULES = ("demo", "classify", "form", "fit_device", "calibrate", "tile", "sweep",
                   "energy", "zeroshot")


def commands() -> dict[str, ModuleType]:
    """The command modules by command name."""
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


def _is_union(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, UnionType)


def _parse_field(kind: Any, text: str) -> Any:
    """Parse one option value; tuples are comma lists."""
    origin = typing.get_origin(kind)
    if origin is tuple:
        inner = typing.get_args(kind)[0]
        return tuple(_parse_field(inner, t.strip()) for t in text.split(",") if t.strip())
    if _is_union(kind):
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
        what = {float: "a number", int: "an integer"}.get(kind, getattr(kind, "__name__", kind))
        raise ConfigError(f"Cannot read {text!r} as {what}.") from e


def show_value(value: Any) -> str:
    """A default as it is typed on the command line: tuples as comma lists."""
    if isinstance(value, tuple):
        return ",".join(show_value(v) for v in value) if value else "(empty)"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        return value or '""'
    return str(value)


def _metavar(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        return f"{_metavar(typing.get_args(kind)[0])},..."
    if _is_union(kind):
        return _metavar(next(a for a in typing.get_args(kind) if a is not type(None)))
    return {int: "INT", float: "NUM", str: "TEXT"}.get(kind, "VALUE")


def option_help(f: dataclasses.Field, kind: Any) -> str:
    """One line of help: the field's text, its allowed values and its default."""
    text = help_of(f)
    choices, interval = choices_of(f), range_text(f)
    each = typing.get_origin(kind) is tuple
    if choices:
        text += f"; {'each of' if each else 'one of'}: {', '.join(map(str, choices))}"
    if interval:
        text += f"; {'each ' if each else ''}in {interval}"
    default = f.default if f.default is not dataclasses.MISSING else "(computed)"
    text += f" (default: {show_value(default)})"
    return text.replace("%", "%%")  # argparse formats help with %


def add_config_options(p: argparse.ArgumentParser, cls: type) -> None:
    """One option per field of ``cls``: ``--field-name VALUE`` (``--x`` / ``--no-x`` for
    booleans); unset options are None, so a loaded config.json keeps its values."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    own = set(vars(cls).get("__annotations__", {}))  # the command's own fields lead the help
    for f in [f for f in fields if f.name in own] + [f for f in fields if f.name not in own]:
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        if kind is bool:
            p.add_argument(flag, dest=f.name, default=None,
                           action=argparse.BooleanOptionalAction, help=option_help(f, kind))
        else:
            p.add_argument(flag, dest=f.name, default=None, metavar=_metavar(kind),
                           help=option_help(f, kind))


def _read_as_saved(base: dict[str, Any], hints: dict[str, Any]) -> None:
    """Replay a config saved before read schemes were options as it ran.

    Those runs read every row at once, and a config without ``r_wire_ohm`` (energy's, before
    it was an option) ran its tiles at 1 ohm per segment, the default then; one without
    ``linearise`` ran the surrogate linearised at a tangent. Other fields missing from an old
    file take today's defaults.
    """
    if "rows_per_read" in hints and "rows_per_read" not in base:
        base["rows_per_read"] = (0,) if typing.get_origin(hints["rows_per_read"]) is tuple \
            else 0
    if "r_wire_ohm" in hints and "r_wire_ohm" not in base:
        base["r_wire_ohm"] = 1.0
    # saved before the workload linearisation became the default: they ran the tangent
    if "linearise" in hints and "linearise" not in base:
        base["linearise"] = "tangent"


def _resume_linearisation(cls: type, base: dict[str, Any], args: argparse.Namespace) -> None:
    """A sweep run again in its existing folder (no ``--config``, no ``--overwrite``, no
    ``--linearise``) resumes with the linearisation that folder's config saved (``tangent``
    where the file has none), rather than switching to today's default and recomputing every
    unit."""
    if getattr(args, "linearise", None) is not None or getattr(args, "overwrite", False):
        return
    name = getattr(args, "name", None) or next(
        f.default for f in dataclasses.fields(cls) if f.name == "name")
    path = Path(getattr(args, "runs_root", "runs")) / str(name) / "config.json"
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(saved, dict) or saved.get("command") != "sweep":
        return
    lin = saved.get("config", {}).get("linearise", "tangent")
    base["linearise"] = lin
    print(f"rram-cosim: note: resuming {path.parent} with linearise={lin}, as it was saved "
          "(pass --linearise to change it, or --overwrite to start afresh)", file=sys.stderr)


def resolve_config(cls: type, args: argparse.Namespace, command: str) -> Any:
    """The config of ``command``: its ``--config`` file (if any) with the options given."""
    base: dict[str, Any] = load_config(args.config, command) if args.config else {}
    note = replay_note(args.config) if args.config else None
    if note:
        print(f"rram-cosim: note: {note}", file=sys.stderr)
    hints = typing.get_type_hints(cls)
    if args.config:
        _read_as_saved(base, hints)
    elif command == "sweep":
        _resume_linearisation(cls, base, args)
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name)
        if isinstance(value, bool):
            base[f.name] = value
        elif value is not None:
            try:
                base[f.name] = _parse_field(hints[f.name], value)
            except ConfigError as e:
                raise ConfigError(f"--{f.name.replace('_', '-')} {value}: {e}") from None
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
    for name, mod in commands().items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        p.add_argument("--config", metavar="FILE",
                       help="replay a saved runs/<name>/config.json (options given override it)")
        # a command whose CONFIG has an `out` field (its output file) names the root otherwise
        p.add_argument(getattr(mod, "ROOT_OPTION", "--out"), dest="runs_root", default="runs",
                       metavar="DIR", help="root folder of run folders (default: runs)")
        p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                       help="progress bars (default: on)")
        p.add_argument("--overwrite", action="store_true",
                       help="replace an existing run folder of the same --name (its files "
                            "are removed first)" + ("; without it a sweep resumes there"
                                                    if name == "sweep" else ""))
        add_config_options(p, mod.CONFIG)
    return parser


_NEGATIVE = re.compile(r"^-[0-9.]")


def join_negative_values(argv: Sequence[str]) -> list[str]:
    """``--icc -5e-6`` as ``--icc=-5e-6``: argparse takes a value that starts with '-' for an
    option unless it looks like a plain negative number (not ``-5e-6``, not ``-1,2``), and
    would answer "expected one argument" instead of the option's own range check. No option
    name starts with a digit, so such a token is always a value."""
    out: list[str] = []
    for tok in argv:
        if (out and _NEGATIVE.match(tok) and out[-1].startswith("--") and "=" not in out[-1]
                and len(out[-1]) > 2):
            out[-1] = f"{out[-1]}={tok}"
        else:
            out.append(tok)
    return out


def refuse_inputs_inside(cfg: Any, folder: Path) -> None:
    """``--overwrite`` clears ``folder`` first: refuse when an input the run reads lies in it
    (``energy --from`` the same run, a ``tile --g-pos`` map saved there), naming the option."""
    if not folder.is_dir():
        return
    inside = folder.resolve()
    for f in dataclasses.fields(cfg):
        if f.name in ("out", "name"):  # outputs, not inputs
            continue
        values = getattr(cfg, f.name)
        for v in values if isinstance(values, tuple) else (values,):
            if not isinstance(v, str) or not v:
                continue
            for text in {v, v.split(":", 1)[-1]}:  # KIND:PATH data sets
                try:
                    p = Path(text).resolve()
                except (OSError, RuntimeError):
                    continue
                if p.exists() and (p == inside or inside in p.parents):
                    raise ConfigError(
                        f"--overwrite would remove {folder}, but --{f.name.replace('_', '-')} "
                        f"reads {text} inside it. Copy that input elsewhere or choose "
                        "another --name.")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(join_negative_values(argv))
    mod = commands()[args.command]
    # SIGTERM cleans up like Ctrl-C: no child outlives this process
    with raise_on_termination():
        return _run(mod, args)


def _run(mod: ModuleType, args: argparse.Namespace) -> int:
    try:
        cfg = resolve_config(mod.CONFIG, args, args.command)
        if args.overwrite:
            refuse_inputs_inside(cfg, Path(args.runs_root) / cfg.name)
        cache_root()  # an unwritable cache falls back, and says so, before any computation
        summary = mod.run(cfg, args.runs_root, progress=args.progress,
                          overwrite=args.overwrite)
        print(f"wrote {args.runs_root}/{cfg.name}/report.md")
        print(json.dumps(summary.get("headline", {}), indent=1, default=str))
    except CosimError as e:
        print(f"rram-cosim: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:  # a file system error no check foresaw: still one line, the path
        where = f"{e.filename}: " if e.filename else ""
        print(f"rram-cosim: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as e:
        what = "terminated" if isinstance(e, Terminated) else "interrupted"
        print(f"rram-cosim: {what}; finished results are kept, the run folder is marked "
              "unfinished.", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
    finally:
        RunLock.release_all()
    if summary.get("incomplete"):
        print(f"rram-cosim: finished with failures: {summary['incomplete']}", file=sys.stderr)
        return EXIT_FAILURES
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
