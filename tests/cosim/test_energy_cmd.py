"""The energy command on small real runs: default activity run, --from a run folder, errors."""

import json

import numpy as np
import pandas as pd
import pytest
from rram_cosim.analysis.energy import PAPER_FIGURES
from rram_cosim.cosim.cli import main
from rram_cosim.cosim.energy_cmd import EnergyConfig, parse_constants, read_activity, run_energy
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.lsm import ReservoirActivity

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
    # ngspice measured the same tile the physical model prices, within 10 %
    cross = pd.read_csv(run / "spice_crosscheck.csv").set_index("component")
    assert cross.loc["array + TIA (total)", "max_abs_rel_err_pct"] < 10
    assert cross.loc["array + TIA output (dynamic)", "max_abs_rel_err_pct"] < 10
    report = (run / "report.md").read_text()
    for text in ("0.14", "4.4", "29.97", "What explains every difference", "TOPS/W",
                 "Training cost", "802.18", "adc_sweep.png", "energy_breakdown.png"):
        assert text in report, text
    ratio = summary["headline"]["paper mode ratio (ours, paper)"]
    assert ratio[1] == PAPER_FIGURES["nmnist"].ratio
    assert 1 / 1.5 < ratio[0] / ratio[1] < 1.5


def _zeroshot_run(path):
    """A zero-shot-style run folder: activity per backend, encoder and seed."""
    path.mkdir(parents=True)
    img = ReservoirActivity(256, 200, 50, 10, np.full(50, 20.0), np.full(50, 8.0))
    aud = ReservoirActivity(64, 200, 129, 10, np.full(129, 4.0), np.full(129, 12.0))
    acts = {"surrogate/image/seed0": img.to_dict(), "surrogate/audio/seed0": aud.to_dict(),
            "ideal/image/seed0": ReservoirActivity(256, 200, 50, 10, np.full(50, 90.0),
                                                   np.full(50, 8.0)).to_dict()}
    (path / "activity.json").write_text(json.dumps(acts))
    return path


def test_from_a_zeroshot_run_folder_through_the_cli(tmp_path):
    src = _zeroshot_run(tmp_path / "zs")
    found = read_activity(src, ["image", "audio"], "surrogate")
    assert found["image"].active_in_rows[0] == 20.0  # the surrogate's entry, not ideal's
    assert found["audio"].n_steps == 129
    assert main(["energy", "--network", "zeroshot", "--from", str(src), "--out",
                 str(tmp_path / "out"), "--array-source", "conductance", "--adc-bits", "8,14",
                 "--no-progress"]) == 0
    run = tmp_path / "out" / "energy"
    act = pd.read_csv(run / "activity_used.csv").set_index("encoder")
    assert act.loc["image", "active_inputs_per_step"] == 20.0
    assert act.loc["audio", "spikes_per_step"] == 12.0
    assert act.source.str.startswith("--from").all()
    paper = pd.read_csv(run / "paper_comparison.csv")
    assert paper.ratio.iloc[0] == 23.34
    comp = pd.read_csv(run / "energy_components.csv")
    assert set(comp.encoder) == {"image", "audio"}
    # no surrogate in that folder: energy at each resolution, no accuracy column
    assert "test_acc" not in pd.read_csv(run / "adc_sweep.csv")


def test_bad_configurations_raise_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="network"):
        EnergyConfig(network="cifar")
    with pytest.raises(ConfigError, match="Valid names"):
        EnergyConfig(constants="adc_fom=1e-15")
    with pytest.raises(ConfigError, match="run folder"):
        EnergyConfig(from_run=str(tmp_path / "missing"))
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
