"""The surrogate under read schemes: rows driven from both ends and floating unsensed column
groups, against the exact tile network at the linearisation point, and fitted on itself."""

import numpy as np
import pytest
from rram_cosim.models.params import ReadScheme, TileSpec
from rram_cosim.models.tile.network import operating_point
from rram_cosim.models.tile.periphery import dac_volts
from rram_cosim.models.tile.read import column_groups
from rram_cosim.models.tile.surrogate import (
    CalibrationSample,
    TileSurrogate,
    interleave,
    terminations,
)

ROWS, COLS = 16, 6

SCHEMES = {
    "whole": ReadScheme.whole_map(),
    "row_groups": ReadScheme(rows_per_read=8),
    "ground_cols": ReadScheme(rows_per_read=0, cols_per_read=4),
    "float_cols": ReadScheme(rows_per_read=0, cols_per_read=4, unsensed="float"),
    "float_rows_cols": ReadScheme(rows_per_read=8, cols_per_read=6, unsensed="float"),
    "float_diff": ReadScheme(rows_per_read=0, cols_per_read=2, unsensed="float",
                             sense="differential"),
    "both": ReadScheme(rows_per_read=0, drive="both"),
    "both_float_rows": ReadScheme(rows_per_read=8, cols_per_read=4, unsensed="float",
                                  drive="both"),
}


def _spec(read, r_wire=3.0):
    return TileSpec(rows=ROWS, cols=COLS, r_wire_ohm=r_wire, read=read)


def _maps(rng):
    return rng.uniform(2, 30, (ROWS, COLS)), rng.uniform(2, 30, (ROWS, COLS))


def _self_fitted(spec, rng):
    """A surrogate fitted on its own predictions: the fit must reproduce them exactly."""
    gp, gn = _maps(rng)
    x = (rng.random((10, ROWS)) < np.linspace(0.1, 1, 10)[:, None]).astype(float)
    boot = TileSurrogate(spec=spec, read_noise_sigma_us=0.0)
    boot.fit([CalibrationSample(gp, gn, x, np.zeros((10, COLS)), np.zeros((10, COLS)))])
    ip, i_n = boot.bind(gp, gn).currents(x)
    sur = TileSurrogate(spec=spec, read_noise_sigma_us=0.0).fit(
        [CalibrationSample(gp, gn, x, ip, i_n)])
    return sur, gp, gn


