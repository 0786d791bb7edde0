"""Fault injection: what a user meets when ngspice, the disk, the inputs or the processes fail.

Every case here was once a traceback, a silently wrong result or a leftover process. The
standard each one is held to: one clear line naming the option or file at fault (exit 2), no
lost work, no stale files taken for results, no process outliving its parent.

Small decks and fake ngspice executables (shell scripts on PATH) keep the module fast. The tests
run as root in CI, where permission bits do not stop writes; an unwritable folder is therefore
made as a path *under a regular file*, which no user can create.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import pkgutil
from pathlib import Path

import pytest
from rram_cosim.cosim.spice import pool as spice_pool
from rram_cosim.cosim.spice.errors import SimulationError
from rram_cosim.cosim.spice.rawfile import RawFileError
from rram_cosim.models.errors import CosimError
from rram_cosim.netlists.deck import Deck


# -- errors cross process boundaries ---------------------------------------------------------
def _all_error_classes() -> list[type[CosimError]]:
    """Every CosimError subclass of the package (all modules imported first)."""
    for top in ("models", "netlists", "cosim", "analysis"):
        pkg = importlib.import_module(f"rram_cosim.{top}")
        for mod in pkgutil.walk_packages(pkg.__path__, f"rram_cosim.{top}."):
            importlib.import_module(mod.name)
    out, todo = [], [CosimError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(out), key=lambda c: c.__qualname__)


def make_error(cls: type[CosimError]) -> CosimError:
    """An instance with every attribute its class sets (a new class with other required
    arguments fails here until it is added)."""
    if issubclass(cls, RawFileError):
        return cls("truncated header", path="runs/x.raw", offset=17)
    if issubclass(cls, SimulationError):
        return cls("ngspice failed", deck_path="runs/deck.cir", returncode=3,
                   output_tail="last line")
    return cls("something is wrong")


def raising_run_deck(deck: Deck, options) -> None:
    """Stands in for run_deck in a pool worker: raises the error the deck's title names."""
    module, name = deck.text.splitlines()[0].split(":")
    raise make_error(getattr(importlib.import_module(module), name))


def test_every_error_class_is_covered():
    names = {c.__name__ for c in _all_error_classes()}
    assert {"NgspiceNotFoundError", "SimulationTimeoutError", "ConfigError",
            "RawFileError", "EspeakError"} <= names


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.__name__)
def test_error_pickles_with_its_attributes(cls):
    err = make_error(cls)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert str(back) == str(err) and back.args == err.args
    assert back.__dict__ == err.__dict__


def test_each_error_raised_in_a_pool_worker_arrives_intact(monkeypatch):
    classes = _all_error_classes()
    decks = [Deck(f"{c.__module__}:{c.__qualname__}\nr1 a 0 1k\nv1 a 0 1\n.op\n.end\n")
             for c in classes]
    monkeypatch.setattr(spice_pool, "run_deck", raising_run_deck)  # forked workers inherit it
    out = spice_pool.run_decks(decks, n_workers=2, cache=False, progress=False,
                               on_error="return")
    for cls, got in zip(classes, out):
        want = make_error(cls)
        assert type(got) is cls, (cls, got)
        assert str(got) == str(want) and got.__dict__ == want.__dict__
    # and the first one is raised as itself, not as a TypeError of its rebuild
    not_found = classes.index(next(c for c in classes if c.__name__ == "NgspiceNotFoundError"))
    with pytest.raises(classes[not_found]):
        spice_pool.run_decks([decks[not_found]] * 2, n_workers=2, cache=False, progress=False)


def test_an_error_that_does_not_pickle_still_arrives_as_an_error():
    class Local(Exception):  # a local class cannot be pickled by reference
        pass

    got = spice_pool.portable_error(Local("lost?"))
    assert isinstance(got, SimulationError) and "Local: lost?" in str(got)
    same = ValueError("fine")
    assert spice_pool.portable_error(same) is same


def test_not_found_error_stays_an_os_error():
    from rram_cosim.cosim.spice.errors import NgspiceNotFoundError, SimulationTimeoutError

    for cls, base in ((NgspiceNotFoundError, FileNotFoundError),
                      (SimulationTimeoutError, TimeoutError)):
        back = pickle.loads(pickle.dumps(make_error(cls)))
        assert isinstance(back, base) and isinstance(back, CosimError)
        assert back.deck_path == Path("runs/deck.cir") and back.returncode == 3


