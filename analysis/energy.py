"""Energy per inference: the paper's dense accounting and a physical, activity-driven one.

``paper`` mode reproduces the paper's digital figure as far as it can be reconstructed: dense
operation counts (2 ops a MAC) at one per-operation constant, 0.4808 pJ/op, the constant of the
same group's earlier open data (300 W / 624 Tops/s). For N-MNIST: (256x200 + 200x200) MACs x 50
steps x 2 x 0.4808 pJ = 4.38 uJ, the paper's 4.4 uJ.

``physical`` mode counts what a run measured (active input rows and spikes per step) and prices
each component with the constants in :class:`EnergyConstants`, each with its source. Both modes
are always reported side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from ..models.checks import check_range
from ..models.lsm import ReservoirActivity
from ..models.params import TileSpec

# Sources: [H14] M. Horowitz, ISSCC 2014 "Computing's energy problem", 45 nm, 0.9 V.
# [W99] R. Walden, IEEE JSAC 1999, figure of merit E = FOM * 2^bits per conversion;
# [M24] B. Murmann, ADC performance survey 1997-2024: SAR ADCs at 28-65 nm reach 1-10 fJ/step.
# [ESGNN] Nat. Mach. Intell. 2023 open data: 300 W / 624 Tops/s = 0.4808 pJ/op.
SOURCES = {
    "pj_per_op_paper": "[ESGNN] 300 W / 624 Tops/s (GPU-class rating), as the paper's figures",
    "e_int_add_j": "[H14] 32-bit integer add, 45 nm",
    "e_int_mult_j": "[H14] 32-bit integer multiply, 45 nm",
    "e_fp_mac_j": "[H14] 32-bit float multiply 3.7 pJ + add 0.9 pJ, 45 nm",
    "e_sram_read_32b_j": "[H14] 32-bit read from an 8 KB SRAM, 45 nm",
    "e_row_driver_j": "assumption: on-chip 1-bit row driver charging a 512-cell row line",
    "tia_power_w": "assumption: on-chip TIA at ~10 uA from 1.1 V (not the board's OPA4322)",
    "adc_fom_j_per_step": "[W99]/[M24] Walden FOM of a good 40 nm SAR ADC (assumption: 5 fJ)",
}


@dataclass(frozen=True)
class EnergyConstants:
    """Technology constants (J, W); each has an entry in :data:`SOURCES`."""

    pj_per_op_paper: float = 0.4808
    e_int_add_j: float = 0.1e-12
    e_int_mult_j: float = 3.1e-12
    e_fp_mac_j: float = 4.6e-12
    e_sram_read_32b_j: float = 5.0e-12
    e_row_driver_j: float = 10e-15
    tia_power_w: float = 11e-6
    adc_fom_j_per_step: float = 5e-15

    def __post_init__(self) -> None:
        for f in fields(self):
            check_range("EnergyConstants", f.name, getattr(self, f.name), 0, 1.0)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"constant": f.name, "value": getattr(self, f.name),
                              "source": SOURCES[f.name]} for f in fields(self)])


@dataclass(frozen=True)
class NetworkSize:
    """Sizes of an LSM + readout network, per inference."""

    n_in: int
    hidden: int
    n_steps: int
    n_out: int


def paper_energy(net: NetworkSize, c: EnergyConstants = EnergyConstants()) -> pd.DataFrame:
    """Digital dense energy per inference at the paper's single per-op constant."""
    e_op = c.pj_per_op_paper * 1e-12
    rows = [
        ("reservoir MACs (dense)", (net.n_in * net.hidden + net.hidden**2) * net.n_steps * 2),
        ("readout MACs", net.hidden * net.n_out * 2),
    ]
    return pd.DataFrame([{"system": "digital (paper mode)", "component": name, "count": ops,
                          "energy_j": ops * e_op} for name, ops in rows])


def physical_energy(activity: ReservoirActivity, spec: TileSpec, g_row_sum_s: float,
                    n_out: int, c: EnergyConstants = EnergyConstants(), *,
                    in_level: float = 1.0, rec_level: float = 1.0) -> pd.DataFrame:
    """Per-component energy per inference of the hybrid and the fully digital system.

    Parameters
    ----------
    activity : ReservoirActivity
        Mean active input rows and spikes per step, measured in a run.
    g_row_sum_s : float
        Mean total conductance of one row over both columns of every pair (S); the array draws
        ``v^2 * g_row_sum_s`` per driven row during a read.
    """
    h, t = activity.hidden, activity.n_steps
    n_in_act = float(activity.active_in_rows.sum())
    # spikes at the last step drive no further read
    n_rec_act = float(activity.spikes[:-1].sum())
    v = spec.v_read_v
    n_phys_cols = 2 * h
    e_adc = c.adc_fom_j_per_step * 2**spec.adc.bits
    hybrid = [
        ("row drivers (DAC)", n_in_act + n_rec_act, c.e_row_driver_j),
        ("array (I.V over t_read)",
         1.0, spec.t_read_s * g_row_sum_s * v**2 * (n_in_act * in_level**2
                                                    + n_rec_act * rec_level**2)),
        ("TIA", n_phys_cols * t, c.tia_power_w * spec.t_read_s),
        ("ADC conversions", n_phys_cols * t, e_adc),
        ("column subtract (G+ - G-)", h * t, c.e_int_add_j),
        ("LIF updates", h * t, c.e_int_mult_j + 2 * c.e_int_add_j),
        ("spike counters", float(activity.spikes.sum()), c.e_int_add_j),
        ("readout MACs", h * n_out, c.e_fp_mac_j),
    ]
    w_reads = (activity.n_in + h) * h
    digital = [
        ("reservoir MACs (event-driven)", (n_in_act + n_rec_act) * h, c.e_int_add_j),
        ("weight memory reads", (n_in_act + n_rec_act) * h, c.e_sram_read_32b_j),
        ("LIF updates", h * t, c.e_int_mult_j + 2 * c.e_int_add_j),
        ("spike counters", float(activity.spikes.sum()), c.e_int_add_j),
        ("readout MACs", h * n_out, c.e_fp_mac_j),
    ]
    out = [{"system": "hybrid (physical)", "component": n, "count": k, "energy_j": k * e}
           for n, k, e in hybrid]
    out += [{"system": "digital (physical)", "component": n, "count": k, "energy_j": k * e}
            for n, k, e in digital]
    df = pd.DataFrame(out)
    df.attrs["weights_stored"] = w_reads
    return df


def summarise(*frames: pd.DataFrame) -> pd.DataFrame:
    """Total energy per system (uJ) and the ratio to the hybrid system."""
    df = pd.concat(frames, ignore_index=True)
    tot = df.groupby("system", sort=False)["energy_j"].sum().rename("energy_uj") * 1e6
    res = tot.reset_index()
    hyb = res.loc[res["system"].str.startswith("hybrid"), "energy_uj"]
    if len(hyb):
        res["x_vs_hybrid"] = res["energy_uj"] / float(hyb.iloc[0])
    return res


def mean_row_conductance_s(g_pos_us: np.ndarray, g_neg_us: np.ndarray) -> float:
    """Mean over rows of the row's total conductance (both columns of each pair), in S."""
    return float((np.asarray(g_pos_us) + np.asarray(g_neg_us)).sum(axis=1).mean() * 1e-6)
