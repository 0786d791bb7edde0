"""The ``form`` and ``fit-device`` commands: outputs, seeds, errors, fit recovery."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from rram_cosim.cosim.cli.commands.fit_device import run_fit_device
from rram_cosim.cosim.cli.commands.form import run_form
from rram_cosim.cosim.cli.main import main
from rram_cosim.cosim.tasks.configs.fit_device import FitDeviceConfig
from rram_cosim.cosim.tasks.configs.form import FormConfig
from rram_cosim.cosim.tasks.fit_device import fit_breakdown
from rram_cosim.cosim.tasks.form import distribution_stats
from rram_cosim.models.device.breakdown import form_array
from rram_cosim.models.device.io import load_device_params
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import BreakdownParams, FormingConditions

needs_ngspice = pytest.mark.skipif(shutil.which("ngspice") is None, reason="needs ngspice")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RRAM_COSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@needs_ngspice
def test_form_spice_backend_writes_tables_histograms_maps_and_report(tmp_path):
    cfg = FormConfig(name="f", icc=(5e-6, 10e-6, 20e-6), rows=32, cols=32, backend="spice",
                     cells=8, seed=3)
    summary = run_form(cfg, tmp_path, progress=False)
    out = tmp_path / "f"
    for f in ("config.json", "versions.json", "stats.csv", "agreement.csv", "histograms.png",
              "spice_vs_twin.png", "report.md", "device_params.json", "spice_failures.csv",
              "cells_5uA.csv", "cells_10uA.csv", "cells_20uA.csv"):
        assert (out / f).is_file(), f
    stats = pd.read_csv(out / "stats.csv")
    assert len(stats) == 9  # three sources for each of three compliance currents
    assert {"mean_us", "std_us", "cv", "skew", "anderson_a2", "shapiro_p",
            "n_unformed"} <= set(stats.columns)
    whole = stats[stats["source"] == "twin, whole array"]
    assert np.all(np.diff(whole["mean_us"]) > 0)
    agree = pd.read_csv(out / "agreement.csv")
    assert (agree["median_rel_diff"] < 0.05).all() and (agree["p90_rel_diff"] < 0.15).all()
    assert (agree["n_failed"] == 0).all()
    g = np.load(out / "maps" / "g_10uA.npy")
    w = np.load(out / "maps" / "w_10uA.npy")
    formed = np.load(out / "maps" / "formed_10uA.npy")
    assert g.shape == (32, 32) and w.shape == (32, 16) and formed.dtype == bool
    np.testing.assert_allclose(w, g[:, 0::2] - g[:, 1::2])
    assert not list((out / "maps").glob(".*.tmp"))  # atomic writes leave no temp files
    assert "SPICE vs twin" in (out / "report.md").read_text()
    assert set(summary["headline"]) == {"5uA", "10uA", "20uA", "spice_vs_twin"}


def test_form_same_seed_same_map(tmp_path):
    def map_of(name: str, seed: int) -> np.ndarray:
        run_form(FormConfig(name=name, icc=(7.5e-6,), rows=16, cols=16, seed=seed), tmp_path,
                 progress=False)
        return np.load(tmp_path / name / "maps" / "g_7.5uA.npy")

    a, b, c = map_of("a", 5), map_of("b", 5), map_of("c", 6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_default_form_run_reproduces_formed_cell_statistics(tmp_path):
    s = run_form(FormConfig(name="d", icc=(FormingConditions().i_cc_a,), rows=256, cols=256),
                 tmp_path, progress=False)
    row = s["headline"]["7.5uA"]
    assert abs(row["mean_us"] / 14.2 - 1) < 0.10 and abs(row["std_us"] / 2.46 - 1) < 0.25


@pytest.mark.parametrize("argv, message", [
    (["--backend", "hspice"],
     r"'backend' parameter of FormConfig must be one of \['twin', 'spice'\]. Got 'hspice'"),
    (["--icc", "0,5e-6"],
     r"'icc' parameter of FormConfig must be a number in \(0, 0.001\] A. Got 0.0"),
    (["--t-pulse", "1e-9"],
     r"'t_pulse' parameter of FormConfig must be a number in \[1e-08, 1\] s. Got 1e-09.*step"),
    (["--v-form", "7"],
     r"'v_form' parameter of FormConfig must be a number in \[1, 5\] V. Got 7.0"),
    (["--cols", "15"], r"'cols' parameter of FormConfig must be even"),
])
def test_form_cli_rejects_bad_input_naming_value_and_range(tmp_path, capsys, argv, message):
    import re

    assert main(["form", "--out", str(tmp_path), "--no-progress", *argv]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_distribution_stats_flag_non_normal_data():
    rng = np.random.default_rng(0)
    normal = distribution_stats(rng.normal(10, 1, 4000))
    skewed = distribution_stats(rng.lognormal(0, 0.6, 4000))
    assert normal["anderson_a2"] < 1.0 and normal["shapiro_p"] > 0.01
    assert skewed["anderson_a2"] > 10 and skewed["shapiro_p"] < 1e-6 and skewed["skew"] > 1


def test_fit_device_recovers_known_parameters_and_form_accepts_the_file(tmp_path):
    true = BreakdownParams(v_hold_v=0.45, a_vt_mv_um=6.5, tau_growth_s=3.5e-6)
    iccs = (5e-6, 10e-6, 20e-6)
    paths = []
    for k, i_cc in enumerate(iccs):
        r = form_array((192, 192), np.random.default_rng(100 + k), true,
                       FormingConditions(i_cc_a=i_cc))
        paths.append(str(tmp_path / f"measured_{k}.npy"))
        np.save(paths[-1], r.g_us)
    cfg = FitDeviceConfig(name="fit", map=tuple(paths), icc=iccs)
    summary = run_fit_device(cfg, tmp_path, progress=False)
    fitted = summary["fitted"]
    assert set(fitted) == {"v_hold_v", "a_vt_mv_um", "tau_growth_s"}
    for name, value in fitted.items():
        assert abs(value / getattr(true, name) - 1) < 0.10, (name, value)
    q = pd.read_csv(tmp_path / "fit" / "quality.csv")
    assert (q["ks_distance"] < 0.05).all()
    assert (tmp_path / "fit" / "fit.png").is_file()
    # the parameter file drives the form command
    pfile = tmp_path / "fit" / "device_params.json"
    assert load_device_params(pfile).v_hold_v == pytest.approx(fitted["v_hold_v"])
    assert main(["form", "--out", str(tmp_path), "--no-progress", "--name", "refit",
                 "--icc", "10e-6", "--rows", "8", "--cols", "8",
                 "--device-params", str(pfile)]) == 0
    used = json.loads((tmp_path / "refit" / "device_params.json").read_text())
    assert used["breakdown_params"]["v_hold_v"] == pytest.approx(fitted["v_hold_v"])


def test_fit_device_single_map_fits_scale_and_mismatch():
    true = BreakdownParams(v_hold_v=0.62, a_vt_mv_um=4.0)
    g = form_array((128, 128), np.random.default_rng(9), true, FormingConditions()).g_us
    fit = fit_breakdown([g], [FormingConditions()], sim_cells=8192)
    assert fit.names == ("v_hold_v", "a_vt_mv_um")
    assert fit.params.v_hold_v == pytest.approx(0.62, rel=0.10)
    assert fit.params.a_vt_mv_um == pytest.approx(4.0, rel=0.10)


def test_fit_device_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="one compliance current per map: got 2 map"):
        FitDeviceConfig(map=("a.npy", "b.npy"), icc=(5e-6,))
    with pytest.raises(ConfigError, match=r"'fit' parameter .* must be one of"):
        FitDeviceConfig(map=("a.npy",), fit=("v_hold",))
    with pytest.raises(ConfigError, match="at least one measured map"):
        FitDeviceConfig()
    np.save(tmp_path / "one_d.npy", np.ones(5))
    cfg = FitDeviceConfig(map=(str(tmp_path / "one_d.npy"),))
    with pytest.raises(ConfigError, match="2-D conductance map"):
        run_fit_device(cfg, tmp_path, progress=False)
