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
