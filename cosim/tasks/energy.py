"""Energy per inference from measured activity: the library half of ``rram-cosim energy``.

For one of the paper's networks (``network``: nmnist, ntidigits, zeroshot, bmi, at the paper's
sizes) :func:`price_energy` prices an inference in both modes of
:mod:`rram_cosim.analysis.energy`, driven by measured activity:

1. activity (:func:`gather_activity`): from a run folder (``from_run``: the ``activity.json``
   a ``classify``, ``zeroshot`` or ``demo`` run saved: one ``ReservoirActivity.to_dict()`` or a
   mapping of names to them, ``<backend>/seed<k>`` (classify) or
   ``<backend>/<encoder>/seed<k>`` (zeroshot); a name containing ``image``, ``audio`` or
   ``neural`` belongs to that encoder, and ``backend`` picks the backend's records), or,
   without ``from_run``, from a small default classify run per encoder on the embedded data
   (images: digits-events; audio: spoken-digits; the BMI's neural encoder has no classify
   data and uses preset rates: give ``from_run`` a ``zeroshot --other neural-sim`` run to
   measure it); activity of another size is rescaled to the preset's sizes;
2. array and TIA (:func:`spice_crosscheck`): measured in ngspice on a small formed tile driven
   at the measured input density (supply and DAC energy per VMM), cross-checked against the
   physical model, and scaled per driven row and per column to the macro;
3. ADC sweep: hybrid energy at every resolution; accuracy from surrogate-backed runs
   (:func:`sweep_accuracy`: the activity run's surrogate with the ADC resolution changed, same
   map, data and seeds);
4. training cost (:mod:`rram_cosim.analysis.training_cost`).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ...analysis import energy as en
from ...analysis import training_cost as tc
from ...models.checks import check_choice
from ...models.device.conductance import differential_pair
from ...models.errors import ConfigError, DomainWarning
from ...models.params import AdcSpec, DeviceParams, LIFParams, ReadScheme, TileSpec, from_dict
from ...models.snn.heads import SoftmaxReadout
from ...models.snn.lsm import ReservoirActivity, run_reservoir
from ...models.tile.surrogate import TileSurrogate
from ...models.tile.tiling import TiledBackend
from ..engines.calibrate import bind_for_workload
from ..engines.registry import BACKENDS
from ..spice.backend import SpiceBackend
from ..spice.runner import RunOptions
from .classify import RunFolder, classify, load_task_frames, model_label
from .configs.classify import ClassifyConfig
from .configs.common import ReadOptions
from .configs.energy import EnergyConfig, parse_constants
from .configs.zeroshot import ZeroshotConfig
from .zeroshot import headline_selection

__all__ = [
    "EMBEDDED_DATA", "ActivitySource", "EnergyResult", "NewRun", "OpenRun", "activity_table",
    "default_activity_run", "drive_levels", "gather_activity", "is_classify_run",
    "price_energy", "quiescent_share", "read_activity", "spice_crosscheck", "sweep_accuracy",
]

#: Embedded dataset of each encoder kind (the default activity run).
EMBEDDED_DATA = {"image": "digits-events", "audio": "spoken-digits"}


class NewRun(RunFolder, Protocol):
    """A run folder that also saves the configuration it runs
    (:class:`rram_cosim.cosim.cli.runs.RunDir`)."""

    def write_config(self, command: str, config: dict[str, Any]) -> Path: ...

    def finish(self) -> Path: ...


#: Makes the run folder ``root/<name>`` (:meth:`rram_cosim.cosim.cli.runs.RunDir.create`).
OpenRun = Callable[[Path, str], NewRun]


# -- activity --------------------------------------------------------------------------------
@dataclass
class ActivitySource:
    """Activity of one encoder and where it came from (plus what the ADC sweep needs)."""

    activity: ReservoirActivity
    source: str
    run_path: Path | None = None
    lif: LIFParams | None = None


def _mean_activity(items: list[tuple[str, ReservoirActivity]], path: Path
                   ) -> ReservoirActivity:
    """Mean over the records (seeds) of the first record's size; records of another size are
    left out with a warning (a run mixing sizes is unusual enough to say so)."""
    first = items[0][1]
    size = (first.n_in, first.hidden, first.n_steps)
    same = [a for _, a in items if (a.n_in, a.hidden, a.n_steps) == size]
    other = [f"{k} ({a.n_in} in, {a.hidden} hidden, {a.n_steps} steps)" for k, a in items
             if (a.n_in, a.hidden, a.n_steps) != size]
    if other:
        warnings.warn(f"{path}: activity records of another size than {items[0][0]!r} "
                      f"({size[0]} in, {size[1]} hidden, {size[2]} steps) are left out of the "
                      f"mean: {', '.join(other)}.", DomainWarning, stacklevel=3)
    return dataclasses.replace(
        first, n_samples=int(sum(a.n_samples for a in same)),
        active_in_rows=np.mean([a.active_in_rows for a in same], axis=0),
        spikes=np.mean([a.spikes for a in same], axis=0))


def _backend_of(key: str) -> str | None:
    """The backend a record key names (``surrogate/seed0``, ``ideal/image/seed1``), if any."""
    first = key.split("/", 1)[0]
    return first if first in BACKENDS else None


def read_activity(run_path: str | Path, encoders: list[str], backend: str
                  ) -> dict[str, ReservoirActivity]:
    """Activity per encoder from a run's activity.json (format in the module docstring).

    Entries whose name contains an encoder name go to that encoder; with one encoder, every
    entry does. When the entries name their backend (``<backend>/...``), only ``backend``'s
    are used and a run without them is refused; seeds are averaged.

    Raises
    ------
    ConfigError
        No or malformed activity.json (naming the file), or no entry of ``backend`` (naming
        the run folder and the backends it holds).
    """
    check_choice("read_activity", "backend", backend, list(BACKENDS))
    path = Path(run_path) / "activity.json"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: --from needs a classify, zeroshot or demo "
                          "run folder (they save activity.json).")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{path} is not readable JSON ({e}). Re-run the classify, zeroshot "
                          "or demo run that wrote it.") from e
    if isinstance(data, dict) and "n_in" in data:
        data = {"run": data}
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path} holds no activity records: expected one "
                          "ReservoirActivity.to_dict() or a mapping of names to them.")
    out = {}
    for enc in encoders:
        names = [k for k in data if enc in k.split("/") or enc in k]
        if not names and len(encoders) == 1:
            names = list(data)
        if not names:
            continue
        found = sorted({b for k in names if (b := _backend_of(k)) is not None})
        if found:
            names = [k for k in names if _backend_of(k) == backend]
            if not names:
                raise ConfigError(
                    f"The run folder {Path(run_path)} has no {enc} activity of backend "
                    f"{backend!r}; its activity.json holds backend(s) {found}. Pass --backend "
                    f"{found[0]} (or another of those).")
        items = []
        for k in names:
            try:
                items.append((k, en.activity_from_dict(data[k])))
            except ConfigError as e:
                raise ConfigError(f"{path}, entry {k!r}: {e}") from e
        out[enc] = _mean_activity(items, path)
    return out


def _run_config(run_path: Path) -> tuple[str, dict[str, Any]]:
    """The command and configuration a run folder saved (``("", {})`` if unreadable)."""
    try:
        d = json.loads((run_path / "config.json").read_text())
        return str(d.get("command", "")), dict(d.get("config", {}))
    except (OSError, ValueError, AttributeError, TypeError):
        return "", {}


def _zeroshot_lif(run_path: Path, backend: str, ccfg: dict[str, Any]) -> LIFParams | None:
    """The LIF point a zeroshot run chose for ``backend`` under its headline selection (the
    one its activity.json records); both encoders share its levels, so one LIFParams."""
    chosen_path = run_path / "chosen.csv"
    if not chosen_path.is_file():
        return None
    try:
        zcfg = from_dict(ZeroshotConfig, {k: tuple(v) if isinstance(v, list) else v
                                          for k, v in ccfg.items()})
    except (ConfigError, TypeError):
        return None
    ch = pd.read_csv(chosen_path)
    rows = ch[(ch["model"] == model_label(backend))
              & (ch["selection"] == headline_selection(zcfg))]
    if rows.empty or "rec_level" not in rows:
        return None
    # seeds may choose different points; their activity is averaged, so are the levels
    return LIFParams(hidden=zcfg.hidden, decay=zcfg.decay_image,
                     v_th=float(rows["v_th"].mean()), in_level=LIFParams().in_level,
                     rec_level=float(rows["rec_level"].mean()))


def _chosen_lif(run_path: Path, backend: str, cfg: EnergyConfig) -> LIFParams | None:
    """The hyperparameters a classify run chose on validation for ``backend``, or the LIF
    point of a zeroshot run (:func:`_zeroshot_lif`); None when the folder does not say."""
    command, ccfg = _run_config(run_path)
    if command == "zeroshot":
        return _zeroshot_lif(run_path, backend, ccfg)
    acc_path = run_path / "accuracy.csv"
    if not acc_path.is_file():
        return None
    acc = pd.read_csv(acc_path)
    rows = acc[acc["model"] == model_label(backend)]
    if rows.empty or "v_th" not in rows:
        return None
    r = rows.iloc[0]
    hidden = ccfg.get("hidden", cfg.hidden)
    return LIFParams(hidden=int(hidden), decay=float(r["decay"]), v_th=float(r["v_th"]),
                     in_level=float(r["in_level"]), rec_level=float(r["rec_level"]))


def default_activity_run(cfg: EnergyConfig, enc: str, size: en.NetworkSize, root: Path,
                         progress: bool, open_run: OpenRun) -> ActivitySource:
    """A small surrogate-backed classify run on the embedded data of ``enc`` at the
    preset's input and time sizes, in the folder ``open_run(root, enc)`` (its configuration,
    tables, activity and surrogate); its activity, folder and chosen hyperparameters."""
    ccfg = ClassifyConfig(
        name=enc, dataset=EMBEDDED_DATA[enc], backends=("surrogate",), seeds=1, seed=cfg.seed,
        n_train=cfg.n_train, n_val=cfg.n_val, n_test=cfg.n_test, n_steps=size.n_steps,
        hidden=cfg.hidden, v_th=(cfg.v_th,), rec_level=(cfg.rec_level,),
        tile_rows=cfg.sim_tile_rows, tile_cols=cfg.sim_tile_cols, cal_maps=2, cal_vectors=16,
        readout_epochs=cfg.readout_epochs, adc_range=cfg.adc_range, r_wire_ohm=cfg.r_wire_ohm,
        linearise=cfg.linearise, **{f.name: getattr(cfg, f.name) for f in fields(ReadOptions)})
    sub = open_run(root, enc)
    sub.write_config("classify", asdict(ccfg))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DomainWarning)
        classify(ccfg, sub, progress=progress)
    sub.finish()
    path = sub.path
    act = read_activity(path, [enc], "surrogate")[enc]
    return ActivitySource(act, f"default classify run on {EMBEDDED_DATA[enc]} "
                          f"({path.name}/, surrogate backend)", path,
                          _chosen_lif(path, "surrogate", cfg))


def _check_kind(enc: str, act: ReservoirActivity, net: en.Network, network: str) -> None:
    """Refuse activity whose input and time sizes are another preset encoder's, not this one's
    (an audio run given to ``--network nmnist``); other sizes are rescaled."""
    own = dict(net.encoders)[enc]
    shape = (act.n_in, act.n_steps)
    if shape == (own.n_in, own.n_steps):
        return
    for name, preset in en.PRESETS.items():
        for other, size in preset.encoders:
            if other != enc and shape == (size.n_in, size.n_steps):
                raise ConfigError(
                    f"The run's activity ({act.n_in} inputs, {act.n_steps} steps) is the "
                    f"{other} encoder's of --network {name}, but --network {network} needs "
                    f"{enc} activity ({own.n_in} inputs, {own.n_steps} steps). Pass "
                    f"--network {name}, or a run of the {enc} data.")


def gather_activity(cfg: EnergyConfig, net: en.Network, root: Path, progress: bool,
                    open_run: OpenRun) -> dict[str, ActivitySource]:
    """Activity per encoder of ``net``: from ``cfg.from_run``, else a default classify run
    per encoder with embedded data (folders under ``root``, made by ``open_run``), else the
    preset rates."""
    out: dict[str, ActivitySource] = {}
    encs = [e for e, _ in net.encoders]
    if cfg.from_run:
        src = Path(cfg.from_run)
        found = read_activity(src, encs, cfg.backend)
        lif = _chosen_lif(src, cfg.backend, cfg)
        for enc, act in found.items():
            _check_kind(enc, act, net, cfg.network)
            out[enc] = ActivitySource(act, f"--from {src}", src, lif)
    for enc, size in net.encoders:
        if enc in out:
            continue
        if cfg.from_run or enc not in EMBEDDED_DATA:
            a = en.preset_activity(size, enc)
            out[enc] = ActivitySource(a, "preset rates (no measured activity for this "
                                      "encoder): " + str(en.PRESET_RATES.get(enc)))
        else:
            out[enc] = default_activity_run(cfg, enc, size, root, progress, open_run)
    return out


# -- ngspice measurement and cross-check -----------------------------------------------------
def spice_crosscheck(spec: TileSpec, density: float, n_vectors: int, seed: int,
                     run_dir: Path | None = None) -> tuple[pd.DataFrame, en.MeasuredRead]:
    """Run a formed tile in ngspice at the given input density; compare the physical model
    (:func:`rram_cosim.analysis.energy.vmm_read_energy`) with the deck's supply energy.

    Returns the per-component table (mean J per VMM, relative error) and the measured read
    power per row and column.
    """
    rng = np.random.default_rng([seed, 4242])
    gp, gn = differential_pair((spec.rows, spec.cols), rng, DeviceParams())
    dens = np.clip(np.linspace(max(density, 1.0 / spec.rows), 1.0, n_vectors), 0, 1)
    x = (rng.random((n_vectors, spec.rows)) < dens[:, None]).astype(np.float64)
    x[np.arange(n_vectors), rng.integers(0, spec.rows, n_vectors)] = 1.0  # no empty vector
    opts = RunOptions(run_dir=run_dir) if run_dir is not None else RunOptions()
    bound = SpiceBackend(spec, opts, n_workers=1, cache=False).bind(gp, gn)
    bound.apply(x)
    sol = bound.last_solution
    if sol is None:
        raise ConfigError("The SPICE backend kept no solution of the cross-check tile "
                          f"({spec.rows}x{spec.cols}), so its supply energy cannot be read. "
                          "Use --array-source conductance to skip the cross-check.")
    e = sol.energy
    model = en.vmm_read_energy(spec, gp, gn, x)
    rows = []
    for comp, meas, mod in (
        ("array (DAC-delivered)", e.dac_j, model["array_j"]),
        ("TIA quiescent", e.tia_quiescent_j, model["tia_quiescent_j"]),
        ("TIA output stage", e.tia_output_j, model["tia_output_j"]),
        ("array + TIA output (dynamic)", e.dac_j + e.tia_output_j,
         model["array_j"] + model["tia_output_j"]),
        ("array + TIA (total)", e.total_j, model["total_j"]),
    ):
        rel = (mod - meas) / meas
        rows.append({"component": comp, "ngspice_j": float(meas.mean()),
                     "model_j": float(mod.mean()),
                     "max_abs_rel_err_pct": float(np.abs(rel).max() * 100)})
    measured = en.measured_read(e.dac_j, sol.i_col_ua.sum(axis=1) * 1e-6, x, 2 * spec.cols,
                                spec.t_read_s)
    return pd.DataFrame(rows), measured


def quiescent_share(crosscheck: pd.DataFrame) -> float:
    """Fraction of the measured total supply energy the TIAs' quiescent current draws: near 1
    the total check would pass on the quiescent term alone."""
    cc = crosscheck.set_index("component")["ngspice_j"]
    return float(cc["TIA quiescent"] / cc["array + TIA (total)"])


def drive_levels(src: ActivitySource, cfg: EnergyConfig) -> tuple[float, float]:
    """(in_level, rec_level) of one encoder: its own run's chosen LIF, else full input drive
    and ``cfg.rec_level``."""
    if src.lif is not None:
        return src.lif.in_level, src.lif.rec_level
    return 1.0, cfg.rec_level


# -- ADC sweep accuracy ----------------------------------------------------------------------
def replay_split(ccfg: dict[str, Any]) -> dict[str, Any]:
    """The split options of a recorded classify configuration, as that run split its data: a
    run recorded before the split rule was an option split a user's data by sample (file),
    so it replays by sample and reaches the test set its activity was measured on."""
    return {"split_by": ccfg.get("split_by", "sample"),
            "group_field": ccfg.get("group_field", 1)}


def sweep_accuracy(src: ActivitySource, enc: str, bits: tuple[int, ...], cfg: EnergyConfig
                   ) -> pd.DataFrame:
    """Validation and test accuracy of the activity run's network at each ADC resolution.

    The run's fitted surrogate is reused with only the ADC resolution changed (R_f, and so
    every column current, does not depend on it); same map, data, hyperparameters and seeds.
    A run with ``--linearise workload`` is linearised for its drive again, profiled at the
    chosen hyperparameters (classify profiles at the grid's most active point).
    """
    if src.run_path is None:
        raise ConfigError(f"The ADC-sweep accuracy needs a classify run folder with its "
                          f"surrogate; the {enc} activity came from {src.source}. Pass "
                          "--no-sweep-accuracy, or --from a classify run.")
    sur = TileSurrogate.load(src.run_path / "surrogate.json")
    ccfg = json.loads((src.run_path / "config.json").read_text())["config"]
    n_steps = src.activity.n_steps
    _, frames, labels, _, _ = load_task_frames(
        ccfg["dataset"], ccfg["data_seed"], (ccfg["n_train"], ccfg["n_val"], ccfg["n_test"]),
        n_steps, ccfg["crop"], **replay_split(ccfg))
    n_classes = int(max(v.max() for v in labels.values()) + 1)
    n_in, h = frames["train"].shape[2], int(ccfg["hidden"])
    lif = src.lif or cfg.lif()
    seed = int(ccfg["seed"])
    gp, gn = differential_pair((n_in + h, h), np.random.default_rng(seed), DeviceParams())
    rows = []
    for b in bits:
        s_b = sur.with_adc(AdcSpec(bits=int(b), v_full_scale_v=sur.spec.adc.v_full_scale_v))
        be = TiledBackend(s_b, int(ccfg["tile_rows"]) or sur.spec.rows,
                          int(ccfg["tile_cols"]) or sur.spec.cols)
        if ccfg.get("linearise", "tangent") == "workload":
            tile = bind_for_workload(be, gp, gn, frames["train"][:200], lif,
                                     np.random.default_rng([seed, 5]))
        else:
            tile = be.bind(gp, gn)
        r = np.random.default_rng([seed, 1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DomainWarning)
            feats = {s: run_reservoir(tile, frames[s], lif, r,
                                      n_windows=int(ccfg["n_windows"]))[0] for s in frames}
        clf = SoftmaxReadout(epochs=int(ccfg["readout_epochs"]),
                             solver=ccfg.get("readout_solver", "adam")).fit(
            feats["train"], labels["train"], rng=r, n_classes=n_classes)
        rows.append({"bits": int(b), "encoder": enc, "val_acc": clf.score(feats["val"],
                                                                         labels["val"]),
                     "test_acc": clf.score(feats["test"], labels["test"]),
                     "spikes_per_neuron": float(feats["test"].mean())})
    return pd.DataFrame(rows)


def is_classify_run(path: Path | None) -> bool:
    """A classify run folder with its fitted surrogate: what the ADC sweep's accuracy needs."""
    if path is None or not (path / "surrogate.json").is_file():
        return False
    try:
        return json.loads((path / "config.json").read_text()).get("command") == "classify"
    except (OSError, ValueError):
        return False


def activity_table(sources: dict[str, ActivitySource],
                   used: dict[str, ReservoirActivity] | None = None) -> pd.DataFrame:
    """Per encoder: the activity priced (rescaled to the preset's sizes where needed), its
    rates, the measured sizes and the source."""
    rows = []
    for enc, s in sources.items():
        m = s.activity
        a = (used or {}).get(enc, m)
        rows.append({"encoder": enc, "n_in": a.n_in, "hidden": a.hidden, "n_steps": a.n_steps,
                     "samples": m.n_samples,
                     "active_inputs_per_step": float(np.mean(a.active_in_rows)),
                     "input_fraction": float(np.mean(a.active_in_rows)) / a.n_in,
                     "spikes_per_step": float(np.mean(a.spikes)),
                     "spikes_per_neuron_per_inference": float(np.sum(a.spikes)) / a.hidden,
                     "measured_size": f"{m.n_in} in, {m.hidden} hidden, {m.n_steps} steps",
                     "source": s.source})
    return pd.DataFrame(rows)


# -- the whole accounting --------------------------------------------------------------------
@dataclass
class EnergyResult:
    """What :func:`price_energy` computed."""

    sources: dict[str, ActivitySource]  # per encoder: the activity and where it came from
    levels: dict[str, tuple[float, float]]  # per encoder: (in_level, rec_level) priced
    crosscheck: pd.DataFrame | None  # ngspice against the model (array_source ngspice)
    measured: en.MeasuredRead | None  # the read power ngspice measured
    report: en.EnergyReport
    sweep: pd.DataFrame  # the ADC sweep (with accuracy where measured)
    training: pd.DataFrame  # training cost
    training_notes: list[str]
    activity: pd.DataFrame  # the activity priced (activity_table)


def price_energy(cfg: EnergyConfig, activity_root: Path, open_run: OpenRun, *,
                 progress: bool = True) -> EnergyResult:
    """Gather the activity (default runs under ``activity_root``), cross-check the array in
    ngspice, price an inference in both modes, sweep the ADC resolution and count the
    training cost."""
    c = en.EnergyConstants.from_overrides(parse_constants(cfg.constants))
    net = en.PRESETS[cfg.network]
    sources = gather_activity(cfg, net, activity_root, progress, open_run)
    acts = {enc: s.activity for enc, s in sources.items()}

    # levels each encoder drives its rows at (its own run's chosen ones where known)
    levels = {enc: drive_levels(s, cfg) for enc, s in sources.items()}

    crosscheck, measured = None, None
    if cfg.array_source == "ngspice":
        a0 = acts[net.encoders[0][0]]
        density = float(np.mean(a0.active_in_rows) + np.mean(a0.spikes)) / (a0.n_in + a0.hidden)
        # the periphery priced below, so the total is not dominated by board quiescent power
        # one read of a small tile: the per-row and per-column constants it measures are
        # those of a read, which the accounting multiplies by the read scheme's counts
        board = TileSpec(rows=cfg.spice_rows, cols=cfg.spice_cols, r_wire_ohm=cfg.r_wire_ohm,
                         read=ReadScheme.whole_map(), **cfg.wires())
        tile = en.integrated_spec(board, c) if cfg.periphery == "integrated" else board
        crosscheck, measured = spice_crosscheck(tile, density, cfg.spice_vectors, cfg.seed)

    spec = None
    if cfg.energy_tile_rows:
        spec = TileSpec(rows=cfg.energy_tile_rows, cols=cfg.energy_tile_cols,
                        read=cfg.read_scheme())
    kw = {"spec": spec, "c": c, "measured": measured, "levels": levels,
          "periphery": cfg.periphery, "read": cfg.read_scheme()}
    rep = en.energy_report(net, acts, **kw)
    sweep = en.adc_sweep(net, cfg.adc_bits, acts, **kw)
    if cfg.sweep_accuracy:
        enc0 = next((e for e, s in sources.items() if is_classify_run(s.run_path)), None)
        if enc0 is not None:
            sweep = sweep.merge(sweep_accuracy(sources[enc0], enc0, cfg.adc_bits, cfg),
                                on="bits", how="left")
    train = tc.training_table()
    return EnergyResult(sources=sources, levels=levels, crosscheck=crosscheck,
                        measured=measured, report=rep, sweep=sweep, training=train,
                        training_notes=tc.differences(train),
                        activity=activity_table(sources, rep.activities))
