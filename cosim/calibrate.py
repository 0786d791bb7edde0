"""Calibration of the tile surrogate on circuit-level simulations, and its error table.

A calibration set is a few conductance maps drawn across the device's range, each driven by
spike-like sparse binary inputs over the whole density range plus the all-rows-on corner,
simulated by a reference backend (``spice`` or ``nodal``). The surrogate is fitted on it and
its error is measured on maps and inputs not used in fitting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..models.backend import TileBackend, ideal_codes
from ..models.conductance import differential_pair
from ..models.params import DeviceParams, TileSpec
from ..models.periphery import adc_codes, current_lsb_ua, tia_out_v
from ..models.surrogate import CalibrationSample, TileSurrogate


def calibration_inputs(rows: int, n_vectors: int, rng: np.random.Generator) -> np.ndarray:
    """Binary inputs (n_vectors x rows): densities spread over (0, 1], last vector all on."""
    dens = np.linspace(1.0 / rows, 1.0, n_vectors)
    x = (rng.random((n_vectors, rows)) < dens[:, None]).astype(np.float64)
    x[-1] = 1.0
    return x


def calibration_maps(shape: tuple[int, int], n_maps: int, rng: np.random.Generator,
                     device: DeviceParams, spec: TileSpec) -> list[tuple[np.ndarray, np.ndarray]]:
    """Formed-distribution maps, plus (from the second on) one spanning [g_min, full scale]."""
    maps = [differential_pair(shape, rng, device) for _ in range(max(n_maps - 1, 1))]
    if n_maps > 1:
        lo, hi = device.g_min_us, spec.g_full_scale_us
        maps.append((rng.uniform(lo, hi, shape), rng.uniform(lo, hi, shape)))
    return maps


def simulate(reference: TileBackend, maps: list[tuple[np.ndarray, np.ndarray]],
             inputs: list[np.ndarray], rng: np.random.Generator) -> list[CalibrationSample]:
    """Run every (map, inputs) pair through the reference backend."""
    out = []
    for (gp, gn), x in zip(maps, inputs):
        res = reference.bind(gp, gn).apply(x, rng)
        out.append(CalibrationSample(gp, gn, x, res.i_pos_ua, res.i_neg_ua))
    return out


@dataclass(frozen=True)
class ErrorRow:
    backend: str
    rms_lsb: float
    max_lsb: float
    rms_code_lsb: float
    max_code_lsb: float
    rms_pct_fs: float
    max_pct_fs: float


def error_table(spec: TileSpec, held_out: list[CalibrationSample],
                predictions: dict[str, list[tuple[np.ndarray, np.ndarray]]]) -> pd.DataFrame:
    """Error of each model's column currents against the reference, in ADC LSB and % of FS.

    ``predictions[name]`` holds, per held-out sample, the model's (i_pos_ua, i_neg_ua). Current
    error is measured before quantisation (in units of one LSB of current); code error after
    the TIA and ADC (the ideal model goes through the ideal TIA, as the ideal G.V model has none).
    """
    lsb = current_lsb_ua(spec)
    ref_i = np.concatenate([np.stack([s.i_pos_ua, s.i_neg_ua]).ravel() for s in held_out])
    ref_c = adc_codes(tia_out_v(ref_i, spec), spec)
    rows = []
    for name, preds in predictions.items():
        pi = np.concatenate([np.stack(p).ravel() for p in preds])
        pc = ideal_codes(pi, spec) if name == "ideal" else adc_codes(tia_out_v(pi, spec), spec)
        e = (pi - ref_i) / lsb
        ec = (pc - ref_c).astype(np.float64)
        n_codes = spec.adc.n_codes
        rows.append(ErrorRow(name, float(np.sqrt(np.mean(e**2))), float(np.abs(e).max()),
                             float(np.sqrt(np.mean(ec**2))), float(np.abs(ec).max()),
                             float(np.sqrt(np.mean(e**2)) / n_codes * 100),
                             float(np.abs(e).max() / n_codes * 100)).__dict__)
    return pd.DataFrame(rows)


def fit_surrogate(spec: TileSpec, samples: list[CalibrationSample], *,
                  read_noise_sigma_us: float, provenance: dict) -> TileSurrogate:
    """Fit a :class:`TileSurrogate` on calibration samples."""
    return TileSurrogate(spec=spec, read_noise_sigma_us=read_noise_sigma_us).fit(
        samples, provenance=provenance)
