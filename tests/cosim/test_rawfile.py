"""The raw-file reader against what ngspice itself prints, on real ngspice runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from rram_cosim.cosim.spice.errors import SimulationError
from rram_cosim.cosim.spice.rawfile import RawFileError, normalise_vector_name, parse_raw, read_raw

pytestmark = pytest.mark.skipif(shutil.which("ngspice") is None, reason="needs ngspice")

CIRCUIT = """rc network
V1 in 0 dc 0.5 ac 1
R1 in out 1k
C1 out 0 1u
R2 out 0 3k
"""
ANALYSES = """.op
.dc V1 0 1 0.1
.ac dec 2 10 1k
.tran 20u 1m
"""
CONTROL = """.control
set numdgt=15
op
print all
dc V1 0 1 0.1
print v(out) i(v1)
ac dec 2 10 1k
print v(out) i(v1)
quit
.endc
"""


def _ngspice(folder: Path, name: str, text: str, raw: bool = True,
             env: dict[str, str] | None = None) -> str:
    (folder / f"{name}.cir").write_text(text)
    cmd = ["ngspice", "-b"] + (["-r", f"{name}.raw"] if raw else []) + [f"{name}.cir"]
    out = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=60, check=False,
                         env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _printed(out: str) -> tuple[dict[str, float], list[dict[str, np.ndarray]]]:
    """ngspice's `print` output: the `name = value` lines and every `Index ...` table."""
    scalars = {}
    for m in re.finditer(r"^(\S+) = (\S+)$", out, re.MULTILINE):
        name = m.group(1)
        scalars[normalise_vector_name(name, "current" if "#branch" in name else "voltage")] = \
            float(m.group(2))
    tables = []
    lines = out.splitlines()
    k = 0
    while k < len(lines):
        if lines[k].startswith("Index"):
            cols = lines[k].split()[1:]
            k += 2  # skip the dashed rule
            rows = []
            while k < len(lines) and re.match(r"^\d+\t", lines[k]):
                rows.append(lines[k].replace(",\t", ",").split()[1:])
                k += 1
            table = {}
            for c, name in enumerate(cols):
                cells = [r[c] for r in rows]
                if "," in cells[0]:
                    re_im = np.array([x.split(",") for x in cells], dtype=float)
                    table[name] = re_im[:, 0] + 1j * re_im[:, 1]
                else:
                    table[name] = np.array(cells, dtype=float)
            # ngspice splits wide prints into several tables with the same scale column.
            if tables and cols[0] in tables[-1] and \
                    np.array_equal(tables[-1][cols[0]], table[cols[0]]):
                tables[-1].update(table)
            else:
                tables.append(table)
        k += 1
    return scalars, tables


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("raw")
    _ngspice(folder, "multi", CIRCUIT + ANALYSES + ".end\n")
    printed = _ngspice(folder, "printed", CIRCUIT + CONTROL + ".end\n", raw=False)
    _ngspice(folder, "ascii", CIRCUIT + ANALYSES + ".end\n", env={"SPICE_ASCIIRAWFILE": "1"})
    return {"folder": folder, "plots": read_raw(folder / "multi.raw"),
            "printed": _printed(printed)}


def _plot(plots, name):
    (p,) = [p for p in plots if p.plotname == name]
    return p


def test_several_plots_in_one_file(runs):
    plots = runs["plots"]
    assert sorted(p.plotname for p in plots) == sorted(
        ["Operating Point", "DC transfer characteristic", "AC Analysis", "Transient Analysis"])
    assert all(p.title == "rc network" for p in plots)
    op = _plot(plots, "Operating Point")
    assert op.names == ("v(in)", "v(out)", "i(v1)") and op.n_points == 1
    tran = _plot(plots, "Transient Analysis")
    assert tran.names[0] == "time" and tran.vectors["time"][-1] == pytest.approx(1e-3, rel=1e-9)
    # RC charging from the .op point: v(out) stays at the divider value 0.375 V throughout.
    np.testing.assert_allclose(tran.vectors["v(out)"], 0.375, rtol=1e-6)
    for p in plots:
        for v in p.vectors.values():
            assert not v.flags.writeable and v.shape == (p.n_points,)


def test_op_vectors_equal_printed_values(runs):
    scalars, _ = runs["printed"]
    op = _plot(runs["plots"], "Operating Point")
    assert set(scalars) == set(op.names)
    for name, value in scalars.items():
        assert op.vectors[name][0] == pytest.approx(value, rel=1e-14, abs=1e-300)
    assert op.vectors["v(out)"][0] == pytest.approx(0.5 * 3 / 4, rel=1e-12)


