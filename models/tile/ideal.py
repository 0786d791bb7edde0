"""The ideal ``G . V`` tile: exact products, no wires, no transistor, ideal periphery."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import TileSpec
from .backend import TileOutput, check_pair, ideal_codes, input_levels, read_noise_ua
from .read import scheme_apply


class BoundIdeal:
    """Ideal tile: exact ``G . V`` currents, ideal periphery; ``y`` is exact ``x @ W``."""

    def __init__(self, spec: TileSpec, g_pos_us: np.ndarray, g_neg_us: np.ndarray,
                 read_noise_sigma_us: float) -> None:
        self.spec = spec
        self.g_pos_us, self.g_neg_us = check_pair(spec, g_pos_us, g_neg_us)
        self.read_noise_sigma_us = read_noise_sigma_us
        self.w_ = (self.g_pos_us - self.g_neg_us) / spec.g_ref_us

    def apply(self, x: np.ndarray, rng: np.random.Generator, *,
              volts: bool = False) -> TileOutput:
        lv = input_levels(x, self.spec, self.g_pos_us.shape[0], volts)
        return scheme_apply(self.spec, lv, rng, self._read, self.g_pos_us.shape[1],
                            exact_y=True)

    def _read(self, lv: np.ndarray, rng: np.random.Generator | None, rows: slice,
              sensed: np.ndarray | None) -> TileOutput:
        """One read: exact ``G . V`` of the driven rows (an ideal array has no sneak paths,
        so floating columns change nothing)."""
        v = lv[:, rows] * self.spec.v_read_v
        n = self.g_pos_us.shape[1]
        i_pos = v @ self.g_pos_us[rows] + read_noise_ua(v, self.read_noise_sigma_us, n, rng)
        i_neg = v @ self.g_neg_us[rows] + read_noise_ua(v, self.read_noise_sigma_us, n, rng)
        y = (i_pos - i_neg) / (self.spec.g_ref_us * self.spec.v_read_v)
        return TileOutput(y=y, i_pos_ua=i_pos, i_neg_ua=i_neg,
                          codes_pos=ideal_codes(i_pos, self.spec),
                          codes_neg=ideal_codes(i_neg, self.spec))


@dataclass(frozen=True)
class IdealBackend:
    """The ideal ``G . V`` model (no wires, no transistor, ideal TIA); optional read noise."""

    spec: TileSpec = TileSpec()  # noqa: RUF009 - frozen, so one shared default is safe
    read_noise_sigma_us: float = 0.0
    name: str = "ideal"

    def bind(self, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> BoundIdeal:
        return BoundIdeal(self.spec, g_pos_us, g_neg_us, self.read_noise_sigma_us)
