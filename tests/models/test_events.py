"""Event dtypes, crop, polarity selection and binning against hand-computed arrays."""

from __future__ import annotations

import numpy as np
import pytest
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.snn import events as ev_mod
from rram_cosim.models.snn.events import (
    AUDIO_EVENT_DTYPE,
    IMAGE_EVENT_DTYPE,
    bin_event_batch,
    bin_events,
    centre_crop,
    check_events,
    make_audio_events,
    make_image_events,
    n_features,
    normalize_sensor_size,
    select_polarities,
)


def test_dtypes_follow_tonic_convention():
    assert IMAGE_EVENT_DTYPE.names == ("t", "x", "y", "p")
    assert IMAGE_EVENT_DTYPE["t"] == np.int64
    assert IMAGE_EVENT_DTYPE["x"] == np.int16 and IMAGE_EVENT_DTYPE["y"] == np.int16
    assert IMAGE_EVENT_DTYPE["p"] == np.int8
    assert AUDIO_EVENT_DTYPE.names == ("t", "x", "p")
    ev = make_image_events([0, 5], [1, 2], [3, 4], [1, 0])
    assert ev.dtype == IMAGE_EVENT_DTYPE
    assert ev["t"].tolist() == [0, 5] and ev["y"].tolist() == [3, 4]
    au = make_audio_events([1.0, 2.0], [63, 0], [True, False])
    assert au.dtype == AUDIO_EVENT_DTYPE and au["p"].tolist() == [1, 0]