# -- sweeps with failures --------------------------------------------------------------------
TINY_SWEEP = {"icc": "5e-6,2e-5", "seeds": "1", "n-train": "60", "n-val": "30",
              "n-test": "30", "hidden": "16", "crop": "8", "n-steps": "10", "v-th": "5.0",
              "rec-level": "0.25", "readout-epochs": "10", "cal-maps": "2",
              "cal-vectors": "8", "spot-cells": "0", "workers": "1"}


def sweep_args(root: Path, name: str, **over: str) -> list[str]:
    opts = {**TINY_SWEEP, "cache-dir": str(root / "cache"), **over}
    args = ["sweep", "--out", str(root / "runs"), "--name", name, "--no-progress"]
    for k, v in opts.items():
        args += [f"--{k}", v]
    return args


@pytest.fixture
def no_ngspice(tmp_path, monkeypatch):
    """PATH without ngspice (an empty folder)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def test_sweep_whose_units_all_fail_writes_its_report_and_exits_1(tmp_path, no_ngspice,
                                                                   capsys):
    from rram_cosim.cosim.cli.main import main

    code = main(sweep_args(tmp_path, "nf", **{"spot-cells": "2"}))
    err = capsys.readouterr().err
    assert code == 1, err
    run = tmp_path / "runs" / "nf"
    report = (run / "report.md").read_text()
    assert "NgspiceNotFoundError" in report and "Failed units" in report
    assert "2 of 2 unit(s) failed" in err and "Traceback" not in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n_failed"] == 2


def test_sweep_headline_counts_failed_units_and_spot_checks(tmp_path, monkeypatch, capsys):
    from rram_cosim.cosim.cli.main import main
    from rram_cosim.cosim.tasks import sweep as sweep_task

    def fake_compute(unit, cache, calibrated=None):
        if unit.index == 0:
            raise RuntimeError("unit zero broke")
        return {"g_mean_us": 10.0, "g_std_us": 1.0, "val_acc": 0.5, "test_acc": 0.5,
                "e_hybrid_uj": 1.0, "spot_cells": 2, "spot_compared": 1,
                "spot_median_rel_diff": 1e-5, "spot_max_rel_diff": 1e-5, "spot_failed": 1,
                "spot_formed_mismatch": 0}

    monkeypatch.setattr(sweep_task, "_compute", fake_compute)
    code = main(sweep_args(tmp_path, "mixed"))
    out, err = capsys.readouterr()
    assert code == 1
    headline = json.loads(out[out.index("{"):])
    assert headline["failed"] == 1 and headline["spot_check_failed_cells"] == 1
    assert "1 of 2 unit(s) failed and 1 spot-check cell(s) failed" in err
    assert (tmp_path / "runs" / "mixed" / "report.md").is_file()


# -- ngspice missing: one line, exit 2, from every command that runs it -----------------------
@pytest.fixture
def small_tile(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    d = tmp_path / "in"
    d.mkdir()
    np.save(d / "gp.npy", rng.normal(14.2, 2.46, (4, 2)))
    np.save(d / "gn.npy", rng.normal(14.2, 2.46, (4, 2)))
    np.save(d / "x.npy", rng.random((3, 4)) < 0.5)
    return d


@pytest.mark.parametrize("command", ["tile", "form", "calibrate"])
def test_missing_ngspice_is_one_clear_line(command, tmp_path, small_tile, no_ngspice, capsys):
    from rram_cosim.cosim.cli.main import main

    d = small_tile
    argv = {
        "tile": ["tile", "--g-pos", str(d / "gp.npy"), "--g-neg", str(d / "gn.npy"),
                 "--inputs", str(d / "x.npy"), "--backend", "spice", "--out",
                 str(tmp_path / "y.npy"), "--runs", str(tmp_path / "runs"), "--workers", "2"],
        "form": ["form", "--backend", "spice", "--rows", "4", "--cols", "4", "--cells", "4",
                 "--out", str(tmp_path / "runs")],
        "calibrate": ["calibrate", "--reference", "spice", "--rows", "4", "--cols", "2",
                      "--r-wire-ohm", "1",
                      "--n-vectors", "4", "--n-maps", "1", "--n-test-maps", "1",
                      "--out", str(tmp_path / "s.json"), "--runs", str(tmp_path / "runs")],
    }[command]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rram-cosim: error: The ngspice executable 'ngspice' was not found")
    assert "Traceback" not in err and "TypeError" not in err


# -- run folders -----------------------------------------------------------------------------
def test_a_second_run_of_a_name_is_refused_and_overwrite_leaves_no_stale_file(tmp_path,
                                                                              capsys):
    from rram_cosim.cosim.cli.main import main

    base = ["form", "--rows", "8", "--cols", "8", "--out", str(tmp_path), "--name", "f",
            "--no-progress"]
    assert main([*base, "--icc", "5e-6,1e-5,2e-5"]) == 0
    maps = tmp_path / "f" / "maps"
    assert len(list(maps.glob("g_*.npy"))) == 3
    capsys.readouterr()
    assert main([*base, "--icc", "5e-6"]) == 2
    err = capsys.readouterr().err
    assert "already exists and holds a finished 'form' run" in err and "--overwrite" in err
    assert len(list(maps.glob("g_*.npy"))) == 3  # the refused run touched nothing
    assert main([*base, "--icc", "5e-6", "--overwrite"]) == 0
    assert [p.name for p in maps.glob("g_*.npy")] == ["g_5uA.npy"]


def _wait_for(path: Path, proc, timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_a_killed_run_is_never_taken_for_a_finished_one(tmp_path, capsys):
    import os
    import signal
    import subprocess
    import sys

    from rram_cosim.cosim.cli.main import main

    run = tmp_path / "c"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rram_cosim.cosim.cli.main", "classify", "--out", str(tmp_path),
         "--name", "c", "--hidden", "60", "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(run / "config.json", proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert json.loads((run / "run.json").read_text())["state"] == "running"
    assert main(["energy", "--from", str(run), "--out", str(tmp_path), "--name", "e",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--from {run}: it did not finish" in err
    assert not (tmp_path / "e").exists()  # refused before anything was computed


def test_two_runs_on_one_name_the_second_is_told_who_holds_it(tmp_path, capsys):
    import os
    import signal
    import subprocess
    import sys

    from rram_cosim.cosim.cli.main import main

    hold = ("import sys, time; from rram_cosim.cosim.cli.runs import RunDir; "
            "RunDir.create(sys.argv[1], 'c', command='classify'); print('held', flush=True); "
            "time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        for extra in ([], ["--overwrite"]):
            assert main(["classify", "--out", str(tmp_path), "--name", "c", "--hidden", "40",
                         "--no-progress", *extra]) == 2
            err = capsys.readouterr().err
            assert f"in use by another run (PID {proc.pid}, 'classify' since" in err
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait()


# -- unwritable places: checked first, one line, caches fall back ----------------------------
@pytest.fixture
def a_file(tmp_path) -> Path:
    """A regular file: nothing can be created under it, not even by root."""
    f = tmp_path / "a-file"
    f.write_text("not a folder")
    return f


def test_runs_root_that_is_a_file_or_under_one_is_refused_first(tmp_path, a_file, capsys):
    from rram_cosim.cosim.cli.main import main

    for root, why in ((a_file, "it is a file, not a folder"),
                      (a_file / "runs", "Not a directory")):
        assert main(["form", "--rows", "8", "--cols", "8", "--out", str(root),
                     "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"rram-cosim: error: Cannot write the runs root (--out) {root}")
        assert why in err and len(err.splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits; the paths under "
                    "a regular file above fault the same checks")
def test_a_read_only_runs_root_is_one_line(tmp_path, capsys):
    from rram_cosim.cosim.cli.main import main

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["form", "--rows", "8", "--cols", "8", "--out", str(ro),
                     "--no-progress"]) == 2
    finally:
        ro.chmod(0o755)
    err = capsys.readouterr().err.strip()
    assert err == (f"rram-cosim: error: Cannot write the runs root (--out) {ro}: Permission "
                   "denied. Choose a writable folder.")


def test_permission_denied_is_one_line_also_as_root(tmp_path, monkeypatch, capsys):
    """Root writes anywhere, so the refusal is injected where the check probes the folder."""
    import errno

    from rram_cosim.cosim.cli.main import main
    from rram_cosim.models import io

    real = io.tempfile.mkstemp

    def denied(*a, **k):
        if Path(k.get("dir", "")) == tmp_path / "ro":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(*a, **k)

    monkeypatch.setattr(io.tempfile, "mkstemp", denied)
    assert main(["form", "--rows", "8", "--cols", "8", "--out", str(tmp_path / "ro"),
                 "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"rram-cosim: error: Cannot write the runs root (--out) {tmp_path / 'ro'}: Permission "
        "denied. Choose a writable folder.")


def _folder(p: Path) -> Path:
    p.mkdir()
    return p


def test_output_file_is_checked_before_any_computation(tmp_path, a_file, small_tile, capsys,
                                                       monkeypatch):
    from rram_cosim.cosim.cli.main import main
    from rram_cosim.cosim.tasks import tile as tile_task

    def never(*a, **k):
        raise AssertionError("computed before the output was checked")

    monkeypatch.setattr(tile_task, "run_vmm", never)
    d = small_tile
    for out, why in ((a_file / "y.npy", "a-file is a file, not a folder"),
                     (_folder(tmp_path / "dir.npy"), "is a folder; name the file")):
        assert main(["tile", "--g-pos", str(d / "gp.npy"), "--inputs", str(d / "x.npy"),
                     "--backend", "ideal", "--out", str(out), "--runs", str(tmp_path / "runs"),
                     "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert why in err and str(out) in err
    assert not (tmp_path / "runs" / "tile").exists()


def test_a_full_disk_ends_in_one_line_naming_the_file(tmp_path):
    """RLIMIT_FSIZE makes every write past 20 kB fail (EFBIG) as a full disk would."""
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    out = subprocess.run(
        [sys.executable, "-m", "rram_cosim.cosim.cli.main", "form", "--rows", "8", "--cols",
         "8", "--icc", "5e-6,1e-5", "--out", str(tmp_path), "--no-progress"],
        check=False, preexec_fn=limit, capture_output=True, text=True, timeout=300)
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr[-3000:]
    assert err[-1].startswith(f"rram-cosim: error: Cannot write {tmp_path / 'form'}")
    assert "File too large" in err[-1] and "Traceback" not in out.stderr
    assert not list((tmp_path / "form").rglob("*.tmp"))  # no half-written temp file left


def test_disk_full_in_an_atomic_write_names_the_target(tmp_path, monkeypatch):
    import errno

    from rram_cosim.models import io
    from rram_cosim.models.errors import OutputError

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "replace", full)
    with pytest.raises(OutputError, match=rf"Cannot write {tmp_path / 'r.md'}: No space left "
                                          r"on device\. The disk is full") as info:
        io.atomic_write_text(tmp_path / "r.md", "x")
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mask", [0o002, 0o022, 0o077])
def test_outputs_follow_the_umask(tmp_path, mask):
    import subprocess
    import sys

    code = ("import os, sys; os.umask(int(sys.argv[2], 8)); "
            "from rram_cosim.models.io import atomic_write_text; "
            "from rram_cosim.cosim.cli.runs import RunDir; "
            "atomic_write_text(sys.argv[1] + '/a.txt', 'x'); "
            "r = RunDir.create(sys.argv[1], 'r', command='demo'); r.finish()")
    subprocess.run([sys.executable, "-c", code, str(tmp_path), oct(mask)[2:]], check=True,
                   timeout=120)
    for f in (tmp_path / "a.txt", tmp_path / "r" / "run.json"):
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, f


def test_an_unwritable_cache_falls_back_with_a_warning(tmp_path, a_file, monkeypatch, capsys):
    from rram_cosim.cosim.cli.main import main
    from rram_cosim.cosim.data.datasets import load_dataset
    from rram_cosim.models import io

    monkeypatch.setattr(io, "_fallbacks", {})
    monkeypatch.setenv("RRAM_COSIM_CACHE", str(a_file / "cache"))
    with pytest.warns(RuntimeWarning, match=rf"{a_file / 'cache'} cannot be written "
                                            r"\(Not a directory\); caching in"):
        root = io.cache_root()
    assert root.is_dir() and str(root).startswith(str(Path(io.tempfile.gettempdir())))
    # a dataset cache that cannot be written: the built set is still returned
    with pytest.warns(RuntimeWarning, match="cannot be written"):
        ds = load_dataset("digits-events", "val", seed=0, cache_dir=a_file / "data",
                          n_samples=10)
    assert len(ds) == 10 and ds.metadata["cache_path"] is None
    assert main(["form", "--rows", "8", "--cols", "8", "--out", str(tmp_path / "runs"),
                 "--no-progress"]) == 0


def test_a_sweeps_unwritable_cache_dir_falls_back_on_the_coordinator_only(
        tmp_path, a_file, monkeypatch):
    """--cache-dir is checked by the coordinator (a fallback with a warning naming the
    option); a task takes it as given, so that a worker that cannot write it fails the task
    with the error in its units' rows."""
    from rram_cosim.cosim.tasks.sweep import _cache_path
    from rram_cosim.models import io

    monkeypatch.setattr(io, "_fallbacks", {})
    assert _cache_path(str(tmp_path / "c"), check=True) == tmp_path / "c"
    with pytest.warns(RuntimeWarning, match=r"--cache-dir\) .* cannot be written"):
        fallback = _cache_path(str(a_file / "c"), check=True)
    assert fallback.is_dir() and str(fallback).startswith(io.tempfile.gettempdir())
    assert _cache_path(str(a_file / "c")) == a_file / "c"


