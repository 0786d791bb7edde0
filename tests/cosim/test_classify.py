"""classify on small real runs: outputs, replay, N-MNIST folders, bad input."""

import json

import numpy as np
import pandas as pd
import pytest

from rram_cosim.cosim.classify_cmd import ClassifyConfig, run_classify
from rram_cosim.cosim.cli import main
from rram_cosim.cosim.datasets import load_dataset
from rram_cosim.models.errors import ConfigError

SMALL = dict(n_train=60, n_val=30, n_test=30, seeds=2, hidden=24, v_th=(5.0, 10.0),
             rec_level=(0.25,), readout_epochs=15, tile_rows=16, tile_cols=12, cal_maps=2,
             cal_vectors=10, n_steps=20)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    cfg = ClassifyConfig(name="c", **SMALL)
    return root, run_classify(cfg, root, progress=False)


def test_classify_writes_tables_plots_and_paired_interval(small_run):
    root, summary = small_run
    run = root / "c"
    for f in ("accuracy.csv", "accuracy_summary.csv", "paired_difference.csv", "grid.csv",
              "per_class.csv", "activity.json", "confusion.png", "embedding.png",
              "surrogate.json", "report.md", "config.json", "versions.json"):
        assert (run / f).is_file(), f
    acc = pd.read_csv(run / "accuracy.csv")
    assert set(acc["seed"]) == {0, 1}
    assert len(pd.read_csv(run / "grid.csv")) == 2 * 2 * 2  # 2 seeds x 2 backends x 2 thresholds
    paired = pd.read_csv(run / "paired_difference.csv").set_index("model")
    assert paired.loc["surrogate", "n"] == 2 * 30
    assert paired.loc["surrogate", "ci_low"] <= paired.loc["surrogate", "diff"]
    act = json.loads((run / "activity.json").read_text())
    assert set(act) == {"ideal/seed0", "ideal/seed1", "surrogate/seed0", "surrogate/seed1"}
    assert len(act["ideal/seed0"]["spikes"]) == 20
    # even this tiny network is well above chance (10 classes) on average
    assert acc["val_acc"].mean() > 0.25


def test_same_seed_same_accuracy(small_run, tmp_path):
    root, summary = small_run
    assert main(["classify", "--config", str(root / "c" / "config.json"), "--out",
                 str(tmp_path), "--no-progress"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "c" / "accuracy.csv"),
                                  pd.read_csv(root / "c" / "accuracy.csv"))


def _nmnist_folder(root, n_per_split):
    """A tiny N-MNIST-layout folder (Train/Test/<digit>/*.bin) from digits-events samples."""
    for split, src in (("Train", "train"), ("Test", "test")):
        ds = load_dataset("digits-events", src, seed=0, n_samples=n_per_split)
        for i, (ev, label) in enumerate(zip(ds.events, ds.labels)):
            d = root / split / str(int(label))
            d.mkdir(parents=True, exist_ok=True)
            t = ev["t"].astype(np.int64)
            rec = np.stack([ev["x"] + 7, ev["y"] + 7, (ev["p"].astype(np.int64) << 7)
                            | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF], axis=1)
            (d / f"{i:05d}.bin").write_bytes(rec.astype(np.uint8).tobytes())


def test_classify_runs_on_an_nmnist_folder(tmp_path):
    _nmnist_folder(tmp_path / "nm", 40)
    cfg = ClassifyConfig(name="nm", dataset=f"nmnist:{tmp_path / 'nm'}", backends=("ideal",),
                         **{**SMALL, "seeds": 1, "n_train": 0, "n_val": 0, "n_test": 0})
    s = run_classify(cfg, tmp_path / "runs", progress=False)
    acc = pd.read_csv(tmp_path / "runs" / "nm" / "accuracy.csv")
    assert len(acc) == 2 and s["headline"]
    # the paper's protocol: 16x16 centre crop of the 34x34 sensor, one polarity -> 256 inputs
    cfgd = json.loads((tmp_path / "runs" / "nm" / "activity.json").read_text())
    assert cfgd["ideal/seed0"]["n_in"] == 256


def test_bad_inputs():
    with pytest.raises(ConfigError, match="'dataset' parameter"):
        ClassifyConfig(dataset="mnist")
    with pytest.raises(ConfigError, match="'backends' parameter"):
        ClassifyConfig(backends=("ideal", "hspice"))
    with pytest.raises(ConfigError, match="tile_rows and tile_cols"):
        ClassifyConfig(tile_rows=16)
