"""Audio front end: WAV decoding, cochlea, delta modulation, espeak-ng synthesis."""

from __future__ import annotations

import dataclasses
import io
import struct
import subprocess

import numpy as np
import pytest
from rram_cosim.cosim.data.audio import (
    DIGIT_WORDS,
    CochleaParams,
    SpokenDigitsParams,
    _split_at_pauses,
    audio_to_events,
    band_edges_hz,
    channel_frequencies_hz,
    decode_wav,
    delta_modulate,
    log_envelopes,
    read_wav,
    resample,
    resolve_voices,
    synthesize,
    synthesize_utterances,
)
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.snn.events import AUDIO_EVENT_DTYPE
from scipy.io import wavfile

# --------------------------------------------------------------------------------------------
# WAV
# --------------------------------------------------------------------------------------------


def _wav_bytes(rate: int, data: np.ndarray) -> bytes:
    buf = io.BytesIO()
    wavfile.write(buf, rate, data)  # scipy's writer: an independent reference
    return buf.getvalue()


@pytest.mark.parametrize("dtype, scale", [(np.int16, 2 ** 15), (np.int32, 2 ** 31),
                                          (np.float32, 1.0), (np.float64, 1.0)])
def test_wav_round_trip_against_scipy(dtype, scale):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.9, 0.9, 500)
    data = (x * scale).astype(dtype)
    signal, rate = decode_wav(_wav_bytes(16000, data))
    assert rate == 16000
    np.testing.assert_allclose(signal, data.astype(np.float64) / scale, atol=1e-12)


def test_wav_uint8_stereo_and_24_bit():
    left = np.array([0, 128, 255], dtype=np.uint8)
    stereo = np.stack([left, np.full(3, 128, dtype=np.uint8)], axis=1)
    signal, rate = decode_wav(_wav_bytes(8000, stereo))
    np.testing.assert_allclose(signal, [(-1.0 + 0) / 2, 0.0, (127 / 128) / 2])
    # 24-bit PCM by hand: samples -2**23, -1, 1, 2**23 - 1.
    samples = [-(2 ** 23), -1, 1, 2 ** 23 - 1]
    pcm = b"".join(struct.pack("<i", v)[:3] for v in samples)
    fmt = struct.pack("<HHIIHH", 1, 1, 44100, 44100 * 3, 3, 24)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack(
        "<I", len(pcm)) + pcm
    signal, rate = decode_wav(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    assert rate == 44100
    np.testing.assert_allclose(signal, np.array(samples) / 2.0 ** 23)


def test_wav_errors_name_file_and_offset(tmp_path):
    good = _wav_bytes(16000, np.zeros(100, dtype=np.int16))  # header 44 bytes + 200 data
    path = tmp_path / "cut.wav"
    path.write_bytes(good[:150])
    with pytest.raises(ConfigError, match=r"cut\.wav: the data chunk at byte offset 36 "
                                          r"declares 200 bytes.*byte offset 150.*truncated"):
        read_wav(path)
    path.write_bytes(good[:143])  # odd length: the last frame is cut
    with pytest.raises(ConfigError, match="truncated"):
        read_wav(path)
    path.write_bytes(b"ID3\x04" + good)
    with pytest.raises(ConfigError, match=r"cut\.wav: not a WAV file"):
        read_wav(path)
    alaw = bytearray(good)
    alaw[20:22] = struct.pack("<H", 6)
    with pytest.raises(ConfigError, match="A-law encoding is not supported"):
        decode_wav(bytes(alaw), source="x.wav")
    empty = bytearray(good[:44])
    empty[40:44] = struct.pack("<I", 0)
    with pytest.raises(ConfigError, match="no audio samples"):
        decode_wav(bytes(empty), source="x.wav")
    # A streamed header (a size streaming writers leave) reads to the end, unless told not to.
    streamed = bytearray(good[:144])
    streamed[40:44] = struct.pack("<I", 0x7FFFF000)
    for flag in (None, True):
        signal, _ = decode_wav(bytes(streamed), streamed=flag)
        assert signal.size == 50
    with pytest.raises(ConfigError, match="truncated"):
        decode_wav(bytes(streamed), streamed=False)
    nan = _wav_bytes(8000, np.array([0.0, 1.0, np.nan], dtype=np.float32))
    with pytest.raises(ConfigError, match="x.wav: sample at byte offset .* not finite"):
        decode_wav(nan, source="x.wav")


def test_wav_extensible_big_endian_and_extra_chunks():
    samples = np.array([-(2 ** 23), -1, 1, 2 ** 23 - 1, 5, -5])
    pcm = b"".join(struct.pack("<i", int(v))[:3] for v in samples)  # 3 stereo frames
    guid = struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = struct.pack("<HHIIHH", 0xFFFE, 2, 48000, 0, 6, 24) + struct.pack("<HHI", 22, 24, 3)
    riff = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt) + 16) + fmt + guid
            + b"LIST" + struct.pack("<I", 5) + b"abcde\0"  # odd size: one pad byte
            + b"data" + struct.pack("<I", len(pcm)) + pcm)
    signal, rate = decode_wav(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    assert rate == 48000
    np.testing.assert_allclose(signal, samples.reshape(3, 2).mean(axis=1) / 2.0 ** 23)
    big = np.array([1000, -2000, 3000], dtype=">i2")  # scipy writes a RIFX file
    signal, rate = decode_wav(_wav_bytes(11025, big))
    assert rate == 11025
    np.testing.assert_allclose(signal, big.astype(np.float64) / 2 ** 15)


def test_espeak_wav_files_written_and_streamed(tmp_path):
    """espeak-ng's own files: one written to disk, one streamed to stdout (no sizes)."""
    written, piped = tmp_path / "written.wav", tmp_path / "piped.wav"
    subprocess.run(["espeak-ng", "-w", str(written), "hello"], check=True, timeout=60)
    with open(piped, "wb") as f:
        subprocess.run(["espeak-ng", "--stdout", "hello"], stdout=f, check=True, timeout=60)
    assert struct.unpack_from("<I", piped.read_bytes(), 40)[0] == 0x7FFFF000
    a, rate_a = read_wav(written)
    b, rate_b = read_wav(piped)
    assert rate_a == rate_b == 22050
    assert a.size > 0.2 * rate_a and np.abs(a).max() > 0.05
    np.testing.assert_array_equal(a, b)


def test_resample_keeps_frequency():
    t = np.arange(16000) / 16000
    x = np.sin(2 * np.pi * 1000 * t)
    y = resample(x, 16000, 22050)
    assert y.size == 22050
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 22050 / y.size - 1000) <= 1


