"""Fault injection: what a user meets when ngspice, the disk, the inputs or the processes fail.

Every case here was once a traceback, a silently wrong result or a leftover process. The
standard each one is held to: one clear line naming the option or file at fault (exit 2), no
lost work, no stale files taken for results, no process outliving its parent.

Small decks and fake ngspice executables (shell scripts on PATH) keep the module fast. The tests
run as root in CI, where permission bits do not stop writes; an unwritable folder is therefore
made as a path *under a regular file*, which no user can create.
"""

from __future__ import annotations

import importlib
import pickle
import pkgutil
from pathlib import Path

import pytest
from rram_cosim.cosim.spice import pool as spice_pool
from rram_cosim.cosim.spice.errors import SimulationError
from rram_cosim.cosim.spice.rawfile import RawFileError
from rram_cosim.models.errors import CosimError
from rram_cosim.netlists.deck import Deck


# -- errors cross process boundaries ---------------------------------------------------------
def _all_error_classes() -> list[type[CosimError]]:
    """Every CosimError subclass of the package (all modules imported first)."""
    for top in ("models", "netlists", "cosim", "analysis"):
        pkg = importlib.import_module(f"rram_cosim.{top}")
        for mod in pkgutil.walk_packages(pkg.__path__, f"rram_cosim.{top}."):
            importlib.import_module(mod.name)
    out, todo = [], [CosimError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(out), key=lambda c: c.__qualname__)


def make_error(cls: type[CosimError]) -> CosimError:
    """An instance with every attribute its class sets (a new class with other required
    arguments fails here until it is added)."""
    if issubclass(cls, RawFileError):
        return cls("truncated header", path="/tmp/x.raw", offset=17)
    if issubclass(cls, SimulationError):
        return cls("ngspice failed", deck_path="/tmp/run/deck.cir", returncode=3,
                   output_tail="last line")
    return cls("something is wrong")


def raising_run_deck(deck: Deck, options) -> None:
    """Stands in for run_deck in a pool worker: raises the error the deck's title names."""
    module, name = deck.text.splitlines()[0].split(":")
    raise make_error(getattr(importlib.import_module(module), name))


def test_every_error_class_is_covered():
    names = {c.__name__ for c in _all_error_classes()}
    assert {"NgspiceNotFoundError", "SimulationTimeoutError", "ConfigError",
            "RawFileError", "EspeakError"} <= names


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.__name__)
def test_error_pickles_with_its_attributes(cls):
    err = make_error(cls)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert str(back) == str(err) and back.args == err.args
    assert back.__dict__ == err.__dict__


def test_each_error_raised_in_a_pool_worker_arrives_intact(monkeypatch):
    classes = _all_error_classes()
    decks = [Deck(f"{c.__module__}:{c.__qualname__}\nr1 a 0 1k\nv1 a 0 1\n.op\n.end\n")
             for c in classes]
    monkeypatch.setattr(spice_pool, "run_deck", raising_run_deck)  # forked workers inherit it
    out = spice_pool.run_decks(decks, n_workers=2, cache=False, progress=False,
                               on_error="return")
    for cls, got in zip(classes, out):
        want = make_error(cls)
        assert type(got) is cls, (cls, got)
        assert str(got) == str(want) and got.__dict__ == want.__dict__
    # and the first one is raised as itself, not as a TypeError of its rebuild
    with pytest.raises(classes[0]):
        spice_pool.run_decks(decks[:2], n_workers=2, cache=False, progress=False)


def test_an_error_that_does_not_pickle_still_arrives_as_an_error():
    class Local(Exception):  # a local class cannot be pickled by reference
        pass

    got = spice_pool.portable_error(Local("lost?"))
    assert isinstance(got, SimulationError) and "Local: lost?" in str(got)
    same = ValueError("fine")
    assert spice_pool.portable_error(same) is same


def test_not_found_error_stays_an_os_error():
    from rram_cosim.cosim.spice.errors import NgspiceNotFoundError, SimulationTimeoutError

    for cls, base in ((NgspiceNotFoundError, FileNotFoundError),
                      (SimulationTimeoutError, TimeoutError)):
        back = pickle.loads(pickle.dumps(make_error(cls)))
        assert isinstance(back, base) and isinstance(back, CosimError)
        assert back.deck_path == Path("/tmp/run/deck.cir") and back.returncode == 3
