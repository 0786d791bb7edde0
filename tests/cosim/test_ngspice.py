"""run_deck on real ngspice, batch and shared mode: analytic circuits and every failure kind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from rram_cosim.cosim.spice.checks import Analysis, check_points, floating_nodes
from rram_cosim.cosim.spice.errors import (
    ConvergenceError,
    DeckParseError,
    NgspiceNotFoundError,
    NgspiceVersionError,
    SimulationError,
    SimulationTimeoutError,
    SingularMatrixError,
)
from rram_cosim.cosim.spice.runner import (
    RETRY_REMEDIES,
    RunOptions,
    ngspice_version,
    parse_ngspice_version,
    run_deck,
    shared_library_version,
    with_options,
)
from rram_cosim.models.errors import ConfigError
from rram_cosim.netlists.deck import Deck

pytestmark = pytest.mark.skipif(shutil.which("ngspice") is None, reason="needs ngspice")
MODES = ["batch", "shared"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RRAM_COSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def opts(mode: str, tmp_path: Path, **kw) -> RunOptions:
    return RunOptions(mode=mode, run_dir=tmp_path / "runs", **kw)


# --------------------------------------------------------------------------- analytic circuits

def crossbar(g_us: np.ndarray, v_rows: np.ndarray, r_wire: float) -> tuple[str, dict]:
    """A resistive crossbar deck and its nodal solution (numpy), same node names.

    Row i: source vr{i} holds a{i} at v_rows[i]; a{i} -Rw- r{i}_0 -Rw- ... r{i}_{C-1}.
    Column j: c0_j -Rw- c1_j ... c{R-1}_j -Rw- t{j}; vcol{j} holds t{j} at 0 V.
    Cell (i, j): 1e6/g ohm between r{i}_{j} and c{i}_{j}.
    """
    n_r, n_c = g_us.shape
    lines = ["crossbar"]
    lines += [f"vr{i} a{i} 0 {v_rows[i]:.17g}" for i in range(n_r)]
    lines += [f"vcol{j} t{j} 0 0" for j in range(n_c)]
    k = 0
    for i in range(n_r):
        chain = [f"a{i}"] + [f"r{i}_{j}" for j in range(n_c)]
        for a, b in pairwise(chain):
            lines.append(f"rw{k} {a} {b} {r_wire:.17g}")
            k += 1
    for j in range(n_c):
        chain = [f"c{i}_{j}" for i in range(n_r)] + [f"t{j}"]
        for a, b in pairwise(chain):
            lines.append(f"rw{k} {a} {b} {r_wire:.17g}")
            k += 1
    for i in range(n_r):
        for j in range(n_c):
            lines.append(f"rc{i}_{j} r{i}_{j} c{i}_{j} {1e6 / g_us[i, j]:.17g}")
    lines += [".op", ".end"]

    unknown = [f"r{i}_{j}" for i in range(n_r) for j in range(n_c)] + \
        [f"c{i}_{j}" for i in range(n_r) for j in range(n_c)]
    idx = {n: k for k, n in enumerate(unknown)}
    fixed = {f"a{i}": v_rows[i] for i in range(n_r)} | {f"t{j}": 0.0 for j in range(n_c)}
    G = np.zeros((len(unknown), len(unknown)))
    rhs = np.zeros(len(unknown))
    branches = []
    for ln in lines[1:]:
        if ln.startswith("r"):
            _, a, b, r = ln.split()
            branches.append((a, b, 1.0 / float(r)))
    for a, b, g in branches:
        for p, q in ((a, b), (b, a)):
            if p in idx:
                G[idx[p], idx[p]] += g
                if q in idx:
                    G[idx[p], idx[q]] -= g
                else:
                    rhs[idx[p]] += g * fixed[q]
    v = dict(zip(unknown, np.linalg.solve(G, rhs))) | fixed
    expected = {f"v({n})": v[n] for n in unknown}
    for j in range(n_c):  # current into the + node of vcol{j}: the column current
        expected[f"i(vcol{j})"] = (v[f"c{n_r - 1}_{j}"] - 0.0) / r_wire
    for i in range(n_r):  # a source delivering current has a negative branch current
        expected[f"i(vr{i})"] = -(v_rows[i] - v[f"r{i}_0"]) / r_wire
    return "\n".join(lines) + "\n", expected


@pytest.mark.parametrize("mode", MODES)
def test_divider_matches_analytic(mode, tmp_path):
    deck = Deck("divider\nvdd in 0 1.2\nr1 in o3 1k\nr2 o3 0 3k\n.op\n.end\n")
    res = run_deck(deck, opts(mode, tmp_path))
    assert set(res.vectors) == {"v(in)", "v(o3)", "i(vdd)"}
    assert res.vectors["v(o3)"][0] == pytest.approx(1.2 * 3 / 4, rel=1e-9)
    assert res.vectors["i(vdd)"][0] == pytest.approx(-1.2 / 4e3, rel=1e-9)
    assert res.deck_sha256 == deck.sha256 and res.mode == mode and res.remedy is None
    assert res.run_dir is None  # keep="failed": the run folder is removed on success
    assert not list((tmp_path / "runs").glob("*/deck.cir"))
    assert "Circuit: divider" in res.log and res.wall_time_s > 0


@pytest.mark.parametrize("mode", MODES)
def test_crossbar_4x4_matches_nodal_solution(mode, tmp_path):
    rng = np.random.default_rng(7)
    g = rng.uniform(5.0, 100.0, size=(4, 4))  # uS
    v = rng.uniform(0.05, 0.2, size=4)
    text, expected = crossbar(g, v, r_wire=2.5)
    res = run_deck(Deck(text), opts(mode, tmp_path))
    assert set(expected) <= set(res.vectors)
    for name, value in expected.items():
        assert res.vectors[name][0] == pytest.approx(value, rel=1e-6), name
    # Sanity of the reference itself: column currents are close to the ideal G.V product.
    ideal = v @ (g * 1e-6)
    got = np.array([res.vectors[f"i(vcol{j})"][0] for j in range(4)])
    assert np.all(np.abs(got - ideal) / ideal < 0.05) and np.all(got < ideal)


def test_modes_name_and_value_vectors_identically(tmp_path):
    text = """naming
