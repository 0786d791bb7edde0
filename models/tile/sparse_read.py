"""Event-driven VMM of a linear tile: each read's currents summed over its driven rows only.

The ideal tile and the tile surrogate are linear in the row voltages: one read of row group
``g`` gives column currents ``I_g = c + v[:, g] @ T[g]`` (``T`` the R x 2K transfer, uA/V, ``c``
the zero-input current). A reservoir drives them with sparse, binary rows (about 5 % of the
input rows and about 25 of 200 recurrent rows a step), so :func:`sparse_reads` forms every
read of a batch at once from the nonzero entries of ``v`` (one sparse product of a (B G) x R
matrix that holds sample b's driven rows of group g in row ``b G + g``), instead of a dense
B x 64 product per read. Everything after the currents is the dense path's own code on the
same numbers: read noise drawn read by read in the dense order (one call of the same size
gives the same stream), a surrogate's exact solve of the reads past a TIA's linear range, the
TIA and ADC of each read, codes and currents added over reads in read order.

What can differ from the dense path: the summation order inside a read's product (BLAS blocks
versus a sum over the nonzeros), so currents agree to a few ulp, not bitwise; a code differs only
where a current lies within those ulp of an ADC rounding boundary (half a code), which the tests'
seeds never hit (codes and spike counts identical there; see ``tests/models/test_sparse_read.py``).

Which path: the tiles' default is ``vmm="dense"``; the sparse path is opt-in, since its
currents are not bitwise the dense ones and ``"auto"``'s choice depends on the density of the
whole batch (so on how a batch is split). With ``vmm="auto"``, :func:`choose_path` takes the
sparse one when a VMM is one read (the whole map at once), single-ended with every column
sensed, and the fraction of nonzero row drives in the batch is at most
:data:`SPARSE_MAX_DENSITY`; with row groups (where it gained only at drives far sparser than a
reservoir's: the reads' TIA/ADC work dominates and is the same on both paths) it stays dense.
``vmm="sparse"`` forces it for any single-ended, all-sensed scheme.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from ..checks import check_choice
from ..errors import ConfigError
from ..params import TileSpec
from .backend import AddNoise, TileOutput, code_y_scale, merge_resolved, noise_adder
from .read import column_groups

__all__ = ["SPARSE_MAX_DENSITY", "VMM_PATHS", "ReadOut", "choose_path", "drive_density",
           "grouped_drives", "sparse_reads"]

VMM_PATHS = ("auto", "dense", "sparse")

# Fraction of nonzero row drives up to which "auto" takes the sparse path, for a VMM that is
# one read. Chosen from `benchmarks/bench_reservoir.py --part density` (one VMM of the ideal
# 456 x 200 tile, batch 256, random drives, one core, dense and sparse alternating; the figures
# are in docs/tile.md): whole-map reads gain most at the lowest densities, less as the density
# grows; at 0.08 the sparse path was faster in every run (1.10-1.39x over seven), at 0.10
# 1.18x (two runs, quiet machine), at 0.12 either side of even (0.93-1.12x), slower from 0.16.
# 0.10 lets it take the reservoir's drive (about 8 % of the rows, up to 12 % in a step). With
# 64-row groups (the heap kept, as in a run; see the script) it gained 1.04-1.28x only up to
# 0.03, far below a reservoir's drive, and was slower from 0.08 on (each read's TIA/ADC work is
# the same on both paths and BLAS's dense 64-row products are cheap), so "auto" keeps row-group
# reads dense.
SPARSE_MAX_DENSITY = 0.10

# One read's outputs from its noise-free currents (B x K each side, owned by the callee), its
# row voltages (B x rows of the group) and rows, and its noise: the backend's own steps after
# the product, in the order of its dense read (a surrogate solves reads past a TIA's linear
# range exactly before the noise is added).
ReadOut = Callable[[np.ndarray, np.ndarray, np.ndarray, slice, AddNoise], TileOutput]


def drive_density(levels: np.ndarray) -> float:
    """Fraction of nonzero entries of the row drives (B x R): the measure :func:`choose_path`
    compares with :data:`SPARSE_MAX_DENSITY`."""
    return float(np.count_nonzero(levels)) / max(levels.size, 1)


def choose_path(path: str, spec: TileSpec, levels: np.ndarray, weight_cols: int) -> str:
    """``"dense"`` or ``"sparse"`` for one VMM of ``levels`` under ``path`` (see module doc).

    ``path="sparse"`` on a read scheme the sparse path does not implement (differential
    sensing, floating column groups) raises :class:`ConfigError`.
    """
    if path == "dense":  # the default: nothing to look at
        return path
    check_choice("choose_path", "vmm", path, VMM_PATHS)
    supported = (not spec.read.differential
                 and column_groups(spec, weight_cols) == [None])
    if path == "sparse" and not supported:
        raise ConfigError(
            "The sparse (event-driven) VMM implements single-ended reads with every column "
            f"sensed; this tile reads with {spec.read!r}. Use vmm='dense' or 'auto'.")
    if path != "auto":
        return path
    one_read = len(spec.read.row_groups(levels.shape[1])) == 1
    return ("sparse" if supported and one_read and drive_density(levels) <= SPARSE_MAX_DENSITY
            else "dense")


def grouped_drives(v: np.ndarray, groups: list[tuple[int, int]]) -> sp.csr_matrix:
    """(B G) x R sparse matrix: row ``b G + g`` holds sample b's nonzero drives of group g.

    The nonzeros come by sample, then row, so by ``b G + g`` too: the CSR arrays are built
    directly, without the sort of a COO conversion.
    """
    b, r = v.shape
    n_g = len(groups)
    group_of_row = np.empty(r, dtype=np.int64)
    for gi, (start, stop) in enumerate(groups):
        group_of_row[start:stop] = gi
    flat = v.reshape(-1)
    # a 1-D search of a boolean mask: a 2-D np.nonzero of the floats took 7x as long
    nz = np.flatnonzero(flat != 0)
    bi, ri = np.divmod(nz, r)
    indptr = np.zeros(b * n_g + 1, dtype=np.int64)
    np.cumsum(np.bincount(bi * n_g + group_of_row[ri], minlength=b * n_g), out=indptr[1:])
    return sp.csr_matrix((flat[nz], ri, indptr), shape=(b * n_g, r))


def sparse_reads(spec: TileSpec, v: np.ndarray, t: np.ndarray,
                 c_pos: np.ndarray, c_neg: np.ndarray, sigma_us: float,
                 rng: np.random.Generator | None, read_out: ReadOut, *,
                 exact_y: bool) -> TileOutput:
    """One VMM as the reads of ``spec.read`` (single-ended, all columns sensed), sparse.

    Parameters
    ----------
    v : ndarray (B, R)
        Row voltages of the whole map (V), as the dense reads compute them.
    t : ndarray (R, 2K)
        Transfer of the G+ columns, then of the G- columns (uA per V).
    c_pos, c_neg : ndarray (K,)
        Zero-input current of every read (uA).
    sigma_us, rng
        Read noise per cell (uS), drawn as :func:`~rram_cosim.models.tile.backend.read_noise_ua`
        draws it, read by read (no draws without ``rng`` or with ``sigma_us == 0``).
    read_out : callable
        ``(i_pos, i_neg, v_read, rows, add_noise)`` of one read (noise-free currents, B x K
        each, uA; its row voltages, B x rows of the group; its rows; a function adding its
        noise in place) -> its outputs: what the backend's dense read does after its product
        (a surrogate's exact solve of reads past a TIA's linear range, the noise, the TIA/ADC
        and ``y``).
    exact_y : bool
        ``y`` summed from the reads' own ``y`` (the ideal model) instead of from summed codes.
    """
    b, r = v.shape
    k = t.shape[1] // 2
    groups = spec.read.row_groups(r)
    # all reads' products at once: i[b, g] is sample b's read of group g
    i = np.asarray(grouped_drives(v, groups) @ t).reshape(b, len(groups), 2 * k)
    acc_p, acc_n, acc_y = np.zeros((b, k)), np.zeros((b, k)), np.zeros((b, k))
    cp, cn = np.zeros((b, k), dtype=np.int64), np.zeros((b, k), dtype=np.int64)
    resolved = None
    for gi, (start, stop) in enumerate(groups):
        i_pos = i[:, gi, :k] + c_pos
        i_neg = i[:, gi, k:] + c_neg
        vs = v[:, start:stop]
        # the rest of this read as the dense read does it (its noise drawn read by read, in
        # the dense order, so from the same stream), added in read order as scheme_apply's
        # accumulators add
        out = read_out(i_pos, i_neg, vs, slice(start, stop), noise_adder(vs, sigma_us, rng))
        resolved = merge_resolved(resolved, out.resolved)
        acc_p += out.i_pos_ua
        acc_n += out.i_neg_ua
        cp += out.codes_pos
        cn += out.codes_neg
        if exact_y:
            acc_y += out.y
    if not exact_y:
        acc_y = (cp - cn) * code_y_scale(spec)
    return TileOutput(y=acc_y, i_pos_ua=acc_p, i_neg_ua=acc_n, codes_pos=cp, codes_neg=cn,
                      resolved=resolved)

