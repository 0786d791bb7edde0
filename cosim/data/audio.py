"""Audio front end: WAV decoding, a cochlear filterbank with delta modulation, espeak-ng digits.

Three parts, shared by the ``spoken-digits`` embedded dataset (:mod:`.datasets`) and a user's
folder of WAV files (:mod:`.user_data`):

1. WAV decoding (:func:`decode_wav`, :func:`read_wav`: :func:`scipy.io.wavfile.read` behind a
   check of the file's chunks that names the file and byte offset of any fault; PCM
   8/16/24/32-bit and IEEE float, any sample rate, channels averaged, streamed headers) and
   rational resampling (:func:`resample`).
2. The cochlea (:class:`CochleaParams`, :func:`audio_to_events`), an N-TIDIGITS-like sensor
   model: the signal is scaled to unit RMS, split by ``n_channels`` Butterworth band-pass
   filters with log-spaced centres (default 64, 100 Hz-8 kHz, bandwidth in ERBs), each band
   half-wave rectified and low-pass smoothed into an envelope, sampled at ``frame_rate_hz``,
   log-compressed (``log(env + log_floor)``) and delta-modulated: a channel emits an ON (OFF)
   event each time its log envelope has risen (fallen) by its threshold since its last event
   (threshold mismatch between channels as in a real sensor). Event times interpolate the
   threshold crossing between frames (microseconds). Events use
   :data:`~rram_cosim.models.snn.events.AUDIO_EVENT_DTYPE` (``x`` channel, ``p`` 1 ON / 0 OFF) on
   the sensor ``(n_channels, 1, 2)``.
3. espeak-ng synthesis of the spoken digits (:class:`SpokenDigitsParams`,
   :func:`build_spoken_digits`): the words "zero" .. "nine" (and "oh" on request) in every
   English accent and voice variant given, each reading at a random speed and pitch, each
   recording with a random noise level, through the cochlea.

The filterbank is multirate: a channel runs at the lowest rate ``sample_rate_hz / 2**k`` that
is still at least four times its upper band edge (halving by polyphase FIR decimation), which
halves the cost at 64 channels without changing the bands; everything is vectorised
over the samples of a batch, the only Python loops run over channels and envelope frames.
"""

from __future__ import annotations

import hashlib
import io
import math
import multiprocessing
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import wavfile

from ...models.checks import check_int, check_range
from ...models.errors import ConfigError, CosimError
from ...models.params import to_dict
from ...models.snn.events import AUDIO_EVENT_DTYPE

SPOKEN_DIGITS_VERSION = "spoken-digits/1"
"""Bumped whenever the generator's output for the same parameters changes (rebuilds caches)."""

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
OH_WORD = "oh"  # TIDIGITS' eleventh class, label 10 when included

ESPEAK = "espeak-ng"
ESPEAK_RATE_HZ = 22050  # espeak-ng's output rate; utterances are returned at this rate


class EspeakError(CosimError, RuntimeError):
    """espeak-ng is missing or failed to synthesise a word."""


# --------------------------------------------------------------------------------------------
# WAV files
# --------------------------------------------------------------------------------------------

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_FORMAT_NAMES = {2: "MS ADPCM", 6: "A-law", 7: "mu-law", 0x11: "IMA ADPCM", 0x55: "MP3"}
#: Data-chunk sizes of a writer that streamed to a pipe and could not seek back to fill in the
#: size: espeak-ng's ``--stdout`` writes 0x7FFFF000, others 0xFFFFFFFF or 0.
_UNKNOWN_SIZES = (0, 0x7FFFF000, 0xFFFFFFFF)


@dataclass(frozen=True)
class _WavLayout:
    """A checked WAV file: its fmt fields and the byte range of its whole frames."""

    endian: str  # "<" (RIFF) or ">" (RIFX)
    fmt: tuple[int, int, int, int, int]  # format tag (the sub-format's for EXTENSIBLE),
    #                                       channels, rate, block size, bits per sample
    start: int  # byte offset of the first sample
    n_frames: int

    def canonical(self, buf: bytes) -> bytes:
        """A minimal copy for scipy: a plain 16-byte fmt chunk (byte rate made consistent)
        and the data chunk with its true size; other chunks and a streamed header's sizes are
        dropped."""
        e = self.endian
        tag, channels, rate, block, bits = self.fmt
        data = buf[self.start:self.start + self.n_frames * block]
        body = (b"WAVE" + b"fmt " + struct.pack(e + "IHHIIHH", 16, tag, channels, rate,
                                                  rate * block, block, bits)
                + b"data" + struct.pack(e + "I", len(data)) + data)
        return (b"RIFF" if e == "<" else b"RIFX") + struct.pack(e + "I", len(body)) + body