# -- plausibility: wrong units, types and files are refused, on every backend ----------------
@pytest.fixture(scope="module")
def surrogate_file(tmp_path_factory) -> Path:
    from rram_cosim.cosim.engines.calibrate import calibrate_tile
    from rram_cosim.models.params import TileSpec

    path = tmp_path_factory.mktemp("sur") / "s.json"
    calibrate_tile(TileSpec(rows=4, cols=2), n_maps=1, n_test_maps=0, n_vectors=4,
                   seed=0).surrogate.save(path)
    return path


def _backends(surrogate_file):
    from rram_cosim.cosim.engines.nodal import NodalBackend
    from rram_cosim.cosim.spice.backend import SpiceBackend
    from rram_cosim.models.params import TileSpec
    from rram_cosim.models.tile.ideal import IdealBackend
    from rram_cosim.models.tile.surrogate import TileSurrogate
    from rram_cosim.models.tile.tiling import TiledBackend

    spec = TileSpec(rows=4, cols=2)
    return {"ideal": IdealBackend(spec), "nodal": NodalBackend(spec),
            "spice": SpiceBackend(spec), "surrogate": TileSurrogate.load(surrogate_file),
            "tiled": TiledBackend(IdealBackend(spec), 2, 2)}


@pytest.mark.parametrize("backend", ["ideal", "nodal", "spice", "surrogate", "tiled"])
def test_implausible_maps_are_refused_on_every_backend(backend, surrogate_file):
    import warnings

    import numpy as np
    from rram_cosim.models.errors import ConfigError, DomainWarning

    b = _backends(surrogate_file)[backend]
    g = np.random.default_rng(0).normal(14.2, 2.46, (4, 2))
    with pytest.raises(ConfigError, match=r"'g_pos_us' holds only conductances below 0.0001 "
                                          r"uS.*are these siemens\? .*multiply the map by 1e6"):
        b.bind(g * 1e-6, g * 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DomainWarning)  # the surrogate says it extrapolates
        b.bind(np.full((4, 2), 1e-3), np.full((4, 2), 1e-3))  # nothing formed: legal
    with pytest.raises(ConfigError, match="booleans"):
        b.bind(g > 14, g)
    with pytest.raises(ConfigError, match="dtype <U"):
        b.bind(g.astype(str), g)
    with pytest.raises(ConfigError, match="is empty"):
        b.bind(np.zeros((0, 2)), np.zeros((0, 2)))
    bound = b.bind(g, g)  # all zero is a legal map (no cell conducts), and so is this one
    with pytest.raises(ConfigError, match="batch of inputs is empty"):
        bound.apply(np.zeros((0, 4)), np.random.default_rng(0))
    b.bind(np.zeros((4, 2)), np.zeros((4, 2)))


