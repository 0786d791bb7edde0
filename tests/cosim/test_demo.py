"""The thin end-to-end run, on a reduced size, with real ngspice; and its replay."""

import json

import pandas as pd
import pytest
from rram_cosim.cosim.cli.commands.demo import run_demo
from rram_cosim.cosim.cli.main import main
from rram_cosim.cosim.tasks.configs.demo import DemoConfig
from rram_cosim.models.errors import ConfigError

SMALL = {"tile_rows": 8, "tile_cols": 8, "n_cal_maps": 2, "n_test_maps": 1, "n_vectors": 12,
         "hidden": 16, "n_steps": 20, "n_train": 60, "n_val": 30, "n_test": 30,
         "readout_epochs": 20}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    cfg = DemoConfig(name="small", **SMALL)
    return root, run_demo(cfg, root, progress=False)


def test_demo_writes_a_complete_run_folder(demo_run):
    root, _ = demo_run
    run = root / "small"
    for f in ("config.json", "versions.json", "tile_error.csv", "tile_error.png", "accuracy.csv",
              "accuracy.png", "energy.csv", "energy_summary.csv", "energy_constants.csv",
              "activity.json", "surrogate.json", "report.md", "summary.json"):
        assert (run / f).is_file(), f
    versions = json.loads((run / "versions.json").read_text())
    assert versions["ngspice"].split(".")[0].isdigit()
    err = pd.read_csv(run / "tile_error.csv").set_index("backend")
    # the fitted surrogate must be much closer to the circuit than the ideal G.V product
    assert err.loc["surrogate", "rms_lsb"] < 0.2 * err.loc["ideal", "rms_lsb"]
    acc = pd.read_csv(run / "accuracy.csv")
    assert len(acc) == 3 and acc["test_acc"].between(0, 1).all()
    # with 10 classes even this tiny run is far above chance on its training set
    assert acc["train_acc"].min() > 0.3
    assert "Tile VMM error" in (run / "report.md").read_text()


def test_replay_from_saved_config_gives_the_same_results(demo_run, tmp_path):
    root, summary = demo_run
    assert main(["demo", "--config", str(root / "small" / "config.json"), "--out",
                 str(tmp_path), "--no-progress"]) == 0
    again = json.loads((tmp_path / "small" / "summary.json").read_text())
    assert again["accuracy"] == summary["accuracy"]
    assert again["tile_error"] == summary["tile_error"]
    assert again["energy_uj"] == summary["energy_uj"]


def test_bad_configuration_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match="'reference' parameter of DemoConfig"):
        DemoConfig(reference="hspice")
    assert main(["demo", "--out", str(tmp_path), "--hidden", "0"]) == 2
    assert "'hidden' parameter of DemoConfig" in capsys.readouterr().err
