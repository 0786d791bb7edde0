"""classify on small real runs: outputs, replay, N-MNIST folders, bad input."""

import json

import numpy as np
import pandas as pd
import pytest
from rram_cosim.cosim.cli.commands.classify import run_classify
from rram_cosim.cosim.cli.main import main
from rram_cosim.cosim.tasks.configs.classify import ClassifyConfig
from rram_cosim.models.errors import ConfigError

SMALL = {"n_train": 60, "n_val": 30, "n_test": 30, "seeds": 2, "hidden": 24,
         "v_th": (5.0, 10.0), "rec_level": (0.25,), "readout_epochs": 15, "tile_rows": 16,
         "tile_cols": 12, "cal_maps": 2, "cal_vectors": 10, "n_steps": 20}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    cfg = ClassifyConfig(name="c", **SMALL)
    return root, run_classify(cfg, root, progress=False)


def test_classify_writes_tables_plots_and_paired_interval(small_run):
    root, _ = small_run
    run = root / "c"
    for f in ("accuracy.csv", "accuracy_summary.csv", "paired_difference.csv", "grid.csv",
              "per_class.csv", "activity.json", "confusion.png", "embedding.png",
              "surrogate.json", "report.md", "config.json", "versions.json"):
        assert (run / f).is_file(), f
    acc = pd.read_csv(run / "accuracy.csv")
    assert set(acc["seed"]) == {0, 1}
    assert len(pd.read_csv(run / "grid.csv")) == 2 * 2 * 2  # 2 seeds x 2 backends x 2 thresholds
    paired = pd.read_csv(run / "paired_difference.csv").set_index("model")
    assert paired.loc["LSM, surrogate", "n_samples"] == 30
    assert paired.loc["LSM, surrogate", "n_seeds"] == 2
    assert paired.loc["LSM, surrogate", "ci_low"] <= paired.loc["LSM, surrogate", "diff"]
    assert paired.loc["LSM, surrogate", "diff"] <= paired.loc["LSM, surrogate", "ci_high"]
    act = json.loads((run / "activity.json").read_text())
    assert set(act) == {"ideal/seed0", "ideal/seed1", "surrogate/seed0", "surrogate/seed1"}
    assert len(act["ideal/seed0"]["spikes"]) == 20
    # even this tiny network is well above chance (10 classes) on average
    assert acc["val_acc"].mean() > 0.25
    # the surrogate calibrated here was held out on the two corner families; the worst case is
    # in the file and the summary, and every surrogate read is counted
    summary = json.loads((run / "summary.json").read_text())
    worst = summary["surrogate_worst"]
    assert [f["family"] for f in json.loads((run / "surrogate.json").read_text())[
        "validation_families"]] == ["full-scale", "g-pos-only"]
    assert worst["meets_bars"] and worst["rms_family"] in ("full-scale", "g-pos-only")
    assert json.loads((run / "surrogate.json").read_text())["validation_worst"] == worst
    reads = summary["exact_reads"]
    assert reads["surrogate_reads"] > 0 and reads["reads_solved_exactly"] == 0


def test_same_seed_same_accuracy(small_run, tmp_path):
    root, _ = small_run
    assert main(["classify", "--config", str(root / "c" / "config.json"), "--out",
                 str(tmp_path), "--no-progress"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "c" / "accuracy.csv"),
                                  pd.read_csv(root / "c" / "accuracy.csv"))


def test_classify_runs_on_an_nmnist_folder(tmp_path, nmnist_folder):
    nmnist_folder(tmp_path / "nm", 40)
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
    with pytest.raises(ConfigError, match="adc_range"):
        ClassifyConfig(adc_range="auto")
    with pytest.raises(ConfigError, match="readout_solver"):
        ClassifyConfig(readout_solver="sgd")
    with pytest.raises(ConfigError, match="linearise"):
        ClassifyConfig(linearise="secant")


