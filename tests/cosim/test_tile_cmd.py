"""``rram-cosim calibrate`` and ``rram-cosim tile`` round trips (nodal and real ngspice)."""

import json

import numpy as np
import pytest
from rram_cosim.cosim.cli.main import main
from rram_cosim.models.tile.surrogate import TileSurrogate

ROWS, COLS = 8, 4


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tile")
    rng = np.random.default_rng(0)
    np.save(d / "gp.npy", rng.normal(14.2, 2.46, (ROWS, COLS)))
    np.save(d / "gn.npy", rng.normal(14.2, 2.46, (ROWS, COLS)))
    spikes = rng.random((6, ROWS)) < 0.5
    np.save(d / "x.npy", spikes)
    np.save(d / "x_int.npy", spikes.astype(np.int64))
    np.save(d / "x_volts.npy", spikes * 0.2)
    sur = d / "s.json"
    assert main(["calibrate", "--rows", str(ROWS), "--cols", str(COLS), "--reference", "nodal",
                 "--n-vectors", "8", "--n-maps", "2", "--n-test-maps", "1", "--r-wire-ohm",
                 "5", "--out", str(sur), "--runs", str(d / "runs"), "--no-progress"]) == 0
    return d, sur


def _tile(d, sur, backend, out, *extra):
    return main(["tile", "--g-pos", str(d / "gp.npy"), "--g-neg", str(d / "gn.npy"),
                 "--inputs", str(d / "x.npy"), "--backend", backend, "--surrogate", str(sur),
                 "--out", str(out), "--runs", str(d / "runs"), "--name", f"t_{backend}",
                 "--no-progress", "--overwrite", *extra])


def test_calibrate_writes_the_surrogate_and_a_run_folder(files):
    d, sur = files
    s = TileSurrogate.load(sur)
    assert s.spec.rows == ROWS and s.spec.r_wire_ohm == 5.0 and s.spec.tia.r_f_ohm is not None
    assert s.validation_ and s.energy_ and s.provenance_["reference"] == "nodal"
    for f in ("config.json", "errors.csv", "energy.csv", "error.png", "report.md"):
        assert (d / "runs" / "calibrate" / f).is_file(), f
    summary = json.loads((d / "runs" / "calibrate" / "summary.json").read_text())
    assert summary["headline"]["surrogate_rms_lsb"] < 0.5


def test_tile_backends_agree_and_outputs_round_trip(files, tmp_path):
    d, sur = files
    ys = {}
    for b in ("ideal", "surrogate", "nodal", "spice"):
        assert _tile(d, sur, b, tmp_path / f"{b}.npy") == 0
        ys[b] = np.load(tmp_path / f"{b}.npy")
        assert ys[b].shape == (6, COLS) and ys[b].dtype == np.int64
    np.testing.assert_array_equal(ys["nodal"], ys["spice"])
    assert np.abs(ys["surrogate"] - ys["nodal"]).max() <= 1
    assert np.abs(ys["ideal"] - ys["nodal"]).max() > 5  # 5 ohm wires: the ideal model is off
    assert (d / "runs" / "t_spice" / "report.md").is_file()
    # currents, W x units; volts and integer spikes read as the same inputs
    assert _tile(d, sur, "surrogate", tmp_path / "i.npy", "--output", "current") == 0
    assert _tile(d, sur, "surrogate", tmp_path / "w.npy", "--output", "weights") == 0
    i, w = np.load(tmp_path / "i.npy"), np.load(tmp_path / "w.npy")
    s = TileSurrogate.load(sur)
    lsb_w = s.spec.adc.lsb_v / s.spec.r_f_ohm * 1e6 / (s.spec.g_ref_us * s.spec.v_read_v)
    np.testing.assert_allclose(w, ys["surrogate"] * lsb_w)
    assert np.abs(i / (s.spec.adc.lsb_v / s.spec.r_f_ohm * 1e6) - ys["surrogate"]).max() < 1.5
    for x in ("x_int.npy", "x_volts.npy"):
        out = tmp_path / f"y_{x}"
        assert main(["tile", "--g-pos", str(d / "gp.npy"), "--g-neg", str(d / "gn.npy"),
                     "--inputs", str(d / x), "--backend", "surrogate", "--surrogate", str(sur),
                     "--out", str(out), "--runs", str(d / "runs"), "--no-progress",
                     "--overwrite"]) == 0
        np.testing.assert_array_equal(np.load(out), ys["surrogate"])


def test_tile_option_splits_the_map(files, tmp_path):
    d, sur = files
    assert _tile(d, sur, "nodal", tmp_path / "one.npy") == 0
    assert _tile(d, sur, "nodal", tmp_path / "split.npy", "--tile", "4x2") == 0
    one, split = np.load(tmp_path / "one.npy"), np.load(tmp_path / "split.npy")
    # four smaller tiles: shorter wires, so the outputs differ, but only by IR drop
    assert not np.array_equal(one, split)
    assert np.abs(split - one).max() < 0.05 * np.abs(one).max()


def test_bad_arguments_are_clear_errors(files, tmp_path, capsys):
    d, sur = files
    bad = np.load(d / "gp.npy")
    bad[0, 1] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    np.save(tmp_path / "x2.npy", np.full((2, ROWS), 2, dtype=np.int64))
    np.save(tmp_path / "xv.npy", np.full((2, ROWS), 0.5))
    np.save(tmp_path / "xs.npy", np.ones((2, ROWS + 1), dtype=bool))
    cases = [
        (["--g-pos", str(tmp_path / "bad.npy")], "non-finite conductance at (0, 1)"),
        (["--inputs", str(tmp_path / "x2.npy")], "0/1 spikes"),
        (["--inputs", str(tmp_path / "xv.npy")], "row voltages in V"),
        (["--inputs", str(tmp_path / "xs.npy")], "shape (batch, 8)"),
        (["--tile", "4by2"], "--tile must look like"),
    ]
    for extra, msg in cases:
        args = {"--g-pos": str(d / "gp.npy"), "--inputs": str(d / "x.npy")}
        args.update(dict(zip(extra[::2], extra[1::2])))
        argv = ["tile", "--backend", "surrogate", "--surrogate", str(sur), "--out",
                str(tmp_path / "y.npy"), "--runs", str(tmp_path / "runs"), "--no-progress"]
        for k, v in args.items():
            argv += [k, v]
        assert main(argv) == 2, msg
        assert msg in capsys.readouterr().err
    assert main(["tile", "--g-pos", str(d / "gp.npy"), "--inputs", str(d / "x.npy"),
                 "--backend", "surrogate", "--out", str(tmp_path / "y.npy")]) == 2
    assert "--surrogate FILE" in capsys.readouterr().err
