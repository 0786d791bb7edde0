"""zeroshot: a small end-to-end CLI run, the shared map, selection rules and bad input."""

import json

import numpy as np
import pandas as pd
import pytest
from rram_cosim.cosim.cli import main
from rram_cosim.cosim.zeroshot import (
    SELECTIONS,
    EncoderView,
    MapLayout,
    ZeroshotConfig,
    load_modalities,
    parse_classes,
    select,
)
from rram_cosim.models.backend import IdealBackend
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import TileSpec
from rram_cosim.models.tiling import TiledBackend

SMALL = ["--seeds", "2", "--hidden", "16", "--crop", "8", "--neurons", "16", "--v-th", "3,6",
         "--temperature", "0.3", "--epochs", "10", "--eval-every", "5", "--tile-rows", "64",
         "--tile-cols", "16", "--cal-maps", "2", "--cal-vectors", "8", "--n-perm", "200",
         "--no-progress"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert main(["zeroshot", "--name", "z", "--out", str(root), *SMALL]) == 0
    return root / "z"


def test_zeroshot_writes_tables_plots_and_labels_the_paper_protocol(small_run):
    for f in ("config.json", "versions.json", "grid.csv", "chosen.csv", "summary.csv",
              "summary.json", "confusion.png", "embedding.png", "report.md", "surrogate.json",
              "paired.csv"):
        assert (small_run / f).is_file(), f
    summary = pd.read_csv(small_run / "summary.csv")
    models = {"LSM, ideal", "LSM, surrogate", "raw events (no reservoir)"}
    assert set(summary["model"]) == models
    assert set(summary["selection"]) == {label for _, label in SELECTIONS.values()}
    assert (summary["n_seeds"] == 2).all()
    assert (summary["chance_top1"].between(0.45, 0.55)).all()  # two balanced unseen classes
    assert (summary["p_value_top1"].between(1 / 201, 1)).all()
    report = (small_run / "report.md").read_text()
    assert "paper protocol: selected on the unseen test queries" in report
    assert "0.88" in report  # the paper's figure beside ours
    paired = pd.read_csv(small_run / "paired.csv")
    assert set(paired["model"]) == {"LSM, surrogate", "raw events (no reservoir)"}
    assert (paired["n_seeds"] == 2).all()
    assert (paired["diff_ci_low"] <= paired["diff_mean"]).all()
    s = json.loads((small_run / "summary.json").read_text())
    # one reservoir run per backend, seed, encoder and LIF point; the head grids reuse them
    assert s["cache"]["misses"] == 2 * 2 * 2 * 2


def test_honest_choice_never_looks_at_unseen(small_run):
    grid = pd.read_csv(small_run / "grid.csv")
    chosen = pd.read_csv(small_run / "chosen.csv")
    full = grid[grid["grid"] == "full"]
    for (seed, model), g in full.groupby(["seed", "model"]):
        c = chosen[(chosen["seed"] == seed) & (chosen["model"] == model)].set_index("selection")
        assert c.loc["honest", "heldout_top1"] == g["heldout_top1"].max()
        assert c.loc["honest-seen-val", "val_top1"] == g["val_top1"].max()
        assert c.loc["paper", "unseen_top1"] == g["unseen_top1"].max()
    # the held-out grid never trained on the validation classes 6 and 7
    assert {"heldout_top1"} <= set(grid[grid["grid"] == "holdout"].dropna(axis=1).columns)


def test_select_ties_and_metrics():
    rows = [{"val_top1": 0.9, "heldout_top1": 0.5, "unseen_top1": 1.0},
            {"val_top1": 0.9, "heldout_top1": 0.7, "unseen_top1": 0.2}]
    assert select(rows, "heldout_top1") == 1
    assert select(rows, "val_top1") == 0  # tie: the earliest row
    assert select(rows, "unseen_top1") == 0
    with pytest.raises(ConfigError, match="selection metric"):
        select(rows, "nothing")


@pytest.mark.parametrize("tiled", [False, True])
def test_encoders_read_their_rows_and_share_the_recurrent_rows(tiled):
    lay = MapLayout(n_image=12, n_other=6, hidden=10)
    assert lay.shape == (28, 10)
    rng = np.random.default_rng(0)
    gp, gn = rng.uniform(5, 25, lay.shape), rng.uniform(5, 25, lay.shape)
    be = (TiledBackend(IdealBackend(TileSpec(rows=8, cols=4)), 8, 4) if tiled
          else IdealBackend(TileSpec(rows=28, cols=10)))
    bound = be.bind(gp, gn)
    w = gp - gn
    for enc, n_own in (("image", 12), ("other", 6)):
        v = EncoderView(bound, lay.rows_of(enc))
        assert v.g_pos_us.shape == (n_own + 10, 10)
        np.testing.assert_array_equal(v.g_pos_us[n_own:], gp[18:])  # the same recurrent cells
        x = rng.integers(0, 2, (5, n_own + 10)).astype(float)
        np.testing.assert_allclose(v.apply(x, rng).y, x @ w[lay.rows_of(enc)], atol=1e-9)
    with pytest.raises(ConfigError, match="reads 22 rows"):
        EncoderView(bound, lay.rows_of("image")).apply(np.zeros((1, 5)), rng)


def test_paper_bmi_variant_is_configuration():
    cfg = ZeroshotConfig(image="images:digits784.npz", other="neural-sim", hidden=2048,
                         dim=256, seen="0-21", unseen="22-25", crop=28, tile_rows=512,
                         tile_cols=512, backends=("ideal",), pairing="class")
    assert len(cfg.seen_classes) == 22 and len(cfg.unseen_classes) == 4
    assert cfg.val_class_tuple == (20, 21)
    lay = MapLayout(784, 192, cfg.hidden)
    assert lay.shape == (3024, 2048)
    assert lay.n_tiles(cfg.tile_rows, cfg.tile_cols) == 6 * 4


def test_parse_classes():
    assert parse_classes("1-3,7", "seen") == (1, 2, 3, 7)
    assert parse_classes("9, 8", "unseen") == (8, 9)
    with pytest.raises(ConfigError, match="runs backwards"):
        parse_classes("7-1", "seen")
    with pytest.raises(ConfigError, match="list like"):
        parse_classes("one", "seen")


def test_bad_configurations():
    with pytest.raises(ConfigError, match=r"Classes \[7\] are in both"):
        ZeroshotConfig(seen="1-7", unseen="7,8")
    with pytest.raises(ConfigError, match="at least two classes"):
        ZeroshotConfig(unseen="9")
    with pytest.raises(ConfigError, match="Mismatched encoder sizes: hidden=200"):
        ZeroshotConfig(other_hidden=128)
    with pytest.raises(ConfigError, match="pairing='instance' needs"):
        ZeroshotConfig(other="spoken-digits", pairing="instance")
    with pytest.raises(ConfigError, match="'val_classes'"):
        ZeroshotConfig(val_classes="8,9")
    with pytest.raises(ConfigError, match="'other' parameter"):
        ZeroshotConfig(other="tidigits")


def test_bad_data():
    with pytest.raises(ConfigError, match=r"Class\(es\) \[12\] have no samples"):
        load_modalities(ZeroshotConfig(unseen="8,12", crop=8, neurons=16))
    with pytest.raises(ConfigError, match="Mismatched encoder sizes: image_inputs=100"):
        load_modalities(ZeroshotConfig(crop=8, neurons=16, image_inputs=100))


def test_cli_reports_errors(tmp_path, capsys):
    assert main(["zeroshot", "--seen", "1-7", "--unseen", "7,8", "--out", str(tmp_path)]) == 2
    assert "in both 'seen' and 'unseen'" in capsys.readouterr().err
