import numpy as np
import pytest
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import LIFParams, TileSpec
from rram_cosim.models.snn.lsm import lif_step, run_reservoir
from rram_cosim.models.tile.ideal import IdealBackend


def test_lif_step_matches_hand_computed_sequence():
    p = LIFParams(hidden=1, decay=0.5, v_th=1.0)
    currents = [0.6, 0.6, 0.6, 0.0, 2.0]
    # u: 0.6; 0.3+0.6=0.9; 0.45+0.6=1.05 -> spike; reset: 0+0=0; 0+2=2 -> spike
    expect_u = [0.6, 0.9, 1.05, 0.0, 2.0]
    expect_s = [0, 0, 1, 0, 1]
    u = np.zeros((1, 1))
    s = np.zeros((1, 1))
    for c, eu, es in zip(currents, expect_u, expect_s):
        s, u = lif_step(np.array([[c]]), u, s, p)
        assert u[0, 0] == pytest.approx(eu)
        assert s[0, 0] == es


def test_reservoir_uses_input_and_recurrent_rows_as_documented():
    # two inputs, two neurons; neuron 0 driven by input 0; neuron 1 only by neuron 0's spikes
    p = LIFParams(hidden=2, decay=1.0, v_th=0.5, in_level=1.0, rec_level=1.0)
    w = np.array([[1.0, 0.0],   # input 0
                  [0.0, 0.0],   # input 1
                  [0.0, 1.0],   # neuron 0 -> neuron 1
                  [0.0, 0.0]])  # neuron 1
    gp, gn = np.maximum(w, 0), np.maximum(-w, 0)
    tile = IdealBackend(TileSpec(rows=4, cols=2)).bind(gp, gn)
    frames = np.zeros((1, 4, 2))
    frames[0, 0, 0] = 1  # one input spike at t=0
    feats, act = run_reservoir(tile, frames, p, np.random.default_rng(0))
    # neuron 0 spikes at t=0 (u=1); neuron 1 gets it at t=1 and spikes; then both reset to rest
    np.testing.assert_array_equal(feats, [[1, 1]])
    np.testing.assert_array_equal(act.spikes, [1, 1, 0, 0])
    np.testing.assert_array_equal(act.active_in_rows, [1, 0, 0, 0])


def test_windows_split_counts_in_time_and_shape_errors():
    rng = np.random.default_rng(0)
    p = LIFParams(hidden=3, v_th=0.1)
    gp = rng.uniform(5, 20, (5, 3))
    tile = IdealBackend(TileSpec(rows=5, cols=3)).bind(gp, np.zeros_like(gp))
    frames = np.ones((4, 10, 2))
    one, _ = run_reservoir(tile, frames, p, rng)
    two, _ = run_reservoir(tile, frames, p, rng, n_windows=2)
    np.testing.assert_allclose(two[:, :3] + two[:, 3:], one)
    with pytest.raises(ConfigError, match="need a 6x3 map"):
        run_reservoir(tile, np.ones((1, 10, 3)), p, rng)