@pytest.mark.parametrize("kwargs, match", [
    ({"t": [0.5], "x": [0], "y": [0], "p": [1]}, "integers"),
    ({"t": [0, 1], "x": [0], "y": [0], "p": [1]}, "equal length"),
    ({"t": [0], "x": [40000], "y": [0], "p": [1]}, "fit int16"),
])
def test_make_events_rejects_bad_fields(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_image_events(**kwargs)


def test_sensor_size_forms():
    img = make_image_events([0], [0], [0], [0])
    aud = make_audio_events([0], [0], [0])
    assert normalize_sensor_size(img, (34, 34)) == (34, 34, 2)
    assert normalize_sensor_size(img, (16, 8, 1)) == (16, 8, 1)
    assert normalize_sensor_size(aud, (64,)) == (64, 1, 2)
    assert normalize_sensor_size(aud, (64, 1)) == (64, 1, 1)
    assert normalize_sensor_size(aud, (64, 1, 2)) == (64, 1, 2)
    with pytest.raises(ConfigError, match="sensor_size"):
        normalize_sensor_size(img, (34,))
    with pytest.raises(ConfigError, match="sensor_size"):
        normalize_sensor_size(aud, (64, 2, 2))


def test_check_events_names_offender():
    ev = make_image_events([0, 1], [1, 3], [0, 0], [1, 1])
    with pytest.raises(ConfigError, match="Event 1 has x=3"):
        check_events(ev, (3, 3))
    assert check_events(ev, (4, 1)) == (4, 1, 2)


def _hand_events():
    # sensor 3 wide, 2 high, two polarities; duration 100 us in 4 bins of 25 us.
    return make_image_events(
        t=[0, 10, 10, 24, 25, 60, 99, 100],
        x=[0, 0, 0, 2, 1, 2, 0, 1],
        y=[0, 0, 0, 1, 0, 1, 1, 0],
        p=[1, 1, 1, 0, 1, 1, 0, 1],
    )


def test_bin_events_counts_by_hand():
    out = bin_events(_hand_events(), 4, (3, 2, 2), duration_us=100, binarize=False)
    assert out.shape == (4, 12) and out.dtype == np.uint16
    expect = np.zeros((4, 12), dtype=int)
    # feature = p * 6 + y * 3 + x
    expect[0, 6 + 0] = 3  # t=0, 10, 10 at (0, 0) ON
    expect[0, 0 + 3 + 2] = 1  # t=24 (2, 1) OFF
    expect[1, 6 + 1] = 1  # t=25 (1, 0) ON
    expect[2, 6 + 3 + 2] = 1  # t=60 (2, 1) ON
    expect[3, 0 + 3 + 0] = 1  # t=99 (0, 1) OFF; t=100 is outside [0, 100)
    np.testing.assert_array_equal(out, expect)
    binary = bin_events(_hand_events(), 4, (3, 2, 2), duration_us=100)
    assert binary.dtype == np.uint8
    np.testing.assert_array_equal(binary, (expect > 0).astype(np.uint8))


def test_bin_events_own_span_and_polarity_selection():
    ev = _hand_events()
    # span [0, 100] -> 101 us; bin = t * 2 // 101: t <= 50 -> 0, else 1.
    on = bin_events(ev, 2, (3, 2, 2), polarities=(1,), binarize=False)
    assert on.shape == (2, 6)
    expect = np.zeros((2, 6), dtype=int)
    expect[0, 0] = 3
    expect[0, 1] = 1
    expect[1, 3 + 2] = 1
    expect[1, 1] = 1  # t=100 (1, 0) ON is the last event of the span
    np.testing.assert_array_equal(on, expect)
    swapped = bin_events(ev, 2, (3, 2, 2), polarities=(1, 0), binarize=False)
    both = bin_events(ev, 2, (3, 2, 2), binarize=False)
    np.testing.assert_array_equal(swapped[:, :6], both[:, 6:])
    np.testing.assert_array_equal(swapped[:, 6:], both[:, :6])
    with pytest.raises(ConfigError, match="polarities"):
        bin_events(ev, 2, (3, 2, 2), polarities=(2,))
    assert select_polarities(ev, (0,))["t"].tolist() == [24, 99]


def test_crop_by_hand():
    # 6 x 4 sensor, 2 x 2 window starts at x0 = 2, y0 = 1.
    ev = make_image_events([0, 1, 2, 3, 4], [2, 3, 1, 3, 4], [1, 2, 1, 3, 2], [1, 0, 1, 1, 1])
    cropped, size = centre_crop(ev, (6, 4), 2)
    assert size == (2, 2, 2)
    assert cropped["t"].tolist() == [0, 1]
    assert cropped["x"].tolist() == [0, 1] and cropped["y"].tolist() == [0, 1]
    out = bin_events(ev, 1, (6, 4), crop=(2, 2), duration_us=10, binarize=False)
    assert out.shape == (1, 8)
    expect = np.zeros(8, dtype=int)
    expect[4 + 0] = 1  # (0, 0) ON
    expect[0 + 2 + 1] = 1  # (1, 1) OFF
    np.testing.assert_array_equal(out[0], expect)
    assert n_features((6, 4, 2), (1,), 2) == 4
    with pytest.raises(ConfigError, match="crop"):
        centre_crop(ev, (6, 4), 7)


def test_audio_binning_layout():
    au = make_audio_events([0, 5, 5, 9], [3, 3, 0, 1], [1, 1, 0, 0])
    out = bin_events(au, 2, (4, 1, 2), duration_us=10, binarize=False)
    expect = np.zeros((2, 8), dtype=int)
    expect[0, 4 + 3] = 1
    expect[1, 4 + 3] = 1
    expect[1, 0] = 1
    expect[1, 1] = 1
    np.testing.assert_array_equal(out, expect)
    with pytest.raises(ConfigError, match="image events only"):
        bin_events(au, 2, (4,), crop=2)


def _naive(events_list, n_steps, w, h, duration):
    out = np.zeros((len(events_list), n_steps, 2 * h * w), dtype=np.int64)
    for s, ev in enumerate(events_list):
        for e in ev:
            if 0 <= e["t"] < duration:
                out[s, e["t"] * n_steps // duration, (e["p"] * h + e["y"]) * w + e["x"]] += 1
    return out


@pytest.mark.parametrize("chunk", [None, 7])
def test_batch_matches_naive_reference(monkeypatch, chunk):
    if chunk is not None:  # exercise the chunked counting path on small data
        monkeypatch.setattr(ev_mod, "_COUNT_CHUNK_ENTRIES", chunk)
    rng = np.random.default_rng(3)
    w, h, dur, steps = 5, 4, 1000, 7
    samples = []
    for n in (40, 0, 1, 25):
        samples.append(make_image_events(np.sort(rng.integers(0, dur + 50, n)),
                                         rng.integers(0, w, n), rng.integers(0, h, n),
                                         rng.integers(0, 2, n)))
    counts = bin_event_batch(samples, steps, (w, h), duration_us=dur, binarize=False)
    ref = _naive(samples, steps, w, h, dur)
    np.testing.assert_array_equal(counts, ref)
    binary = bin_event_batch(samples, steps, (w, h), duration_us=dur)
    np.testing.assert_array_equal(binary, (ref > 0).astype(np.uint8))
    for i, ev in enumerate(samples):
        np.testing.assert_array_equal(
            bin_events(ev, steps, (w, h), duration_us=dur, binarize=False), ref[i])
    # An empty sample in own-span mode stays all zero.
    own = bin_event_batch(samples, steps, (w, h), binarize=False)
    assert own[1].sum() == 0 and own[0].sum() == 40


def test_errors():
    ev = make_image_events([0] * 300, [0] * 300, [0] * 300, [1] * 300)
    with pytest.raises(ConfigError, match="uint32"):
        bin_events(ev, 1, (2, 2), binarize=False, dtype=np.uint8)
    assert bin_events(ev, 1, (2, 2), binarize=False)[0, 4] == 300
    with pytest.raises(ConfigError, match="outside"):
        bin_events(ev, 1, (2, 2, 1))
    with pytest.raises(ConfigError, match="n_steps"):
        bin_events(ev, 0, (2, 2))
    with pytest.raises(ConfigError, match="duration_us"):
        bin_events(ev, 2, (2, 2), duration_us=0)
    with pytest.raises(ConfigError, match="fields"):
        bin_events(np.zeros(3), 2, (2, 2))
