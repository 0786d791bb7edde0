import numpy as np
import pytest
from rram_cosim.analysis import energy as en
from rram_cosim.models.lsm import ReservoirActivity
from rram_cosim.models.params import TileSpec


def test_paper_mode_reproduces_the_papers_digital_nmnist_figure():
    df = en.paper_energy(en.NetworkSize(n_in=256, hidden=200, n_steps=50, n_out=10))
    reservoir = df.loc[df.component.str.startswith("reservoir"), "energy_j"].sum()
    assert reservoir * 1e6 == pytest.approx(4.38, abs=0.005)  # paper: 4.4 uJ


def test_physical_mode_scales_with_measured_activity():
    spec = TileSpec(rows=456, cols=200)
    quiet = ReservoirActivity(256, 200, 50, 1, np.full(50, 10.0), np.full(50, 5.0))
    busy = ReservoirActivity(256, 200, 50, 1, np.full(50, 20.0), np.full(50, 10.0))
    e1 = en.physical_energy(quiet, spec, 1e-3, 10)
    e2 = en.physical_energy(busy, spec, 1e-3, 10)
    arr = lambda e: e.loc[e.component.str.startswith("array"), "energy_j"].item()
    assert arr(e2) == pytest.approx(2 * arr(e1))
    # array energy = t_read * G_row * V^2 per driven row
    assert arr(e1) == pytest.approx(spec.t_read_s * 1e-3 * 0.2**2 * (500 + 5 * 49))
    s = en.summarise(e1)
    assert set(s.system) == {"hybrid (physical)", "digital (physical)"}
    assert (s.energy_uj > 0).all()
    assert set(en.EnergyConstants().table().source.str.len() > 5) == {True}
