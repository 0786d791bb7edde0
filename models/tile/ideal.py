"""The ideal ``G . V`` tile: exact products, no wires, no transistor, ideal periphery."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..checks import check_choice
from ..params import TileSpec
from .backend import (
    AddNoise,
    TileOutput,
    check_pair,
    ideal_codes,
    input_levels,
    need_rng,
    noise_adder,
)
from .read import scheme_apply
from .sparse_read import VMM_PATHS, choose_path, sparse_reads


class BoundIdeal:
    """Ideal tile: exact ``G . V`` currents, ideal periphery; ``y`` is exact ``x @ W``.

    ``vmm`` ("dense", "sparse" or "auto") picks how a VMM's reads are computed (see
    :class:`IdealBackend`).
    """

    def __init__(self, spec: TileSpec, g_pos_us: np.ndarray, g_neg_us: np.ndarray,
                 read_noise_sigma_us: float, vmm: str = "dense") -> None:
        self.spec = spec
        self.g_pos_us, self.g_neg_us = check_pair(spec, g_pos_us, g_neg_us)
        self.read_noise_sigma_us = read_noise_sigma_us
        self.w_ = (self.g_pos_us - self.g_neg_us) / spec.g_ref_us
        self.vmm = vmm
        self._zero_codes: dict = {}  # a differential scheme's offset references (read.py)

    def apply(self, x: np.ndarray, rng: np.random.Generator, *,
              volts: bool = False) -> TileOutput:
        lv = input_levels(x, self.spec, self.g_pos_us.shape[0], volts)
        k = self.g_pos_us.shape[1]
        need_rng("IdealBackend", self.read_noise_sigma_us, rng)
        if choose_path(self.vmm, self.spec, lv, k) == "sparse":
            zero = np.zeros(k)
            return sparse_reads(self.spec, lv * self.spec.v_read_v, self._t_both, zero, zero,
                                self.read_noise_sigma_us, rng, self._sparse_out, exact_y=True)
        return scheme_apply(self.spec, lv, rng, self._read, k, exact_y=True,
                            zero_cache=self._zero_codes)

    @functools.cached_property
    def _t_both(self) -> np.ndarray:
        """The event-driven reads' transfer (G+ columns, then G- columns, uA per V), built on
        the first sparse VMM."""
        return np.concatenate([self.g_pos_us, self.g_neg_us], axis=1)

    def _sparse_out(self, i_pos: np.ndarray, i_neg: np.ndarray, v: np.ndarray, rows: slice,
                    add_noise: AddNoise) -> TileOutput:
        """The rest of an event-driven read after its product: noise, codes and ``y``."""
        add_noise(i_pos, i_neg)
        return self._outputs(i_pos, i_neg)

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
        i_pos, i_neg = v @ self.g_pos_us[rows], v @ self.g_neg_us[rows]
        noise_adder(v, self.read_noise_sigma_us, rng)(i_pos, i_neg)
        return self._outputs(i_pos, i_neg)


@dataclass(frozen=True)
class IdealBackend:
    """The ideal ``G . V`` model (no wires, no transistor, ideal TIA); optional read noise.

    ``vmm``: ``"dense"`` (default) computes each read as a matrix product; ``"sparse"`` sums
    each read over its driven rows only (event-driven, :mod:`~rram_cosim.models.tile.sparse_read`)
    and ``"auto"`` takes the sparse path for one-read VMMs at low drive density
    (:func:`~rram_cosim.models.tile.sparse_read.choose_path`). Opt-in: the sparse currents
    agree with the dense ones to a few ulp, not bitwise (a code on an ADC boundary can
    differ), and ``"auto"``'s choice depends on the density of the whole batch.
    """

    spec: TileSpec = TileSpec()  # noqa: RUF009 - frozen, so one shared default is safe
    read_noise_sigma_us: float = 0.0
    name: str = "ideal"
    vmm: str = "dense"

    def __post_init__(self) -> None:
        check_choice("IdealBackend", "vmm", self.vmm, VMM_PATHS)

    def bind(self, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> BoundIdeal:
        return BoundIdeal(self.spec, g_pos_us, g_neg_us, self.read_noise_sigma_us, self.vmm)