@pytest.fixture
def tile_cli(tmp_path, small_tile):
    from rram_cosim.cosim.cli.main import main

    def run(*extra: str, backend: str = "ideal") -> int:
        args = {"--g-pos": str(small_tile / "gp.npy"), "--g-neg": str(small_tile / "gn.npy"),
                "--inputs": str(small_tile / "x.npy")}
        args.update(dict(zip(extra[::2], extra[1::2])))
        argv = ["tile", "--backend", backend, "--out", str(tmp_path / "y.npy"), "--runs",
                str(tmp_path / "runs"), "--no-progress", "--overwrite"]
        for k, v in args.items():
            argv += [k, v]
        return main(argv)

    return run


def test_tile_inputs_that_are_wrong_are_named(tile_cli, tmp_path, capsys):
    import numpy as np

    g = np.random.default_rng(0).normal(14.2, 2.46, (4, 2))
    np.save(tmp_path / "siemens.npy", g * 1e-6)
    np.save(tmp_path / "tiny.npy", np.full((4, 2), 5e-4))
    np.save(tmp_path / "bool.npy", g > 14)
    np.save(tmp_path / "gn3.npy", g[:3])
    np.save(tmp_path / "x0.npy", np.zeros((0, 4), dtype=bool))
    (tmp_path / "empty.npy").write_bytes(b"")
    cases = [
        (["--g-pos", str(tmp_path / "siemens.npy")],
         f"--g-pos {tmp_path / 'siemens.npy'} holds only conductances below 0.001 uS"),
        (["--g-pos", str(tmp_path / "tiny.npy")], "are these siemens?"),
        (["--g-pos", str(tmp_path / "bool.npy")],
         (f"--g-pos {tmp_path / 'bool.npy'} must hold conductances in uS as numbers. Got "
          "booleans")),
        (["--g-neg", str(tmp_path / "gn3.npy")],
         f"--g-neg {tmp_path / 'gn3.npy'} has shape (3, 2), but --g-pos"),
        (["--inputs", str(tmp_path / "x0.npy")], "holds no input vectors"),
        (["--g-pos", str(tmp_path / "empty.npy")],
         f"--g-pos {tmp_path / 'empty.npy'} is empty (0 bytes)"),
        (["--inputs", str(tmp_path / "missing.npy")], "does not exist"),
    ]
    for extra, message in cases:
        assert tile_cli(*extra) == 2, message
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_pmos_card_is_refused(tile_cli, tmp_path, capsys):
    lib = tmp_path / "p.lib"
    lib.write_text("* a p-channel device\n.model pacc PMOS (level=1 vto=-0.5 kp=1e-4)\n")
    assert tile_cli("--card", "custom", "--lib-path", str(lib), "--model-name", "pacc",
                    backend="spice") == 2
    err = capsys.readouterr().err
    assert f"The transistor card {lib} defines 'pacc' as PMOS" in err and "NMOS" in err
    assert tile_cli("--card", "custom", "--lib-path", str(lib), "--model-name", "nacc",
                    backend="spice") == 2
    assert "has no '.model nacc nmos ...' line" in capsys.readouterr().err


