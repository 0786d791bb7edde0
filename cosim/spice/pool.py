"""Run many decks: a local process pool with a disk cache keyed by the deck's hash.

Each result is stored as ``<key>.npz`` (the vectors) plus ``<key>.json`` (names, plot headers,
log, provenance) under the cache folder, where the key is
:func:`rram_cosim.cosim.spice.runner.deck_digest`: ``Deck.sha256`` extended by the run's extra
``.options`` (the only run options that change results; batch and shared mode give the same
numbers). Both files are written to a temporary name and renamed, the json last, so a reader
sees a complete entry or none, and two processes computing the same deck at once just write
the same content twice. Failed decks are never cached. A sweep interrupted halfway resumes
from the cache.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import sys
import warnings
import zipfile
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ...models.checks import check_choice, check_int
from ...models.io import atomic_write_bytes, atomic_write_stream, cache_root, writable_cache
from ...netlists.deck import Deck
from .errors import SimulationError
from .processes import stop_workers, worker_signals
from .rawfile import RawPlot
from .runner import RunOptions, SimResult, deck_digest, primary_index, run_deck

__all__ = ["default_cache_dir", "load_cached", "portable_error", "run_decks", "store_cached"]

_FORMAT = 1


def default_cache_dir() -> Path:
    """``$RRAM_COSIM_CACHE/spice``, by default ``~/.cache/rram-cosim/spice``."""
    return writable_cache(cache_root() / "spice", "The SPICE result cache")


def _entry(cache_dir: Path, key: str) -> tuple[Path, Path]:
    folder = cache_dir / key[:2]  # shard: sweeps of 1e5 decks stay listable
    return folder / f"{key}.npz", folder / f"{key}.json"


def store_cached(cache_dir: str | Path, key: str, result: SimResult, primary: int) -> None:
    """Write ``result`` under ``key`` (``primary``: index of the plot behind ``vectors``)."""
    npz_path, json_path = _entry(Path(cache_dir), key)
    arrays = {f"p{i}_v{j}": p.vectors[name]
              for i, p in enumerate(result.plots) for j, name in enumerate(p.names)}
    meta = {
        "format": _FORMAT,
        "key": key,
        "deck_sha256": result.deck_sha256,
        "mode": result.mode,
        "remedy": result.remedy,
        "wall_time_s": result.wall_time_s,
        "primary": primary,
        "n_arrays": len(arrays),
        "plots": [{"title": p.title, "plotname": p.plotname, "flags": list(p.flags),
                   "names": list(p.names), "types": list(p.types)} for p in result.plots],
        "log": result.log,
    }
    atomic_write_stream(npz_path, lambda f: np.savez(f, **arrays))
    atomic_write_bytes(json_path, json.dumps(meta, indent=1).encode())


def load_cached(cache_dir: str | Path, key: str) -> SimResult | None:
    """The cached result of ``key``, or None if absent or unreadable (then it is recomputed)."""
    npz_path, json_path = _entry(Path(cache_dir), key)
    try:
        meta = json.loads(json_path.read_text())
        with np.load(npz_path) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # absent, half-copied or corrupt: recompute
    if meta.get("format") != _FORMAT or len(arrays) != meta.get("n_arrays"):
        return None
    plots = []
    try:
        for i, p in enumerate(meta["plots"]):
            vectors = {}
            for j, name in enumerate(p["names"]):
                arr = arrays[f"p{i}_v{j}"]
                arr.flags.writeable = False
                vectors[name] = arr
            plots.append(RawPlot(title=p["title"], plotname=p["plotname"],
                                 flags=tuple(p["flags"]), names=tuple(p["names"]),
                                 types=tuple(p["types"]), vectors=vectors))
        primary = plots[int(meta["primary"])]
    except (KeyError, IndexError, TypeError):
        return None
    return SimResult(plots=tuple(plots), vectors=dict(primary.vectors), log=meta["log"],
                     deck_sha256=meta["deck_sha256"], wall_time_s=float(meta["wall_time_s"]),
                     remedy=meta["remedy"], mode=meta["mode"], run_dir=None, from_cache=True)


def _run_one(deck: Deck, options: RunOptions, cache_dir: str | None) -> tuple[Any, ...]:
    """Worker: cached result, or run and cache; an error comes back as ``("err", exc)``."""
    key = deck_digest(deck, options)
    try:
        if cache_dir is not None:
            hit = load_cached(cache_dir, key)
            if hit is not None:
                return ("ok", hit)
        result = run_deck(deck, options)
        if cache_dir is not None:
            try:
                store_cached(cache_dir, key, result,
                             primary_index(list(result.plots), deck.analysis))
            except OSError as e:  # a full or read-only disk must not lose a finished run
                warnings.warn(f"Could not cache the result of deck {deck.sha256[:12]} in "
                              f"{cache_dir}: {e}", RuntimeWarning, stacklevel=2)
        return ("ok", result)
    except Exception as e:  # noqa: BLE001 - raised (or returned) by the caller
        return ("err", portable_error(e))


def portable_error(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (every :class:`CosimError` does), else a
    :class:`SimulationError` with its class name and message, so that a worker's error always
    reaches the parent as an error of its own and never as a pickling failure."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - anything pickle raises means: not portable
        return SimulationError(f"{type(exc).__name__}: {exc}")


def _mp_context() -> multiprocessing.context.BaseContext:
    # fork starts workers in milliseconds and shares the imported modules; elsewhere (macOS,
    # Windows) the platform default (spawn) is the safe choice.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def run_decks(decks: Sequence[Deck], options: RunOptions | None = None, *,
              n_workers: int | None = None, cache_dir: str | Path | None = None,
              cache: bool = True, progress: bool = True,
              on_error: str = "raise") -> list[SimResult | BaseException]:
    """Run decks on a local process pool, in order, with a disk cache.

    Parameters
    ----------
    decks : sequence of Deck
        The decks; results come back in the same order.
    options : RunOptions, optional
        Used for every deck (batch or shared mode; shared mode loads libngspice once per
        worker process).
    n_workers : int, optional
        Worker processes; default: the CPUs this process may use. 1 runs in this process.
    cache_dir : str or Path, optional
        Cache folder; default :func:`default_cache_dir`.
    cache : bool
        False: neither read nor write the cache.
    progress : bool
        Show a tqdm progress bar.
    on_error : {"raise", "return"}
        ``"raise"``: the first failing deck's error is raised (pending decks are cancelled).
        ``"return"``: the exception object takes the deck's place in the list and the sweep
        goes on.

    Returns
    -------
    list of SimResult (or exceptions with ``on_error="return"``)
        Cached results have ``from_cache=True``.
    """
    opts = options or RunOptions()
    check_choice("run_decks", "on_error", on_error, ["raise", "return"])
    decks = list(decks)
    if n_workers is None:
        n_workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else (os.cpu_count() or 1)
    check_int("run_decks", "n_workers", n_workers, 1, 4096)
    cdir = str(writable_cache(Path(cache_dir), "The SPICE cache folder")
               if cache_dir is not None else default_cache_dir()) if cache else None

    results: list[SimResult | BaseException | None] = [None] * len(decks)
    pending: list[int] = []
    for i, deck in enumerate(decks):
        hit = load_cached(cdir, deck_digest(deck, opts)) if cdir is not None else None
        if hit is not None:
            results[i] = hit
        else:
            pending.append(i)

    def settle(i: int, out: tuple[Any, ...]) -> None:
        if out[0] == "ok":
            results[i] = out[1]
            return
        exc = out[1]
        if on_error == "raise":
            raise exc
        results[i] = exc

    workers = min(n_workers, len(pending))
    with tqdm(total=len(decks), initial=len(decks) - len(pending), desc="ngspice",
              unit="deck", disable=not progress, leave=False) as bar:
        if workers <= 1:
            for i in pending:
                settle(i, _run_one(decks[i], opts, cdir))
                bar.update(1)
        else:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(),
                                       initializer=worker_signals)
            finished = False
            futures: dict[Future, int] = {}
            try:
                for i in pending:
                    futures[pool.submit(_run_one, decks[i], opts, cdir)] = i
                for fut in as_completed(futures):
                    settle(futures[fut], fut.result())
                    bar.update(1)
                finished = True
            finally:
                if not finished:
                    # an error, Ctrl-C or SIGTERM: the workers and their ngspice runs stop
                    # now instead of finishing decks nobody waits for
                    for fut in futures:
                        fut.cancel()
                    stop_workers(list(getattr(pool, "_processes", {}).values()))
                pool.shutdown(wait=True, cancel_futures=True)
    return results  # type: ignore[return-value]
