"""The held-out set's corner families, the worst case against the bars, and what calibrate
does when it misses them (nodal reference, small tiles)."""

import json
import warnings

import pytest
from rram_cosim.cosim.cli.main import main
from rram_cosim.cosim.engines.calibrate import calibrate_tile
from rram_cosim.cosim.engines.held_out import FAMILIES, ErrorBars, structured_inputs
from rram_cosim.models.errors import AccuracyWarning, ConfigError
from rram_cosim.models.params import TileSpec
from rram_cosim.models.tile.surrogate import TileSurrogate

N = 16
# a legal operating point where the tile is far from linear: 0.5 V reads, 0.7 V word line
NONLINEAR = ["--v-read-v", "0.5", "--v-gate-read-v", "0.7"]


def _calibrate(**kw):
    spec = TileSpec(rows=N, cols=N, r_wire_ohm=1.0, **kw)
    return calibrate_tile(spec, reference="nodal", n_maps=2, n_test_maps=1, n_vectors=8)


def test_the_corner_families_are_held_out_and_the_worst_is_not_the_formed_map():
    res = _calibrate()
    fam = res.families.set_index("family")
    assert list(fam.index) == ["formed", *FAMILIES]
    # the formed maps understate the worst case inside the domain (measured 8x at 16x16)
    assert fam.loc["full-scale", "rms_lsb"] > 3 * fam.loc["formed", "rms_lsb"]
    assert res.worst["rms_family"] != "formed" and res.meets_bars
    assert res.worst["max_lsb"] == pytest.approx(fam["max_lsb"].max())
    s = TileSurrogate.from_dict(json.loads(res.surrogate.to_json()))
    assert s.validation_worst_ == res.worst and len(s.validation_families_) == 7
    assert not s.error_accepted_


def test_a_nonlinear_operating_point_misses_the_bars_and_says_which_family():
    res = _calibrate(v_read_v=0.5, v_gate_read_v=0.7)
    assert not res.meets_bars
    assert any(f.startswith("full-scale (RMS") for f in res.worst["failed"])
    assert res.worst["rms_lsb"] > 8
    # the same numbers pass looser bars: the verdict is the bars', not hard-wired
    from rram_cosim.cosim.engines.held_out import worst_case
    assert worst_case(res.families, ErrorBars(rms_lsb=1e3, max_pct_fs=50))["meets_bars"]


def test_structured_inputs_cover_all_on_one_row_and_graded():
    x = structured_inputs(4)
    assert x.sum(axis=1).tolist() == [4, 1, 1, 2, 2]
    assert x[1, 0] == 1 and x[2, -1] == 1


def _cli(tmp_path, name, *extra):
    out = tmp_path / f"{name}.json"
    code = main(["calibrate", "--rows", str(N), "--cols", "8", "--reference", "nodal",
                 "--n-vectors", "8", "--n-maps", "1", "--n-test-maps", "1", "--r-wire-ohm",
                 "1", *NONLINEAR, "--out", str(out), "--runs", str(tmp_path / "runs"),
                 "--name", name, "--no-progress", *extra])
    return code, out, tmp_path / "runs" / name


def test_calibrate_exits_nonzero_on_missed_bars_unless_accepted(tmp_path, capsys):
    code, out, run = _cli(tmp_path, "strict")
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err
    assert "misses the bars" in err and "full-scale" in err and "--accept-error" in err
    assert (run / "surrogate.rejected.json").is_file() and (run / "families.csv").is_file()
    report = (run / "report.md").read_text()
    assert "exits 1" in report
    assert f"Surrogate written to `{run / 'surrogate.rejected.json'}`" in report
    assert f"Surrogate written to `{out}`" not in report

    code, out, run = _cli(tmp_path, "accepted", "--accept-error")
    assert code == 0 and out.is_file()
    s = TileSurrogate.load(out)
    assert s.error_accepted_ and not s.validation_worst_["meets_bars"]
    g = [[20.0] * 8] * N
    with pytest.warns(AccuracyWarning, match="full-scale.*accepted at calibration"):
        s.bind(g, g)


def test_version_2_files_still_load_without_the_worst_case(tmp_path):
    res = _calibrate()
    d = json.loads(res.surrogate.to_json())
    d["version"] = 2
    for k in ("validation_families", "validation_worst", "error_accepted"):
        del d[k]
    s = TileSurrogate.from_dict(d)
    assert s.validation_worst_ is None and s.validation_families_ is None
    g = [[20.0] * N] * N
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccuracyWarning)
        s.bind(g, g)
    d["version"] = 1
    with pytest.raises(ConfigError, match="version 1 is not supported .*reads 2, 3"):
        TileSurrogate.from_dict(d)
