"""The thin end-to-end chain: SPICE tile -> surrogate -> LIF reservoir -> readout -> energy.

:func:`demo_pipeline` proves the whole chain once on the embedded data: it simulates a small
differential 1T1R tile in ngspice on random formed conductances, compares the circuit with the
ideal G.V product, fits the surrogate on calibration maps and measures its error on held-out
maps, runs a LIF reservoir whose every VMM goes through the surrogate (tiled over the
calibrated tile size, partial sums added digitally), trains a softmax readout, and prices an
inference in both energy modes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...analysis import energy as en
from ...models.device.conductance import differential_pair, map_stats
from ...models.params import DeviceParams, TileSpec
from ...models.snn.heads import SoftmaxReadout
from ...models.snn.lsm import ReservoirActivity, run_reservoir
from ...models.tile.ideal import IdealBackend
from ...models.tile.surrogate import TileSurrogate
from ...models.tile.tiling import TiledBackend
from ..data.datasets import load_dataset, to_frames
from ..engines.calibrate import (
    bind_for_workload,
    calibration_inputs,
    calibration_maps,
    error_table,
    fit_surrogate,
    simulate,
)
from ..engines.registry import make_backend
from .configs.demo import DemoConfig

__all__ = ["DemoResult", "demo_pipeline"]


@dataclass
class DemoResult:
    """What :func:`demo_pipeline` measured."""

    spec: TileSpec  # the simulated and calibrated tile
    surrogate: TileSurrogate
    tile_error: pd.DataFrame  # held-out error of the ideal model and the surrogate
    ref_ua: np.ndarray  # the circuit's held-out column currents, flattened (uA)
    pred_ua: dict[str, np.ndarray]  # the same from the ideal model and the surrogate
    accuracy: pd.DataFrame  # per model: train, val and test accuracy, spikes per neuron
    energy: en.EnergyReport
    activity: ReservoirActivity  # the surrogate-backed reservoir's on the test split
    map_stats: dict[str, float]  # of the reservoir's map


def demo_pipeline(cfg: DemoConfig, run_path: Path,
                  stage: Callable[[str, float], None] | None = None) -> DemoResult:
    """Run the chain; the fitted surrogate is saved as ``run_path/surrogate.json``.

    ``stage(name, t0)`` is called after each of the five stages with its start time
    (``time.perf_counter()``).
    """
    def done(name: str, t0: float) -> None:
        if stage is not None:
            stage(name, t0)

    rng = np.random.default_rng(cfg.seed)
    device = DeviceParams()
    spec = TileSpec(rows=cfg.tile_rows, cols=cfg.tile_cols, r_wire_ohm=cfg.r_wire_ohm,
                    **cfg.read_spec())

    # 1. circuit simulations: calibration maps and held-out maps
    t0 = time.perf_counter()
    reference = make_backend(cfg.reference, spec)
    shape = (cfg.tile_rows, cfg.tile_cols)
    cal_maps = calibration_maps(shape, cfg.n_cal_maps, rng, device, spec)
    test_maps = [differential_pair(shape, rng, device) for _ in range(cfg.n_test_maps)]
    maps = cal_maps + test_maps
    inputs = [calibration_inputs(cfg.tile_rows, cfg.n_vectors, rng) for _ in maps]
    samples = simulate(reference, maps, inputs, rng)
    cal, held = samples[:len(cal_maps)], samples[len(cal_maps):]
    done("circuit simulation", t0)

    # 2. surrogate fit and held-out error against the circuit, beside the ideal G.V model
    t0 = time.perf_counter()
    surrogate = fit_surrogate(spec, cal, read_noise_sigma_us=device.read_noise_sigma_us,
                              provenance={"reference": cfg.reference, "seed": cfg.seed,
                                          "n_maps": len(cal), "n_vectors": cfg.n_vectors})
    surrogate.save(Path(run_path) / "surrogate.json")
    quiet = np.random.default_rng(0)  # error is measured without read noise
    noiseless = surrogate.with_noise(0.0)
    ideal = IdealBackend(spec)
    preds: dict[str, list] = {"ideal": [], "surrogate": []}
    for s in held:
        for name, be in (("ideal", ideal), ("surrogate", noiseless)):
            out = be.bind(s.g_pos_us, s.g_neg_us).apply(s.levels, quiet)
            preds[name].append((out.i_pos_ua, out.i_neg_ua))
    err = error_table(spec, held, preds)
    ref_flat = np.concatenate([np.stack([s.i_pos_ua, s.i_neg_ua]).ravel() for s in held])
    flat = {k: np.concatenate([np.stack(p).ravel() for p in v]) for k, v in preds.items()}
    done("surrogate fit", t0)

    # 3. data
    t0 = time.perf_counter()
    sizes = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
    data = {}
    for split, n in sizes.items():
        ds = load_dataset(cfg.dataset, split, seed=cfg.seed, n_samples=n)
        data[split] = (to_frames(ds, cfg.n_steps, crop=16, polarities=(1,)), ds.labels)
    n_in = data["train"][0].shape[2]
    n_classes = int(max(int(y.max()) for _, y in data.values()) + 1)
    done("event data", t0)

    # 4. reservoir on ideal and surrogate-backed weights (one shared map), and the raw baseline
    t0 = time.perf_counter()
    lif = cfg.lif()
    gp, gn = differential_pair((n_in + cfg.hidden, cfg.hidden), rng, device)
    macro = TileSpec(rows=n_in + cfg.hidden, cols=cfg.hidden, r_wire_ohm=cfg.r_wire_ohm,
                     **cfg.read_spec())
    backends = {
        "LSM, ideal weights": IdealBackend(macro),
        "LSM, surrogate tiles": TiledBackend(surrogate, cfg.tile_rows, cfg.tile_cols),
    }
    acc_rows = []
    activity = None
    seed_seq = np.random.SeedSequence(cfg.seed).spawn(len(backends) + 1)
    for (label, be), ss in zip(backends.items(), seed_seq):
        # the surrogate is linearised for the drive this reservoir measures on training data
        tile = (bind_for_workload(be, gp, gn, data["train"][0][:200], lif,
                                  np.random.default_rng([cfg.seed, 5]))
                if "surrogate" in label else be.bind(gp, gn))
        r = np.random.default_rng(ss)
        feats = {}
        for split, (frames, _) in data.items():
            feats[split], act = run_reservoir(tile, frames, lif, r, n_windows=cfg.n_windows)
            if split == "test" and "surrogate" in label:
                activity = act
        acc_rows.append(_train_and_score(label, feats, data, n_classes, cfg, r))
    raw = {split: frames.sum(axis=1) for split, (frames, _) in data.items()}
    acc_rows.append(_train_and_score("readout on raw event counts (no reservoir)", raw, data,
                                     n_classes, cfg, np.random.default_rng(seed_seq[-1])))
    acc = pd.DataFrame(acc_rows)
    done("reservoir + readout", t0)

    # 5. energy per inference, both modes, from the measured activity; the map sits on one
    # macro as on the paper's board (the demo's small tiles only serve the calibration)
    t0 = time.perf_counter()
    assert activity is not None
    net = en.Network(cfg.name, (("image", en.NetworkSize(n_in, cfg.hidden, cfg.n_steps,
                                                         n_classes)),))
    energy = en.energy_report(net, {"image": activity},
                              spec=macro,
                              g_row_sum_s=en.mean_row_conductance_s(gp, gn),
                              in_level=cfg.in_level, rec_level=cfg.rec_level)
    done("energy", t0)
    return DemoResult(spec=spec, surrogate=surrogate, tile_error=err, ref_ua=ref_flat,
                      pred_ua=flat, accuracy=acc, energy=energy, activity=activity,
                      map_stats=map_stats(np.concatenate([gp, gn])))


def _train_and_score(label: str, feats: dict, data: dict, n_classes: int, cfg: DemoConfig,
                     rng: np.random.Generator) -> dict[str, Any]:
    clf = SoftmaxReadout(epochs=cfg.readout_epochs).fit(feats["train"], data["train"][1],
                                                        rng=rng, n_classes=n_classes)
    return {"model": label, "train_acc": clf.score(feats["train"], data["train"][1]),
            "val_acc": clf.score(feats["val"], data["val"][1]),
            "test_acc": clf.score(feats["test"], data["test"][1]),
            "mean_spikes_per_neuron": float(np.mean(feats["train"]))}
