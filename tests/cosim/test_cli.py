"""The command line explains itself: help for every option, quick --help, old configs replay."""

import dataclasses
import json
import re
import subprocess
import sys
import typing
from pathlib import Path
from types import UnionType

import pytest
from rram_cosim.cosim.cli.main import build_parser, commands, resolve_config, show_value
from rram_cosim.cosim.tasks.configs.fields import help_of, range_of
from rram_cosim.models.errors import ConfigError

BEFORE = Path(__file__).parent / "configs_before"
HEAVY = ("pandas", "matplotlib", "scipy", "dask")


def _subparsers(parser):
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    subs = _subparsers(parser)
    assert set(subs) == set(commands())
    for name, mod in commands().items():
        assert mod.HELP
        for f in dataclasses.fields(mod.CONFIG):
            assert help_of(f).strip(), f"{name}: the field {f.name!r} has no help"
            assert "\n" not in help_of(f), f"{name}: the help of {f.name!r} is not one line"
        for action in subs[name]._actions:
            assert action.help and action.help.strip(), f"{name}: {action.option_strings}"


def _numeric(kind) -> bool:
    """int or float, a tuple of them, or either or None."""
    if typing.get_origin(kind) in (typing.Union, UnionType):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if typing.get_origin(kind) is tuple:
        kind = typing.get_args(kind)[0]
    return kind in (int, float)


def test_every_numeric_option_states_its_allowed_values():
    subs = _subparsers(build_parser())
    for name, mod in commands().items():
        hints = typing.get_type_hints(mod.CONFIG)
        helps = {a.dest: a.help for a in subs[name]._actions}
        for f in dataclasses.fields(mod.CONFIG):
            if not _numeric(hints[f.name]):
                continue
            text = helps[f.name]
            assert re.search(r"(in [\[(][^\]]*[\])]|one of:|each of:)", text), \
                f"{name} --{f.name.replace('_', '-')}: no range or choices in {text!r}"


# configs that need a value beyond their defaults to be valid
_REQUIRED = {"tile": {"g_pos": "g.npy", "inputs": "x.npy", "backend": "ideal"},
             "fit-device": {"map": ("m.npy",)}}


def _outside(bounds, integer: bool) -> list:
    """Values just outside ``bounds`` (one per finite side)."""
    out = []
    if bounds.lo is not None:
        out.append(bounds.lo if bounds.lo_open else bounds.lo - max(abs(bounds.lo), 1))
    if bounds.hi is not None:
        out.append(bounds.hi if bounds.hi_open else bounds.hi + max(abs(bounds.hi), 1))
    return [int(v) if integer else v for v in out]


@pytest.mark.parametrize("command", sorted(commands()))
def test_the_config_refuses_a_value_outside_the_stated_range(command):
    cls = commands()[command].CONFIG
    hints = typing.get_type_hints(cls)
    base = cls(**_REQUIRED.get(command, {}))
    for f in dataclasses.fields(cls):
        bounds = range_of(f)
        if bounds is None:
            continue
        kind = hints[f.name]
        integer = "int" in str(kind) and "float" not in str(kind)
        for v in _outside(bounds, integer):
            value = (v,) if typing.get_origin(kind) is tuple else v
            with pytest.raises(ConfigError, match=f"'{f.name}'"):
                dataclasses.replace(base, **{f.name: value})


def test_options_several_commands_share_are_defined_once():
    """Same name, same range and same help (up to a prefix saying where a command uses it, or
    the plural of a swept list)."""
    for name in ("r_wire_ohm", "adc_bits", "cal_maps", "cal_vectors", "n_windows"):
        found = [f for mod in commands().values() for f in dataclasses.fields(mod.CONFIG)
                 if f.name == name]
        assert len(found) > 1, name
        assert len({range_of(f) for f in found}) == 1, name
        assert len({help_of(f)[help_of(f).find("("):] for f in found}) == 1, name


def test_defaults_read_as_typed_and_booleans_are_flags():
    sub = _subparsers(build_parser())
    form = {a.dest: a for a in sub["form"]._actions}
    assert "(default: 5e-06,7.5e-06,1e-05,2e-05)" in form["icc"].help
    assert "(A" in form["icc"].help
    assert "one of: twin, spice" in form["backend"].help
    energy = {a.dest: a for a in sub["energy"]._actions}
    assert energy["sweep_accuracy"].option_strings == ["--sweep-accuracy", "--no-sweep-accuracy"]
    assert show_value((5e-06, 1e-05)) == "5e-06,1e-05"
    assert show_value(()) == "(empty)"
    zs = {a.dest: a for a in sub["zeroshot"]._actions}
    assert "each of: ideal, surrogate, nodal, spice" in zs["backends"].help


def test_boolean_flags_and_comma_lists_resolve():
    parser = build_parser()
    mod = commands()["energy"]
    args = parser.parse_args(["energy", "--no-sweep-accuracy", "--adc-bits", "4,8"])
    cfg = resolve_config(mod.CONFIG, args, "energy")
    assert cfg.sweep_accuracy is False and cfg.adc_bits == (4, 8)
    cfg = resolve_config(mod.CONFIG, parser.parse_args(["energy"]), "energy")
    assert cfg.sweep_accuracy is True
    args = parser.parse_args(["sweep", "--retry-failed", "--no-progress"])
    assert args.progress is False
    assert resolve_config(commands()["sweep"].CONFIG, args, "sweep").retry_failed is True