I1 0 1 1m
R1 1 n_a 1k
R2 n_a 0 2k
B1 bo 0 V=v(n_a)*2
Rb bo 0 1k
E1 eo 0 n_a 0 3
Re eo 0 1k
L1 n_a lx 1u
Rl lx 0 10k
VDD vd 0 1
Rd vd 0 1k
.save all @r1[i]
.dc I1 0 1m 0.25m
.tran 1u 20u
.end
"""
    deck = Deck(text, analysis="tran")
    b = run_deck(deck, opts("batch", tmp_path))
    s = run_deck(deck, opts("shared", tmp_path))
    assert [p.plotname for p in b.plots] == [p.plotname for p in s.plots] == [
        "DC transfer characteristic", "Transient Analysis"]
    for pb, ps in zip(b.plots, s.plots):
        assert pb.names == ps.names and pb.types == ps.types and pb.title == ps.title
        for name in pb.names:
            np.testing.assert_allclose(ps.vectors[name], pb.vectors[name], rtol=1e-12,
                                       atol=1e-18)
    assert {"time", "v(1)", "v(n_a)", "i(vdd)", "i(b1)", "i(l1)", "i(e1)", "i(@r1[i])"} <= \
        set(b.vectors)
    assert "i(i-sweep)" in b.plots[0].names
    assert b.vectors["i(vdd)"][0] == pytest.approx(-1e-3, rel=1e-9)


# --------------------------------------------------------------------------- failures

def test_missing_executable(tmp_path):
    deck = Deck("d\nv1 a 0 1\nr1 a 0 1k\n.op\n.end\n")
    with pytest.raises(NgspiceNotFoundError) as info:
        run_deck(deck, opts("batch", tmp_path, executable="ngspice-not-installed-xyz"))
    msg = str(info.value)
    assert "'ngspice-not-installed-xyz' was not found" in msg and "apt-get install" in msg
    assert info.value.deck_path.is_file() and isinstance(info.value, FileNotFoundError)


def test_empty_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(NgspiceNotFoundError, match="PATH=''"):
        run_deck(Deck("d\nv1 a 0 1\nr1 a 0 1k\n.op\n.end\n"), opts("batch", tmp_path))


def test_version_is_read_and_checked():
    major, minor = ngspice_version("ngspice")
    assert major >= 39 and minor >= 0
    with pytest.raises(NgspiceVersionError, match=f"is ngspice {major}.{minor}; .*999"):
        ngspice_version("ngspice", minimum=(999, 0))
    assert parse_ngspice_version("** ngspice-39 : Circuit level simulation") == (39, 0)
    assert parse_ngspice_version("******\n** ngspice-42.1 : Circuit") == (42, 1)
    assert parse_ngspice_version("no banner") is None


def test_shared_library_version_and_path(tmp_path):
    assert shared_library_version() == ngspice_version("ngspice")
    # NGSPICE_LIBRARY_PATH chooses the library file (a fresh process: one library a process).
    code = ("from rram_cosim.cosim.spice.runner import *; from rram_cosim.netlists.deck import "
            "Deck; run_deck(Deck('d\\nv1 a 0 1\\nr1 a 0 1\\n.op\\n.end\\n'), "
            "RunOptions(mode='shared', keep='never'))")
    env = dict(os.environ, NGSPICE_LIBRARY_PATH=str(tmp_path / "libngspice-missing.so"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 1
    assert "NgspiceNotFoundError: libngspice could not be loaded from" in out.stderr
    assert "libngspice-missing.so" in out.stderr


FLOATING_CAP = """floating cap node
V1 in 0 1
R1 in a 1k
C1 a b 1p
C2 b b2 1p
R2 b2 0 1k
.op
.end
"""
FLOATING_ISRC = """node fed only by a current source
V1 in 0 1
R1 in 0 1k
I1 0 x 1m
.op
.end
"""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text, node", [(FLOATING_CAP, "b"), (FLOATING_ISRC, "x")])
def test_floating_node_is_a_singular_matrix_and_not_retried(mode, text, node, tmp_path):
    with pytest.raises(SingularMatrixError) as info:
        run_deck(Deck(text), opts(mode, tmp_path))
    e = info.value
    assert f": {node}." in str(e) or f"Node(s) {node} " in str(e)
    assert "not retried" in str(e)
    folder = e.deck_path.parent
    assert e.deck_path.read_text() == text
    assert not list(folder.glob("deck.*.cir"))  # no retry decks
    if mode == "batch":
        assert e.returncode == 0  # ngspice itself reports success
    if text is FLOATING_CAP:
        assert "singular matrix" in e.output_tail


@pytest.mark.parametrize("mode", MODES)
def test_parse_error(mode, tmp_path):
    text = "unknown model\nV1 in 0 1\nM1 in in 0 0 nofet W=1u L=1u\n.op\n.end\n"
    with pytest.raises(DeckParseError) as info:
        run_deck(Deck(text), opts(mode, tmp_path))
    assert "nofet" in str(info.value) and info.value.deck_path.is_file()
    assert "could not find a valid modelname" in info.value.output_tail


@pytest.mark.parametrize("mode", MODES)
def test_fatal_parse_error_then_a_good_deck(mode, tmp_path):
    """An undefined parameter is fatal to libngspice; shared mode must reload it."""
    bad = "bad param\nV1 in 0 1\nR1 in 0 {x}\n.op\n.end\n"
    with pytest.raises(DeckParseError, match="Undefined parameter"):
        run_deck(Deck(bad), opts(mode, tmp_path))
    good = run_deck(Deck("good\nV1 in 0 2\nR1 in o 1k\nR2 o 0 1k\n.op\n.end\n"),
                    opts(mode, tmp_path))
    assert good.vectors["v(o)"][0] == pytest.approx(1.0, rel=1e-12)


NO_SOLUTION = """no solution
V1 in 0 1
R1 in x 1k
B1 x 0 I=v(x) > 0.5 ? 1 : -1
.op
.end
"""
# The jump of the B source (+-2 uA across v(x) = 0.5 V) leaves no exact solution, only a
# 2 mV wide band (0.499..0.501 V) where Newton bounces between the two branches; default
# reltol (1e-3 of 0.5 V = 0.5 mV) rejects that, ngspice's own gmin, source stepping and
# transient-op fail, and only a 1 % reltol accepts it.
SMALL_JUMP = """small jump
V1 in 0 1
R1 in x 1k
B1 x 0 I=v(x)/1k + 2u*(v(x) > 0.5 ? 1 : -1)
.op
.end
"""


@pytest.mark.parametrize("mode", MODES)
def test_no_convergence_even_after_retries(mode, tmp_path):
    with pytest.raises(ConvergenceError) as info:
        run_deck(Deck(NO_SOLUTION), opts(mode, tmp_path))
    msg = str(info.value)
    assert "did not converge" in msg
    for r in RETRY_REMEDIES:
        assert r.name in msg
        assert (info.value.deck_path.parent / f"deck.{r.name}.cir").is_file()
    assert "Timestep too small" in info.value.output_tail
    if mode == "batch":
        assert info.value.returncode == 1


@pytest.mark.parametrize("mode", MODES)
def test_retry_remedy_rescues_a_deck(mode, tmp_path):
    with pytest.raises(ConvergenceError, match="Retries are off"):
        run_deck(Deck(SMALL_JUMP), opts(mode, tmp_path, retry=False))
    res = run_deck(Deck(SMALL_JUMP), opts(mode, tmp_path))
    assert res.remedy == "loose_tolerances"
    assert 0.499 - 1e-6 <= res.vectors["v(x)"][0] <= 0.501 + 1e-6


@pytest.mark.parametrize("mode", MODES)
def test_timeout(mode, tmp_path):
    long = Deck("long\nV1 in 0 sin(0 1 1meg)\nR1 in o 1k\nC1 o 0 1n\n.tran 1n 10m\n.end\n",
                analysis="tran")
    t0 = time.perf_counter()
    with pytest.raises(SimulationTimeoutError) as info:
        run_deck(long, opts(mode, tmp_path, timeout_s=0.5))
    assert 0.5 <= time.perf_counter() - t0 < 3.0
    assert "timeout_s=0.5" in str(info.value) and info.value.deck_path.is_file()
    assert isinstance(info.value, TimeoutError)
    # The backend is usable afterwards (the shared library was halted, not wedged).
    res = run_deck(Deck("after\nV1 a 0 1\nR1 a 0 1k\n.op\n.end\n"), opts(mode, tmp_path))
    assert res.vectors["i(v1)"][0] == pytest.approx(-1e-3)


def test_incomplete_results_are_detected(tmp_path):
    """The point count a .dc line implies is checked against the plot ngspice wrote."""
    res = run_deck(Deck("dc\nV1 a 0 1\nR1 a 0 1k\n.dc V1 0 1 0.1\n.end\n", analysis="dc"),
                   opts("batch", tmp_path))
    assert res.plots[0].n_points == 11
    assert check_points(list(res.plots), [Analysis("dc", ("v1", "0", "1", "0.1"))]) is None
    msg = check_points(list(res.plots), [Analysis("dc", ("v1", "0", "2", "0.1"))])
    assert "holds 11 points" in msg and "implies 21" in msg
    assert "0 'operating point' plots" in check_points(list(res.plots),
                                                         [Analysis("op", ())])


# --------------------------------------------------------------------------- options, folders

def test_keep_policies(tmp_path):
    deck = Deck("k\nV1 a 0 1\nR1 a 0 1k\n.op\n.end\n")
    kept = run_deck(deck, opts("batch", tmp_path, keep="always"))
    folder = Path(kept.run_dir)
    assert {"deck.cir", "out.raw", "ngspice.log"} <= {p.name for p in folder.iterdir()}
    shared = run_deck(deck, opts("shared", tmp_path, keep="always"))
    assert (Path(shared.run_dir) / "deck.cir").read_text() == deck.text
    with pytest.raises(SingularMatrixError) as info:
        run_deck(Deck(FLOATING_ISRC), opts("batch", tmp_path / "never", keep="never"))
    assert info.value.deck_path is None and "keep='never'" in str(info.value)
    assert not list((tmp_path / "never" / "runs").iterdir())


def test_extra_options_and_validation(tmp_path):
    text = "t\nV1 a 0 1\nR1 a 0 1k tc1=0.01\n.op\n.end\n"
    assert with_options(text, ("temp=127",)).endswith(".options temp=127\n.end\n")
    hot = run_deck(Deck(text), opts("batch", tmp_path, extra_options=("temp=127",)))
    # tc1 = 1 %/K over 100 K above tnom: R = 2 kOhm.
    assert hot.vectors["i(v1)"][0] == pytest.approx(-1 / 2000, rel=1e-9)
    with pytest.raises(ConfigError, match="extra_options"):
        RunOptions(extra_options=("reltol = 1",))
    with pytest.raises(ConfigError, match="'mode'"):
        RunOptions(mode="server")
    with pytest.raises(ConfigError, match=r"\.control"):
        run_deck(Deck("c\nV1 a 0 1\nR1 a 0 1\n.control\nop\n.endc\n.end\n"))
    with pytest.raises(ConfigError, match="no analysis"):
        run_deck(Deck("c\nV1 a 0 1\nR1 a 0 1\n.end\n"))


def test_floating_nodes_topology():
    deck = """t
