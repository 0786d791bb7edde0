"""The ideal ``G . V`` tile: exact products, no wires, no transistor, ideal periphery."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..params import TileSpec
from .backend import TileOutput, check_pair, ideal_codes, input_levels, read_noise_ua
from .read import scheme_apply
from .sparse_read import VMM_PATHS, choose_path, sparse_reads


class BoundIdeal:
    """Ideal tile: exact ``G . V`` currents, ideal periphery; ``y`` is exact ``x @ W``.

    ``vmm`` ("auto", "dense" or "sparse") picks how a VMM's reads are computed
    (:func:`~rram_cosim.models.tile.sparse_read.choose_path`); the outputs are the same.
    """

    def __init__(self, spec: TileSpec, g_pos_us: np.ndarray, g_neg_us: np.ndarray,
                 read_noise_sigma_us: float, vmm: str = "auto") -> None:
        self.spec = spec
        self.g_pos_us, self.g_neg_us = check_pair(spec, g_pos_us, g_neg_us)
        self.read_noise_sigma_us = read_noise_sigma_us
        self.w_ = (self.g_pos_us - self.g_neg_us) / spec.g_ref_us
        self.vmm = vmm
        # the event-driven reads' transfer: G+ columns, then G- columns (uA per V)
        self._t_both = np.concatenate([self.g_pos_us, self.g_neg_us], axis=1)

    def apply(self, x: np.ndarray, rng: np.random.Generator, *,
              volts: bool = False) -> TileOutput:
        lv = input_levels(x, self.spec, self.g_pos_us.shape[0], volts)
        k = self.g_pos_us.shape[1]
        if choose_path(self.vmm, self.spec, lv, k) == "sparse":
            zero = np.zeros(k)
            return sparse_reads(self.spec, lv * self.spec.v_read_v, self._t_both, zero, zero,
                                self.read_noise_sigma_us, rng, self._outputs, exact_y=True)
        return scheme_apply(self.spec, lv, rng, self._read, k, exact_y=True)

    def _outputs(self, i_pos: np.ndarray, i_neg: np.ndarray) -> TileOutput:
        """Codes and exact ``y`` of reads with column currents ``i_pos``, ``i_neg`` (uA)."""
        y = (i_pos - i_neg) / (self.spec.g_ref_us * self.spec.v_read_v)
        return TileOutput(y=y, i_pos_ua=i_pos, i_neg_ua=i_neg,
                          codes_pos=ideal_codes(i_pos, self.spec),
                          codes_neg=ideal_codes(i_neg, self.spec))

    def _read(self, lv: np.ndarray, rng: np.random.Generator | None, rows: slice,
              sensed: np.ndarray | None) -> TileOutput:
        """One read: exact ``G . V`` of the driven rows (an ideal array has no sneak paths,
        so floating columns change nothing)."""
        v = lv[:, rows] * self.spec.v_read_v
        n = self.g_pos_us.shape[1]
        i_pos = v @ self.g_pos_us[rows] + read_noise_ua(v, self.read_noise_sigma_us, n, rng)
        i_neg = v @ self.g_neg_us[rows] + read_noise_ua(v, self.read_noise_sigma_us, n, rng)
        return self._outputs(i_pos, i_neg)


@dataclass(frozen=True)
class IdealBackend:
    """The ideal ``G . V`` model (no wires, no transistor, ideal TIA); optional read noise."""

    spec: TileSpec = TileSpec()  # noqa: RUF009 - frozen, so one shared default is safe
    read_noise_sigma_us: float = 0.0
    name: str = "ideal"
    # dense or event-driven VMMs; "auto" chooses by measured drive density (same outputs)
    vmm: str = "auto"

    def __post_init__(self) -> None:
        if self.vmm not in VMM_PATHS:
            raise ConfigError(f"The 'vmm' parameter of IdealBackend must be one of {VMM_PATHS}. "
                              f"Got {self.vmm!r} instead.")

    def bind(self, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> BoundIdeal:
        return BoundIdeal(self.spec, g_pos_us, g_neg_us, self.read_noise_sigma_us, self.vmm)
