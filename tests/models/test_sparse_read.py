"""The event-driven VMM against the dense reads it replaces: same codes, currents to a few ulp,
same reservoir spikes; and the choice between them."""

import dataclasses

import numpy as np
import pytest
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import LIFParams, ReadScheme, TileSpec
from rram_cosim.models.snn.lsm import run_reservoir
from rram_cosim.models.tile.backend import BoundTile, TileOutput
from rram_cosim.models.tile.ideal import IdealBackend
from rram_cosim.models.tile.sparse_read import (
    SPARSE_MAX_DENSITY,
    choose_path,
    drive_density,
)
from rram_cosim.models.tile.surrogate import CalibrationSample, TileSurrogate

N_IN, HIDDEN = 64, 32
# three row groups of 32 (the last one recurrent only) and the whole map at once
SCHEMES = {"row_groups": ReadScheme(rows_per_read=32), "whole_map": ReadScheme(rows_per_read=0)}


def _spec(read: ReadScheme) -> TileSpec:
    return TileSpec(rows=N_IN + HIDDEN, cols=HIDDEN, read=read)


def _map(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    shape = (N_IN + HIDDEN, HIDDEN)
    return rng.uniform(5.0, 30.0, shape), rng.uniform(5.0, 30.0, shape)


def _surrogate(spec: TileSpec, rng: np.random.Generator, sigma_us: float) -> TileSurrogate:
    """A surrogate fitted on ideal currents (any fit will do: the paths share its matrices)."""
    samples = []
    for _ in range(2):
        gp, gn = _map(rng)
        x = (rng.random((8, spec.rows)) < np.linspace(0.0, 1, 8)[:, None]).astype(float)
        out = IdealBackend(spec).bind(gp, gn).apply(x, rng)
        samples.append(CalibrationSample(gp, gn, x, out.i_pos_ua, out.i_neg_ua))
    return TileSurrogate(spec=spec, read_noise_sigma_us=sigma_us).fit(samples)


def _tiles(spec: TileSpec, rng: np.random.Generator, sigma_us: float) -> dict[str, BoundTile]:
    gp, gn = _map(rng)
    return {"ideal": IdealBackend(spec, read_noise_sigma_us=sigma_us).bind(gp, gn),
            "surrogate": _surrogate(spec, rng, sigma_us).bind(gp, gn)}


def _apply(tile: BoundTile, path: str, x: np.ndarray, seed: int) -> TileOutput:
    tile.vmm = path
    return tile.apply(x, np.random.default_rng(seed))


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("sigma_us", [0.0, 0.2])
def test_sparse_reads_equal_the_dense_reads(scheme: str, sigma_us: float) -> None:
    spec = _spec(SCHEMES[scheme])
    rng = np.random.default_rng(11)
    # binary spikes at 5 % with two drive levels (inputs and recurrent rows), as a reservoir
    x = (rng.random((40, spec.rows)) < 0.05) * np.r_[np.full(N_IN, 1.0), np.full(HIDDEN, 0.25)]
    x[3] = 0.0  # a step without events
    for name, tile in _tiles(spec, rng, sigma_us).items():
        dense, sparse = _apply(tile, "dense", x, 5), _apply(tile, "sparse", x, 5)
        np.testing.assert_array_equal(sparse.codes_pos, dense.codes_pos, err_msg=name)
        np.testing.assert_array_equal(sparse.codes_neg, dense.codes_neg, err_msg=name)
        # products summed in another order: a few ulp (read noise drawn identically)
        for f in ("i_pos_ua", "i_neg_ua", "y"):
            np.testing.assert_allclose(getattr(sparse, f), getattr(dense, f), rtol=1e-12,
                                       atol=1e-12, err_msg=f"{name} {f}")
        if name == "surrogate":  # y from the same codes: bitwise
            np.testing.assert_array_equal(sparse.y, dense.y)
        # the noise is drawn: another seed changes the outputs (the comparison can fail)
        if sigma_us > 0:
            assert not np.array_equal(_apply(tile, "sparse", x, 6).i_pos_ua, sparse.i_pos_ua)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reservoir_spike_counts_are_identical(scheme: str, seed: int) -> None:
    spec = _spec(SCHEMES[scheme])
    rng = np.random.default_rng(seed)
    frames = (rng.random((24, 12, N_IN)) < 0.05).astype(np.uint8)
    lif = LIFParams(hidden=HIDDEN, v_th=2.0, rec_level=0.25)
    for name, tile in _tiles(spec, rng, 0.1).items():
        feats = {}
        for path in ("dense", "sparse", "auto"):
            tile.vmm = path
            feats[path], _ = run_reservoir(tile, frames, lif, np.random.default_rng(seed + 7))
        assert feats["dense"].sum() > 0, name  # the network spikes: a real comparison
        np.testing.assert_array_equal(feats["sparse"], feats["dense"], err_msg=name)
        np.testing.assert_array_equal(feats["auto"], feats["dense"], err_msg=name)


def test_the_default_vmm_is_the_dense_path_bitwise() -> None:
    """Whole-map reads at 2 % density, where "auto" would take the sparse path: the default
    is the dense one, bit for bit."""
    spec = _spec(SCHEMES["whole_map"])
    rng = np.random.default_rng(3)
    x = (rng.random((64, spec.rows)) < 0.02) * rng.uniform(0.1, 1.0, (64, spec.rows))
    assert drive_density(x) <= SPARSE_MAX_DENSITY
    assert choose_path("auto", spec, x, HIDDEN) == "sparse"
    for name, tile in _tiles(spec, rng, 0.0).items():
        assert tile.vmm == "dense", name
        default = tile.apply(x, np.random.default_rng(1))
        dense = _apply(tile, "dense", x, 1)
        for f in ("i_pos_ua", "i_neg_ua", "y", "codes_pos", "codes_neg"):
            np.testing.assert_array_equal(getattr(default, f), getattr(dense, f),
                                          err_msg=f"{name} {f}")


def test_the_surrogates_vmm_option_is_validated() -> None:
    spec = _spec(SCHEMES["whole_map"])
    rng = np.random.default_rng(4)
    with pytest.raises(ConfigError, match="'vmm' parameter of TileSurrogate"):
        TileSurrogate(spec=spec, vmm="events")
    model = _surrogate(spec, rng, 0.0)
    model.vmm = "sparse"
    tile = model.bind(*_map(rng))
    assert tile.vmm == "sparse"
    with pytest.raises(ConfigError, match="'vmm' parameter of BoundSurrogate"):
        tile.vmm = "events"
    assert tile.vmm == "sparse"


@pytest.mark.parametrize("path", ["dense", "sparse"])
def test_ideal_read_noise_without_a_generator_is_refused_on_both_paths(path: str) -> None:
    spec = _spec(SCHEMES["whole_map"])
    rng = np.random.default_rng(5)
    tile = IdealBackend(spec, read_noise_sigma_us=0.1, vmm=path).bind(*_map(rng))
    x = (rng.random((4, spec.rows)) < 0.05).astype(float)
    with pytest.raises(ConfigError, match="needs a numpy.random.Generator"):
        tile.apply(x, None)


@pytest.mark.parametrize("path", ["dense", "sparse"])
def test_surrogate_read_noise_without_a_generator_is_refused_on_both_paths(path: str) -> None:
    spec = _spec(SCHEMES["whole_map"])
    rng = np.random.default_rng(5)
    sur = _surrogate(spec, rng, 0.1)
    gp, gn = _map(rng)
    x = (rng.random((4, spec.rows)) < 0.05).astype(float)
    tile = sur.bind(gp, gn)
    tile.vmm = path
    with pytest.raises(ConfigError, match="read_noise_sigma_us=0.1\\) needs a numpy"):
        tile.apply(x, None)
    # noise-free, None is a complete answer
    quiet = sur.with_noise(0.0).bind(gp, gn)
    quiet.vmm = path
    np.testing.assert_array_equal(quiet.apply(x, None).codes_pos,
                                  quiet.apply(x, np.random.default_rng(1)).codes_pos)


def test_auto_chooses_by_measured_density() -> None:
    whole = _spec(SCHEMES["whole_map"])
    spec = _spec(SCHEMES["row_groups"])
    rng = np.random.default_rng(0)
    sparse_x = (rng.random((16, whole.rows)) < 0.02).astype(float)
    dense_x = (rng.random((16, whole.rows)) < 0.6).astype(float)
    assert drive_density(sparse_x) < SPARSE_MAX_DENSITY < drive_density(dense_x)
    assert choose_path("auto", whole, sparse_x, HIDDEN) == "sparse"
    assert choose_path("auto", whole, dense_x, HIDDEN) == "dense"
    assert choose_path("dense", whole, sparse_x, HIDDEN) == "dense"
    # row-group reads measured slower on the sparse path: auto keeps them dense, "sparse"
    # still runs them so
    assert choose_path("auto", spec, sparse_x, HIDDEN) == "dense"
    assert choose_path("sparse", spec, sparse_x, HIDDEN) == "sparse"
    # reads the sparse path does not implement stay dense, and forcing it is refused
    for read in (ReadScheme(rows_per_read=32, sense="differential"),
                 ReadScheme(cols_per_read=8, unsensed="float")):
        other = dataclasses.replace(spec, read=read)
        assert choose_path("auto", other, sparse_x, HIDDEN) == "dense"
        with pytest.raises(ConfigError, match="sparse"):
            choose_path("sparse", other, sparse_x, HIDDEN)
    with pytest.raises(ConfigError, match="'vmm'"):
        choose_path("events", spec, sparse_x, HIDDEN)
    with pytest.raises(ConfigError, match="'vmm' parameter of IdealBackend"):
        IdealBackend(spec, vmm="events")