def _wav_layout(buf: bytes, source: str, streamed: bool | None) -> _WavLayout:
    """Walk the chunks of a WAV file and check what scipy would read silently or obscurely:
    truncation, encodings, a data chunk without fmt. Every error names ``source`` and the
    byte offset."""
    size = len(buf)
    if size < 12 or buf[:4] not in (b"RIFF", b"RIFX") or buf[8:12] != b"WAVE":
        if buf[:4] == b"RIFF" and size < 12:
            raise ConfigError(f"{source}: {size} bytes is too short for a WAV header (12 bytes): "
                              "the file is truncated.")
        raise ConfigError(f"{source}: not a WAV file (no RIFF/WAVE header at byte offset 0).")
    e = "<" if buf[:4] == b"RIFF" else ">"
    fmt: tuple[int, int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= size:
        chunk_id = buf[pos:pos + 4]
        (chunk_size,) = struct.unpack_from(e + "I", buf, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            fmt = _fmt_chunk(buf, e, pos, chunk_size, source)
            block = fmt[3]
        elif chunk_id == b"data":
            if fmt is None:
                raise ConfigError(f"{source}: the data chunk at byte offset {pos} comes before "
                                  "any fmt chunk, so its encoding is unknown.")
            avail = size - body
            to_end = streamed or (streamed is None and chunk_size in _UNKNOWN_SIZES)
            if not to_end and chunk_size > avail:
                raise ConfigError(
                    f"{source}: the data chunk at byte offset {pos} declares {chunk_size} bytes "
                    f"but the file ends {avail} bytes later, at byte offset {size}: the file is "
                    "truncated. Copy or export it again.")
            n_bytes = avail if to_end else chunk_size
            n_frames, rest = divmod(n_bytes, block)
            if rest and not to_end:
                raise ConfigError(f"{source}: the audio data ends inside a frame at byte offset "
                                  f"{body + n_frames * block} ({rest} of {block} bytes): the "
                                  "file is truncated.")
            if n_frames == 0:
                raise ConfigError(f"{source}: the file holds no audio samples.")
            return _WavLayout(endian=e, fmt=fmt, start=body, n_frames=n_frames)
        pos = body + chunk_size + (chunk_size & 1)  # chunks are word-aligned
    raise ConfigError(f"{source}: no data chunk before the end of the file (byte offset {size}); "
                      "the file is truncated or holds no audio.")


def _fmt_chunk(buf: bytes, e: str, pos: int, chunk_size: int,
               source: str) -> tuple[int, int, int, int, int]:
    body = pos + 8
    if chunk_size < 16 or body + chunk_size > len(buf):
        raise ConfigError(f"{source}: the fmt chunk at byte offset {pos} is truncated "
                          f"({min(chunk_size, len(buf) - body)} of at least 16 bytes).")
    tag, channels, rate, _, block, bits = struct.unpack_from(e + "HHIIHH", buf, body)
    if tag == _EXTENSIBLE and chunk_size >= 26:
        (tag,) = struct.unpack_from(e + "H", buf, body + 24)  # sub-format GUID's first word
    if tag not in (_PCM, _FLOAT):
        name = _FORMAT_NAMES.get(tag, f"format tag {tag:#x}")
        raise ConfigError(f"{source}: {name} encoding is not supported; convert the file to PCM "
                          "(8/16/24/32-bit integer or 32/64-bit float).")
    ok_bits = (8, 16, 24, 32) if tag == _PCM else (32, 64)
    if bits not in ok_bits or channels < 1 or rate < 1 or block != channels * bits // 8:
        raise ConfigError(
            f"{source}: inconsistent or unsupported fmt chunk ({channels} channels, {rate} Hz, "
            f"{bits} bits, block {block} bytes); supported: PCM {ok_bits} bits."
        )
    return tag, channels, rate, block, bits


def decode_wav(data: bytes | bytearray | memoryview, *, source: str = "<bytes>",
               streamed: bool | None = None) -> tuple[np.ndarray, int]:
    """Decode a RIFF/WAVE file into a mono float signal (samples read by
    :func:`scipy.io.wavfile.read`, after a check of the file's chunks).

    Parameters
    ----------
    data : bytes-like
        The whole file, little-endian (RIFF) or big-endian (RIFX); PCM 8/16/24/32-bit or IEEE
        float 32/64-bit, plain or WAVE_FORMAT_EXTENSIBLE; chunks other than fmt and data are
        skipped.
    source : str
        Name used in error messages (the file path).
    streamed : bool or None
        Whether the writer streamed to a pipe and could not fill in the data size, so the data
        chunk runs to the end of ``data`` (a trailing partial frame is dropped). None: when the
        declared size is one that streaming writers leave (0, 0xFFFFFFFF, or espeak-ng's
        ``--stdout`` 0x7FFFF000). False: never, so such a file reads as truncated. Any other
        size is read strictly: a file shorter than it declares is an error, not a short signal.

    Returns
    -------
    signal : numpy.ndarray of float64, shape (n_samples,)
        Channels averaged; integer PCM scaled to [-1, 1).
    sample_rate_hz : int

    Raises
    ------
    ConfigError
        Not a WAV file, an unsupported encoding, or a truncated file; the message names
        ``source`` and the byte offset.
    """
    buf = bytes(data)
    layout = _wav_layout(buf, source, streamed)
    try:
        rate, x = wavfile.read(io.BytesIO(layout.canonical(buf)))
    except ValueError as exc:  # not expected after the checks above; keep the file's name
        raise ConfigError(f"{source}: scipy cannot read this WAV file: {exc}") from exc
    if x.dtype.kind == "f":
        x = x.astype(np.float64)
        if not np.all(np.isfinite(x)):
            bad = int(np.flatnonzero(~np.isfinite(x.ravel()))[0])
            raise ConfigError(f"{source}: sample at byte offset "
                              f"{layout.start + bad * layout.fmt[4] // 8} is not finite (NaN or "
                              "inf).")
    elif x.dtype.kind == "u":  # 8-bit PCM is unsigned, centred on 128
        x = (x.astype(np.float64) - 128.0) / 128.0
    else:  # signed PCM in a container of x.itemsize bytes (24-bit: the top of an int32)
        x = x.astype(np.float64) / 2.0 ** (8 * x.dtype.itemsize - 1)
    return (x.mean(axis=1) if x.ndim == 2 else x), int(rate)


def read_wav(path: str | os.PathLike, *, streamed: bool | None = None) -> tuple[np.ndarray, int]:
    """Read a WAV file; see :func:`decode_wav` for the formats, ``streamed`` and the errors."""
    path = Path(path)
    return decode_wav(path.read_bytes(), source=str(path), streamed=streamed)


def resample(signal: np.ndarray, rate_in_hz: int, rate_out_hz: int) -> np.ndarray:
    """Resample by the exact rational factor ``rate_out / rate_in`` (polyphase FIR, scipy)."""
    from scipy.signal import resample_poly

    if rate_in_hz == rate_out_hz:
        return np.asarray(signal, dtype=np.float64)
    g = math.gcd(int(rate_in_hz), int(rate_out_hz))
    return resample_poly(np.asarray(signal, dtype=np.float64), rate_out_hz // g, rate_in_hz // g)


# --------------------------------------------------------------------------------------------
# Cochlea
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CochleaParams:
    """Cochlear filterbank and delta modulator (N-TIDIGITS-like audio events).

    Sources: [Anumula18] Anumula et al., "Feature representations for neuromorphic audio spike
    streams", Front. Neurosci. 12:23 (2018) (N-TIDIGITS, CochleaAMS1b: 64 channels).
    [GM90] Glasberg and Moore, Hear. Res. 47:103 (1990) (ERB bandwidth). [proto] the
    project's prototype (64 log-spaced bands 100 Hz-8 kHz, log envelope, delta modulation).
    """

    # assumption: espeak-ng's native rate, so synthesised speech needs no resampling; any
    # rate with f_max_hz + half a band below 0.45 of it works.
    sample_rate_hz: int = 22050
    n_channels: int = 64  # [Anumula18] 64 cochlea channels
    f_min_hz: float = 100.0  # [proto] lowest centre frequency
    f_max_hz: float = 8000.0  # [proto] highest centre frequency
    bandwidth_erb: float = 1.0  # [GM90] one ERB per band (neighbours overlap below ~2 kHz)
    filter_order: int = 2  # assumption: Butterworth band-pass of order 2 (4 poles, 2 sections)
    # assumption: envelope smoothing; attenuates the voice-pitch ripple (>= 80 Hz) of the
    # rectified bands by >= 8 dB while keeping syllable-rate modulations (< 20 Hz).
    envelope_cutoff_hz: float = 50.0
    frame_rate_hz: float = 1000.0  # assumption: envelope sampled every 1 ms
    # Log compression floor relative to a unit-RMS input (-40 dB): band envelopes far below
    # it stay silent, so background noise in quiet channels fires few events. Chosen with
    # threshold_log on the validation split of spoken-digits (docs/data.md; floors 1e-4 to
    # 1e-1, never on test).
    log_floor: float = 1e-2
    # Delta threshold in log units, chosen on validation with log_floor (docs/data.md); in
    # the project's prototype it was the largest effect (0.5 -> 1.5: LSM 62 -> 92 %).
    threshold_log: float = 0.5
    threshold_sigma_log: float = 0.05  # assumption: channel-to-channel threshold mismatch (std)

    def __post_init__(self) -> None:
        o = "CochleaParams"
        check_int(o, "sample_rate_hz", self.sample_rate_hz, 1000, 384_000)
        check_int(o, "n_channels", self.n_channels, 1, 1024)
        check_range(o, "f_min_hz", self.f_min_hz, 10, 20_000, unit="Hz")
        check_range(o, "f_max_hz", self.f_max_hz, self.f_min_hz, 20_000, unit="Hz")
        check_range(o, "bandwidth_erb", self.bandwidth_erb, 0.05, 10)
        check_int(o, "filter_order", self.filter_order, 1, 8)
        check_range(o, "envelope_cutoff_hz", self.envelope_cutoff_hz, 1, 1000, unit="Hz")
        check_range(o, "frame_rate_hz", self.frame_rate_hz, 2 * self.envelope_cutoff_hz, 100_000,
                    unit="Hz", hint="Sample the envelope at least at twice its cutoff.")
        check_range(o, "log_floor", self.log_floor, 0, 1, lo_open=True)
        check_range(o, "threshold_log", self.threshold_log, 0.01, 20)
        check_range(o, "threshold_sigma_log", self.threshold_sigma_log, 0, 1)
        top = band_edges_hz(self)[1][-1]
        if top >= 0.45 * self.sample_rate_hz:
            raise ConfigError(
                f"The top band of CochleaParams reaches {top:.0f} Hz, above 0.45 of "
                f"sample_rate_hz={self.sample_rate_hz}. Lower f_max_hz or bandwidth_erb, or "
                "raise sample_rate_hz.")

    @property
    def sensor_size(self) -> tuple[int, int, int]:
        """tonic's ``(n_channels, 1, 2)``: ON and OFF events per channel."""
        return (self.n_channels, 1, 2)


def channel_frequencies_hz(params: CochleaParams) -> np.ndarray:
    """Centre frequencies, log-spaced from ``f_min_hz`` to ``f_max_hz``, shape (n_channels,)."""
    return np.geomspace(params.f_min_hz, params.f_max_hz, params.n_channels)


def band_edges_hz(params: CochleaParams) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper band edges: ``bandwidth_erb`` ERBs wide, geometric centre on the channel.

    ERB(f) = 24.7 (4.37 f / 1000 + 1) Hz [GM90]. With width b the edges are
    ``lo = sqrt(f^2 + b^2 / 4) - b / 2`` and ``hi = lo + b`` (so ``lo * hi = f^2``).
    """
    f = channel_frequencies_hz(params)
    b = params.bandwidth_erb * 24.7 * (4.37e-3 * f + 1.0)
    lo = np.sqrt(f * f + b * b / 4.0) - b / 2.0
    return lo, lo + b


@dataclass(frozen=True)
class _Plan:
    stage_of: np.ndarray  # decimation stage k of each channel (rate sample_rate_hz / 2**k)
    band_sos: tuple[np.ndarray, ...]  # per channel, at its stage's rate
    env_sos: tuple[np.ndarray, ...]  # per stage


@lru_cache(maxsize=16)
def _plan(params: CochleaParams) -> _Plan:
    from scipy.signal import butter

    fs = params.sample_rate_hz
    lo, hi = band_edges_hz(params)
    # Lowest rate that is still 4x the upper edge: the rectifier's harmonics (2f, 4f) stay
    # below the stage's Nyquist frequency, and the envelope filter sees no aliases.
    stage_of = np.maximum(0, np.floor(np.log2(fs / (4.0 * hi)))).astype(int)
    min_rate = 4.0 * params.envelope_cutoff_hz
    stage_of = np.minimum(stage_of, max(0, int(np.floor(np.log2(fs / min_rate)))))
    band = tuple(butter(params.filter_order, [lo[c], hi[c]], btype="bandpass",
                        fs=fs / 2 ** stage_of[c], output="sos") for c in range(lo.size))
    env = tuple(butter(2, params.envelope_cutoff_hz, fs=fs / 2 ** k, output="sos")
                for k in range(int(stage_of.max()) + 1))
    return _Plan(stage_of=stage_of, band_sos=band, env_sos=env)


def log_envelopes(signals: np.ndarray, lengths: np.ndarray,
                  params: CochleaParams) -> tuple[np.ndarray, np.ndarray]:
    """Log band envelopes of a zero-padded batch of signals.

    Parameters
    ----------
    signals : numpy.ndarray, shape (n, n_samples)
        Audio at ``params.sample_rate_hz``, each row scaled as the sensor should hear it
        (:func:`audio_to_events` scales to unit RMS) and zero-padded after ``lengths``.
    lengths : numpy.ndarray of int, shape (n,)
        Valid samples per row.
    params : CochleaParams

    Returns
    -------
    log_env : numpy.ndarray of float32, shape (n, n_frames_max, n_channels)
        ``log(envelope + log_floor)`` at frames ``j / frame_rate_hz`` seconds.
    n_frames : numpy.ndarray of int64, shape (n,)
        Frames inside each signal (those after it are padding).
    """
    from scipy.signal import resample_poly, sosfilt

    x = np.asarray(signals, dtype=np.float64)
    fs = params.sample_rate_hz
    n_frames = np.maximum(1, np.asarray(lengths, dtype=np.int64) * params.frame_rate_hz
                          // fs).astype(np.int64)
    n_max = int(n_frames.max())
    plan = _plan(params)
    out = np.empty((x.shape[0], n_max, params.n_channels), dtype=np.float32)
    stage_x = x
    for k in range(int(plan.stage_of.max()) + 1):
        if k:
            stage_x = resample_poly(stage_x, 1, 2, axis=1)
        channels = np.flatnonzero(plan.stage_of == k)
        if channels.size == 0:
            continue
        # Linear interpolation of the smooth envelope at the frame times.
        pos = np.arange(n_max) * (fs / 2 ** k / params.frame_rate_hz)
        i0 = np.minimum(pos.astype(np.int64), stage_x.shape[1] - 2)
        w1 = np.clip(pos - i0, 0.0, 1.0)
        for c in channels:
            y = sosfilt(plan.band_sos[c], stage_x, axis=1)
            np.maximum(y, 0.0, out=y)  # half-wave rectification
            env = sosfilt(plan.env_sos[k], y, axis=1)
            frames = env[:, i0] * (1.0 - w1) + env[:, i0 + 1] * w1
            # The low-pass can undershoot a little after an onset; energy is never negative.
            np.maximum(frames, 0.0, out=frames)
            out[:, :, c] = np.log(frames + params.log_floor)
    return out, n_frames


def channel_thresholds(params: CochleaParams, rng: np.random.Generator) -> np.ndarray:
    """Per-channel delta thresholds (log units), a fixed mismatch map of one sensor.

    ``N(threshold_log, threshold_sigma_log)`` floored at a tenth of the nominal value.
    """
    th = params.threshold_log + params.threshold_sigma_log * rng.standard_normal(
        params.n_channels)
    return np.maximum(th, 0.1 * params.threshold_log)


def delta_modulate(log_env: np.ndarray, n_frames: np.ndarray, thresholds: np.ndarray,
                   frame_rate_hz: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Delta-modulate log envelopes into ON/OFF events.

    Per channel, with ``u = log_env / threshold + phase`` (``phase`` uniform in [0, 1) per
    sample and channel: the sensor starts in an arbitrary state), the reference level ``m``
    (an integer, initially ``round(u_0)``) follows ``m_t = clip(m_{t-1}, floor(u_t),
    ceil(u_t))``: it stays while ``u`` is within one threshold of it and otherwise moves to
    the last level crossed. Each level crossed upward is an ON event (p = 1), downward an OFF
    event (p = 0), at the time the linear interpolation of ``u`` between frames crosses it.

    Parameters
    ----------
    log_env : numpy.ndarray, shape (n, n_frames_max, n_channels)
    n_frames : numpy.ndarray of int, shape (n,)
        Valid frames per sample; later frames are ignored.
    thresholds : numpy.ndarray, shape (n_channels,)
        Log units.
    frame_rate_hz : float
    rng : numpy.random.Generator
        Draws the start phases (``n * n_channels`` uniforms).

    Returns
    -------
    events : numpy.ndarray of AUDIO_EVENT_DTYPE
        All samples' events, each sample time-ordered, times in us from the first frame.
    offsets : numpy.ndarray of int64, shape (n + 1,)
        Sample ``i`` is ``events[offsets[i]:offsets[i + 1]]``.
    """
    n, f_max, n_ch = log_env.shape
    phase = rng.uniform(0.0, 1.0, size=(n, 1, n_ch))
    u = log_env.astype(np.float64) / np.asarray(thresholds, dtype=np.float64) + phase
    last = np.asarray(n_frames, dtype=np.int64) - 1
    pad = np.arange(f_max)[None, :] > last[:, None]
    if pad.any():  # hold the last valid value: no events after a sample's end
        u = np.where(pad[:, :, None], u[np.arange(n), last][:, None, :], u)
    lo, hi = np.floor(u), np.ceil(u)
    level = np.empty_like(u)
    m = np.round(u[:, 0])
    level[:, 0] = m
    for t in range(1, f_max):  # the reference's hysteresis is sequential in time
        m = np.clip(m, lo[:, t], hi[:, t])
        level[:, t] = m
    step = np.diff(level, axis=1)
    s, t, c = np.nonzero(step)
    k = np.abs(step[s, t, c]).astype(np.int64)
    sign = np.sign(step[s, t, c])
    rep = np.repeat(np.arange(k.size), k)
    j = np.arange(rep.size) - np.repeat(np.cumsum(k) - k, k) + 1  # 1..k within each step
    crossed = level[s, t, c][rep] + sign[rep] * j
    u0, u1 = u[s, t, c][rep], u[s, t + 1, c][rep]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(u1 != u0, (crossed - u0) / (u1 - u0), 1.0)
    period_us = 1e6 / frame_rate_hz
    t_us = np.floor((t[rep] + np.clip(frac, 0.0, 1.0)) * period_us).astype(np.int64)
    sample = s[rep]
    order = np.lexsort((t_us, sample))
    events = np.empty(order.size, dtype=AUDIO_EVENT_DTYPE)
    events["t"] = t_us[order]
    events["x"] = c[rep][order]
    events["p"] = (sign[rep][order] > 0).astype(np.int8)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(sample, minlength=n), out=offsets[1:])
    return events, offsets


def audio_to_events(signals: Sequence[np.ndarray], params: CochleaParams,
                    rng: np.random.Generator, *, thresholds: np.ndarray | None = None,
                    batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Turn audio signals into cochlea events.

    Parameters
    ----------
    signals : sequence of numpy.ndarray, each shape (n_samples_i,)
        Audio at ``params.sample_rate_hz`` (resample first, :func:`resample`). Each is scaled
        to unit RMS, an automatic gain control, so the result does not depend on the level.
    params : CochleaParams
    rng : numpy.random.Generator
        Draws the threshold map (unless ``thresholds`` is given) and the start phases.
    thresholds : numpy.ndarray, shape (n_channels,), optional
        A sensor's threshold map (:func:`channel_thresholds`) to share across calls.
    batch_size : int
        Signals filtered together (padded to the longest of the batch; sorted by length).

    Returns
    -------
    events : numpy.ndarray of AUDIO_EVENT_DTYPE
        All signals' events in input order, each time-ordered.
    offsets : numpy.ndarray of int64, shape (len(signals) + 1,)
    """
    n = len(signals)
    if thresholds is None:
        thresholds = channel_thresholds(params, rng)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.shape != (params.n_channels,):
        raise ConfigError(f"thresholds must have shape ({params.n_channels},) to match "
                          f"n_channels. Got {thresholds.shape}.")
    lengths = np.array([np.size(s) for s in signals], dtype=np.int64)
    if n and lengths.min() < 2:
        raise ConfigError(f"Signal {int(np.argmin(lengths))} holds fewer than 2 samples.")
    order = np.argsort(lengths, kind="stable")
    per_sample: list[np.ndarray | None] = [None] * n
    for b0 in range(0, n, batch_size):
        idx = order[b0:b0 + batch_size]
        batch = np.zeros((idx.size, int(lengths[idx].max())))
        for row, i in enumerate(idx):  # copy into the padded batch
            sig = np.asarray(signals[i], dtype=np.float64)
            rms = np.sqrt(np.mean(sig * sig))
            batch[row, :sig.size] = sig / rms if rms > 0 else sig
        log_env, n_frames = log_envelopes(batch, lengths[idx], params)
        ev, off = delta_modulate(log_env, n_frames, thresholds, params.frame_rate_hz, rng)
        for row, i in enumerate(idx):
            per_sample[i] = ev[off[row]:off[row + 1]]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([p.size for p in per_sample], out=offsets[1:])  # type: ignore[union-attr]
    events = (np.concatenate(per_sample) if n  # type: ignore[arg-type]
              else np.zeros(0, dtype=AUDIO_EVENT_DTYPE))
    return events, offsets


# --------------------------------------------------------------------------------------------
# espeak-ng
# --------------------------------------------------------------------------------------------

def _espeak(args: Sequence[str], timeout_s: float = 60.0, stdin: bytes | None = None) -> bytes:
    exe = shutil.which(ESPEAK)
    if exe is None:
        raise EspeakError(f"{ESPEAK} is not installed or not on PATH; the spoken-digits dataset "
                          f"needs it. Install it (Debian/Ubuntu: `apt-get install {ESPEAK}`).")
    try:
        done = subprocess.run([exe, *args], capture_output=True, timeout=timeout_s, check=False,
                              input=stdin)
    except subprocess.TimeoutExpired:
        raise EspeakError(f"{ESPEAK} {' '.join(args)} did not finish in {timeout_s} s.") from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip()[-500:]
        raise EspeakError(f"{ESPEAK} {' '.join(args)} failed with exit code "
                          f"{done.returncode}: {tail}")
    return done.stdout


@lru_cache(maxsize=1)
def espeak_version() -> str:
    """Version string of the installed espeak-ng, e.g. ``"1.51"``."""
    text = _espeak(["--version"]).decode(errors="replace")
    found = re.search(r"text-to-speech:\s*(\S+)", text)
    return found.group(1) if found else text.strip()


@lru_cache(maxsize=1)
def espeak_variants() -> tuple[str, ...]:
    """Voice variants espeak-ng lists (``--voices=variant``), as used after ``+`` in a voice."""
    text = _espeak(["--voices=variant"]).decode(errors="replace")
    names: list[str] = []
    for line in text.splitlines()[1:]:
        found = re.search(r"!v/(.+?)\s*(\([^)]*\))?\s*$", line)
        if found and found.group(1) not in names:
            names.append(found.group(1))
    return tuple(names)


@lru_cache(maxsize=1)
def espeak_languages() -> frozenset[str]:
    """Language names espeak-ng lists (``--voices``), e.g. ``en-us``, ``en-gb-scotland``."""
    text = _espeak(["--voices"]).decode(errors="replace")
    names = set()
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) > 1:
            names.add(parts[1])
        # "Other Languages" entries such as "(en 2)" also select a voice with -v.
        names.update(re.findall(r"\(([\w-]+) \d+\)", line))
    return frozenset(names)


def synthesize(word: str, voice: str, speed_wpm: int = 175, pitch: int = 50) -> bytes:
    """WAV bytes of one word spoken by espeak-ng (22050 Hz, 16-bit mono, streamed header).

    ``voice`` is ``"<language>"`` or ``"<language>+<variant>"``; ``-z`` drops the final
    sentence pause. Decode with ``decode_wav(data, streamed=True)``.
    """
    data = _espeak(["-v", voice, "-s", str(int(speed_wpm)), "-p", str(int(pitch)), "-z",
                    "--stdout", word])
    if len(data) <= 44:
        raise EspeakError(f"{ESPEAK} returned no audio for {word!r} with voice {voice!r}.")
    return data


# Pause between utterances read line by line (espeak-ng's sentence pause, ~190 ms at 220 wpm)
# against the longest silence inside a word (stop closures, ~50 ms at 130 wpm), espeak-ng 1.51.
_MIN_PAUSE_S = 0.1
# Silence level: breathy variants (e.g. f5) leave +-1-2 LSB of noise in their pauses.
_QUIET = 4.0 / 32768


def synthesize_utterances(words: Sequence[str], voice: str, speed_wpm: int = 175,
                          pitch: int = 50) -> list[np.ndarray]:
    """Each word as its own utterance, from one espeak-ng call; float signals at 22050 Hz.

    Starting espeak-ng costs ~10 ms, about as much as synthesising a word, so the words go in
    as lines on stdin (espeak-ng speaks each line as a sentence, with utterance-final prosody,
    followed by a sentence pause) and the output is cut at the ``len(words) - 1`` longest
    silences (runs within 4 LSB of zero). The cut is accepted only when each of them is at
    least 100 ms and twice as long as any other silence; otherwise each word is synthesised by
    its own call. Leading and trailing silence is trimmed.
    """
    wav = _espeak(["-v", voice, "-s", str(int(speed_wpm)), "-p", str(int(pitch)), "--stdout"],
                  stdin=("\n".join(words) + "\n").encode())
    x, rate = decode_wav(wav, source=f"{ESPEAK} -v {voice}", streamed=True)
    pieces = _split_at_pauses(x, len(words), int(_MIN_PAUSE_S * rate))
    if pieces is None:
        pieces = [decode_wav(synthesize(w, voice, speed_wpm, pitch), streamed=True,
                             source=f"{ESPEAK} -v {voice} {w!r}")[0] for w in words]
    return [resample(_trim_quiet(p), rate, ESPEAK_RATE_HZ) for p in pieces]


def _trim_quiet(x: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(x) > _QUIET)
    return x[loud[0]:loud[-1] + 1] if loud.size else x[:0]


def _split_at_pauses(x: np.ndarray, n: int, min_pause: int) -> list[np.ndarray] | None:
    zero = np.concatenate([[0], (np.abs(x) <= _QUIET).astype(np.int8), [0]])
    edges = np.diff(zero)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    inner = (starts > 0) & (ends < x.size)  # silences between sounds
    starts, ends = starts[inner], ends[inner]
    if starts.size < n - 1:
        return None
    order = np.argsort(ends - starts, kind="stable")[::-1]
    cut = np.sort(order[:n - 1])
    rest = order[n - 1:]
    shortest_cut = (ends - starts)[cut].min() if cut.size else min_pause
    longest_rest = (ends - starts)[rest].max() if rest.size else 0
    if shortest_cut < max(min_pause, 2 * longest_rest):
        return None
    bounds = [0, *np.ravel(np.column_stack([starts[cut], ends[cut]])), x.size]
    return [x[bounds[2 * i]:bounds[2 * i + 1]] for i in range(n)]


# --------------------------------------------------------------------------------------------
# Spoken digits
# --------------------------------------------------------------------------------------------

DEFAULT_ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
                   "en-gb-x-gbcwmd", "en-029")
"""The English accents of espeak-ng 1.51 that are distinct voices (MBROLA voices are not
installable here). Left out: ``en-gb`` (the same voice as ``en``, and espeak-ng 1.51
ignores a ``+variant`` after it) and ``en-us-nyc`` (byte-identical to ``en-us`` for 8 of the 11
words)."""


@dataclass(frozen=True)
class SpokenDigitsParams:
    """Parameters of the ``spoken-digits`` generator (N-TIDIGITS-like, synthesised).

    A voice is an accent (espeak-ng language) with a voice variant. Every voice reads all words
    ``renditions`` times; each reading has its own random speed and pitch (as a speaker varies
    between recordings), each recording its own random noise level and silence padding. Splits are by
    variant: all accents of a variant land in one split, so no test voice timbre is ever heard
    in training.
    """

    accents: tuple[str, ...] = DEFAULT_ACCENTS
    # Empty: the accent's default voice plus every variant espeak-ng lists (101 in 1.51).
    variants: tuple[str, ...] = ()
    renditions: int = 1  # assumption: one take per voice and word (6,940 recordings in all)
    # assumption: +-25 % around espeak-ng's default 175 words per minute (read speech).
    speed_wpm_min: int = 130
    speed_wpm_max: int = 220
    pitch_min: int = 25  # assumption: espeak-ng pitch 0-99 (default 50), middle half
    pitch_max: int = 75
    # assumption: white noise, SNR uniform in dB per sample (TIDIGITS is studio-quality;
    # N-TIDIGITS added the loudspeaker-microphone path and sensor noise).
    snr_db_min: float = 10.0
    snr_db_max: float = 30.0
    # assumption: silence (noise only) before and after the word, uniform per side.
    pad_ms_min: float = 50.0
    pad_ms_max: float = 150.0
    include_oh: bool = False  # TIDIGITS' "oh" as label 10
    cochlea: CochleaParams = field(default_factory=CochleaParams)

    def __post_init__(self) -> None:
        o = "SpokenDigitsParams"
        for name in ("accents", "variants"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"The '{name}' parameter of {o} must be a tuple of strings. "
                                  f"Got {value!r} instead.")
            object.__setattr__(self, name, tuple(value))
        if not self.accents:
            raise ConfigError(f"The 'accents' parameter of {o} needs at least one accent.")
        check_int(o, "renditions", self.renditions, 1, 100)
        check_int(o, "speed_wpm_min", self.speed_wpm_min, 80, 450)
        check_int(o, "speed_wpm_max", self.speed_wpm_max, self.speed_wpm_min, 450)
        check_int(o, "pitch_min", self.pitch_min, 0, 99)
        check_int(o, "pitch_max", self.pitch_max, self.pitch_min, 99)
        check_range(o, "snr_db_min", self.snr_db_min, -20, 100, unit="dB")
        check_range(o, "snr_db_max", self.snr_db_max, self.snr_db_min, 100, unit="dB")
        check_range(o, "pad_ms_min", self.pad_ms_min, 0, 5000, unit="ms")
        check_range(o, "pad_ms_max", self.pad_ms_max, self.pad_ms_min, 5000, unit="ms")
        if isinstance(self.cochlea, dict):  # from a JSON config
            object.__setattr__(self, "cochlea", CochleaParams(**self.cochlea))
        if not isinstance(self.cochlea, CochleaParams):
            raise ConfigError(f"The 'cochlea' parameter of {o} must be a CochleaParams. Got "
                              f"{type(self.cochlea).__name__}.")

    @property
    def words(self) -> tuple[str, ...]:
        return DIGIT_WORDS + ((OH_WORD,) if self.include_oh else ())


def resolve_voices(params: SpokenDigitsParams, n_workers: int = 1) -> dict[str, Any]:
    """The (accent, variant) voices that are really distinct, and the aliases dropped.

    espeak-ng falls back silently to another voice for an unknown variant, ignores a variant
    after some accents (``en-gb`` in 1.51) and ships some variants that are copies of others
    (``caleb``, ``klatt`` and ``klatt6`` in 1.51). Since each sample gets its own random
    speed and pitch, such copies would not be byte-identical later and one timbre could land
    in two splits. So every voice (each accent with the default voice, named ``""``, and with
    each variant) says the first word at espeak-ng's default speed and pitch, and a voice whose
    WAV is byte-identical to an earlier one (variant-major order) is dropped.

    Returns
    -------
    dict
        ``voices`` (kept ``(accent, variant)`` pairs, variant-major), ``variants`` (the
        candidate variants; a voice's split group is its index here), ``aliases`` (dropped
        voice -> the voice it copies, as ``"accent+variant"`` strings), ``espeak_version``.
    """
    languages = espeak_languages()
    unknown = [a for a in params.accents if a not in languages]
    if unknown:
        english = sorted(x for x in languages if x.startswith("en"))
        raise ConfigError(f"The accents {unknown} of SpokenDigitsParams are not espeak-ng "
                          f"languages. English ones installed: {english}.")
    installed = espeak_variants()
    unknown = [v for v in params.variants if v and v not in installed]
    if unknown:
        raise ConfigError(f"The variants {unknown} of SpokenDigitsParams are not installed "
                          f"espeak-ng voice variants (\"\" is the default voice). Installed: "
                          f"{list(installed)}.")
    variants = tuple(dict.fromkeys(params.variants or ("",) + installed))
    pairs = [(a, v) for v in variants for a in dict.fromkeys(params.accents)]
    word = params.words[0]
    with ThreadPoolExecutor(max_workers=max(1, n_workers)) as pool:
        probes = list(pool.map(lambda av: synthesize(word, _voice(*av)), pairs))
    first: dict[bytes, tuple[str, str]] = {}
    kept: list[tuple[str, str]] = []
    aliases: dict[str, str] = {}
    for pair, wav in zip(pairs, probes):
        digest = hashlib.sha256(wav).digest()
        if digest in first:
            aliases[_voice(*pair)] = _voice(*first[digest])
        else:
            first[digest] = pair
            kept.append(pair)
    return {"voices": tuple(kept), "variants": variants, "aliases": aliases,
            "espeak_version": espeak_version()}


def _voice(accent: str, variant: str) -> str:
    return f"{accent}+{variant}" if variant else accent


def _voice_job(job: tuple[Any, ...]) -> dict[str, Any]:
    """Synthesise and hear one voice's words (runs in a worker process)."""
    index, accent, variant, params, seed, thresholds = job
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, index)))
    words = params.words
    n_words, n_takes = len(words), params.renditions
    n = n_words * n_takes
    labels = np.tile(np.arange(n_words), n_takes)
    speed = np.repeat(rng.integers(params.speed_wpm_min, params.speed_wpm_max + 1,
                                   size=n_takes), n_words)
    pitch = np.repeat(rng.integers(params.pitch_min, params.pitch_max + 1, size=n_takes),
                      n_words)
    snr_db = rng.uniform(params.snr_db_min, params.snr_db_max, size=n)
    pads = rng.uniform(params.pad_ms_min, params.pad_ms_max, size=(n, 2))
    fs = params.cochlea.sample_rate_hz
    speech = [u for take in range(n_takes) for u in synthesize_utterances(
        words, _voice(accent, variant), int(speed[take * n_words]),
        int(pitch[take * n_words]))]
    digests = [hashlib.sha256(u.tobytes()).hexdigest() for u in speech]
    signals = []
    for i, u in enumerate(speech):  # one voice's recordings: a few, not a hot loop
        u = resample(u, ESPEAK_RATE_HZ, fs)
        pre, post = (pads[i] * 1e-3 * fs).astype(int)
        x = np.concatenate([np.zeros(pre), u, np.zeros(post)])
        rms = np.sqrt(np.mean(u * u))
        x += rng.standard_normal(x.size) * (rms * 10.0 ** (-snr_db[i] / 20.0))
        signals.append(x)
    events, offsets = audio_to_events(signals, params.cochlea, rng, thresholds=thresholds,
                                      batch_size=n)
    return {"events": events, "offsets": offsets, "labels": labels, "digests": digests,
            "speed_wpm": speed, "pitch": pitch, "snr_db": snr_db,
            "duration_us": np.array([s.size * 1_000_000 // fs for s in signals])}


def _mp_context() -> multiprocessing.context.BaseContext:
    # fork starts workers in milliseconds; elsewhere the platform default is the safe choice.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def default_workers() -> int:
    """Cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)


def build_spoken_digits(params: SpokenDigitsParams, seed: int, *, voices: dict[str, Any],
                        n_workers: int | None = None, progress: bool | None = None
                        ) -> dict[str, Any]:
    """Synthesise, de-duplicate and hear the whole spoken-digits set.

    Parameters
    ----------
    params : SpokenDigitsParams
    seed : int
        Seeds the prosody, noise, threshold map and start phases (one child seed per voice,
        so the result does not depend on the number of workers).
    voices : dict
        From :func:`resolve_voices`.
    n_workers : int, optional
        Worker processes (default: all cores this process may use).
    progress : bool, optional
        Show a progress bar (None: only on a terminal).

    Returns
    -------
    dict
        ``events`` (concatenated), ``offsets`` (n + 1), ``labels``, ``groups`` (variant index
        per sample, into ``meta["variants"]``: the split unit), ``info`` (per-sample arrays ``accent``, ``speed_wpm``,
        ``pitch``, ``snr_db``, ``duration_us``) and ``meta``.
    """
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    n_workers = default_workers() if n_workers is None else n_workers
    check_int("build_spoken_digits", "n_workers", n_workers, 1, 1024)
    variants = list(voices["variants"])
    accents = list(dict.fromkeys(params.accents))
    thresholds = channel_thresholds(
        params.cochlea, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,))))
    # Variant-major order (resolve_voices): the first copy of a duplicate WAV that survives
    # is the earliest voice in this order.
    grid = [(variants.index(v), accents.index(a)) for a, v in voices["voices"]]
    jobs = [(i, accents[a], variants[v], params, seed, thresholds)
            for i, (v, a) in enumerate(grid)]
    # Import and plan before forking, so workers inherit them instead of redoing both.
    import scipy.signal  # noqa: F401

    _plan(params.cochlea)
    bar = tqdm(total=len(jobs), desc="spoken-digits", unit="voice",
               disable=None if progress is None else not progress)
    try:
        if n_workers == 1 or len(jobs) == 1:
            results = []
            for job in jobs:
                results.append(_voice_job(job))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=min(n_workers, len(jobs)),
                                     mp_context=_mp_context()) as pool:
                results = []
                for res in pool.map(_voice_job, jobs, chunksize=4):
                    results.append(res)
                    bar.update()
    finally:
        bar.close()

    seen: set[str] = set()
    pieces, labels, groups = [], [], []
    info: dict[str, list[np.ndarray]] = {k: [] for k in
                                         ("accent", "speed_wpm", "pitch", "snr_db",
                                          "duration_us")}
    n_dup = 0
    for (v, a), res in zip(grid, results):
        keep = []
        for i, d in enumerate(res["digests"]):
            if d in seen:
                n_dup += 1
            else:
                seen.add(d)
                keep.append(i)
        keep_a = np.asarray(keep, dtype=np.int64)
        off = res["offsets"]
        pieces.extend(res["events"][off[i]:off[i + 1]] for i in keep)
        labels.append(res["labels"][keep_a])
        groups.append(np.full(keep_a.size, v, dtype=np.int64))
        info["accent"].append(np.full(keep_a.size, a, dtype=np.int64))
        for k in ("speed_wpm", "pitch", "snr_db", "duration_us"):
            info[k].append(np.asarray(res[k])[keep_a])
    lengths = np.array([p.size for p in pieces], dtype=np.int64)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    events = np.concatenate(pieces) if pieces else np.zeros(0, dtype=AUDIO_EVENT_DTYPE)
    labels_a = np.concatenate(labels)
    build_s = time.perf_counter() - t_start
    meta = {
        "generator": SPOKEN_DIGITS_VERSION, "params": to_dict(params), "seed": seed,
        "source": f"{ESPEAK} {voices['espeak_version']}",
        "espeak_version": voices["espeak_version"], "variants": variants,
        "voices": [_voice(a, v) for a, v in voices["voices"]],
        "aliases": dict(voices["aliases"]), "accents": accents,
        "words": list(params.words), "n_duplicates_removed": n_dup,
        "sensor_size": list(params.cochlea.sensor_size), "n_classes": len(params.words),
        "class_names": list(params.words), "build_time_s": build_s,
        "n_total": int(labels_a.size), "n_workers": n_workers,
    }
    return {"events": events, "offsets": offsets, "labels": labels_a,
            "groups": np.concatenate(groups),
            "info": {k: np.concatenate(v) for k, v in info.items()}, "meta": meta}