def test_workload_linearised_surrogate_tracks_the_ideal_network(tmp_path):
    small = {**SMALL, "seeds": 1}  # 16 x 12 tiles: each row block gets its rows' profile
    out = {}
    for lin in ("tangent", "workload"):
        cfg = ClassifyConfig(name=lin, linearise=lin, **small)
        out[lin] = run_classify(cfg, tmp_path, progress=False)["headline"]
    # same map, same data: the linearisation moves the surrogate's accuracy only a little
    for lin, h in out.items():
        assert abs(h["LSM, surrogate"]["val"] - h["LSM, ideal"]["val"]) <= 0.2, lin
        assert f"linearised: '{lin}'" in (tmp_path / lin / "report.md").read_text()
    assert out["tangent"]["LSM, ideal"] == out["workload"]["LSM, ideal"]
    # the energy command's ADC sweep re-runs that network, linearised the same way
    from rram_cosim.cosim.cli.commands.energy import run_energy
    from rram_cosim.cosim.tasks.configs.energy import EnergyConfig

    run_energy(EnergyConfig(name="e", from_run=str(tmp_path / "workload"), adc_bits=(4, 14),
                            array_source="conductance"), tmp_path, progress=False)
    sweep = pd.read_csv(tmp_path / "e" / "adc_sweep.csv").set_index("bits")
    assert sweep.loc[14, "val_acc"] == pytest.approx(out["workload"]["LSM, surrogate"]["val"],
                                                     abs=0.15)


def test_workload_full_scale_is_a_high_quantile_of_the_reservoir_currents():
    from rram_cosim.cosim.engines.calibrate import with_full_scale, workload_full_scale_ua
    from rram_cosim.models.params import LIFParams, TileSpec
    from rram_cosim.models.tile.ideal import IdealBackend

    rng = np.random.default_rng(0)
    n_in, h = 20, 10
    spec = TileSpec(rows=n_in + h, cols=h)
    gp, gn = rng.uniform(5, 25, (n_in + h, h)), rng.uniform(5, 25, (n_in + h, h))
    frames = (rng.random((40, 15, n_in)) < 0.2).astype(float)
    lif = LIFParams(hidden=h, v_th=20.0, rec_level=0.5)
    tile = IdealBackend(spec).bind(gp, gn)
    i_fs = workload_full_scale_ua(tile, frames, lif, rng, quantile=1.0, margin=1.0)
    # with quantile 1 and no margin it is the largest column current of any input row set the
    # reservoir drove; inputs alone bound it from below, all rows on from above
    i_in = frames.reshape(-1, n_in) @ np.maximum(gp, gn)[:n_in] * spec.v_read_v
    assert i_in.max() <= i_fs + 1e-9
    assert i_fs < spec.i_full_scale_ua / 2
    s2 = with_full_scale(spec, i_fs)
    assert s2.adc.v_full_scale_v / s2.r_f_ohm * 1e6 == pytest.approx(i_fs)
    with pytest.raises(ConfigError, match="no column current"):
        workload_full_scale_ua(tile, np.zeros_like(frames), lif, rng)


def test_probe_workload_records_each_rows_drive():
    from rram_cosim.cosim.engines.calibrate import probe_workload
    from rram_cosim.models.params import LIFParams, TileSpec
    from rram_cosim.models.snn.lsm import run_reservoir
    from rram_cosim.models.tile.ideal import IdealBackend

    rng = np.random.default_rng(0)
    n_in, h = 12, 8
    spec = TileSpec(rows=n_in + h, cols=h)
    gp, gn = rng.uniform(5, 25, (n_in + h, h)), rng.uniform(5, 25, (n_in + h, h))
    frames = (rng.random((30, 10, n_in)) < np.linspace(0.0, 0.6, n_in)).astype(float)
    lif = LIFParams(hidden=h, v_th=2.0, in_level=0.8, rec_level=0.25)
    tile = IdealBackend(spec).bind(gp, gn)
    wl = probe_workload(tile, frames, lif, np.random.default_rng(1))
    feats, _ = run_reservoir(tile, frames, lif, np.random.default_rng(1))
    # input rows: driven at in_level exactly when the frame has an event
    np.testing.assert_allclose(wl.row_p_on[:n_in], frames.reshape(-1, n_in).mean(axis=0))
    np.testing.assert_allclose(wl.row_mean_level[:n_in], 0.8 * wl.row_p_on[:n_in])
    assert wl.row_on_level[0] == 0.0 and np.all(wl.row_on_level[1:n_in] == 0.8)
    # recurrent rows: driven at rec_level the step after a spike (the last step's spikes drive
    # nothing), so their drive counts are at most the spike counts
    assert np.all(wl.row_on_level[n_in:][feats.sum(axis=0) > 0] == 0.25)
    assert np.all(wl.row_p_on[n_in:] * 300 <= feats.sum(axis=0) + 1e-9)
    assert wl.drives.shape == (10, n_in + h)  # one kept vector per VMM batch (10 steps)
    prof = wl.drive_profile(np.random.default_rng(2), n_samples=4)
    assert prof.samples.shape == (4, n_in + h) and prof.rows == n_in + h