def _edited(src: Path, dst: Path, edit) -> Path:
    d = json.loads(src.read_text())
    d = edit(d)
    dst.write_text(json.dumps(d))
    return dst


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: (d["spec"]["tia"].pop("r_f_ohm"), d)[1], "Missing key(s) 'spec.tia.r_f_ohm'"),
    (lambda d: (d.pop("spec"), d)[1], "Missing key(s) 'spec'"),
    (lambda d: (d["domain"].pop("g_max_us"), d)[1], "Missing key(s) 'domain.g_max_us'"),
    (lambda d: [d], "it holds a JSON list, not an object"),
    (lambda d: dict(d, vth_v=5.0), "Keys 'g_on_s' = "),
    (lambda d: dict(d, g_on_s=-1e-4), "Key 'g_on_s' must be a positive conductance"),
    (lambda d: dict(d, g_on_s="fast"), "Key 'g_on_s' must be a finite number"),
])
def test_surrogate_file_errors_name_the_file_and_the_key(surrogate_file, tmp_path, tile_cli,
                                                         capsys, edit, message):
    bad = _edited(surrogate_file, tmp_path / "bad.json", edit)
    assert tile_cli("--surrogate", str(bad), backend="surrogate") == 2
    err = capsys.readouterr().err
    assert f"Cannot load the surrogate file {bad}: " in err and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_an_unreachable_dask_scheduler_is_one_line(tmp_path, monkeypatch, capsys):
    import socket

    from rram_cosim.cosim.cli.main import main
    from rram_cosim.cosim.tasks import sweep_graph

    monkeypatch.setattr(sweep_graph, "DASK_CONNECT_TIMEOUT_S", 2)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(sweep_args(tmp_path, "d", scheduler=f"tcp://127.0.0.1:{port}")) == 2
    err = capsys.readouterr().err
    assert f"Cannot reach the Dask scheduler at --scheduler tcp://127.0.0.1:{port}" in err
    assert "Traceback" not in err


