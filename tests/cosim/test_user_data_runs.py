"""A new user's data through whole runs: speaker-grouped WAVs, a tiny image set, neural-sim
viewing those images, a deliberately unrelated pairing, the warnings and the reports."""

import json

import numpy as np
import pandas as pd
import pytest
from rram_cosim.cosim.cli.commands.classify import confusion_figure, run_classify
from rram_cosim.cosim.cli.commands.zeroshot import run_zeroshot, short_name
from rram_cosim.cosim.cli.main import main
from rram_cosim.cosim.data.datasets import load_dataset
from rram_cosim.cosim.data.neural_sim import source_partition
from rram_cosim.cosim.tasks.classify import resolve_crop
from rram_cosim.cosim.tasks.configs.classify import ClassifyConfig
from rram_cosim.cosim.tasks.configs.zeroshot import ZeroshotConfig
from rram_cosim.cosim.tasks.zeroshot import load_modalities
from rram_cosim.models.errors import ConfigError
from scipy.io import wavfile

FAST = {"backends": ("ideal",), "seeds": 1, "hidden": 16, "v_th": (5.0,),
        "rec_level": (0.25,), "readout_epochs": 10, "n_steps": 20}


def _tone(f0: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.25 * rate)) / rate
    x = np.sin(2 * np.pi * f0 * t) * (np.abs(t - 0.12) < 0.08)
    return ((x + 0.003 * rng.standard_normal(t.size)) * 20000).astype(np.int16)


@pytest.fixture(scope="module")
def speakers(tmp_path_factory):
    """3 words x 5 speakers x 2 takes; each speaker's voice shifts every tone (and some
    speakers record at 8 kHz), so files of one speaker resemble each other."""
    folder = tmp_path_factory.mktemp("speakers")
    rng = np.random.default_rng(0)
    for label, f0 in enumerate((300.0, 900.0, 2500.0)):
        for spk in range(5):
            for take in range(2):
                rate = 8000 if spk % 2 else 16000
                wavfile.write(folder / f"{label}_voice{spk}_{take}.wav", rate,
                              _tone(f0 * (1 + 0.08 * spk) * (1 + 0.02 * take), rate, rng))
    return folder


