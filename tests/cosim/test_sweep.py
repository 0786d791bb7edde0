"""sweep: outputs, seeds from parameters, resume after SIGKILL, process pool and Dask give the
same table, failed units recorded (tiny task: 8x8 crop, 16 neurons, 10 steps)."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from rram_cosim.cosim.cli.commands.sweep import run_sweep_cmd
from rram_cosim.cosim.cli.main import main
from rram_cosim.cosim.tasks.sweep import (
    EXECUTION_COLUMNS,
    SweepConfig,
    derive_seed,
    run_sweep,
    unit_read_scheme,
    units_of,
)
from rram_cosim.models.errors import ConfigError

TINY = {"icc": (5e-6, 20e-6), "seeds": 1, "n_train": 60, "n_val": 30, "n_test": 30,
        "hidden": 16, "crop": 8, "n_steps": 10, "v_th": (5.0,), "rec_level": (0.25,),
        "readout_epochs": 10, "cal_maps": 2, "cal_vectors": 8, "spot_cells": 0, "workers": 1}


def _cli_args(cfg: SweepConfig, root) -> list[str]:
    """The command line that reproduces ``cfg`` (comma lists for tuples)."""
    args = ["sweep", "--out", str(root), "--no-progress"]
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if v == f.default or v == "":
            continue
        text = ",".join(repr(x) for x in v) if isinstance(v, tuple) else str(v)
        args += ["--" + f.name.replace("_", "-"), text]
    return args


def _science(df: pd.DataFrame) -> pd.DataFrame:
    """The table without the columns that describe the execution."""
    return df.drop(columns=[c for c in EXECUTION_COLUMNS if c in df.columns]) \
        .reset_index(drop=True)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    # the tangent: the unit keys of sweeps run before the workload linearisation was the default
    cfg = SweepConfig(name="s", chips=2, cache_dir=str(root / "cache"), linearise="tangent",
                      **{**TINY, "spot_cells": 2})
    return root, cfg, run_sweep_cmd(cfg, root, progress=False)


def test_sweep_writes_one_row_per_point_chip_and_seed(tiny_run):
    root, _, summary = tiny_run
    run = root / "s"
    for f in ("sweep.csv", "sweep_summary.csv", "pareto.csv", "accuracy_vs_icc.png",
              "energy_vs_icc.png", "conductance_vs_icc.png", "pareto.png", "report.md",
              "config.json"):
        assert (run / f).is_file(), f
    df = pd.read_csv(run / "sweep.csv")
    assert len(df) == 2 * 2 * 1 and (df["status"] == "ok").all()
    assert summary["n_computed"] == 4 and summary["n_reused"] == 0
    for c in ("val_acc", "test_acc", "e_hybrid_uj", "e_adc_conversions_j", "e_array_j",
              "spot_median_rel_diff", "wall_s", "chip_seed", "point_seed", "net_seed"):
        assert df[c].notna().all(), c
    # the twin agrees with ngspice on the sampled cells (docs/device.md: ~4e-5)
    assert df["spot_median_rel_diff"].max() < 1e-3
    # conductance grows with the compliance current: I_cc / V_hold sets it
    g = df.groupby("icc_a")["g_mean_us"].mean()
    assert g.loc[20e-6] > 3 * g.loc[5e-6]
    # chips share their cells across points (common random numbers), points differ
    assert df.groupby("chip")["chip_seed"].nunique().eq(1).all()
    assert df["chip_seed"].nunique() == 2 and df["point_seed"].nunique() == 2
    # one surrogate per conductance domain, calibrated once and shared by the chips
    assert df["surrogate_key"].nunique() == 2 and df["surrogate_calibrated"].sum() == 2
    # the calibration tasks' time is charged to one unit of each point; every unit's
    # critical path holds its calibration and itself
    assert (df["calibration_s"] > 0).sum() == 2
    assert (df["critical_path_s"] > df["wall_s"]).all()
    assert df["critical_path_s"].max() < df["wall_s"].sum() + df["calibration_s"].sum()
    assert (df["domain_warnings"] == 0).all()
    summ = pd.read_csv(run / "sweep_summary.csv")
    assert (summ["n_ok"] == 2).all() and summ["test_acc_chip_std"].notna().all()
    # two chips, one seed: the chip-to-chip spread is the spread over units
    assert np.allclose(summ["test_acc_chip_std"], summ["test_acc_std"])
    assert "chip-to-chip" in (run / "report.md").read_text()
    pareto = pd.read_csv(run / "pareto.csv")
    assert 1 <= len(pareto) <= 2
    assert "Pareto front" in (run / "report.md").read_text()


def test_seeds_come_from_parameters_not_order(tiny_run):
    _, cfg, _ = tiny_run
    a = {u.key: (u.point_seed, u.chip_seed, u.net_seed) for u in units_of(cfg)}
    rev = dataclasses.replace(cfg, icc=cfg.icc[::-1], wire_width=(cfg.wire_width[0], 0.14),
                              sense=("differential", "single"))
    b = {u.key: (u.point_seed, u.chip_seed, u.net_seed) for u in units_of(rev)}
    assert set(a) < set(b) and all(b[k] == v for k, v in a.items())
    u = units_of(cfg)[0]
    assert u.point_seed == derive_seed("point", cfg.seed, u.point)
    # how a unit runs is not what it computes: BLAS threads leave the keys alone
    assert [v.key for v in units_of(dataclasses.replace(cfg, blas_threads=4))] == \
        [v.key for v in units_of(cfg)]
    assert derive_seed("x", 1) != derive_seed("x", 2)


def test_same_seed_same_table_on_a_process_pool(tiny_run, tmp_path):
    root, cfg, _ = tiny_run
    # an empty cache: the calibrations' solves and fits run as tasks in the pool's processes
    cfg2 = dataclasses.replace(cfg, workers=2, cache_dir=str(tmp_path / "cache"))
    s = run_sweep_cmd(cfg2, tmp_path, progress=False)
    assert s["executor"] == "local pool, 2 worker(s)"
    df = pd.read_csv(tmp_path / "s" / "sweep.csv")
    assert df["surrogate_calibrated"].sum() == 2
    pd.testing.assert_frame_equal(_science(df), _science(pd.read_csv(root / "s" / "sweep.csv")))
    # the fixture's cache: surrogates now come from disk, and give the same numbers
    cfg3 = dataclasses.replace(cfg, workers=2)
    run_sweep_cmd(cfg3, tmp_path / "again", progress=False)
    again = pd.read_csv(tmp_path / "again" / "s" / "sweep.csv")
    assert not again["surrogate_calibrated"].any()
    pd.testing.assert_frame_equal(_science(again), _science(df))


def test_dask_local_cluster_gives_the_same_table(tiny_run, tmp_path):
    from dask.distributed import LocalCluster

    root, cfg, _ = tiny_run
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        cfg2 = dataclasses.replace(cfg, scheduler=cluster.scheduler_address,
                                   cache_dir=str(tmp_path / "cache"))
        s = run_sweep_cmd(cfg2, tmp_path, progress=False)
        # every worker pins its BLAS pools (as the local pool's initializer does)
        assert "rram-cosim-blas-threads" in cluster.scheduler.worker_plugins
        assert all("rram-cosim-blas-threads" in w.plugins for w in cluster.workers.values())
    assert s["executor"].startswith("dask") and s["n_computed"] == 4
    pd.testing.assert_frame_equal(_science(pd.read_csv(tmp_path / "s" / "sweep.csv")),
                                  _science(pd.read_csv(root / "s" / "sweep.csv")))


def test_killed_sweep_resumes_without_recomputing(tmp_path):
    cfg = SweepConfig(name="k", cache_dir=str(tmp_path / "cache"),
                      **{**TINY, "icc": (5e-6, 10e-6, 20e-6, 40e-6)})
    args = _cli_args(cfg, tmp_path)
    points = tmp_path / "k" / "points"
    proc = subprocess.Popen([sys.executable, "-m", "rram_cosim.cosim.cli.main", *args],
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if points.is_dir() and any(points.glob("*.json")):
                break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # no clean-up: the hardest interruption
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    landed = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in points.glob("*.json")}
    assert 1 <= len(landed) < 4
    for _, text in landed.values():  # every stored unit is complete
        assert json.loads(text)["status"] == "ok"

    assert main(args) == 0
    s = json.loads((tmp_path / "k" / "summary.json").read_text())
    assert s["n_reused"] == len(landed) and s["n_computed"] == 4 - len(landed)
    for name, (mtime, text) in landed.items():  # nothing finished was recomputed
        p = points / name
        assert p.stat().st_mtime_ns == mtime and p.read_text() == text
    df = pd.read_csv(tmp_path / "k" / "sweep.csv")
    assert len(df) == 4 and (df["status"] == "ok").all()
    assert df[["val_acc", "test_acc", "e_hybrid_uj"]].notna().all().all()
    assert sorted(df["icc_a"]) == sorted(cfg.icc)
    # a third run computes nothing and touches no stored unit
    before = {p.name: p.stat().st_mtime_ns for p in points.glob("*.json")}
    again = run_sweep(cfg, tmp_path / "k", progress=False)
    assert again.n_computed == 0 and again.n_reused == 4
    assert {p.name: p.stat().st_mtime_ns for p in points.glob("*.json")} == before


def test_failed_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    # at 1 V the select transistor's overdrive for 40 uA exceeds v_form - v_hold: that unit
    # fails; 5 uA still runs (almost nothing forms at 1 V in 10 us, accuracy near chance)
    cfg = SweepConfig(name="f", cache_dir=str(tmp_path / "cache"),
                      **{**TINY, "icc": (5e-6, 40e-6), "v_form": (1.0,)})
    s = run_sweep_cmd(cfg, tmp_path, progress=False)
    df = pd.read_csv(tmp_path / "f" / "sweep.csv").set_index("icc_a")
    assert df.loc[40e-6, "status"] == "failed"
    assert "ConfigError" in df.loc[40e-6, "error"] and "compliance" in df.loc[40e-6, "error"]
    assert np.isnan(df.loc[40e-6, "val_acc"])
    assert df.loc[5e-6, "status"] == "ok" and s["n_failed"] == 1
    assert "Failed units" in (tmp_path / "f" / "report.md").read_text()
    again = run_sweep(cfg, tmp_path / "f", progress=False)
    assert again.n_computed == 0
    retry = run_sweep(dataclasses.replace(cfg, retry_failed=True), tmp_path / "f",
                      progress=False)
    assert retry.n_computed == 1 and retry.n_reused == 1


def test_bad_configurations():
    with pytest.raises(ConfigError, match="scheduler"):
        SweepConfig(scheduler="localhost:8786")
    with pytest.raises(ConfigError, match="'icc'"):
        SweepConfig(icc=(5e-6, 5e-6))
    with pytest.raises(ConfigError, match="'v_form'"):
        SweepConfig(v_form=(7.0,))
    with pytest.raises(ConfigError, match="'task'"):
        SweepConfig(task="mnist")
    with pytest.raises(ConfigError, match="workload"):
        SweepConfig(task="zeroshot:image+neural-sim", adc_range="workload")
    with pytest.raises(ConfigError, match="linearise"):
        SweepConfig(linearise="chord")
    # the zero-shot task profiles both encoders on its one map: workload is its default too
    assert SweepConfig(task="zeroshot:image+neural-sim").linearise == "workload"


def test_linearise_workload_runs_and_keeps_default_keys(tiny_run, tmp_path):
    root, cfg, _ = tiny_run
    # a config saved without the option replays with the tangent and the same unit keys
    from rram_cosim.cosim.cli.main import build_parser, resolve_config
    saved = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "linearise"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"command": "sweep", "config": saved}, default=list))
    replayed = resolve_config(SweepConfig, build_parser().parse_args(
        ["sweep", "--config", str(path)]), "sweep")
    assert replayed.linearise == "tangent"
    assert [u.key for u in units_of(replayed)] == [u.key for u in units_of(cfg)]
    cfg2 = dataclasses.replace(cfg, chips=1, icc=(20e-6,), linearise="workload",
                               cache_dir=str(tmp_path / "c"))
    assert {u.key for u in units_of(cfg2)}.isdisjoint(u.key for u in units_of(cfg))
    run_sweep_cmd(cfg2, tmp_path, progress=False)
    wl = pd.read_csv(tmp_path / "s" / "sweep.csv")
    tan = pd.read_csv(root / "s" / "sweep.csv")
    tan = tan[(tan["icc_a"] == 20e-6) & (tan["chip"] == 0)]
    assert (wl["status"] == "ok").all()
    # same chip, data and seeds: only the surrogate's linearisation differs
    assert wl["val_acc"].iloc[0] == pytest.approx(tan["val_acc"].iloc[0], abs=0.15)

def test_workload_adc_range_narrows_the_full_scale(tiny_run, tmp_path):
    root, cfg, _ = tiny_run
    cfg2 = dataclasses.replace(cfg, chips=1, adc_range="workload", icc=(20e-6,),
                               adc_bits=(6,), spot_cells=0, cache_dir=str(tmp_path / "c"))
    run_sweep_cmd(cfg2, tmp_path, progress=False)
    wl = pd.read_csv(tmp_path / "s" / "sweep.csv")
    corner = pd.read_csv(root / "s" / "sweep.csv")
    # a larger feedback resistor: the full scale fits the currents the reservoir draws (the
    # corner range is already that of one 64-row read, so the gain is ~2.4x, not the ~8x of a
    # whole-map read)
    assert (wl["status"] == "ok").all()
    assert wl["r_f_ohm"].iloc[0] > 2 * corner.loc[corner["icc_a"] == 20e-6, "r_f_ohm"].iloc[0]


def test_zeroshot_task_runs_on_the_formed_chip(tmp_path):
    cfg = SweepConfig(name="z", task="zeroshot:image+neural-sim", cache_dir=str(tmp_path / "c"),
                      **{**TINY, "icc": (10e-6,), "readout_epochs": 8})
    run_sweep_cmd(cfg, tmp_path, progress=False)
    df = pd.read_csv(tmp_path / "z" / "sweep.csv")
    assert (df["status"] == "ok").all(), df["error"].tolist()
    # retrieval accuracies, and both encoders priced
    assert 0 <= df["val_acc"].iloc[0] <= 1 and 0 <= df["test_acc"].iloc[0] <= 1
    assert df["e_hybrid_uj"].iloc[0] > 0 and df["n_test"].iloc[0] > 0


def test_read_scheme_axes_make_their_own_units_and_specs():
    cfg = SweepConfig(name="r", **{**TINY, "spot_cells": 0})
    grid = dataclasses.replace(cfg, rows_per_read=(0, 64), sense=("single", "differential"),
                               wire_width=(0.07, 0.14))
    units = units_of(grid)
    assert len(units) == 2 * 2 * 2 * len(units_of(cfg))
    assert len({u.key for u in units}) == len(units)
    points = {(u.point["rows_per_read"], u.point["sense"], u.point["r_wire_ohm"]) for u in units}
    assert points == {(r, s, w) for r in (0, 64) for s in ("single", "differential")
                      for w in (1.25, 0.625)}
    u = next(u for u in units if u.point["rows_per_read"] == 0 and u.point["sense"] == "single")
    assert unit_read_scheme(u).rows_per_read == 0 and not unit_read_scheme(u).differential
    assert grid.n_units() == len(units)
    with pytest.raises(ConfigError, match="r-wire"):
        dataclasses.replace(cfg, r_wire=(1.0,), wire_width=(0.14,))
    with pytest.raises(ConfigError, match="sense"):
        dataclasses.replace(cfg, sense=("both",))
