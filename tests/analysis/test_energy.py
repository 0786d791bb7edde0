"""Energy accounting: the paper's figures, the physical model, and ngspice's supply energy."""

import dataclasses
import inspect
import math

import numpy as np
import pytest
from rram_cosim.analysis import energy as en
from rram_cosim.analysis import energy_constants
from rram_cosim.cosim.spice.backend import SpiceBackend
from rram_cosim.cosim.spice.runner import RunOptions
from rram_cosim.models.device.conductance import differential_pair
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import AdcSpec, ReadScheme, TiaSpec, TileSpec
from rram_cosim.models.snn.lsm import ReservoirActivity

WHOLE = ReadScheme.whole_map()  # every row at once: the arithmetic these tests spell out


def _totals(rep):
    return dict(zip(rep.totals.system, rep.totals.energy_uj))


def test_paper_mode_reproduces_the_papers_digital_nmnist_figure():
    df = en.paper_energy(en.NetworkSize(n_in=256, hidden=200, n_steps=50, n_out=10))
    dig = df[df.system == "digital (paper mode)"]
    reservoir = dig.loc[dig.component.str.startswith("reservoir"), "energy_j"].sum()
    assert reservoir * 1e6 == pytest.approx(4.38, abs=0.005)  # paper: 4.4 uJ


def _paper_ratio(name):
    tot = _totals(en.energy_report(name, include_board=False))
    return tot, tot["digital (paper mode)"] / tot["hybrid (paper mode)"]


def test_nmnist_paper_mode_agrees_by_construction():
    """CIRCULAR, kept as a regression check only: paper_col_read_j is fitted to the paper's
    N-MNIST hybrid figure (0.14 uJ), so the N-MNIST hybrid and ratio agree by construction
    (the digital 4.4 uJ is the independent part, tested above). The predictions are the
    N-TIDIGITS, zero-shot and BMI tests below."""
    tot, ours = _paper_ratio("nmnist")
    assert tot["hybrid (paper mode)"] == pytest.approx(0.14, rel=0.05)
    assert ours == pytest.approx(en.PAPER_FIGURES["nmnist"].ratio, rel=0.05)


@pytest.mark.parametrize("name", ["ntidigits", "zeroshot"])
def test_paper_mode_predictions_within_1_5x_of_the_papers(name):
    """Real predictions: the per-column read constant fitted on N-MNIST, applied unchanged."""
    tot, ours = _paper_ratio(name)
    paper = en.PAPER_FIGURES[name].ratio
    assert 1 / 1.5 < ours / paper < 1.5, (name, ours, paper)
    assert tot["hybrid (paper mode)"] == pytest.approx(en.PAPER_FIGURES[name].hybrid_uj,
                                                       rel=0.05)


def test_bmi_paper_mode_ratio_within_1_5x_of_the_papers_lower_bound():
    """[Lin25]'s BMI variant: 784 image and 192 neural inputs, 2048 hidden, 256-dim
    projections; T = 50 steps is our assumption. The paper states '> 160x', a lower bound,
    which we compare as if it were the value (a 1.5x band)."""
    bmi = dict(en.PRESETS["bmi"].encoders)
    assert bmi["image"] == en.NetworkSize(784, 2048, 50, 256)
    assert bmi["neural"] == en.NetworkSize(192, 2048, 50, 256)
    tot, ours = _paper_ratio("bmi")
    assert tot["digital (paper mode)"] == pytest.approx(500.4, rel=1e-3)
    assert tot["hybrid (paper mode)"] == pytest.approx(3.96, rel=1e-2)
    fig = en.PAPER_FIGURES["bmi"]
    assert fig.hybrid_uj is None and fig.digital_uj is None and fig.ratio == 160.0
    assert 1 / 1.5 < ours / fig.ratio < 1.5, ours  # 126x against '> 160x'


