"""Split a weight matrix over several tiles and add the partial sums digitally.

The default mapping puts a whole map on one macro; this is the option for smaller tiles (and
for maps larger than one macro). Each tile is bound once; ``apply`` drives every tile with its
rows' slice of the input and adds the tiles' outputs of the same weight columns, as digital
adders after the ADCs would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import as_conductance, check_int
from ..params import TileSpec
from .backend import BoundTile, TileBackend, TileOutput, merge_resolved


@dataclass(frozen=True)
class TiledBackend:
    """Wrap a backend whose tiles are ``inner_spec.rows x inner_spec.cols`` (weights)."""

    inner: TileBackend
    tile_rows: int
    tile_cols: int

    def __post_init__(self) -> None:
        check_int("TiledBackend", "tile_rows", self.tile_rows, 1, 1 << 16)
        check_int("TiledBackend", "tile_cols", self.tile_cols, 1, 1 << 16)

    @property
    def name(self) -> str:
        return f"tiled[{self.inner.name}]"

    def bind(self, g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> BoundTiled:
        gp = as_conductance("g_pos_us", g_pos_us)
        gn = as_conductance("g_neg_us", g_neg_us, shape=gp.shape)
        r_edges = np.arange(0, gp.shape[0], self.tile_rows)
        c_edges = np.arange(0, gp.shape[1], self.tile_cols)
        # a backend that depends on how its rows are driven (a surrogate linearised for a
        # workload) gives each row block its own rows' share
        block = getattr(self.inner, "row_block", None)
        inners = [block(r, r + self.tile_rows, gp.shape[0]) if block else self.inner
                  for r in r_edges]
        tiles = [[be.bind(gp[r:r + self.tile_rows, c:c + self.tile_cols],
                          gn[r:r + self.tile_rows, c:c + self.tile_cols])
                  for c in c_edges] for r, be in zip(r_edges, inners)]
        return BoundTiled(gp, gn, r_edges, c_edges, self.tile_rows, self.tile_cols, tiles)


class BoundTiled:
    """Bound tiled map; outputs add over row blocks (digital partial sums)."""

    def __init__(self, g_pos_us: np.ndarray, g_neg_us: np.ndarray, r_edges: np.ndarray,
                 c_edges: np.ndarray, tile_rows: int, tile_cols: int,
                 tiles: list[list[BoundTile]]) -> None:
        self.g_pos_us, self.g_neg_us = g_pos_us, g_neg_us
        self.r_edges, self.c_edges = r_edges, c_edges
        self.tile_rows, self.tile_cols = tile_rows, tile_cols
        self.tiles = tiles
        self.spec: TileSpec = tiles[0][0].spec
        self.n_tiles = len(r_edges) * len(c_edges)

    def apply(self, x: np.ndarray, rng: np.random.Generator, *,
              volts: bool = False) -> TileOutput:
        x = np.asarray(x)
        if x.ndim == 1:
            x = x[None, :]
        b, k = x.shape[0], self.g_pos_us.shape[1]
        acc = {f: np.zeros((b, k)) for f in ("y", "i_pos_ua", "i_neg_ua")}
        codes = {f: np.zeros((b, k), dtype=np.int64) for f in ("codes_pos", "codes_neg")}
        resolved = None
        for bi, r in enumerate(self.r_edges):
            xs = x[:, r:r + self.tile_rows]
            for bj, c in enumerate(self.c_edges):
                out = self.tiles[bi][bj].apply(xs, rng, volts=volts)
                resolved = merge_resolved(resolved, out.resolved)
                sl = slice(c, c + out.y.shape[1])
                for f, a in acc.items():
                    a[:, sl] += getattr(out, f)
                for f, arr in codes.items():
                    arr[:, sl] += getattr(out, f)
        return TileOutput(y=acc["y"], i_pos_ua=acc["i_pos_ua"], i_neg_ua=acc["i_neg_ua"],
                          codes_pos=codes["codes_pos"], codes_neg=codes["codes_neg"],
                          resolved=resolved)