def test_dc_sweep_equals_printed_table(runs):
    _, tables = runs["printed"]
    dc = _plot(runs["plots"], "DC transfer characteristic")
    printed = tables[0]
    assert dc.n_points == 11 and dc.vectors["v(v-sweep)"].dtype == np.float64
    np.testing.assert_allclose(dc.vectors["v(v-sweep)"], printed["v-sweep"], rtol=1e-14)
    np.testing.assert_allclose(dc.vectors["v(out)"], printed["v(out)"], rtol=1e-14)
    np.testing.assert_allclose(dc.vectors["i(v1)"], printed["i(v1)"], rtol=1e-14)


def test_ac_complex_vector_equals_print_and_analytic(runs):
    _, tables = runs["printed"]
    ac = _plot(runs["plots"], "AC Analysis")
    assert ac.is_complex and ac.vectors["v(out)"].dtype == np.complex128
    assert ac.vectors["frequency"].dtype == np.float64
    np.testing.assert_allclose(ac.vectors["frequency"], [10, 10**1.5, 100, 10**2.5, 1000],
                               rtol=1e-12)
    np.testing.assert_allclose(ac.vectors["v(out)"], tables[1]["v(out)"], rtol=1e-13)
    np.testing.assert_allclose(ac.vectors["i(v1)"], tables[1]["i(v1)"], rtol=1e-13)
    # 1k in series with (3k || 1uF): v(out)/v(in) = Z / (1k + Z).
    w = 2 * np.pi * ac.vectors["frequency"]
    z = 1.0 / (1 / 3e3 + 1j * w * 1e-6)
    np.testing.assert_allclose(ac.vectors["v(out)"], z / (1e3 + z), rtol=1e-9)


def test_ascii_raw_reads_the_same(runs):
    ascii_plots = read_raw(runs["folder"] / "ascii.raw")
    assert (runs["folder"] / "ascii.raw").read_bytes().count(b"Values:") == 4
    for a, b in zip(runs["plots"], ascii_plots):
        assert (a.plotname, a.names, a.types) == (b.plotname, b.names, b.types)
        for name in a.names:
            # ascii holds 15 significant digits; time steps may differ in the last digit
            np.testing.assert_allclose(b.vectors[name], a.vectors[name], rtol=1e-13,
                                       atol=1e-300)


def test_preamble_lines_are_skipped(runs):
    data = (runs["folder"] / "multi.raw").read_bytes()
    noisy = b"\nNote: No compatibility mode selected!\n\n" + data
    again = parse_raw(noisy, source="noisy")
    assert [p.plotname for p in again] == [p.plotname for p in runs["plots"]]
    np.testing.assert_array_equal(again[0].vectors[again[0].names[1]],
                                  runs["plots"][0].vectors[again[0].names[1]])


def test_truncated_file_names_file_and_offset(runs, tmp_path):
    data = (runs["folder"] / "multi.raw").read_bytes()
    cut = tmp_path / "cut.raw"
    cut.write_bytes(data[:-100])
    with pytest.raises(RawFileError) as info:
        read_raw(cut)
    assert isinstance(info.value, SimulationError)
    assert str(cut) in str(info.value) and f"offset {len(data) - 100}" in str(info.value)
    assert "truncated" in str(info.value) and info.value.offset == len(data) - 100

    header_only = tmp_path / "header.raw"
    header_only.write_bytes(data[: data.index(b"Variables:") + 11])
    with pytest.raises(RawFileError, match="ends inside the header"):
        read_raw(header_only)
    with pytest.raises(RawFileError, match="cannot be opened"):
        read_raw(tmp_path / "missing.raw")


def test_points_header_disagreeing_with_data_is_an_error(runs):
    data = (runs["folder"] / "multi.raw").read_bytes()
    # Claim one point fewer in the first plot: its data then runs into the next plot.
    first = data.index(b"No. Points:")
    end = data.index(b"\n", first)
    n = int(data[first + 11:end])
    bad = data[:first] + f"No. Points: {n - 1}".encode() + data[end:]
    with pytest.raises(RawFileError, match="does not match the data"):
        parse_raw(bad, source="bad.raw")


def test_not_a_raw_file():
    with pytest.raises(RawFileError, match="not an ngspice raw file"):
        parse_raw(b"hello\n", source="x")


@pytest.mark.parametrize("name, vtype, expected", [
    ("in", "voltage", "v(in)"),
    ("V(1)", "voltage", "v(1)"),
    ("VDD#branch", "current", "i(vdd)"),
    ("@m1[id]", "current", "i(@m1[id])"),
    ("i(@r1[i])", "current", "i(@r1[i])"),
    ("v-sweep", "voltage", "v(v-sweep)"),
    ("time", "time", "time"),
    ("frequency", "frequency", "frequency"),
])
def test_normalise_vector_name(name, vtype, expected):
    assert normalise_vector_name(name, vtype) == expected