def test_physical_mode_scales_with_measured_activity():
    spec = TileSpec(rows=456, cols=200, read=WHOLE)
    quiet = ReservoirActivity(256, 200, 50, 1, np.full(50, 10.0), np.full(50, 5.0))
    busy = ReservoirActivity(256, 200, 50, 1, np.full(50, 20.0), np.full(50, 10.0))
    e1 = en.physical_energy(quiet, spec, 1e-3, 10, periphery="spec")
    e2 = en.physical_energy(busy, spec, 1e-3, 10, periphery="spec")
    rec = en.DEFAULT_REC_LEVEL

    def part(e, prefix, system="hybrid (physical)"):
        return e.loc[(e.system == system) & e.component.str.startswith(prefix), "energy_j"].sum()

    assert part(e2, "array") == pytest.approx(2 * part(e1, "array"))
    # array energy = t_read * G_row * (level V)^2 per driven row (inputs at 1, recurrent rows
    # at the default 0.25; spikes of the last step drive none)
    assert part(e1, "array") == pytest.approx(
        spec.t_read_s * 1e-3 * 0.2**2 * (500 + 5 * 49 * rec**2))
    # quiescent TIA and ADC energy do not depend on activity; 2 x 200 columns x 50 steps
    assert part(e2, "TIA quiescent") == part(e1, "TIA quiescent") == pytest.approx(
        400 * 50 * 1.6e-3 * 5.0 * 1e-6)
    assert part(e1, "ADC") == pytest.approx(400 * 50 * 5e-15 * 2**14)
    # event-driven digital scales with activity, dense digital does not
    ev, de = "digital event-driven (physical)", "digital dense (physical)"
    assert part(e2, "reservoir", ev) == pytest.approx(2 * part(e1, "reservoir", ev))
    assert part(e2, "reservoir", de) == part(e1, "reservoir", de)
    s = en.summarise(e1)
    assert set(s.system) == {"hybrid (physical)", "digital dense (physical)",
                             "digital event-driven (physical)"}
    assert (s.energy_uj > 0).all()


def test_integrated_periphery_and_tiling_change_the_right_components():
    act = en.preset_activity(en.NetworkSize(256, 200, 50, 10), "image")
    whole = en.physical_energy(act, TileSpec(rows=456, cols=200, read=WHOLE), 1e-3, 10)
    tiled = en.physical_energy(act, TileSpec(rows=64, cols=64), 1e-3, 10)
    assert whole.attrs["row_tiles"] == 1 and tiled.attrs["row_tiles"] == 8
    adc = lambda e: e.loc[e.component.str.startswith("ADC"), "energy_j"].item()
    assert adc(tiled) == pytest.approx(8 * adc(whole))
    adds = lambda e: e.loc[e.component.str.startswith("digital adds"), "count"].item()
    assert adds(whole) == 200 * 50 and adds(tiled) == 15 * 200 * 50
    c = en.EnergyConstants()
    q = whole.loc[whole.component == "TIA quiescent", "unit_energy_j"].item()
    assert q == pytest.approx(c.tia_i_q_a * c.tia_supply_v * c.t_read_integrated_s)


def test_measured_read_replaces_the_conductance_formula():
    act = en.preset_activity(en.NetworkSize(256, 200, 50, 10), "image")
    spec = TileSpec(rows=456, cols=200, read=WHOLE)
    levels = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    m = en.measured_read(np.array([2e-12, 1e-12]), np.array([2e-6, 1e-6]), levels, 4, 1e-6)
    assert m.p_array_w == pytest.approx(1e-12 / 1e-6 / 4)
    assert m.i_col_a == pytest.approx(1e-6 / 4)
    e = en.physical_energy(act, spec, 1e-3, 10, measured=m, periphery="spec")
    # sum of level^2 over the driven rows: inputs at 1, recurrent rows at the default level
    lev2 = act.active_in_rows.sum() + act.spikes[:-1].sum() * en.DEFAULT_REC_LEVEL**2
    arr = e.loc[e.component.str.startswith("array"), "energy_j"].item()
    assert arr == pytest.approx(1e-6 * m.p_array_w * 400 * lev2)
    with pytest.raises(ConfigError):
        en.measured_read(np.zeros(1), np.zeros(1), np.zeros((1, 3)), 4, 1e-6)


def test_adc_sweep_is_monotone_and_dominated_by_conversions_at_high_resolution():
    sw = en.adc_sweep("nmnist", (4, 8, 12, 14))
    assert np.all(np.diff(sw.hybrid_uj) > 0)
    assert sw.adc_uj.iloc[-1] == pytest.approx(2**6 * sw.adc_uj.iloc[1])  # 14 vs 8 bits
    assert sw.adc_uj.iloc[-1] / sw.hybrid_uj.iloc[-1] > 0.5
    assert sw.digital_dense_uj.nunique() == 1