# -- children end with their parent ----------------------------------------------------------
def fake_ngspice(folder: Path, body: str = "exec sleep 600") -> Path:
    """A folder holding an ``ngspice`` that answers ``-v`` like ngspice 42 and otherwise
    records its PID in ``folder/pids/`` and runs ``body`` (default: hangs)."""
    (folder / "pids").mkdir(parents=True, exist_ok=True)
    exe = folder / "ngspice"
    exe.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-v" ]; then echo "** ngspice-42 : Circuit level simulation program"; '
        "exit 0; fi\n"
        f'echo $$ > "{folder}/pids/$$"\n'
        f"{body}\n")
    exe.chmod(0o755)
    return folder


def _pids(folder: Path) -> list[int]:
    return [int(p.name) for p in (folder / "pids").glob("*")]


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(p.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _all_end(pids, timeout: float = 20.0) -> list[int]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

SMALL_DECK = Deck("rc\nv1 a 0 1\nr1 a b 1k\nr2 b 0 1k\n.op\n.end\n")


@needs_proc
def test_a_timed_out_ngspice_is_killed_and_the_wait_is_announced(tmp_path, monkeypatch,
                                                                  capsys):
    from rram_cosim.cosim.spice import runner
    from rram_cosim.cosim.spice.errors import SimulationTimeoutError

    fake = fake_ngspice(tmp_path / "fake")
    monkeypatch.setattr(runner, "WAIT_NOTICE_S", 0.3)
    opts = runner.RunOptions(executable=str(fake / "ngspice"), run_dir=tmp_path / "runs",
                             timeout_s=1.5, retry=False)
    with pytest.raises(SimulationTimeoutError, match=r"timeout_s=1.5 s .*it was stopped"):
        runner.run_deck(SMALL_DECK, opts)
    assert _pids(fake) and _all_end(_pids(fake), 5) == []
    assert "rram-cosim: waiting on ngspice for" in capsys.readouterr().err


@needs_proc
def test_the_automatic_timeout_scales_with_the_deck(tmp_path, monkeypatch):
    import numpy as np
    from rram_cosim.cosim.spice import runner
    from rram_cosim.cosim.spice.checks import analyses, logical_lines
    from rram_cosim.cosim.spice.errors import SimulationTimeoutError
    from rram_cosim.models.params import TileSpec
    from rram_cosim.netlists.tile import tile_deck

    def auto(rows: int) -> float:
        g = np.full((rows, rows), 10.0)
        deck = tile_deck(TileSpec(rows=rows, cols=rows), g, g, np.ones((1, rows)))
        lines = logical_lines(deck.text)
        return runner.auto_timeout_s(lines, analyses(lines))

    small, large = auto(2), auto(32)
    assert runner.AUTO_TIMEOUT_BASE_S <= small < large
    assert large - runner.AUTO_TIMEOUT_BASE_S > 100 * (small - runner.AUTO_TIMEOUT_BASE_S)
    assert runner.RunOptions().timeout_s == "auto"
    fake = fake_ngspice(tmp_path / "fake")
    monkeypatch.setattr(runner, "AUTO_TIMEOUT_BASE_S", 1.0)
    opts = runner.RunOptions(executable=str(fake / "ngspice"), run_dir=tmp_path / "runs",
                             retry=False)
    with pytest.raises(SimulationTimeoutError, match="scaled to the deck"):
        runner.run_deck(SMALL_DECK, opts)
    assert _all_end(_pids(fake), 5) == []


def _default_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _pipe_holders(fd: int) -> list[str]:
    """Processes holding the pipe behind ``fd``: PID, wait channel, the state and signal
    masks of /proc/PID/status, and the command line."""
    import os

    pipe = f"pipe:[{os.fstat(fd).st_ino}]"
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or d.name == str(os.getpid()):
            continue
        held = False
        try:
            fds = list((d / "fd").iterdir())
        except OSError:
            continue
        for f in fds:
            try:
                held = held or os.readlink(f) == pipe
            except OSError:  # this fd closed meanwhile
                continue
        if not held:
            continue
        try:
            status = [line for line in (d / "status").read_text().splitlines()
                      if line.split(":")[0] in ("State", "PPid", "SigBlk", "SigIgn", "SigPnd",
                                                "ShdPnd", "Threads")]
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
            out.append(f"{d.name} [{(d / 'wchan').read_text()}] {'; '.join(status)} :: {cmd}")
        except OSError:
            continue
    return out


def _start_and_stop(argv: list[str], fake: Path, n_ngspice: int, sig: int,
                    cwd: Path) -> tuple[int, str, set[int]]:
    """Start the command line, wait for ``n_ngspice`` ngspice runs, record every descendant,
    send ``sig`` to the command's process alone; its exit code, stderr and the descendants."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}",
               RRAM_COSIM_CACHE=str(cwd / "cache"))
    # Ctrl-C must reach it even where this test runs with SIGINT ignored (a background job)
    proc = subprocess.Popen([sys.executable, "-m", "rram_cosim.cosim.cli.main", *argv],
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)  # noqa: PLW1509 - no threads here
    try:
        deadline = time.monotonic() + 180
        while len(_pids(fake)) < n_ngspice:
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "ngspice never started"
            time.sleep(0.05)
        time.sleep(0.3)
        family = _descendants(proc.pid) | set(_pids(fake))
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            holders = _pipe_holders(proc.stderr.fileno())
            for pid in family:  # leave nothing running into the next tests
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            raise AssertionError("the command's stderr stayed open 60 s after the signal; "
                                 f"held by {holders}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err, family


@needs_proc
@pytest.mark.parametrize(("sig", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_tile_on_spice_workers_and_ngspice_end_with_the_command(tmp_path, small_tile, sig,
                                                                 code):
    import signal

    fake = fake_ngspice(tmp_path / "fake")
    d = small_tile
    argv = ["tile", "--g-pos", str(d / "gp.npy"), "--inputs", str(d / "x.npy"), "--backend",
            "spice", "--workers", "2", "--out", str(tmp_path / "y.npy"), "--runs",
            str(tmp_path / "runs"), "--no-progress"]
    # 3 vectors: up to 2 decks at once (one per worker)
    rc, err, family = _start_and_stop(argv, fake, 1, getattr(signal, sig), tmp_path)
    assert rc == code, err[-3000:]
    assert "Traceback" not in err
    assert len(family) >= 2  # the worker(s) and ngspice
    assert _all_end(family) == [], err[-3000:]
    assert json.loads((tmp_path / "runs" / "tile" / "run.json").read_text())["state"] \
        == "running"


_ORPHAN_PARENT = """
import multiprocessing, signal, sys, time
from rram_cosim.cosim.spice.processes import worker_signals

def deaf_worker(ready):
    worker_signals()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the kernel's one-shot signal goes unheard
    open(ready, "w").close()
    time.sleep(120)

if __name__ == "__main__":
    p = multiprocessing.get_context("spawn").Process(target=deaf_worker, args=(sys.argv[1],))
    p.start()
    print(p.pid, flush=True)
    time.sleep(120)
"""


@needs_proc
def test_a_worker_that_misses_its_parents_death_still_ends(tmp_path):
    """The kernel's parent-death signal is sent once; a worker whose handler does not run
    then (here: it ignores SIGTERM) still ends, by its own check of its parent."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script, ready = tmp_path / "parent.py", tmp_path / "ready"
    script.write_text(_ORPHAN_PARENT)
    worker = None
    with subprocess.Popen([sys.executable, str(script), str(ready)], stdout=subprocess.PIPE,
                          text=True) as parent:
        try:
            worker = int(parent.stdout.readline())
            deadline = time.monotonic() + 60
            while not ready.exists():  # initializer run, SIGTERM ignored from here on
                assert time.monotonic() < deadline and _alive(worker), "the worker never ran"
                time.sleep(0.05)
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait()
            assert _all_end([worker], timeout=10.0) == []
        finally:
            if parent.poll() is None:
                parent.kill()
            if worker is not None and _alive(worker):  # it ignores SIGTERM
                os.kill(worker, signal.SIGKILL)


@needs_proc
@pytest.mark.parametrize(("sig", "code"), [("SIGTERM", 143), ("SIGKILL", -9)])
def test_a_stopped_sweep_leaves_no_worker_or_resource_tracker(tmp_path, sig, code):
    """SIGKILL allows the coordinator no clean-up: its workers learn of its death from the
    kernel (Linux) and take their ngspice runs with them."""
    import signal

    fake = fake_ngspice(tmp_path / "fake")
    argv = sweep_args(tmp_path, "w", workers="2", **{"spot-cells": "2"})
    rc, err, family = _start_and_stop(argv, fake, 2, getattr(signal, sig), tmp_path)
    assert rc == code, err[-3000:]
    assert len(family) >= 4  # two workers, their ngspice runs, the resource tracker
    assert _all_end(family) == [], err[-3000:]


# -- messages name the option ----------------------------------------------------------------
@pytest.mark.parametrize(("argv", "message"), [
    (["--icc", "-5e-6"], ("The 'icc' parameter of FormConfig must be a number in (0, 0.001] "
                          "A. Got -5e-06")),
    (["--icc", "5e-6,-1e-6"], "Got -1e-06"),
    (["--icc", "-1,2"], "Got -1.0"),
    (["--icc", "5e-6,abc"], "--icc 5e-6,abc: Cannot read 'abc' as a number."),
    (["--rows", "eight"], "--rows eight: Cannot read 'eight' as an integer."),
    (["--v-form", "-3"], "'v_form' parameter of FormConfig must be a number in [1, 5] V"),
])
def test_bad_values_are_named_by_their_option(tmp_path, capsys, argv, message):
    from rram_cosim.cosim.cli.main import main

    assert main(["form", "--out", str(tmp_path), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "expected one argument" not in err, err
    assert not (tmp_path / "form").exists()


def test_negative_values_are_joined_to_their_option():
    from rram_cosim.cosim.cli.main import join_negative_values

    assert join_negative_values(["form", "--icc", "-5e-6", "--no-progress"]) == \
        ["form", "--icc=-5e-6", "--no-progress"]
    assert join_negative_values(["--x=1", "-2", "--y", "--z", "-.5"]) == \
        ["--x=1", "-2", "--y", "--z=-.5"]
