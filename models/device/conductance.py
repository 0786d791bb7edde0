"""Formed conductance maps: sampling, differential pairing and summary statistics.

Until the stochastic breakdown model (:mod:`rram_cosim.models.device.breakdown`) is used to form an
array, a formed map is drawn from the quasi-normal distribution that the same group's open code
uses for formed cells of this macro (DeviceParams defaults: 14.2 +- 2.46 uS).
"""

from __future__ import annotations

import numpy as np

from ..checks import check_int
from ..params import DeviceParams


def sample_formed_map(shape: tuple[int, int], rng: np.random.Generator,
                      device: DeviceParams = DeviceParams()  # noqa: B008 - frozen dataclass
                      ) -> np.ndarray:
    """Conductances (uS) of formed cells, normal(g_mean, g_std) floored at ``g_min_us``."""
    check_int("sample_formed_map", "rows", int(shape[0]), 1, 1 << 20)
    check_int("sample_formed_map", "cols", int(shape[1]), 1, 1 << 20)
    g = rng.normal(device.g_mean_us, device.g_std_us, size=shape)
    return np.maximum(g, device.g_min_us)


def differential_pair(shape: tuple[int, int], rng: np.random.Generator,
                      device: DeviceParams = DeviceParams()  # noqa: B008 - frozen dataclass
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A random differential pair (G+, G-) of formed maps, each of ``shape`` (weights)."""
    return sample_formed_map(shape, rng, device), sample_formed_map(shape, rng, device)


def map_stats(g_us: np.ndarray) -> dict[str, float]:
    """Mean, std, CV, skewness and excess kurtosis of a conductance map (uS)."""
    g = np.asarray(g_us, dtype=np.float64).ravel()
    m, s = float(g.mean()), float(g.std())
    z = (g - m) / s if s > 0 else np.zeros_like(g)
    return {"mean_us": m, "std_us": s, "cv": s / m if m else float("nan"),
            "skew": float(np.mean(z**3)), "excess_kurtosis": float(np.mean(z**4) - 3.0),
            "min_us": float(g.min()), "max_us": float(g.max()), "n": int(g.size)}
