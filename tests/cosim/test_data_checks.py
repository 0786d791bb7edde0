"""What a run's data allow it to conclude: split descriptions, warnings, pairing checks."""

import io

import numpy as np
import pytest
from rram_cosim.cosim.data.datasets import EventDataset
from rram_cosim.cosim.tasks.data_checks import (
    describe_split,
    interval_warnings,
    pairing_warnings,
    shared_group_warnings,
    small_test_warnings,
    val_gap_warnings,
)
from rram_cosim.cosim.tasks.status import Status
from rram_cosim.cosim.tasks.zeroshot import p_interval_note
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.snn.events import make_audio_events


def _ds(name, labels, **meta):
    ev = make_audio_events([0], [0], [1])
    return EventDataset(events=(ev,) * len(labels), labels=labels, sensor_size=(4, 1, 2),
                        n_classes=int(max(labels)) + 1, name=name, split="train",
                        metadata=meta)


def test_describe_split_counts_groups_and_flags_shared_ones():
    by_speaker = {s: _ds("wav:w", [0, 1, 0, 1][:n], split_by="group", group_name="speaker",
                         group_field=1, groups=np.array(g))
                  for s, n, g in (("train", 4, ["a", "a", "b", "c"]), ("val", 2, ["d", "d"]),
                                  ("test", 2, ["e", "e"]))}
    text = describe_split(by_speaker)
    assert "split by speaker" in text and "field 1 of the file names" in text
    assert "train 4 samples from 3 speakers" in text and "test 2 samples from 1 speaker" in text
    assert shared_group_warnings(by_speaker) == []
    by_file = {s: _ds("wav:w", [0, 1], split_by="sample", group_name="speaker",
                      groups=np.array(["a", "b"])) for s in ("train", "val", "test")}
    assert "split of samples" in describe_split(by_file)
    (w,) = shared_group_warnings(by_file)
    assert "2 speaker(s) have samples in both train and test" in w and "--split-by group" in w
    plain = {s: _ds("digits-events", [0, 1]) for s in ("train", "val", "test")}
    assert describe_split(plain).startswith("a seeded split of samples")


def test_small_test_interval_and_validation_gap_warnings():
    (w,) = small_test_warnings(np.repeat(np.arange(5), 3), range(5), 10)
    assert "only 3 test samples in the smallest class" in w and "33 points" in w
    assert small_test_warnings(np.repeat(np.arange(5), 12), range(5), 10) == []
    assert small_test_warnings(np.repeat(np.arange(5), 3), range(5), 0) == []  # off
    (w,) = interval_warnings([("A", 0.0, 0.86), ("B", 0.80, 0.90)], 0.2)
    assert w.startswith("the 95 % interval of A spans 0.0 to 86.0 %")
    (w,) = interval_warnings([("C", np.nan, np.nan)], 0.2)
    assert w.startswith("C has no 95 % interval (one network seed")
    assert interval_warnings([("A", 0.0, 0.86), ("C", np.nan, np.nan)], 0) == []  # off
    (w,) = val_gap_warnings([("LSM", 1.0, 0.867), ("raw", 0.95, 0.5), ("ok", 1.0, 0.95)], 0.1)
    assert w.startswith("LSM: validation at 100.0 % but test 86.7 %")


def test_an_unrelated_pairing_is_refused_and_an_unnamed_one_warned():
    clothes = _ds("images:clothes.npz", [0, 1, 2], class_names=("shirt", "shoe", "bag"))
    spoken = _ds("spoken-digits", [0, 1, 2])
    with pytest.raises(ConfigError, match=r"class 0 is 'shirt' in images:clothes\.npz and "
                                          r"'0' in spoken-digits.*would pair unrelated"):
        pairing_warnings(clothes, spoken, [0, 1, 2], shared_source=False)
    unnamed = _ds("images:clothes.npz", [0, 1, 2], class_names=("0", "1", "2"))
    (w,) = pairing_warnings(unnamed, spoken, [0, 1, 2], shared_source=False)
    assert "share no source" in w and "class number alone" in w
    # a population viewing the gallery's own images shares its source: nothing to warn
    neural = _ds("neural-sim", [0, 1, 2], viewed="images:clothes.npz",
                 class_names=("0", "1", "2"))
    assert pairing_warnings(unnamed, neural, [0, 1, 2], shared_source=True) == []
    # the paper's pair: digits both ways
    assert pairing_warnings(_ds("digits-events", [0, 1, 2]), spoken, [0, 1, 2],
                            shared_source=False) == []


def test_p_value_and_interval_disagreement_is_explained():
    row = {"model": "raw events", "p_value_top1": 0.0005, "unseen_top1_ci_low": 0.42,
           "unseen_top1_ci_high": 0.95, "chance_top1": 0.5, "n_queries": 177, "n_seeds": 3}
    note = p_interval_note(row)
    assert "pools 177 queries x 3 seeds" in note and "t interval on 3 values" in note
    assert "a new seed may well score at chance" in note
    assert p_interval_note({**row, "unseen_top1_ci_low": 0.6}) == ""  # both say above chance
    assert p_interval_note({**row, "p_value_top1": float("nan")}) == ""  # paper rows
    other_way = p_interval_note({**row, "p_value_top1": 0.3, "unseen_top1_ci_low": 0.55})
    assert "too few queries" in other_way
    # one seed: no interval to disagree with (the warnings say there is none)
    assert p_interval_note({**row, "unseen_top1_ci_low": float("nan"),
                            "unseen_top1_ci_high": float("nan"), "n_seeds": 1}) == ""


def test_status_lines_and_warnings():
    out = io.StringIO()
    st = Status("classify", enabled=True, stream=out)
    with st.step("simulating events"):
        pass
    st.warn("few samples")
    st.warn("few samples")  # said once
    text = out.getvalue()
    assert "[classify] simulating events ..." in text
    assert "[classify] simulating events: done in" in text
    assert text.count("warning: few samples") == 1 and st.warnings == ["few samples"]
    quiet = io.StringIO()
    st = Status("classify", enabled=False, stream=quiet)
    with st.step("x"):
        pass
    st.warn("still shown")
    assert quiet.getvalue() == "[classify] warning: still shown\n"


def test_a_wav_folder_of_digit_words_names_its_classes():
    """Spoken digits in a WAV folder (labels "0".."9") paired with digits-events: the classes
    are named on both sides, so no 'class number alone' warning."""
    from rram_cosim.cosim.tasks.data_checks import class_names_of

    digits = tuple(str(i) for i in range(10))
    wav = _ds("wav:spoken", list(range(10)), source="WAV folder", class_names=digits)
    assert class_names_of(wav) == digits
    image = _ds("digits-events", list(range(10)))
    assert pairing_warnings(image, wav, list(range(10)), shared_source=False) == []
    # an .npz of images numbered 0..9 names nothing: the pairing rests on numbers
    unnamed = _ds("images:x.npz", list(range(10)), class_names=digits)
    assert class_names_of(unnamed) is None
    assert pairing_warnings(unnamed, wav, list(range(10)), shared_source=False)