V1 in 0 1
R1 in d 1k
M1 d g 0 0 nmos1 W=1u L=1u
.model nmos1 nmos level=1
C1 d f 1p
G1 h 0 h 0 1m
X1 in xs sub
I1 0 q 1u
B1 bq 0 I=v(in)
+ * 2
.subckt sub p n
R9 p lonely 1k
.ends
.op
.end
"""
    assert floating_nodes(deck) == ["bq", "f", "g", "q"]
    assert floating_nodes(deck.replace("M1 d g", "M1 d in")) == ["bq", "f", "q"]
    controls = """t
V1 in 0 1
E1 out 0 ctl 0 2
E2 nl 0 vol='v(ctl3)'
S1 sw 0 ctl2 0 smod
K1 L1 L2 0.5
L1 in 0 1u
L2 l2a l2b 1u
R9 l2b gnd 1k
.op
.end
"""
    # Inputs of a linear VCVS and a switch's control nodes only attach; K names no nodes.
    assert floating_nodes(controls) == ["ctl", "ctl2"]


def test_simulation_errors_share_one_root():
    for cls in (NgspiceNotFoundError, NgspiceVersionError, DeckParseError, ConvergenceError,
                SingularMatrixError, SimulationTimeoutError):
        assert issubclass(cls, SimulationError)
    assert os.environ["RRAM_COSIM_CACHE"].endswith("cache")
