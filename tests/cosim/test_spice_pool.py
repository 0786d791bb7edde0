"""run_decks: process pool, order, disk cache and error handling, on real ngspice."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from rram_cosim.cosim.spice.errors import SingularMatrixError
from rram_cosim.cosim.spice.pool import default_cache_dir, load_cached, run_decks
from rram_cosim.cosim.spice.runner import RunOptions, deck_digest, run_deck
from rram_cosim.netlists.deck import Deck

pytestmark = pytest.mark.skipif(shutil.which("ngspice") is None, reason="needs ngspice")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RRAM_COSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def ladder(k: int) -> Deck:
    """A small ladder whose output depends on k: v(o) = v_in * 2k / (1k + 2k)."""
    return Deck(f"ladder {k}\nvin in 0 {0.1 * (k + 1):.3f}\nr1 in m 1k\nr2 m o 1k\n"
                f"r3 o 0 {k + 1}k\n.op\n.end\n")


FLOATING = Deck("floating\nv1 a 0 1\nr1 a 0 1k\ni1 0 x 1u\n.op\n.end\n")


def counting_ngspice(folder: Path) -> tuple[str, Path]:
    """A wrapper that logs each call to a counter file, then runs the real ngspice."""
    counter = folder / "calls.txt"
    script = folder / "ngspice-counted"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{counter}"\nexec "{shutil.which("ngspice")}" "$@"\n')
    script.chmod(0o755)
    return str(script), counter


def n_runs(counter: Path) -> int:
    """Simulation runs (not the one-off `-v` version query)."""
    if not counter.exists():
        return 0
    return sum(1 for ln in counter.read_text().splitlines() if ln.startswith("-b"))


def test_pool_equals_serial_in_order(tmp_path):
    decks = [ladder(k) for k in range(8)]
    options = RunOptions(run_dir=tmp_path / "runs")
    serial = [run_deck(d, options) for d in decks]
    pooled = run_decks(decks, options, n_workers=2, cache=False, progress=False)
    assert [r.deck_sha256 for r in pooled] == [d.sha256 for d in decks]
    for k, (a, b) in enumerate(zip(serial, pooled)):
        assert not b.from_cache
        assert a.vectors.keys() == b.vectors.keys()
        for name in a.vectors:
            np.testing.assert_array_equal(a.vectors[name], b.vectors[name])
        assert b.vectors["v(o)"][0] == pytest.approx(_ladder_out(0.1 * (k + 1), (k + 1) * 1e3),
                                                     rel=1e-9)


def _ladder_out(vin: float, r3: float) -> float:
    # in -1k- m -1k- o -r3- 0: a plain series chain
    return vin * r3 / (2e3 + r3)


def test_second_call_is_served_from_cache(tmp_path):
    exe, counter = counting_ngspice(tmp_path)
    decks = [ladder(k) for k in range(6)]
    options = RunOptions(executable=exe, run_dir=tmp_path / "runs")
    cache = tmp_path / "spice-cache"
    first = run_decks(decks, options, n_workers=2, cache_dir=cache, progress=False)
    assert n_runs(counter) == 6 and not any(r.from_cache for r in first)
    second = run_decks(decks, options, n_workers=2, cache_dir=cache, progress=False)
    assert n_runs(counter) == 6  # no ngspice run at all
    assert all(r.from_cache for r in second)
    for a, b in zip(first, second):
        assert [p.plotname for p in a.plots] == [p.plotname for p in b.plots]
        assert a.log == b.log and a.deck_sha256 == b.deck_sha256
        for name in a.vectors:
            np.testing.assert_array_equal(a.vectors[name], b.vectors[name])
    # Extra .options change the key: a new run, not a stale hit.
    hot = RunOptions(executable=exe, run_dir=tmp_path / "runs", extra_options=("temp=50",))
    run_decks(decks[:1], hot, n_workers=1, cache_dir=cache, progress=False)
    assert n_runs(counter) == 7
    # Entries: one .npz + one .json per key; the json is readable metadata.
    key = deck_digest(decks[0], options)
    meta = json.loads((cache / key[:2] / f"{key}.json").read_text())
    assert meta["deck_sha256"] == decks[0].sha256 and meta["plots"][0]["names"] == [
        "v(in)", "v(m)", "v(o)", "i(vin)"]


def test_corrupt_cache_entry_is_recomputed(tmp_path):
    cache = tmp_path / "c"
    deck = ladder(3)
    (first,) = run_decks([deck], RunOptions(), n_workers=1, cache_dir=cache, progress=False)
    key = deck_digest(deck, RunOptions())
    npz = cache / key[:2] / f"{key}.npz"
    npz.write_bytes(npz.read_bytes()[:20])
    assert load_cached(cache, key) is None
    (again,) = run_decks([deck], RunOptions(), n_workers=1, cache_dir=cache, progress=False)
    assert not again.from_cache
    assert load_cached(cache, key) is not None
    np.testing.assert_array_equal(again.vectors["v(o)"], first.vectors["v(o)"])


@pytest.mark.parametrize("n_workers", [1, 2])
def test_errors_raise_or_return_in_place(tmp_path, n_workers):
    decks = [ladder(0), FLOATING, ladder(1)]
    options = RunOptions(run_dir=tmp_path / "runs")
    with pytest.raises(SingularMatrixError, match="Node\\(s\\) x"):
        run_decks(decks, options, n_workers=n_workers, cache=False, progress=False)
    out = run_decks(decks, options, n_workers=n_workers, cache_dir=tmp_path / "c",
                    on_error="return", progress=False)
    assert out[0].vectors["v(o)"][0] == pytest.approx(_ladder_out(0.1, 1e3))
    assert out[2].vectors["v(o)"][0] == pytest.approx(_ladder_out(0.2, 2e3))
    err = out[1]
    assert isinstance(err, SingularMatrixError)
    assert err.deck_path.is_file() and err.returncode == 0 and "Node(s) x" in str(err)
    # Failures are not cached: the bad deck is tried again next time.
    assert load_cached(tmp_path / "c", deck_digest(FLOATING, options)) is None


def test_shared_mode_pool_and_default_cache_dir(tmp_path):
    decks = [ladder(k) for k in range(4)]
    out = run_decks(decks, RunOptions(mode="shared"), n_workers=2, progress=False)
    assert [r.mode for r in out] == ["shared"] * 4
    for k, r in enumerate(out):
        assert r.vectors["v(o)"][0] == pytest.approx(_ladder_out(0.1 * (k + 1), (k + 1) * 1e3))
    assert default_cache_dir() == Path(os.environ["RRAM_COSIM_CACHE"]) / "spice"
    again = run_decks(decks, RunOptions(mode="batch"), n_workers=2, progress=False)
    assert all(r.from_cache for r in again)  # one cache for both modes (same numbers)