def test_workload_adc_range_rescues_a_low_resolution_adc(tmp_path):
    # corner range: a 5-bit ADC sized for all rows on leaves the sparse currents ~1 code
    small = {**SMALL, "seeds": 1, "tile_rows": 0, "tile_cols": 0, "adc_bits": 5,
             "n_train": 150, "n_val": 60, "n_test": 60}
    acc = {}
    for rng_kind in ("corner", "workload"):
        cfg = ClassifyConfig(name=rng_kind, backends=("ideal", "surrogate"),
                             adc_range=rng_kind, **small)
        run_classify(cfg, tmp_path, progress=False)
        tab = pd.read_csv(tmp_path / rng_kind / "accuracy.csv").set_index("model")
        acc[rng_kind] = tab.loc["LSM, surrogate", "val_acc"]
        assert "range" in (tmp_path / rng_kind / "report.md").read_text()
    assert acc["workload"] > acc["corner"] + 0.1, acc


def test_read_options_reach_the_task_tile_spec():
    from rram_cosim.cosim.tasks.classify import task_tile_spec
    from rram_cosim.cosim.tasks.configs.classify import ClassifyConfig as Cfg

    spec = task_tile_spec(Cfg(), 456, 200)
    assert spec.rows_per_read == 64 and spec.r_row_ohm == pytest.approx(1.25)
    spec = task_tile_spec(Cfg(rows_per_read=0, sense="differential", drive="both",
                              col_wire_width_um=0.14, r_wire_ohm=None), 456, 200)
    assert spec.rows_per_read == 456 and spec.read.differential and spec.read.drive == "both"
    assert spec.r_col_ohm == pytest.approx(0.625) and spec.r_row_ohm == pytest.approx(1.25)
    with pytest.raises(ConfigError, match="unsensed"):
        Cfg(unsensed="open")


def test_each_interval_has_its_own_generator():
    """Adding, removing or reordering a model leaves every other model's interval and pair
    unchanged: each draws from a generator of the run seed and its own names."""
    from rram_cosim.cosim.tasks.classify import RAW_MODEL, accuracy_intervals

    rng = np.random.default_rng(0)
    correct = {m: [rng.random(80) < p for p in (0.7, 0.8)]
               for m in ("LSM, ideal", "LSM, surrogate", RAW_MODEL)}
    cis, pairs = accuracy_intervals(correct, "LSM, ideal", 4)
    fewer = {m: correct[m] for m in ("LSM, ideal", RAW_MODEL)}
    cis2, pairs2 = accuracy_intervals(fewer, "LSM, ideal", 4)
    assert cis2[RAW_MODEL] == cis[RAW_MODEL] and cis2["LSM, ideal"] == cis["LSM, ideal"]
    assert [p for p in pairs if p["model"] == RAW_MODEL] == pairs2
    reordered = {m: correct[m] for m in (RAW_MODEL, "LSM, surrogate", "LSM, ideal")}
    cis3, _ = accuracy_intervals(reordered, "LSM, ideal", 4)
    assert cis3 == cis
    # another run seed, other draws
    assert accuracy_intervals(correct, "LSM, ideal", 5)[0][RAW_MODEL] != cis[RAW_MODEL]


def test_energy_replays_an_older_run_split_as_it_ran():
    from rram_cosim.cosim.tasks.energy import replay_split

    # recorded before the split rule was an option: that run split by file
    assert replay_split({"dataset": "wav:x"}) == {"split_by": "sample", "group_field": 1}
    assert replay_split({"split_by": "group", "group_field": 2}) == {"split_by": "group",
                                                                     "group_field": 2}
