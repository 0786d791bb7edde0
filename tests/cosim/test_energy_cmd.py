"""The energy command on small real runs: default activity run, --from a run folder, errors."""

import json

import numpy as np
import pandas as pd
import pytest
from rram_cosim.analysis.energy import PAPER_FIGURES
from rram_cosim.cosim.cli.commands.energy import run_energy
from rram_cosim.cosim.cli.commands.zeroshot import run_zeroshot
from rram_cosim.cosim.cli.main import main
from rram_cosim.cosim.tasks.configs.energy import EnergyConfig, parse_constants
from rram_cosim.cosim.tasks.energy import read_activity
from rram_cosim.cosim.tasks.zeroshot import ZeroshotConfig
from rram_cosim.models.errors import ConfigError, DomainWarning
from rram_cosim.models.snn.lsm import ReservoirActivity

TINY = {"hidden": 24, "n_train": 40, "n_val": 30, "n_test": 30, "sim_tile_rows": 16,
        "sim_tile_cols": 12, "readout_epochs": 10, "adc_bits": (4, 10), "spice_rows": 4,
        "spice_cols": 3, "spice_vectors": 3}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return root, run_energy(EnergyConfig(name="e", **TINY), root, progress=False)


def test_default_run_writes_tables_plots_and_report(tiny_run):
    root, summary = tiny_run
    run = root / "e"
    for f in ("energy_components.csv", "energy_totals.csv", "paper_comparison.csv",
              "energy_constants.csv", "adc_sweep.csv", "training_cost.csv", "activity_used.csv",
              "spice_crosscheck.csv", "energy_breakdown.png", "adc_sweep.png", "report.md",
              "config.json", "summary.json", "activity_runs/image/activity.json"):
        assert (run / f).is_file(), f
    comp = pd.read_csv(run / "energy_components.csv")
    hyb = comp[comp.system == "hybrid (physical)"].component
    for part in ("input DACs", "array", "TIA quiescent", "TIA output", "ADC", "digital adds",
                 "LIF", "spike counters", "head MACs", "membrane state memory"):
        assert hyb.str.startswith(part).any(), part
    # the activity came from the default run and was rescaled to the paper's sizes
    act = pd.read_csv(run / "activity_used.csv").iloc[0]
    assert (act.n_in, act.hidden, act.n_steps) == (256, 200, 50)
    assert "default classify run" in act.source
    # ADC sweep: energy at every resolution, accuracy from surrogate-backed runs
    sw = pd.read_csv(run / "adc_sweep.csv")
    assert sw.bits.tolist() == [4, 10] and sw.hybrid_uj.is_monotonic_increasing
    assert sw.test_acc.between(0, 1).all() and sw.val_acc.notna().all()
    # ngspice measured the periphery the physical model prices (integrated), within 10 %;
    # its TIA quiescent draw does not carry the total on its own
    cross = pd.read_csv(run / "spice_crosscheck.csv").set_index("component")
    assert cross.loc["array + TIA (total)", "max_abs_rel_err_pct"] < 10
    assert cross.loc["array + TIA output (dynamic)", "max_abs_rel_err_pct"] < 10
    share = summary["headline"]["ngspice cross-check TIA quiescent share of the total %"]
    assert share == pytest.approx(100 * cross.loc["TIA quiescent", "ngspice_j"]
                                  / cross.loc["array + TIA (total)", "ngspice_j"], abs=0.1)
    assert share < 90
    report = (run / "report.md").read_text()
    for text in ("0.14", "4.4", "29.97", "What explains every difference", "TOPS/W",
                 "Training cost", "802.18", "adc_sweep.png", "energy_breakdown.png"):
        assert text in report, text
    ratio = summary["headline"]["paper mode ratio (ours, paper)"]
    assert ratio[1] == PAPER_FIGURES["nmnist"].ratio
    assert 1 / 1.5 < ratio[0] / ratio[1] < 1.5


# A real zero-shot run, as small as it gets (image + neural-sim, ideal backend, one seed, one
# grid point, 5 epochs): its activity.json holds "ideal/<encoder>/seed0" records.
ZS_TINY = ZeroshotConfig(name="zs", other="neural-sim", seeds=1, hidden=16, crop=8,
                         neurons=16, v_th=(6.0,), temperature=(0.3,), epochs=5, eval_every=5,
                         backends=("ideal",), baseline=False, n_perm=50)


@pytest.fixture(scope="module")
def zeroshot_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("zs")
    run_zeroshot(ZS_TINY, root, progress=False)
    return root / "zs"


