"""Liquid state machine: a LIF reservoir whose every VMM goes through a tile backend.

Equations ([Lin25] Methods, Eq. 1-3), per step t, for a batch of samples::

    I_t = W_in x_t + W_rec s_{t-1}
    u_t = decay * u_{t-1} * (1 - s_{t-1}) + I_t
    s_t = u_t > v_th                        (hard reset on the next step)
    o   = sum_t s_t                         (digital spike counters)

The map has ``n_in + hidden`` rows (inputs first, then the recurrent rows) and ``hidden``
weight columns; each step is one tile ``apply`` of ``[in_level * x_t, rec_level * s_{t-1}]``,
so both weight blocks are read at once, as on the paper's board.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_int
from ..errors import ConfigError
from ..params import LIFParams
from ..tile.backend import BoundTile


def lif_step(current: np.ndarray, u: np.ndarray, s_prev: np.ndarray,
             params: LIFParams) -> tuple[np.ndarray, np.ndarray]:
    """One LIF update for a batch: returns ``(s_t, u_t)`` (both batch x hidden)."""
    u = params.decay * u * (1.0 - s_prev) + current
    return (u > params.v_th).astype(np.float64), u


@dataclass(frozen=True)
class ReservoirActivity:
    """Activity a run measured, for energy accounting (per sample, averaged over the batch).

    ``active_in_rows[t]``: mean number of input rows driven at step t; ``spikes[t]``: mean
    number of reservoir spikes at step t (these drive the recurrent rows at step t + 1).
    """

    n_in: int
    hidden: int
    n_steps: int
    n_samples: int
    active_in_rows: np.ndarray
    spikes: np.ndarray

    def to_dict(self) -> dict:
        return {"n_in": self.n_in, "hidden": self.hidden, "n_steps": self.n_steps,
                "n_samples": self.n_samples,
                "active_in_rows": self.active_in_rows.tolist(), "spikes": self.spikes.tolist()}


def run_reservoir(tile: BoundTile, frames: np.ndarray, params: LIFParams,
                  rng: np.random.Generator, *, n_windows: int = 1,
                  batch_size: int = 256) -> tuple[np.ndarray, ReservoirActivity]:
    """Run the reservoir on binned input frames.

    Parameters
    ----------
    tile : BoundTile
        A backend bound to the (n_in + hidden) x hidden differential map.
    frames : ndarray, shape (n_samples, n_steps, n_in)
        Binary (or [0, 1]) inputs per time step.
    n_windows : int
        Spike counts over this many equal time windows (1 = the paper's whole-sample counts).

    Returns
    -------
    features : ndarray, shape (n_samples, hidden * n_windows)
    activity : ReservoirActivity
    """
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ConfigError(f"frames must be (n_samples, n_steps, n_in). Got shape {frames.shape}.")
    n, t_steps, n_in = frames.shape
    h = params.hidden
    rows, cols = tile.g_pos_us.shape
    if rows != n_in + h or cols != h:
        raise ConfigError(
            f"The bound map is {rows}x{cols}, but n_in={n_in} inputs and hidden={h} need a "
            f"{n_in + h}x{h} map (input rows first, then recurrent rows)."
        )
    check_int("run_reservoir", "n_windows", n_windows, 1, t_steps)
    check_int("run_reservoir", "batch_size", batch_size, 1, 1 << 20)
    win = np.minimum(np.arange(t_steps) * n_windows // t_steps, n_windows - 1)
    feats = np.zeros((n, n_windows, h))
    act_in = np.zeros(t_steps)
    act_sp = np.zeros(t_steps)
    drive = np.empty((0, rows))
    for b0 in range(0, n, batch_size):
        x = frames[b0:b0 + batch_size].astype(np.float64)
        nb = x.shape[0]
        u = np.zeros((nb, h))
        s = np.zeros((nb, h))
        if drive.shape[0] != nb:
            drive = np.empty((nb, rows))
        for t in range(t_steps):
            drive[:, :n_in] = params.in_level * x[:, t]
            drive[:, n_in:] = params.rec_level * s
            current = tile.apply(drive, rng).y
            s, u = lif_step(current, u, s, params)
            feats[b0:b0 + nb, win[t]] += s
            act_in[t] += float((x[:, t] > 0).sum())
            act_sp[t] += float(s.sum())
    activity = ReservoirActivity(n_in=n_in, hidden=h, n_steps=t_steps, n_samples=n,
                                 active_in_rows=act_in / n, spikes=act_sp / n)
    return feats.reshape(n, n_windows * h), activity
