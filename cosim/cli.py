"""The ``rram-cosim`` command line.

Every command writes ``runs/<name>/`` (or ``--out ROOT``/<name>) and can be replayed from the
``config.json`` it saved: ``rram-cosim demo --config runs/demo/config.json``. Options given on
the command line override the loaded file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any, Sequence

from ..models.errors import CosimError
from ..models.params import from_dict
from .pipeline import DemoConfig, run_demo
from .runs import load_config


def _add_dataclass_options(p: argparse.ArgumentParser, cls: type) -> None:
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = type(f.default)
        p.add_argument(flag, dest=f.name, type=kind, default=None,
                       help=f"(default: {f.default})")


def _resolve(cls: type, args: argparse.Namespace, command: str) -> Any:
    base: dict[str, Any] = load_config(args.config, command) if args.config else {}
    for f in dataclasses.fields(cls):
        v = getattr(args, f.name)
        if v is not None:
            base[f.name] = v
    return from_dict(cls, base)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rram-cosim",
        description="SPICE-level co-simulation of RRAM in-memory computing: from 1T1R decks "
                    "to LSM accuracy and energy.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="thin end-to-end run on the embedded data (SPICE tile -> surrogate -> "
                     "LIF reservoir -> readout -> energy)")
    demo.add_argument("--config", help="replay a saved runs/<name>/config.json")
    demo.add_argument("--out", default="runs", help="root folder of run folders (default: runs)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _add_dataclass_options(demo, DemoConfig)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            cfg = _resolve(DemoConfig, args, "demo")
            summary = run_demo(cfg, args.out, progress=not args.no_progress)
            print(f"wrote {args.out}/{cfg.name}/report.md")
            print(json.dumps({"accuracy": summary["accuracy"],
                              "energy_uj": summary["energy_uj"]}, indent=1, default=str))
    except CosimError as e:
        print(f"rram-cosim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rram-cosim: interrupted; finished results are kept.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