# --------------------------------------------------------------------------------------------
# Cochlea
# --------------------------------------------------------------------------------------------

def test_filterbank_geometry():
    p = CochleaParams()
    f = channel_frequencies_hz(p)
    assert f.size == 64 and f[0] == pytest.approx(100) and f[-1] == pytest.approx(8000)
    lo, hi = band_edges_hz(p)
    np.testing.assert_allclose(lo * hi, f * f)  # geometric centres
    # One ERB [Glasberg & Moore 1990]: 24.7 * (4.37 * 1 + 1) = 132.6 Hz at 1 kHz.
    p1 = dataclasses.replace(p, n_channels=1, f_min_hz=1000.0, f_max_hz=1000.0)
    lo1, hi1 = band_edges_hz(p1)
    assert hi1[0] - lo1[0] == pytest.approx(132.639)
    with pytest.raises(ConfigError, match="top band"):
        CochleaParams(sample_rate_hz=16000)


def test_tones_land_in_their_channel_at_the_expected_level():
    p = CochleaParams()
    fc = channel_frequencies_hz(p)
    fs = p.sample_rate_hz
    t = np.arange(int(0.3 * fs)) / fs
    chans = [3, 20, 40, 60]
    amp = 0.5
    tones = np.stack([amp * np.sin(2 * np.pi * fc[c] * t) for c in chans])
    log_env, n_frames = log_envelopes(tones, np.full(4, t.size), p)
    assert log_env.shape == (4, 300, 64) and n_frames.tolist() == [300] * 4
    steady = log_env[:, 150:, :].mean(axis=1)
    for row, c in enumerate(chans):
        assert abs(int(np.argmax(steady[row])) - c) <= 1
        # A rectified sine averages amp / pi; the band-pass passes its centre at unit gain.
        level = np.exp(steady[row, c]) - p.log_floor
        assert level == pytest.approx(amp / np.pi, rel=0.05)


def test_delta_modulation_hand_computed():
    """A ramp up by 3 thresholds and back: the events and their times follow by hand."""
    # log envelope rises 0.25 per 1 ms frame for 12 frames, then falls back.
    up = 0.25 * np.arange(13)
    log_env = np.concatenate([up, up[-2::-1]])[None, :, None]  # (1, 25, 1), threshold 1
    phase = np.random.default_rng(7).uniform(0.0, 1.0, size=(1, 1, 1))[0, 0, 0]
    events, offsets = delta_modulate(log_env, np.array([25]), np.array([1.0]), 1000.0,
                                     np.random.default_rng(7))
    u = 0.25 * np.arange(13) + phase
    m0 = np.round(phase)
    on_levels = np.arange(m0 + 1, np.floor(u[-1]) + 1)
    on_t = np.floor((on_levels - phase) / 0.25 * 1000).astype(int)
    top = on_levels[-1]
    # Coming down, OFF fires at each level below the reference by one, from top - 1 down to
    # the first level >= u_min = phase.
    off_levels = np.arange(top - 1, np.ceil(phase) - 1, -1)
    off_t = np.floor((12 + (u[-1] - off_levels) / 0.25) * 1000).astype(int)
    assert events.dtype == AUDIO_EVENT_DTYPE and offsets.tolist() == [0, events.size]
    np.testing.assert_array_equal(events["p"], [1] * on_levels.size + [0] * off_levels.size)
    np.testing.assert_array_equal(events["t"], np.concatenate([on_t, off_t]))
    assert np.all(events["x"] == 0)