def test_latency_and_tops_per_w():
    rep = en.energy_report("nmnist", include_board=False)
    t = rep.totals.set_index("system")
    ops = 2 * (256 * 200 + 200 * 200) * 50 + 2 * 200 * 10
    assert (t.dense_equiv_ops == ops).all()
    np.testing.assert_allclose(t.tops_per_w, ops / (t.energy_uj * 1e-6) / 1e12)
    c = en.EnergyConstants()
    # the default read scheme: 456 rows in 8 reads of 64 (on-chip switches add no settling)
    assert t.loc["hybrid (physical)", "latency_s"] == pytest.approx(
        50 * (8 * c.t_read_integrated_s + 1e-9) + 8e-9)
    # paper mode digital: the GPU-class rating, 2.08 TOPS/W
    assert t.loc["digital (paper mode)", "tops_per_w"] == pytest.approx(1 / 0.4808, rel=1e-3)


def test_default_drive_levels_agree():
    """physical_energy and energy_report price the same levels unless told otherwise."""
    for fn in (en.physical_energy, en.energy_report):
        params = inspect.signature(fn).parameters
        assert params["rec_level"].default == en.DEFAULT_REC_LEVEL == 0.25
        assert params["in_level"].default == 1.0
    act = ReservoirActivity(256, 200, 50, 1, np.full(50, 10.0), np.full(50, 5.0))
    rep = en.energy_report("nmnist", {"image": act}, include_board=False)
    # energy_report's default tile: the whole map on one macro, read with the default scheme
    direct = en.physical_energy(act, TileSpec(rows=456, cols=200),
                                2 * 200 * en.DeviceParams().g_mean_us * 1e-6, 10,
                                encoder="image")
    assert _totals(rep)["hybrid (physical)"] == pytest.approx(
        direct.loc[direct.system == "hybrid (physical)", "energy_j"].sum() * 1e6)


def test_each_encoder_of_a_pair_is_priced_at_its_own_levels():
    base = en.energy_report("zeroshot", include_board=False)
    own = en.energy_report("zeroshot", include_board=False,
                           levels={"image": (1.0, 0.25), "audio": (0.5, 0.5)})

    def arr(rep, enc):
        c = rep.components
        return c.loc[(c.system == "hybrid (physical)") & (c.encoder == enc)
                     & c.component.str.startswith("array"), "energy_j"].item()

    assert arr(own, "image") == pytest.approx(arr(base, "image"))
    assert arr(own, "audio") != pytest.approx(arr(base, "audio"))


def test_every_constant_has_a_realistic_range():
    names = {f.name for f in dataclasses.fields(en.EnergyConstants)}
    assert set(energy_constants._RANGES) == names == set(en.CONSTANTS_INFO)
    # a 32-bit multiply's 3.1 pJ as the paper-mode constant is a legitimate what-if
    assert en.EnergyConstants(pj_per_op_paper=3.1).pj_per_op_paper == 3.1
    assert en.EnergyConstants(tia_i_q_a=1.6e-3, tia_supply_v=5.0).tia_supply_v == 5.0
    # unit slips are refused, naming the constant, its range and unit
    with pytest.raises(ConfigError, match=r"e_add_8b_j.*\[0, 1e-09\] J"):
        en.EnergyConstants(e_add_8b_j=0.03)  # pJ given as J
    with pytest.raises(ConfigError, match="pj_per_op_paper"):
        en.EnergyConstants(pj_per_op_paper=0.48e-12)  # J given as pJ


def test_constants_table_overrides_and_errors():
    tab = en.EnergyConstants().table()
    assert set(tab.columns) >= {"constant", "value", "unit", "node", "source"}
    assert (tab.source.str.len() > 5).all() and (tab.node.str.len() > 0).all()
    c = en.EnergyConstants.from_overrides({"adc_fom_j_per_step": 1e-15})
    assert c.adc_fom_j_per_step == 1e-15
    with pytest.raises(ConfigError, match="Valid names"):
        en.EnergyConstants.from_overrides({"adc_fom": 1e-15})
    with pytest.raises(ConfigError, match="adc_fom_j_per_step"):
        en.EnergyConstants(adc_fom_j_per_step=-1.0)