@pytest.mark.parametrize("path", sorted(BEFORE.glob("*.json")), ids=lambda p: p.stem)
def test_config_json_written_before_still_replays(path, tmp_path):
    """Configs saved before the options got their help (same field and command names) load
    with --config, and options given beside them override booleans both ways."""
    saved = json.loads(path.read_text())
    command = saved["command"]
    mod = commands()[command]
    parser = build_parser()
    cfg = resolve_config(mod.CONFIG, parser.parse_args([command, "--config", str(path)]),
                         command)
    hints = typing.get_type_hints(mod.CONFIG)
    want = {k: tuple(v) if typing.get_origin(hints[k]) is tuple else v
            for k, v in saved["config"].items()}
    got = dataclasses.asdict(cfg)
    assert {k: got[k] for k in want} == want
    # saved before read schemes were options: replayed as those runs read, all rows at once,
    # 1 ohm wires where the file has no wire resistance
    if "rows_per_read" in got:
        assert got["rows_per_read"] in (0, (0,))
    if "r_wire_ohm" in got and "r_wire_ohm" not in want:
        assert got["r_wire_ohm"] == 1.0
    # saved before the workload linearisation was the default: replayed with the tangent
    if "linearise" in got:
        assert got["linearise"] == want.get("linearise", "tangent")
    for k in set(got) - set(want) - {"rows_per_read", "r_wire_ohm", "linearise"}:  # added since
        field = next(f for f in dataclasses.fields(mod.CONFIG) if f.name == k)
        assert got[k] == field.default, k
    bools = [f.name for f in dataclasses.fields(mod.CONFIG) if hints[f.name] is bool]
    for name in bools:
        flag = "--" + name.replace("_", "-")
        for argv, value in (([flag], True), (["--no-" + flag[2:]], False)):
            args = parser.parse_args([command, "--config", str(path), *argv])
            assert getattr(resolve_config(mod.CONFIG, args, command), name) is value


def test_an_old_energy_config_replays_whole_map_reads_on_1_ohm_wires():
    path = BEFORE / "energy.json"
    assert "r_wire_ohm" not in json.loads(path.read_text())["config"]
    args = build_parser().parse_args(["energy", "--config", str(path)])
    cfg = resolve_config(commands()["energy"].CONFIG, args, "energy")
    assert cfg.rows_per_read == 0 and cfg.r_wire_ohm == 1.0
    # a run started today keeps today's defaults
    cfg = resolve_config(commands()["energy"].CONFIG, build_parser().parse_args(["energy"]),
                         "energy")
    assert cfg.rows_per_read == 64 and cfg.r_wire_ohm is None


@pytest.mark.parametrize("command", ["classify", "zeroshot", "sweep", "energy"])
def test_old_configs_replay_the_tangent_and_new_runs_the_workload_linearisation(command,
                                                                                 tmp_path):
    cls = commands()[command].CONFIG
    today = resolve_config(cls, build_parser().parse_args([command]), command)
    assert today.linearise == "workload"
    saved = {k: v for k, v in dataclasses.asdict(today).items() if k != "linearise"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"command": command, "config": saved}, default=list))
    old = resolve_config(cls, build_parser().parse_args([command, "--config", str(path)]),
                         command)
    assert old.linearise == "tangent"
    again = resolve_config(cls, build_parser().parse_args(
        [command, "--config", str(path), "--linearise", "workload"]), command)
    assert again.linearise == "workload"


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["sweep", "--help"]])
def test_help_imports_no_heavy_library(argv):
    code = (
        "import sys\n"
        "from rram_cosim.cosim.cli.main import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out[-2000:]


def test_a_sweep_rerun_in_its_folder_resumes_with_the_saved_linearisation(tmp_path, capsys):
    cls = commands()["sweep"].CONFIG
    folder = tmp_path / "runs" / "old"
    folder.mkdir(parents=True)
    saved = {k: v for k, v in dataclasses.asdict(cls()).items() if k != "linearise"}
    (folder / "config.json").write_text(json.dumps({"command": "sweep", "config": saved},
                                                   default=list))
    base = ["sweep", "--out", str(tmp_path / "runs"), "--name", "old"]

    def lin(*extra):
        return resolve_config(cls, build_parser().parse_args([*base, *extra]), "sweep").linearise

    assert lin() == "tangent"
    assert "resuming" in capsys.readouterr().err
    assert lin("--linearise", "workload") == "workload"
    assert lin("--overwrite") == "workload"
    saved["linearise"] = "workload"
    (folder / "config.json").write_text(json.dumps({"command": "sweep", "config": saved},
                                                   default=list))
    assert lin() == "workload"
    # a new folder takes today's default
    assert resolve_config(cls, build_parser().parse_args(
        ["sweep", "--out", str(tmp_path / "runs"), "--name", "new"]), "sweep").linearise \
        == "workload"
