import json

import pytest
from rram_cosim.cosim.cli.runs import RunDir, load_config, versions
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