@pytest.mark.parametrize("name", list(SCHEMES))
def test_every_scheme_applies_and_fits_itself(name):
    spec = _spec(SCHEMES[name])
    rng = np.random.default_rng(1)
    sur, gp, gn = _self_fitted(spec, rng)
    assert sur.fit_rms_lsb_ < 1e-9
    bound = sur.bind(gp, gn)
    x = (rng.random((5, ROWS)) < 0.5).astype(float)
    out = bound.apply(x, np.random.default_rng(2))
    assert out.y.shape == (5, COLS)
    for f in (out.y, out.codes_pos, out.codes_neg, out.i_pos_ua, out.i_neg_ua):
        assert np.all(np.isfinite(f))
    # the reads' currents (noise free) add up to the scheme's currents
    quiet = sur.with_noise(0.0).bind(gp, gn)
    q = quiet.apply(x, np.random.default_rng(2))
    ip, i_n = quiet.currents(x)
    np.testing.assert_allclose(q.i_pos_ua, ip, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(q.i_neg_ua, i_n, rtol=1e-12, atol=1e-9)
    # one linearisation per column group, kept
    n_masks = len([m for m in column_groups(spec, COLS) if m is not None])
    assert len(quiet._lins) == 1 + n_masks
    quiet.apply(x, None)
    assert len(quiet._lins) == 1 + n_masks


@pytest.mark.parametrize("name", ["float_cols", "float_diff", "both"])
def test_surrogate_is_exact_at_its_linearisation_point(name):
    """One read of the whole map (no row groups): the tangent is taken at every row driven
    at the linearisation level, so there the surrogate is the exact operating point."""
    spec = _spec(SCHEMES[name])
    sur, gp, gn = _self_fitted(spec, np.random.default_rng(3))
    bound = sur.bind(gp, gn)
    lv = np.full((1, ROWS), sur.linearise_level)
    g_s = interleave(gp, gn) * 1e-6
    term = terminations(spec)
    assert term.both_ends == (spec.read.drive == "both")
    for sensed in column_groups(spec, COLS):
        # one read of every row at the linearisation point (one row group's circuit)
        out = bound._read(lv, None, slice(0, ROWS), sensed)
        op = operating_point(g_s, sur.cell_model(), term, dac_volts(lv, spec)[0],
                             sensed=sensed)
        got = interleave(out.i_pos_ua, out.i_neg_ua)[0]
        keep = np.ones(2 * COLS, bool) if sensed is None else sensed
        exact = op.i_tia_a * 1e6
        err = np.abs(got[keep] - exact[keep]).max() / np.abs(exact[keep]).max()
        assert err <= 1e-10, err
        if sensed is not None:
            assert np.all(got[~keep] == 0)


def test_scheme_physics_through_the_surrogate():
    rng = np.random.default_rng(4)
    gp, gn = _maps(rng)
    x = np.ones((1, ROWS))
    cur = {}
    for name in ("ground_cols", "float_cols", "whole", "both"):
        sur, _, _ = _self_fitted(_spec(SCHEMES[name], r_wire=5.0), np.random.default_rng(5))
        ip, i_n = sur.bind(gp, gn).currents(x)
        cur[name] = interleave(ip, i_n)[0]
    # floating unsensed columns load the rows less: every column reads more
    assert np.all(cur["float_cols"] > cur["ground_cols"])
    # both ends: less IR drop along the rows
    assert np.all(cur["both"] > cur["whole"])


@pytest.mark.parametrize("name", ["float_rows_cols", "both_float_rows"])
def test_a_drive_profile_is_linearised_per_column_group(name):
    from rram_cosim.models.tile.surrogate import DriveProfile

    spec = _spec(SCHEMES[name])
    rng = np.random.default_rng(6)
    sur, gp, gn = _self_fitted(spec, rng)
    work = (rng.random((40, ROWS)) < 0.4).astype(float)
    prof = DriveProfile.from_levels(work, rng, n_samples=8)
    bound = sur.with_drive(prof).bind(gp, gn)
    out = bound.apply(work[:5], None)
    assert np.all(np.isfinite(out.y))
    masks = column_groups(spec, COLS)
    assert len(bound._lins) == 1 + len(masks)
    # unbiased on the workload's own samples, group by group: the constant is their mean
    # error, so the summed-read currents of the samples average to the exact ones
    g_s = interleave(gp, gn) * 1e-6
    term = terminations(spec)
    # with row groups the samples are solved read by read (each group driven, the rest 0 V)
    v_full = dac_volts(prof.samples, spec)
    rows = np.arange(ROWS)
    v = np.concatenate([np.where((rows >= a) & (rows < b), v_full, 0.0)
                        for a, b in spec.read.row_groups(ROWS)])
    for sensed in masks:
        lin = bound._lins[sensed.tobytes()]
        exact = np.stack([operating_point(g_s, sur.cell_model(), term, vk,
                                          sensed=sensed).i_tia_a for vk in v]) * 1e6
        bias = (lin.currents_ua(v) - exact)[:, sensed].mean(axis=0)
        assert np.abs(bias).max() < 1e-9 * np.abs(exact).max()


@pytest.mark.parametrize("name", ["row_groups", "both_float_rows"])
def test_row_group_reads_follow_the_exact_reads(name):
    """A read drives one row group with the rest at 0 V: the surrogate's read currents stay
    within a small fraction of full scale of the exact operating point of that read."""
    spec = _spec(SCHEMES[name])
    sur, gp, gn = _self_fitted(spec, np.random.default_rng(8))
    bound = sur.bind(gp, gn)
    g_s = interleave(gp, gn) * 1e-6
    term = terminations(spec)
    x = (np.random.default_rng(9).random((6, ROWS)) < 0.5).astype(float)
    fs = spec.i_full_scale_ua
    for a, b in spec.read.row_groups(ROWS):
        for sensed in column_groups(spec, COLS):
            out = bound._read(x, None, slice(a, b), sensed)
            got = interleave(out.i_pos_ua, out.i_neg_ua)
            xm = np.zeros_like(x)
            xm[:, a:b] = x[:, a:b]
            exact = np.stack([operating_point(g_s, sur.cell_model(), term, vk,
                                              sensed=sensed).i_tia_a
                              for vk in dac_volts(xm, spec)]) * 1e6
            keep = np.ones(2 * COLS, bool) if sensed is None else sensed
            assert np.abs(got[:, keep] - exact[:, keep]).max() < 2e-4 * fs  # ~3 LSB of 14 bits
