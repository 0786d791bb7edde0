"""zeroshot: a small end-to-end CLI run, the shared map, selection rules and bad input."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
from rram_cosim.cosim.cli.commands.zeroshot import run_zeroshot
from rram_cosim.cosim.cli.main import main
from rram_cosim.cosim.engines.registry import make_backend
from rram_cosim.cosim.tasks.classify import task_tile_spec
from rram_cosim.cosim.tasks.configs.zeroshot import parse_classes
from rram_cosim.cosim.tasks.energy import read_activity
from rram_cosim.cosim.tasks.zeroshot import (
    P_INVALID_NOTE,
    SELECTIONS,
    EncoderView,
    MapLayout,
    ZeroshotConfig,
    load_modalities,
    permutation_rng,
    raw_features,
    retrieval_sets,
    run_protocol,
    select,
    summarise,
)
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import TileSpec
from rram_cosim.models.tile.ideal import IdealBackend
from rram_cosim.models.tile.tiling import TiledBackend

SMALL = ["--seeds", "2", "--hidden", "16", "--crop", "8", "--neurons", "16", "--v-th", "3,6",
         "--temperature", "0.3", "--epochs", "10", "--eval-every", "5", "--tile-rows", "64",
         "--tile-cols", "16", "--cal-maps", "2", "--cal-vectors", "8", "--n-perm", "200",
         "--no-progress"]


# The smallest useful run (~2-3 s on 2 cores): one seed, the ideal backend, one grid point,
# 5 epochs, no baseline; it still writes every output, activity.json included.
TINY = ZeroshotConfig(name="tiny", seeds=1, hidden=16, crop=8, neurons=16, v_th=(6.0,),
                      temperature=(0.3,), epochs=5, eval_every=5, backends=("ideal",),
                      baseline=False, n_perm=50)

# A small grid (2 LIF points x 2 temperatures x 2 checkpoints) for the selection tests.
GRID = ZeroshotConfig(seeds=2, hidden=16, crop=8, neurons=16, v_th=(3.0, 6.0),
                      temperature=(0.1, 0.3), epochs=10, eval_every=5, backends=("ideal",),
                      baseline=True)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert main(["zeroshot", "--name", "z", "--out", str(root), *SMALL]) == 0
    return root / "z"


def test_zeroshot_writes_tables_plots_and_labels_the_paper_protocol(small_run):
    for f in ("config.json", "versions.json", "grid.csv", "chosen.csv", "summary.csv",
              "summary.json", "confusion.png", "embedding.png", "report.md", "surrogate.json",
              "paired.csv"):
        assert (small_run / f).is_file(), f
    summary = pd.read_csv(small_run / "summary.csv")
    models = {"LSM, ideal", "LSM, surrogate", "raw events (no reservoir)"}
    assert set(summary["model"]) == models
    assert set(summary["selection"]) == {label for _, label in SELECTIONS.values()}
    assert (summary["n_seeds"] == 2).all()
    assert (summary["chance_top1"].between(0.45, 0.55)).all()  # two balanced unseen classes
    # a row chosen on the test queries has no valid permutation p-value; the others have one
    paper = summary["selection"] == SELECTIONS["paper"][1]
    assert summary.loc[paper, "p_value_top1"].isna().all()
    assert (summary.loc[paper, "p_value_note"] == P_INVALID_NOTE).all()
    assert summary.loc[~paper, "p_value_top1"].between(1 / 201, 1).all()
    report = (small_run / "report.md").read_text()
    assert "paper protocol: selected on the unseen test queries" in report
    assert P_INVALID_NOTE in report
    assert "88.0 %" in report  # the paper's figure beside ours
    # model differences: a paired bootstrap over seeds and queries, named in the report
    assert "bootstrap over seeds and test samples (2000 resamples" in report
    assert "resamples per-query hit differences within each seed" in report
    paired = pd.read_csv(small_run / "paired.csv")
    assert set(paired["model"]) == {"LSM, surrogate", "raw events (no reservoir)"}
    assert (paired["n_seeds"] == 2).all()
    assert (paired["diff_ci_low"] <= paired["diff_mean"]).all()
    s = json.loads((small_run / "summary.json").read_text())
    # one reservoir run per backend, seed, encoder and LIF point; the head grids reuse them
    assert s["cache"]["misses"] == 2 * 2 * 2 * 2


def test_activity_json_per_backend_encoder_and_seed(small_run):
    act = json.loads((small_run / "activity.json").read_text())
    assert set(act) == {f"{b}/{e}/seed{k}" for b in ("ideal", "surrogate")
                        for e in ("image", "neural") for k in (0, 1)}
    rec = act["ideal/neural/seed0"]
    assert rec["n_in"] == 16 and rec["hidden"] == 16 and rec["n_steps"] == 50
    assert len(rec["spikes"]) == 50 and sum(rec["spikes"]) > 0
    assert act["ideal/image/seed0"]["n_in"] == 64  # 8x8 crop
    # the energy command's reader finds both encoders and prefers the named backend
    got = read_activity(small_run, ["image", "neural"], "surrogate")
    assert set(got) == {"image", "neural"}
    assert got["neural"].n_in == 16 and got["image"].n_in == 64


def test_tiny_config_runs_and_writes_activity(tmp_path):
    out = run_zeroshot(TINY, tmp_path, progress=False)
    act = json.loads((tmp_path / "tiny" / "activity.json").read_text())
    assert set(act) == {"ideal/image/seed0", "ideal/neural/seed0"}
    assert "LSM, ideal" in out["headline"]


def _protocol(cfg, image, other):
    lay = MapLayout(image.n_in, other.n_in, cfg.hidden)
    spec = task_tile_spec(cfg, *lay.shape)
    return run_protocol(cfg, image, other, {"ideal": make_backend("ideal", spec)})


def _choices(res, sel):
    """Chosen hyperparameters, epoch and selection metric per (model, seed)."""
    metric = SELECTIONS[sel][0]
    return {(m, r["seed"]): (None if np.isnan(r["v_th"]) else r["v_th"], r["temperature"],
                             r["epoch"], r[metric])
            for (m, s), rows in res.chosen.items() if s == sel for r in rows}


@pytest.fixture(scope="module")
def grid_runs():
    image, other = load_modalities(GRID)
    first = _protocol(GRID, image, other)
    again = _protocol(GRID, image, other)
    # scramble every unseen-class sample: the other modality's frames (values across samples
    # and features) and labels, and the image gallery's frames and labels
    rng = np.random.default_rng(9)
    img2, oth2 = copy.deepcopy(image), copy.deepcopy(other)
    for mod in (img2, oth2):
        f = mod.frames["test"]
        mod.frames["test"] = rng.permutation(f.reshape(-1)).reshape(f.shape)
        mod.labels["test"] = rng.permutation(mod.labels["test"])
    scrambled = _protocol(GRID, img2, oth2)
    return image, other, first, again, scrambled


def test_honest_choice_never_looks_at_unseen(grid_runs):
    image, other, first, _, scrambled = grid_runs
    for sel in ("honest", "honest-seen-val"):
        assert _choices(first, sel) == _choices(scrambled, sel), sel
    # the paper rule picks on the unseen queries: the scrambled data change its accuracy
    paper = [r["unseen_top1"] for rows in first.chosen.values() for r in rows
             if r["selection"] == "paper"]
    paper2 = [r["unseen_top1"] for rows in scrambled.chosen.values() for r in rows
              if r["selection"] == "paper"]
    assert paper != paper2
    # the held-out grid trains without the validation classes and is tested only on them
    vc = GRID.val_class_tuple
    assert vc == (6, 7)
    sets = retrieval_sets(raw_features(image), raw_features(other), image.labels,
                          other.labels, vc, GRID.pairing_mode == "instance")
    _, _, ya, yb = sets["holdout"]["train"]
    assert not np.isin(ya, vc).any() and not np.isin(yb, vc).any()
    assert set(ya.tolist()) == set(GRID.seen_classes) - set(vc)
    held = sets["holdout"]["eval"]["heldout"]
    assert set(held.query_labels.tolist()) == set(vc) == set(held.gallery_labels.tolist())
    _, _, fa, fb = sets["full"]["train"]
    assert set(fa.tolist()) == set(fb.tolist()) == set(GRID.seen_classes)


def test_same_seed_same_choice_and_accuracy(grid_runs):
    _, _, first, again, _ = grid_runs
    cols = ("seed", "model", "v_th", "rec_level", "temperature", "epoch", "val_top1",
            "heldout_top1", "unseen_top1", "unseen_topk", "seen_test_top1")

    def rows(res):
        return {k: [tuple(-1.0 if (isinstance(r[c], float) and np.isnan(r[c])) else r[c]
                          for c in cols) for r in v] for k, v in res.chosen.items()}

    assert rows(first) == rows(again)
    for k in first.chosen:
        for r1, r2 in zip(first.chosen[k], again.chosen[k]):
            np.testing.assert_array_equal(r1["neighbours"], r2["neighbours"])
    # and the seed matters: another network seed gives other grid accuracies
    image, other = grid_runs[0], grid_runs[1]
    cfg = ZeroshotConfig(**{**GRID.__dict__, "seed": 5, "seeds": 1, "baseline": False})
    other_seed = _protocol(cfg, image, other)
    a = [r["unseen_top1"] for r in first.grid
         if r["seed"] == 0 and r["model"] == "LSM, ideal" and r["grid"] == "full"]
    b = [r["unseen_top1"] for r in other_seed.grid if r["grid"] == "full"]
    assert len(a) == len(b)
    assert a != b


def test_summary_pvalue_separates_a_working_model_from_shuffled_labels():
    ql, gl = np.repeat([8, 9], 30), np.repeat([8, 9], 25)
    rng = np.random.default_rng(3)
    # a model that works: 90 % of the nearest neighbours carry the query's class
    nb = np.where(rng.random(60) < 0.9, ql, 17 - ql)[:, None]
    rows = [{"unseen_top1": float(np.mean(nb[:, 0] == ql)), "unseen_topk": 1.0,
             "neighbours": nb, "seen_test_top1": 1.0, "val_top1": 1.0}] * 2
    s = summarise(rows, ql, gl, 200, np.random.default_rng(0))
    assert s["p_value_top1"] == pytest.approx(1 / 201) and s["chance_top1"] == 0.5
    # the same neighbours against shuffled query labels: no evidence
    ps = [summarise(rows, rng.permutation(ql), gl, 200, np.random.default_rng(k))["p_value_top1"]
          for k in range(20)]
    assert np.median(ps) > 0.2
    bad = summarise(rows, ql, gl, 200, np.random.default_rng(0), p_valid=False)
    assert np.isnan(bad["p_value_top1"]) and bad["p_value_note"] == P_INVALID_NOTE
    # one generator per (model, selection): adding a model leaves the others' streams alone
    a = permutation_rng(0, "LSM, ideal", "honest").random(3)
    np.testing.assert_array_equal(a, permutation_rng(0, "LSM, ideal", "honest").random(3))
    assert not np.array_equal(a, permutation_rng(0, "LSM, surrogate", "honest").random(3))


def test_select_ties_and_metrics():
    rows = [{"val_top1": 0.9, "heldout_top1": 0.5, "unseen_top1": 1.0},
            {"val_top1": 0.9, "heldout_top1": 0.7, "unseen_top1": 0.2}]
    assert select(rows, "heldout_top1") == 1
    assert select(rows, "val_top1") == 0  # tie: the earliest row
    assert select(rows, "unseen_top1") == 0
    with pytest.raises(ConfigError, match="selection metric"):
        select(rows, "nothing")


@pytest.mark.parametrize("tiled", [False, True])
def test_encoders_read_their_rows_and_share_the_recurrent_rows(tiled):
    lay = MapLayout(n_image=12, n_other=6, hidden=10)
    assert lay.shape == (28, 10)
    rng = np.random.default_rng(0)
    gp, gn = rng.uniform(5, 25, lay.shape), rng.uniform(5, 25, lay.shape)
    be = (TiledBackend(IdealBackend(TileSpec(rows=8, cols=4)), 8, 4) if tiled
          else IdealBackend(TileSpec(rows=28, cols=10)))
    bound = be.bind(gp, gn)
    w = gp - gn
    for enc, n_own in (("image", 12), ("other", 6)):
        v = EncoderView(bound, lay.rows_of(enc))
        assert v.g_pos_us.shape == (n_own + 10, 10)
        np.testing.assert_array_equal(v.g_pos_us[n_own:], gp[18:])  # the same recurrent cells
        x = rng.integers(0, 2, (5, n_own + 10)).astype(float)
        np.testing.assert_allclose(v.apply(x, rng).y, x @ w[lay.rows_of(enc)], atol=1e-9)
    with pytest.raises(ConfigError, match="reads 22 rows"):
        EncoderView(bound, lay.rows_of("image")).apply(np.zeros((1, 5)), rng)


def test_paper_bmi_variant_is_configuration():
    cfg = ZeroshotConfig(image="images:digits784.npz", other="neural-sim", hidden=2048,
                         dim=256, seen="0-21", unseen="22-25", crop=28, tile_rows=512,
                         tile_cols=512, backends=("ideal",), pairing="class")
    assert len(cfg.seen_classes) == 22 and len(cfg.unseen_classes) == 4
    assert cfg.val_class_tuple == (20, 21)
    lay = MapLayout(784, 192, cfg.hidden)
    assert lay.shape == (3024, 2048)
    assert lay.n_tiles(cfg.tile_rows, cfg.tile_cols) == 6 * 4


def test_parse_classes():
    assert parse_classes("1-3,7", "seen") == (1, 2, 3, 7)
    assert parse_classes("9, 8", "unseen") == (8, 9)
    with pytest.raises(ConfigError, match="runs backwards"):
        parse_classes("7-1", "seen")
    with pytest.raises(ConfigError, match="list like"):
        parse_classes("one", "seen")


def test_bad_configurations():
    with pytest.raises(ConfigError, match=r"Classes \[7\] are in both"):
        ZeroshotConfig(seen="1-7", unseen="7,8")
    with pytest.raises(ConfigError, match="at least two classes"):
        ZeroshotConfig(unseen="9")
    with pytest.raises(ConfigError, match="Mismatched encoder sizes: hidden=200"):
        ZeroshotConfig(other_hidden=128)
    with pytest.raises(ConfigError, match="pairing='instance' needs"):
        ZeroshotConfig(other="spoken-digits", pairing="instance")
    with pytest.raises(ConfigError, match="'val_classes'"):
        ZeroshotConfig(val_classes="8,9")
    with pytest.raises(ConfigError, match="'other' parameter"):
        ZeroshotConfig(other="tidigits")


def test_bad_data():
    with pytest.raises(ConfigError, match=r"Class\(es\) \[12\] have no samples"):
        load_modalities(ZeroshotConfig(unseen="8,12", crop=8, neurons=16))
    with pytest.raises(ConfigError, match="Mismatched encoder sizes: image_inputs=100"):
        load_modalities(ZeroshotConfig(crop=8, neurons=16, image_inputs=100))


def test_cli_reports_errors(tmp_path, capsys):
    assert main(["zeroshot", "--seen", "1-7", "--unseen", "7,8", "--out", str(tmp_path)]) == 2
    assert "in both 'seen' and 'unseen'" in capsys.readouterr().err


def test_top1_only_one_seed_report_and_chances_from_the_labels(tmp_path):
    """--top-k 1 writes no top-k column and the report tables still build; one seed
    says so instead of '+- n/a'; every chance comes from the labels that ran; the selection
    table follows the headline."""
    from rram_cosim.models.snn.contrastive import chance_topk

    cfg = ZeroshotConfig(**{**TINY.__dict__, "name": "k1", "top_k": 1})
    run_zeroshot(cfg, tmp_path, progress=False)
    report = (tmp_path / "k1" / "report.md").read_text()
    assert "top-1 (chance)" in report and "unseen top-1 (chance)" not in report
    assert "(one seed)" in report and "+- n/a" not in report and "n/a to n/a" not in report
    assert "nan to nan" not in report  # no p-value / interval note without an interval
    heads = [line for line in report.splitlines() if line.startswith("## ")]
    assert heads.index("## How much the selection adds") == heads.index("## Headline") + 1
    summary = pd.read_csv(tmp_path / "k1" / "summary.csv")
    image, other = load_modalities(cfg)
    want = chance_topk(other.labels["seen_test"], image.labels["seen_test"], 1)
    np.testing.assert_allclose(summary["chance_seen_test_top1"], want)
    np.testing.assert_allclose(summary["chance_val_top1"],
                               chance_topk(other.labels["val"], image.labels["val"], 1))


def test_seen_class_chance_follows_an_imbalanced_gallery():
    ql, gl = np.repeat([8, 9], 10), np.repeat([8, 9], 10)
    rows = [{"unseen_top1": 0.5, "unseen_topk": 1.0, "neighbours": ql[:, None],
             "seen_test_top1": 1.0, "val_top1": 1.0}]
    # seen classes: 30 gallery images of class 0, 10 of class 1, queries 10 + 10
    sq, sg = np.repeat([0, 1], 10), np.repeat([0, 1], [30, 10])
    s = summarise(rows, ql, gl, 10, np.random.default_rng(0), seen_test=(sq, sg), val=(sq, sg))
    # a random nearest image: class 0 with 3/4, class 1 with 1/4; not 1 / 2 seen classes
    assert s["chance_seen_test_top1"] == pytest.approx(0.5 * 0.75 + 0.5 * 0.25)
    s = summarise(rows, ql, gl, 10, np.random.default_rng(0), seen_test=(sq[:10], sg))
    assert s["chance_seen_test_top1"] == pytest.approx(0.75)


def test_paired_interval_is_a_bootstrap_over_queries_even_with_one_seed():
    from rram_cosim.cosim.tasks.zeroshot import paired_by_seed

    ql = np.repeat([8, 9], 50)
    right, wrong = ql[:, None], (17 - ql)[:, None]
    # model B gets 30 more queries right than the reference, in the one seed that ran
    b = np.where((np.arange(100) < 40)[:, None], right, wrong)
    a = np.where((np.arange(100) < 10)[:, None], right, wrong)
    chosen = {("LSM, ideal", "honest"): [{"seed": 0, "neighbours": a}],
              ("LSM, surrogate", "honest"): [{"seed": 0, "neighbours": b}]}
    p = paired_by_seed(chosen, ql, "LSM, ideal", 0).iloc[0]
    assert p["diff_mean"] == pytest.approx(0.3)
    assert 0.15 < p["diff_ci_low"] < 0.3 < p["diff_ci_high"] < 0.45  # finite with one seed
    assert (p["n_seeds"], p["n_queries"], p["n_model_only"], p["n_reference_only"]) == \
        (1, 100, 30, 0)
    again = paired_by_seed(chosen, ql, "LSM, ideal", 0).iloc[0]
    assert again["diff_ci_low"] == p["diff_ci_low"]


def test_group_field_is_refused_without_a_wav_folder():
    with pytest.raises(ConfigError, match=r"group_field=2 names the speaker field of WAV file "
                                          r"names.*digits-events, neural-sim.*--group-field"):
        ZeroshotConfig(group_field=2)
    from rram_cosim.cosim.tasks.configs.classify import ClassifyConfig

    with pytest.raises(ConfigError, match=r"group_field=3.*images:x\.npz.*'groups' array"):
        ClassifyConfig(dataset="images:x.npz", group_field=3)
    assert ClassifyConfig(dataset="wav:somewhere", group_field=2).group_field == 2
    assert ZeroshotConfig(other="wav:somewhere", group_field=2).group_field == 2


def test_confusion_plot_names_classes_and_keeps_the_title_off_the_colour_bar():
    from rram_cosim.cosim.cli.commands.zeroshot import _confusion_plot

    fig = _confusion_plot(np.array([[5, 1], [2, 4]]), ["shirt", "boot"], "LSM, ideal",
                          SELECTIONS["honest"][1])
    main_ax = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    bar = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(main_ax) == 1 and len(bar) == 1
    assert [t.get_text() for t in main_ax[0].get_xticklabels()] == ["shirt", "boot"]
    assert [t.get_text() for t in main_ax[0].get_yticklabels()] == ["shirt", "boot"]
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(r)
    for ax in fig.axes:
        assert not title.overlaps(ax.get_window_extent(r)), ax.get_label()
        assert not title.overlaps(ax.get_tightbbox(r)), ax.get_label()


def test_embedding_plot_draws_queries_over_the_gallery_with_a_short_legend():
    from rram_cosim.cosim.cli.commands.zeroshot import _embedding_plot
    from rram_cosim.cosim.tasks.zeroshot import Modality
    from rram_cosim.models.snn.contrastive import ContrastiveHeads

    rng = np.random.default_rng(0)
    lab = {"seen_test": np.repeat([0, 1], 6), "test": np.repeat([8, 9], 6)}
    fi = {s: rng.random((12, 5)) for s in lab}
    fo = {s: rng.random((12, 4)) for s in lab}
    heads = ContrastiveHeads(dim=3, epochs=2, batch_size=8).fit(
        fi["seen_test"], fo["seen_test"], rng=np.random.default_rng(1),
        labels_a=lab["seen_test"], labels_b=lab["seen_test"])

    def mod(name, f):
        return Modality(name=name, frames={s: f[s][:, None, :] for s in f}, labels=lab,
                        audio=False)

    image = mod("images:/data/deep/folder/clothes.npz", fi)
    other = mod("wav:/home/someone/recordings/words", fo)
    fig = _embedding_plot({"heads": heads, "feats": (fi, fo)}, image, other, "LSM, ideal")
    ax = fig.axes[0]
    gallery, queries = ax.collections[:2]
    assert queries.get_zorder() > gallery.get_zorder()
    assert len(queries.get_offsets()) == len(gallery.get_offsets()) == 24
    assert queries.get_sizes()[0] > gallery.get_sizes()[0]  # the queries stand out
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["gallery: images:clothes.npz (24)", "queries: wav:words (24)"]
    assert not any("/" in t for t in texts)


class _Recorder:
    """A bound tile that keeps every full-map drive vector it is asked for."""

    def __init__(self, bound):
        self.bound, self.spec = bound, bound.spec
        self.g_pos_us, self.g_neg_us = bound.g_pos_us, bound.g_neg_us
        self.kept = []

    def apply(self, x, rng, *, volts=False):
        self.kept.append(np.asarray(x, dtype=np.float64).copy())
        return self.bound.apply(x, rng, volts=volts)


def test_workload_linearisation_profiles_both_encoders_on_one_map(tmp_path):
    """Both encoders' rows are profiled on the one map, and the result tracks the circuit
    (nodal engine) closer than the tangent on the encoders' own drive vectors."""
    import dataclasses

    from rram_cosim.cosim.tasks.classify import task_surrogate
    from rram_cosim.cosim.tasks.zeroshot import bind_shared_map, draw_shared_map, lif_grid
    from rram_cosim.models.snn.lsm import run_reservoir

    cfg = dataclasses.replace(TINY, backends=("surrogate",), cal_maps=2, cal_vectors=8)
    assert cfg.linearise == "workload"
    image, other = load_modalities(cfg)
    lay = MapLayout(image.n_in, other.n_in, cfg.hidden)
    spec = task_tile_spec(cfg, *lay.shape)
    sur = task_surrogate(cfg, spec, tmp_path, np.random.default_rng(0)).with_noise(0.0)
    gp, gn = draw_shared_map(lay, 0)
    wl = bind_shared_map(cfg, "surrogate", sur, gp, gn, lay, image, other, 0)
    tan = bind_shared_map(dataclasses.replace(cfg, linearise="tangent"), "surrogate", sur, gp,
                          gn, lay, image, other, 0)
    on = wl.model.drive_.on_level
    own_other = np.arange(image.n_in, image.n_in + other.n_in)
    assert on[:image.n_in].max() > 0 and on[own_other].max() > 0
    assert on[lay.recurrent_rows].max() > 0 and tan.model.drive_ is None
    # the encoders' own drive (test split), through the workload binding
    rec = _Recorder(wl)
    lif_i, lif_o = lif_grid(cfg, other.audio)[0]
    for enc, mod, lif in (("image", image, lif_i), ("other", other, lif_o)):
        run_reservoir(EncoderView(rec, lay.rows_of(enc)), mod.frames["test"][:4], lif,
                      np.random.default_rng(1))
    x = np.concatenate(rec.kept)
    x = x[np.random.default_rng(2).choice(len(x), 48, replace=False)]
    ref = make_backend("nodal", spec).bind(gp, gn).apply(x, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    err = {k: np.sqrt(np.mean((b.apply(x, rng).i_pos_ua - ref.i_pos_ua) ** 2))
           for k, b in (("workload", wl), ("tangent", tan))}
    assert err["workload"] < 0.5 * err["tangent"], err