def _images(n_classes: int, n_per_class: int, side: int = 14) -> tuple[np.ndarray, np.ndarray]:
    """Bars at n_classes orientations through the centre, jittered (uint8)."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:side, 0:side] - (side - 1) / 2
    imgs, labels = [], []
    for c in range(n_classes):
        th = np.pi * c / n_classes
        for _ in range(n_per_class):
            dx, dy = rng.uniform(-1.5, 1.5, 2)
            d = np.abs(-(xx - dx) * np.sin(th) + (yy - dy) * np.cos(th))
            imgs.append(((d < 1.2) & (np.hypot(xx - dx, yy - dy) < side / 2.5)) * 255)
            labels.append(c)
    return np.array(imgs, dtype=np.uint8), np.array(labels)


@pytest.fixture(scope="module")
def bars(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "bars.npz"
    images, labels = _images(6, 24)
    np.savez(path, images=images, labels=labels)
    return path


def test_wav_classify_splits_by_speaker_reports_it_and_warns_on_few_tests(speakers, tmp_path,
                                                                          capfd):
    cfg = ClassifyConfig(name="w", dataset=f"wav:{speakers}", **FAST)
    out = run_classify(cfg, tmp_path, progress=False)
    report = (tmp_path / "w" / "report.md").read_text()
    assert "a seeded split by speaker: every speaker in one split (field 1 of the file " \
           "names)" in report
    assert "train 18 samples from 3 speakers, val 6 samples from 1 speaker, test 6 samples " \
           "from 1 speaker" in report
    # 2 test files a class: warned on the console and in the report and summary
    assert "only 2 test samples in the smallest class" in report
    assert any("only 2 test samples" in w for w in out["warnings"])
    assert "warning: only 2 test samples" in capfd.readouterr().err
    # chance and counts beside the accuracy; the interval's method named
    assert "| 33.3 % |" in report and "6 x 1" in report
    # one seed: the interval is over the test samples only, and the report says so
    assert "bootstrap over test samples only" in report
    assert "bootstrap over seeds and test samples" not in report
    assert "| 33.3 % (6) |" not in report and "(6) |" in report  # validation's sample count
    # the split rule is an option of the command line; by file, speakers are shared
    assert main(["classify", "--dataset", f"wav:{speakers}", "--split-by", "sample",
                 "--backends", "ideal", "--seeds", "1", "--hidden", "16", "--v-th", "5",
                 "--rec-level", "0.25", "--readout-epochs", "10", "--n-steps", "20",
                 "--name", "f", "--out", str(tmp_path), "--no-progress"]) == 0
    by_file = (tmp_path / "f" / "report.md").read_text()
    assert "a seeded split of samples, stratified by class" in by_file
    assert "have samples in both train and test" in by_file


def test_images_use_the_whole_sensor_and_every_model_is_plotted(bars, tmp_path, capfd):
    cfg = ClassifyConfig(name="i", dataset=f"images:{bars}", **FAST)
    run_classify(cfg, tmp_path, progress=True)
    report = (tmp_path / "i" / "report.md").read_text()
    assert "324 inputs" in report  # 14x14 images + 2 px saccade margin: 18x18, no crop
    err = capfd.readouterr().err
    assert f"[classify] loading images:{bars}, train split ..." in err
    assert "DVS events, bars.npz train" in err  # the simulator's progress bar
    cropped = ClassifyConfig(name="c", dataset=f"images:{bars}", crop=8, **FAST)
    run_classify(cropped, tmp_path, progress=False)
    assert "64 inputs" in (tmp_path / "c" / "report.md").read_text()
    # the embedded digits keep the paper's 16x16 centre crop of their 20x20 sensor
    digits = load_dataset("digits-events", "val", seed=0, n_samples=2)
    assert resolve_crop(digits, 0) == 16 and resolve_crop(digits, 8) == 8
    per_class = pd.read_csv(tmp_path / "i" / "per_class.csv")
    assert {"ideal_test_acc", "raw events_test_acc"} <= set(per_class.columns)


def test_confusion_figure_labels_every_class_and_keeps_the_title_clear():
    cms = {"ideal": np.eye(12, dtype=int) * 3, "raw events": np.ones((12, 12), dtype=int)}
    names = tuple(f"class{c}" for c in range(12))
    fig = confusion_figure(cms, names)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2
    for ax in panels:
        assert [t.get_text() for t in ax.get_xticklabels()] == list(names)
        assert [t.get_text() for t in ax.get_yticklabels()] == list(names)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        assert not title.overlaps(ax.get_window_extent(renderer)), ax.get_label()
    assert short_name("images:/some/where/deep/clothes.npz") == "images:clothes.npz"


ZS = {"seeds": 1, "hidden": 16, "neurons": 16, "v_th": (6.0,), "temperature": (0.3,),
      "epochs": 5, "eval_every": 5, "backends": ("ideal",), "baseline": False, "n_perm": 50,
      "seen": "0-3", "unseen": "4,5", "val_classes": "none", "n_steps": 20}


def test_neural_sim_views_the_image_files_own_images(bars, tmp_path):
    cfg = ZeroshotConfig(name="z", image=f"images:{bars}", **ZS)
    assert cfg.pairing_mode == "instance"
    img, oth = load_modalities(cfg)
    labels = np.load(bars)["labels"]
    halves = source_partition(cfg.data_seed, labels)
    # the gallery keeps one half of the file's images, the queries view the other half
    for split in ("train", "val", "test", "seen_test"):
        assert np.isin(img.sources[split], halves["image"]).all()
    for split in ("val", "test", "seen_test"):
        assert np.isin(oth.sources[split], halves["neural"]).all()
        np.testing.assert_array_equal(labels[oth.sources[split]], oth.labels[split])
    np.testing.assert_array_equal(oth.sources["train"], img.sources["train"])  # instance pairs
    out = run_zeroshot(cfg, tmp_path, progress=False)
    report = (tmp_path / "z" / "report.md").read_text()
    assert "responses to the other half of the images of images:bars.npz" in report
    assert not any("share no source" in w for w in out["warnings"])


def test_the_image_modality_warns_on_groups_shared_by_a_split_by_sample(tmp_path):
    from rram_cosim.cosim.tasks.status import Status

    images, labels = _images(6, 24)
    path = tmp_path / "writers.npz"
    np.savez(path, images=images, labels=labels, groups=np.arange(labels.size) % 4)
    cfg = ZeroshotConfig(name="g", image=f"images:{path}", split_by="sample", **ZS)
    status = Status("zeroshot", enabled=False)
    load_modalities(cfg, status)
    assert any("group(s) have samples in both train and test" in w for w in status.warnings)
    # split by group (the default where groups are named): no warning
    status = Status("zeroshot", enabled=False)
    load_modalities(ZeroshotConfig(name="g", image=f"images:{path}", **ZS), status)
    assert not any("both train and test" in w for w in status.warnings)


def test_a_pairing_that_cannot_mean_anything_is_refused(bars, tmp_path):
    images, labels = _images(6, 12)
    named = tmp_path / "clothes.npz"
    np.savez(named, images=images, labels=labels,
             class_names=np.array(["shirt", "shoe", "bag", "coat", "dress", "boot"]))
    words = tmp_path / "words"
    words.mkdir()
    rng = np.random.default_rng(0)
    for c, word in enumerate(("ant", "bee", "cat", "dog", "eel", "fox")):
        for spk in range(5):
            wavfile.write(words / f"{word}_s{spk}_0.wav", 16000, _tone(300 + 400 * c, 16000, rng))
    cfg = ZeroshotConfig(name="u", image=f"images:{named}", other=f"wav:{words}", **ZS)
    with pytest.raises(ConfigError, match=r"class 0 is 'shirt' in images:clothes\.npz and "
                                          r"'ant' in wav:words.*unrelated things"):
        load_modalities(cfg)
    # unnamed classes: it runs, and the report says the pairing rests on numbers alone
    digits = tmp_path / "digits"
    digits.mkdir()
    for f in words.iterdir():
        word = f.name.split("_")[0]
        (digits / f.name.replace(word, str("abcdef".index(word[0])), 1)).write_bytes(
            f.read_bytes())
    cfg = ZeroshotConfig(name="n", image=f"images:{bars}", other=f"wav:{digits}", **ZS)
    out = run_zeroshot(cfg, tmp_path, progress=False)
    assert any("share no source" in w for w in out["warnings"])
    # 5 unseen queries a class and one seed: too few to conclude, and said so
    assert any(w.startswith("only 5 unseen queries in the smallest class")
               for w in out["warnings"])
    assert any("has no 95 % interval (one network seed" in w for w in out["warnings"])
    report = (tmp_path / "n" / "report.md").read_text()
    assert "class number alone" in report
    assert "train 18 samples from 3 speakers" in report  # the WAVs split by speaker
    summary = json.loads((tmp_path / "n" / "summary.json").read_text())
    assert summary["warnings"] == out["warnings"]


def test_neural_sim_views_nmnist_recordings(tmp_path, nmnist_folder):
    """N-MNIST keeps no images: the population views each recording's event-count image."""
    from rram_cosim.cosim.data.neural_sim import images_from_events, source_images

    root = tmp_path / "nm"
    nmnist_folder(root, 200)
    cfg = ZeroshotConfig(name="nm", image=f"nmnist:{root}", **ZS)
    img, oth = load_modalities(cfg)
    for split in ("val", "test"):
        assert not np.intersect1d(oth.sources[split], img.sources["test"]).size
    np.testing.assert_array_equal(oth.sources["train"], img.sources["train"])
    # the count image of a recording is the outline of the digit shown (a saccade recording
    # fires on edges): it matches that digit's edge map best among 40
    from rram_cosim.cosim.data.datasets import SaccadeDvsParams, digit_images
    from scipy import ndimage

    rec = load_dataset("digits-events", "test", seed=0, n_samples=40)
    pics = images_from_events(rec).reshape(40, -1)
    assert pics.shape == (40, 400) and pics.max() == 1.0
    shown = np.pad(digit_images(SaccadeDvsParams())[0][rec.metadata["source_index"]],
                   ((0, 0), (2, 2), (2, 2)))
    edges = np.stack([ndimage.gaussian_filter(np.hypot(*np.gradient(im)), 1.0)
                      for im in shown]).reshape(40, -1)
    corr = np.corrcoef(pics, edges)[:40, 40:]
    assert np.diag(corr).mean() > corr[~np.eye(40, dtype=bool)].mean() + 0.1
    assert np.mean(np.argmax(corr, axis=1) == np.arange(40)) > 0.3  # chance 1/40
    with pytest.raises(ConfigError, match="pass the recordings"):
        source_images(f"nmnist:{root}")
    with pytest.raises(ConfigError, match=r"'events:x\.npz' has none"):
        source_images("events:x.npz")
