import importlib.metadata
import json
import re
import shutil
import subprocess
import sys

import pytest
from rram_cosim.cosim.cli.runs import DEPENDENCIES, RunDir, git_state, load_config, versions
from rram_cosim.models.errors import ConfigError


def test_run_folder_config_and_versions(tmp_path):
    run = RunDir.create(tmp_path, "r1")
    run.write_config("demo", {"seed": 3})
    assert load_config(run.path / "config.json", "demo") == {"seed": 3}
    v = json.loads((run.path / "versions.json").read_text())
    assert set(v) >= {"rram_cosim", "ngspice", "numpy", "scipy"}
    assert not list(run.path.glob("*.tmp"))  # atomic writes leave no temp files


def test_bad_names_and_mismatched_configs(tmp_path):
    with pytest.raises(ConfigError, match="Run name"):
        RunDir.create(tmp_path, "../escape")
    run = RunDir.create(tmp_path, "r2")
    run.write_config("form", {})
    with pytest.raises(ConfigError, match="'form' run, not 'demo'"):
        load_config(run.path / "config.json", "demo")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ConfigError, match="Cannot read"):
        load_config(tmp_path / "junk.json", "demo")


def test_versions_reports_ngspice():
    assert versions()["ngspice"] != "not installed"


def test_versions_cover_every_dependency_without_importing_it():
    v = versions()
    reqs = importlib.metadata.requires("rram-cosim") or []
    names = {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower() for r in reqs if "extra ==" not in r}
    assert names and names <= set(DEPENDENCIES)
    for name in DEPENDENCIES:
        assert v[name] == importlib.metadata.version(name)
    code = ("import sys; from rram_cosim.cosim.cli.runs import versions; versions(); "
            "print(sorted({'h5py', 'dask', 'distributed', 'sklearn', 'networkx', 'matplotlib', "
            "'cffi'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_and_dirty_flag(tmp_path):
    assert git_state(tmp_path) == {}  # not a checkout: quietly absent
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    assert git_state(tmp_path) == {}  # nothing tracked yet, no HEAD
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert git_state(tmp_path) == {"git_commit": head, "git_dirty": False}
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_state(tmp_path) == {"git_commit": head, "git_dirty": True}
    (tmp_path / "untracked").mkdir()
    assert git_state(tmp_path / "untracked") == {}  # no tracked file there
    # This package's own checkout (the tests run from one, or from an install without git).
    here = git_state()
    assert here == {} or (re.fullmatch(r"[0-9a-f]{40}", here["git_commit"])
                          and isinstance(here["git_dirty"], bool))
    assert {k: versions()[k] for k in here} == here


# -- claiming a run folder -------------------------------------------------------------------
def _state(run_path):
    return json.loads((run_path / "run.json").read_text())


def test_a_run_is_marked_running_then_complete_and_releases_its_lock(tmp_path):
    run = RunDir.create(tmp_path, "r", command="form")
    assert _state(run.path)["state"] == "running" and (tmp_path / ".r.lock").is_file()
    run.finish()
    st = _state(run.path)
    assert st["state"] == "complete" and st["command"] == "form" and "finished" in st
    assert not (tmp_path / ".r.lock").exists()


def test_a_finished_run_is_refused_unless_overwrite_which_clears_it(tmp_path):
    run = RunDir.create(tmp_path, "r", command="form")
    (run.path / "g_10uA.npy").write_text("old")
    run.finish()
    with pytest.raises(ConfigError, match=r"already exists and holds a finished 'form' run.*"
                                          r"--overwrite"):
        RunDir.create(tmp_path, "r", command="form")
    again = RunDir.create(tmp_path, "r", command="form", overwrite=True)
    assert not (again.path / "g_10uA.npy").exists()
    assert _state(again.path)["state"] == "running"
    again.finish()


def test_an_unfinished_run_is_replaced_and_a_sweep_resumes(tmp_path, capsys):
    run = RunDir.create(tmp_path, "r", command="classify")
    (run.path / "stale.csv").write_text("x")
    run.lock.release()  # as if killed: no finish
    RunDir.create(tmp_path, "r", command="classify").finish()
    assert not (tmp_path / "r" / "stale.csv").exists()
    assert "replacing the unfinished 'classify' run" in capsys.readouterr().err
    s = RunDir.create(tmp_path, "s", command="sweep", resume=True)
    (s.path / "points").mkdir()
    s.lock.release()
    resumed = RunDir.create(tmp_path, "s", command="sweep", resume=True)
    assert (resumed.path / "points").is_dir()  # kept: the sweep continues in place
    resumed.finish()
    with pytest.raises(ConfigError, match="'sweep' run"):
        RunDir.create(tmp_path, "s", command="form", resume=True)
    # an unfinished sweep with finished units is never replaced by another command
    killed = RunDir.create(tmp_path, "k", command="sweep", resume=True)
    (killed.path / "points").mkdir()
    (killed.path / "points" / "unit.json").write_text("{}")
    killed.lock.release()
    with pytest.raises(ConfigError, match="--overwrite"):
        RunDir.create(tmp_path, "k", command="form")
    assert (tmp_path / "k" / "points" / "unit.json").exists()


def test_overwrite_removes_only_run_folders(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="not a rram-cosim run"):
        RunDir.create(tmp_path, "mine", command="form", overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a run folder"):
        RunDir.create(tmp_path, "afile", command="form")


HOLD = ("import sys, time; from rram_cosim.cosim.cli.runs import RunDir; "
        "RunDir.create(sys.argv[1], 'r', command='classify'); print('held', flush=True); "
        "time.sleep(120)")


def test_two_runs_cannot_claim_one_name_and_a_dead_holder_is_taken_over(tmp_path):
    import os
    import signal

    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=rf"in use by another run \(PID {proc.pid}, "
                                              r"'classify' since"):
            RunDir.create(tmp_path, "r", command="classify", overwrite=True)
        from rram_cosim.cosim.cli.runs import require_complete
        with pytest.raises(ConfigError, match=rf"still running \(PID {proc.pid}"):
            require_complete(tmp_path / "r", "--from")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # the dead run's lock file is still there, naming a PID that no longer runs: taken over
    assert (tmp_path / ".r.lock").is_file()
    run = RunDir.create(tmp_path, "r", command="classify")
    assert json.loads((tmp_path / ".r.lock").read_text())["pid"] == os.getpid()
    run.finish()


def test_require_complete_names_an_unfinished_run(tmp_path):
    from rram_cosim.cosim.cli.runs import replay_note, require_complete

    run = RunDir.create(tmp_path, "r", command="classify")
    run.write_config("classify", {"hidden": 60})
    run.lock.release()
    with pytest.raises(ConfigError, match="did not finish"):
        require_complete(run.path, "--from")
    assert "did not finish; replaying it" in replay_note(run.path / "config.json")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    require_complete(legacy, "--from")  # written before run states: accepted
    done = RunDir.create(tmp_path, "done", command="classify")
    done.finish()
    require_complete(done.path, "--from")
    assert replay_note(done.path / "config.json") is None


def test_overwrite_refuses_to_remove_an_input_of_the_run(tmp_path, capsys):
    """``--overwrite`` clears the folder first: an input inside it would be lost before it is
    read, so the run is refused with the option named."""
    import numpy as np
    from rram_cosim.cosim.cli.main import main

    run = RunDir.create(tmp_path, "t", command="tile")
    np.save(run.path / "gp.npy", np.full((4, 2), 10.0))
    np.save(run.path / "x.npy", np.ones((2, 4), dtype=bool))
    run.finish()
    code = main(["tile", "--runs", str(tmp_path), "--name", "t", "--overwrite",
                 "--g-pos", str(run.path / "gp.npy"), "--g-neg", str(run.path / "gp.npy"),
                 "--inputs", str(run.path / "x.npy"), "--backend", "ideal",
                 "--out", str(tmp_path / "y.npy"), "--no-progress"])
    assert code == 2
    assert "--overwrite would remove" in capsys.readouterr().err
    assert (run.path / "gp.npy").exists()


def test_unwritable_cache_subfolders_fall_back(tmp_path, monkeypatch):
    """A cache whose subfolder cannot be written (a file in its place stands in for a
    read-only folder, which root could still write) falls back with a warning."""
    from rram_cosim.cosim.spice.pool import default_cache_dir

    monkeypatch.setenv("RRAM_COSIM_CACHE", str(tmp_path))
    (tmp_path / "spice").write_text("not a folder")
    with pytest.warns(RuntimeWarning, match="cannot be written"):
        folder = default_cache_dir()
    assert folder != tmp_path / "spice" and folder.is_dir()


def test_os_error_codes_survive_pickling():
    import errno
    import pickle

    from rram_cosim.models.errors import OutputError

    e = OutputError.of("/x/y", OSError(errno.ENOSPC, "No space left on device", "/x/y"))
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is OutputError and back.errno == e.errno == errno.ENOSPC
    assert str(back) == str(e)