def test_scale_activity_keeps_rates():
    a = ReservoirActivity(64, 24, 20, 5, np.linspace(0, 6.4, 20), np.full(20, 2.4))
    s = en.scale_activity(a, en.NetworkSize(256, 200, 50, 10))
    assert (s.n_in, s.hidden, s.n_steps) == (256, 200, 50)
    assert s.active_in_rows[-1] == pytest.approx(6.4 / 64 * 256)
    assert s.spikes.mean() == pytest.approx(2.4 / 24 * 200)
    assert en.activity_from_dict(a.to_dict()).spikes.tolist() == a.spikes.tolist()
    with pytest.raises(ConfigError):
        en.activity_from_dict({"n_in": 3})


@pytest.mark.parametrize("i_q_a", [1.6e-3, 10e-6, "integrated"])
def test_array_plus_tia_energy_matches_ngspice_within_10_percent(tmp_path, i_q_a):
    """Real ngspice on a small formed tile. With the board's 1.6 mA TIAs the quiescent power
    dominates; with an integrated TIA's 10 uA the array and TIA output stage are about
    half of the total, so each term is tested. ``integrated``: the periphery the energy
    command prices and cross-checks (integrated_spec: 10 uA, +-0.55 V, 100 ns, ADC full
    scale inside the TIA swing so nothing clips)."""
    if i_q_a == "integrated":
        spec = en.integrated_spec(TileSpec(rows=12, cols=6))
        assert spec.adc.v_full_scale_v <= spec.tia.v_out_max_v
        i_q_a = spec.tia.i_q_a
    else:
        spec = TileSpec(rows=12, cols=6, tia=TiaSpec(i_q_a=i_q_a))
    rng = np.random.default_rng(3)
    gp, gn = differential_pair((12, 6), rng)
    x = (rng.random((5, 12)) < np.linspace(0.1, 1.0, 5)[:, None]).astype(float)
    x[:, 0] = 1.0
    bound = SpiceBackend(spec, RunOptions(run_dir=tmp_path), n_workers=1, cache=False).bind(gp,
                                                                                           gn)
    bound.apply(x)
    meas = bound.last_solution.energy
    model = en.vmm_read_energy(spec, gp, gn, x)
    np.testing.assert_allclose(model["total_j"], meas.total_j, rtol=0.10)
    np.testing.assert_allclose(model["array_j"] + model["tia_output_j"],
                               meas.dac_j + meas.tia_output_j, rtol=0.10)
    np.testing.assert_allclose(model["tia_quiescent_j"], meas.tia_quiescent_j, rtol=1e-6)
    if i_q_a < 1e-5:
        # the check can fail: without the quiescent term the model is far off
        assert np.all(np.abs(model["total_j"] - model["tia_quiescent_j"] - meas.total_j)
                      > 0.1 * meas.total_j)
        # and the physical model's IR-drop-free currents are higher than the circuit's
        assert np.all(model["array_j"] >= meas.dac_j)
        # the quiescent term does not carry the total
        assert np.all(meas.tia_quiescent_j < 0.9 * meas.total_j)


def test_energy_report_from_measured_activity_of_another_size():
    act = ReservoirActivity(64, 24, 20, 5, np.full(20, 6.4), np.full(20, 2.4))
    rep = en.energy_report("nmnist", {"image": act}, include_board=False)
    used = rep.activities["image"]
    assert (used.n_in, used.hidden, used.n_steps) == (256, 200, 50)
    low = dataclasses.replace(TileSpec(rows=456, cols=200, read=WHOLE), adc=AdcSpec(bits=8))
    rep8 = en.energy_report("nmnist", {"image": act}, spec=low, include_board=False)
    assert _totals(rep8)["hybrid (physical)"] < _totals(rep)["hybrid (physical)"]