def test_bmi_from_a_real_zeroshot_run_through_the_cli(zeroshot_run, tmp_path):
    found = read_activity(zeroshot_run, ["image", "neural"], "ideal")
    assert (found["image"].n_in, found["neural"].n_in, found["image"].hidden) == (64, 16, 16)
    # the run holds only the ideal backend: asking for another names the folder and it
    with pytest.raises(ConfigError, match=r"zs.*surrogate.*\['ideal'\]"):
        read_activity(zeroshot_run, ["image", "neural"], "surrogate")
    assert main(["energy", "--network", "bmi", "--from", str(zeroshot_run), "--backend",
                 "ideal", "--out", str(tmp_path / "out"), "--adc-bits", "8,14",
                 "--spice-rows", "8", "--spice-cols", "4", "--spice-vectors", "3",
                 "--no-progress"]) == 0
    run = tmp_path / "out" / "energy"
    act = pd.read_csv(run / "activity_used.csv").set_index("encoder")
    assert set(act.index) == {"image", "neural"}
    assert act.source.str.startswith("--from").all()
    # measured on the tiny run, priced at the paper's BMI sizes
    assert act.loc["image", "measured_size"] == "64 in, 16 hidden, 50 steps"
    assert act.loc["neural", "measured_size"] == "16 in, 16 hidden, 50 steps"
    assert (act.loc["image", "n_in"], act.loc["neural", "n_in"]) == (784, 192)
    assert (act.hidden == 2048).all()
    assert act.loc["image", "input_fraction"] == pytest.approx(
        float(np.mean(found["image"].active_in_rows)) / 64)
    comp = pd.read_csv(run / "energy_components.csv")
    assert set(comp.encoder) == {"image", "neural"}
    paper = pd.read_csv(run / "paper_comparison.csv").set_index("source")
    assert paper.loc["paper [Lin25]", "ratio"] == 160.0
    # '> 160x' is a lower bound; ours lies within 1.5x of it
    assert 1 / 1.5 < paper.loc["paper mode (ours)", "ratio"] / 160.0 < 1.5
    summary = json.loads((run / "summary.json").read_text())
    cross = [v for k, v in summary["headline"].items() if k.startswith("ngspice cross-check max")]
    assert len(cross) == 1 and max(cross[0]) < 10
    report = (run / "report.md").read_text()
    assert "> 160x" in report and "T = 50 steps is our assumption" in report
    assert "cannot reconstruct" not in report
    # the zeroshot run's chosen recurrent level (0.25) priced for both encoders
    assert "image: input rows at 1, recurrent rows at 0.25" in report
    assert "neural: input rows at 1, recurrent rows at 0.25" in report
    # no surrogate in that folder: energy at each resolution, no accuracy column
    assert "test_acc" not in pd.read_csv(run / "adc_sweep.csv")


def test_activity_file_errors_and_mixed_sizes(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "activity.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"bad[/\\]activity.json"):
        read_activity(bad, ["image"], "ideal")
    (bad / "activity.json").write_text(json.dumps({"ideal/image/seed0": {"n_in": 3}}))
    with pytest.raises(ConfigError, match=r"activity.json, entry 'ideal/image/seed0'"):
        read_activity(bad, ["image"], "ideal")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    a = ReservoirActivity(64, 16, 50, 4, np.full(50, 4.0), np.full(50, 2.0))
    b = ReservoirActivity(32, 16, 50, 4, np.full(50, 9.0), np.full(50, 9.0))
    (mixed / "activity.json").write_text(json.dumps({"ideal/image/seed0": a.to_dict(),
                                                     "ideal/image/seed1": b.to_dict()}))
    with pytest.warns(DomainWarning, match="seed1"):
        got = read_activity(mixed, ["image"], "ideal")["image"]
    assert got.n_in == 64 and got.active_in_rows[0] == 4.0


def test_bad_configurations_raise_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="network"):
        EnergyConfig(network="cifar")
    with pytest.raises(ConfigError, match="Valid names"):
        EnergyConfig(constants="adc_fom=1e-15")
    with pytest.raises(ConfigError, match="run folder"):
        EnergyConfig(from_run=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="backend.*surrogate"):
        EnergyConfig(backend="gpu")
    assert parse_constants("adc_fom_j_per_step=2e-15, tia_i_q_a=5e-6") == {
        "adc_fom_j_per_step": 2e-15, "tia_i_q_a": 5e-6}
    # an audio run given to the image network is refused, not silently rescaled
    audio = tmp_path / "audio_run"
    audio.mkdir()
    act = ReservoirActivity(64, 200, 129, 4, np.full(129, 4.0), np.full(129, 9.0))
    (audio / "activity.json").write_text(json.dumps({"surrogate/seed0": act.to_dict()}))
    with pytest.raises(ConfigError, match="--network ntidigits"):
        run_energy(EnergyConfig(network="nmnist", from_run=str(audio)), tmp_path / "o",
                   progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="activity.json"):
        read_activity(tmp_path / "empty", ["image"], "surrogate")