def test_delta_modulation_ignores_padding_and_counts_multiple_crossings():
    # A jump by 2.5 thresholds within one frame gives two ON events in that frame; frames
    # after a sample's end are padding and give nothing.
    log_env = np.zeros((2, 6, 1))
    log_env[0, 3:] = 2.5
    log_env[1, 4:] = 9.0  # padding of sample 1 (2 valid frames)
    events, offsets = delta_modulate(log_env, np.array([6, 2]), np.array([1.0]), 1000.0,
                                     np.random.default_rng(0))
    assert offsets.tolist() == [0, 2, 2]
    assert events["p"].tolist() == [1, 1]
    assert np.all((events["t"] >= 2000) & (events["t"] < 3000))
    assert events["t"][0] <= events["t"][1]


def test_audio_to_events_level_invariant_and_silent_on_silence():
    p = CochleaParams()
    fs = p.sample_rate_hz
    rng = np.random.default_rng(0)
    t = np.arange(int(0.4 * fs)) / fs
    burst = np.sin(2 * np.pi * 1000 * t) * (np.abs(t - 0.2) < 0.1) + 0.01 * rng.standard_normal(
        t.size)
    a, oa = audio_to_events([burst, np.zeros(t.size)], p, np.random.default_rng(1))
    b, ob = audio_to_events([100 * burst, np.zeros(t.size)], p, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(oa, ob)
    assert oa[2] == oa[1]  # silence: no events
    ev = a[oa[0]:oa[1]]
    assert np.all(np.diff(ev["t"]) >= 0) and ev["t"].max() < 400_000
    # The burst's onset is an ON burst near 1 kHz's channel, its offset OFF events.
    near = np.abs(channel_frequencies_hz(p)[ev["x"]] / 1000 - 1) < 0.3
    on = ev[near & (ev["p"] == 1)]
    off = ev[near & (ev["p"] == 0)]
    assert on.size >= 3 and off.size >= 3
    assert np.median(on["t"]) < 150_000 and np.median(off["t"]) > 250_000


# --------------------------------------------------------------------------------------------
# espeak-ng
# --------------------------------------------------------------------------------------------

def test_split_at_pauses():
    x = np.ones(1000)
    x[100:103] = 0  # a short gap inside a word
    x[300:400] = 0
    x[600:700] = 0
    pieces = _split_at_pauses(x, 3, 50)
    assert [p.size for p in pieces] == [300, 200, 300]
    assert _split_at_pauses(x, 4, 50) is None  # the fourth cut would be the 3-sample gap
    x[800:860] = 0  # a silence as long as the pauses: ambiguous
    assert _split_at_pauses(x, 3, 50) is None


def test_utterances_match_single_word_synthesis():
    pieces = synthesize_utterances(DIGIT_WORDS[:4], "en-us+m3", 160, 40)
    assert len(pieces) == 4
    for word, piece in zip(DIGIT_WORDS[:4], pieces):
        single = np.trim_zeros(decode_wav(synthesize(word, "en-us+m3", 160, 40),
                                          streamed=True)[0])
        # Same words, each an utterance of its own: durations agree within 15 %.
        assert 0.85 < piece.size / single.size < 1.15
        assert 0.1 < piece.size / 22050 < 1.0


def test_resolve_voices_drops_aliases_and_rejects_unknown_names():
    v = resolve_voices(SpokenDigitsParams(accents=("en-us", "en-us-nyc"),
                                          variants=("caleb", "klatt", "m1")), n_workers=2)
    assert v["voices"] == (("en-us", "caleb"), ("en-us", "m1"))
    assert v["aliases"] == {"en-us+klatt": "en-us+caleb", "en-us-nyc+caleb": "en-us+caleb",
                            "en-us-nyc+klatt": "en-us+caleb", "en-us-nyc+m1": "en-us+m1"}
    with pytest.raises(ConfigError, match="not installed espeak-ng voice variants"):
        resolve_voices(SpokenDigitsParams(variants=("m1", "nosuchvoice")))
    with pytest.raises(ConfigError, match="not espeak-ng languages"):
        resolve_voices(SpokenDigitsParams(accents=("en-mars",)))