def test_read_scheme_sets_reads_conversions_and_latency():
    """Row groups multiply conversions and reads; differential sensing halves conversions and
    adds a subtractor per weight column; floating column groups power fewer TIAs."""
    act = en.preset_activity(en.NetworkSize(256, 200, 50, 10), "image")

    def run(read):
        spec = TileSpec(rows=456, cols=200, read=read)
        e = en.physical_energy(act, spec, 1e-3, 10, periphery="spec")
        return e, en.read_counts(spec, 456, 200)

    def part(e, prefix):
        return e.loc[(e.system == "hybrid (physical)") & e.component.str.startswith(prefix),
                     "energy_j"].sum()

    whole, rc0 = run(WHOLE)
    board, rc1 = run(ReadScheme())
    diff, rc2 = run(ReadScheme(sense="differential"))
    flt, rc3 = run(ReadScheme(cols_per_read=100, unsensed="float"))
    assert (rc0.reads, rc0.conversions, rc0.t_vmm_s) == (1, 400, 1e-6)
    # 456 rows in groups of 64: 8 reads, each converting all 400 physical columns
    assert (rc1.reads, rc1.conversions) == (8, 3200)
    assert rc1.t_vmm_s == pytest.approx(8 * (1e-6 + 0.5e-6))
    assert part(board, "ADC") == pytest.approx(8 * part(whole, "ADC"))
    assert part(board, "array") == pytest.approx(part(whole, "array"))
    assert (rc2.conversions, rc2.tias_on) == (1600, 600)
    assert part(diff, "ADC") == pytest.approx(0.5 * part(board, "ADC"))
    # 400 physical columns, 100 sensed per read: 4 column groups per row group, 100 TIAs
    assert (rc3.reads, rc3.tias_on, rc3.conversions) == (32, 100, 3200)
    assert part(flt, "TIA quiescent") == pytest.approx(part(board, "TIA quiescent"))
    assert part(flt, "input DACs") == pytest.approx(4 * part(board, "input DACs"))


def test_a_narrower_last_column_tile_powers_only_its_own_periphery():
    """200 weight columns on 128-column tiles: 128 + 72, so 400 TIAs per row tile, not 512."""
    spec = TileSpec(rows=256, cols=128, read=WHOLE)
    rc = en.read_counts(spec, 456, 200)
    assert (rc.row_tiles, rc.col_tiles) == (2, 2)
    assert rc.tias_on == 2 * 2 * 200
    assert rc.conversions == 2 * 400
    diff = en.read_counts(dataclasses.replace(spec, read=ReadScheme(rows_per_read=0,
                                                                   sense="differential")),
                          456, 200)
    assert diff.tias_on == 2 * (2 * 200 + 200)  # both columns' TIAs and one subtractor each


def test_column_groups_adc_sharing_and_the_adc_sweep_keep_their_scheme():
    act = en.preset_activity(en.NetworkSize(256, 200, 50, 10), "image")

    def part(read, prefix):
        e = en.physical_energy(act, TileSpec(rows=456, cols=200, read=read), 1e-3, 10,
                               periphery="spec")
        return e.loc[(e.system == "hybrid (physical)") & e.component.str.startswith(prefix),
                     "energy_j"].sum()

    board = ReadScheme()
    grounded = ReadScheme(cols_per_read=100)  # 4 column groups, the others at virtual ground
    shared = ReadScheme(outputs_per_adc=4)  # each read lasts 4 conversions
    assert part(grounded, "array") == pytest.approx(4 * part(board, "array"))
    assert part(shared, "array") == pytest.approx(4 * part(board, "array"))
    assert part(shared, "TIA quiescent") == pytest.approx(4 * part(board, "TIA quiescent"))
    # the scheme holds for every resolution of the sweep
    sw = en.adc_sweep("nmnist", (14, 14), read=WHOLE)
    assert sw.hybrid_uj.iloc[0] == pytest.approx(sw.hybrid_uj.iloc[1])
    whole = en.energy_report("nmnist", read=WHOLE, include_board=False)
    assert sw.hybrid_uj.iloc[0] == pytest.approx(
        whole.totals.set_index("system").loc["hybrid (physical)", "energy_uj"])


def test_each_encoder_has_its_own_vmm_time():
    """The zero-shot pair's encoders read 456 and 264 rows: 8 and 5 reads of 64 rows."""
    rep = en.energy_report("zeroshot", include_board=False)
    c = en.EnergyConstants()
    t = rep.totals.set_index("system").loc["hybrid (physical)", "latency_s"]
    sizes = dict(en.PRESETS["zeroshot"].encoders)
    lif = math.ceil(200 / c.digital_lanes) / c.f_clk_hz
    want = sum(s.n_steps * (len(ReadScheme().row_groups(s.n_in + s.hidden))
                            * c.t_read_integrated_s + lif)
               + math.ceil(s.head_macs / c.digital_lanes) / c.f_clk_hz for s in sizes.values())
    assert t == pytest.approx(want)
