"""The held-out set's corner families, the worst case against the bars, and what calibrate
does when it misses them (nodal reference, small tiles)."""

import json
import warnings

import numpy as np
import pytest
from rram_cosim.cosim.cli.main import main
from rram_cosim.cosim.engines.calibrate import calibrate_tile
from rram_cosim.cosim.engines.held_out import (
    FAMILIES,
    ErrorBars,
    structured_cases,
    structured_inputs,
)
from rram_cosim.cosim.engines.nodal import NodalBackend
from rram_cosim.models.errors import AccuracyWarning, ConfigError
from rram_cosim.models.params import AdcSpec, ReadScheme, TileSpec
from rram_cosim.models.tile.periphery import current_lsb_ua
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
    # the full-scale family's error, recomputed here: the circuit (nodal) against the
    # surrogate's apply on that map and its inputs
    lsb = current_lsb_ua(res.spec)
    case = structured_cases((N, N), 1.0, res.spec.g_full_scale_us)[0]
    assert case.family == "full-scale"
    rng = np.random.default_rng(0)
    ref = NodalBackend(res.spec).bind(case.g_pos_us, case.g_neg_us).apply(case.levels, rng)
    out = res.surrogate.with_noise(0.0).bind(case.g_pos_us, case.g_neg_us).apply(
        case.levels, rng)
    e = max(np.abs(out.i_pos_ua - ref.i_pos_ua).max(), np.abs(out.i_neg_ua - ref.i_neg_ua).max())
    assert fam.loc["full-scale", "max_lsb"] == pytest.approx(e / lsb, rel=1e-6)
    assert res.worst["max_lsb"] >= e / lsb
    assert res.worst["max_ua"] == pytest.approx(res.worst["max_lsb"] * lsb)
    assert res.worst["reads_per_vmm"] == 1
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


def test_with_adc_rescales_the_stored_errors_to_the_new_lsb():
    res = _calibrate()
    s14 = res.surrogate
    s8 = s14.with_adc(AdcSpec(bits=8, v_full_scale_v=s14.spec.adc.v_full_scale_v))
    f = current_lsb_ua(s14.spec) / current_lsb_ua(s8.spec)
    assert f == pytest.approx(255 / 16383)  # codes over the same voltage span
    w14, w8 = s14.validation_worst_, s8.validation_worst_
    assert w8["max_lsb"] == pytest.approx(w14["max_lsb"] * f)
    assert w8["rms_lsb"] == pytest.approx(w14["rms_lsb"] * f)
    assert w8["max_ua"] == pytest.approx(w14["max_ua"]) == pytest.approx(s8.worst_max_ua())
    assert s8.validation_families_[1]["max_lsb"] == pytest.approx(
        s14.validation_families_[1]["max_lsb"] * f)


def test_the_bars_scale_with_the_reads_of_a_vmm():
    """A VMM of several row groups sums their errors: judged against the bars times the
    reads (one read's bars would fail a map whose every read meets them)."""
    spec = TileSpec(rows=N, cols=4, r_wire_ohm=1.0, read=ReadScheme(rows_per_read=4))
    res = calibrate_tile(spec, reference="nodal", n_maps=2, n_test_maps=1, n_vectors=8)
    w = res.worst
    assert w["reads_per_vmm"] == 4
    assert w["bars_vmm"] == {"rms_lsb": 32.0, "max_pct_fs": 2.0}
    from rram_cosim.cosim.engines.held_out import worst_case
    tight = ErrorBars(rms_lsb=w["rms_lsb"] / 2, max_pct_fs=50)
    assert not worst_case(res.families, tight)["meets_bars"]
    assert worst_case(res.families, tight, reads=4)["meets_bars"]
