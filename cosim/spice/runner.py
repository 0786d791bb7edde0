"""Run an ngspice deck, in batch mode (``ngspice -b`` subprocess) or through libngspice.

Both modes sit behind :func:`run_deck` and return the same :class:`SimResult`, with vectors
named the raw-file way, lower case: ``v(node)`` for node voltages, ``i(vsource)`` for the
current through a voltage source (positive into its ``+`` terminal), ``i(@dev[param])`` for
saved device currents, scale vectors as ``time``, ``frequency``, ``v(v-sweep)``/``i(i-sweep)``
(see :func:`rram_cosim.cosim.spice.rawfile.normalise_vector_name`).

ngspice's exit code says little (0 after a failed ``.op`` rescued by a garbage transient-op,
0 with a floating node), so a run is accepted only when: the log holds no parse error, no
"singular matrix" and no fatal convergence message; every analysis of the deck produced a plot
with the number of points it implies; and no node lacks a DC path to ground
(:func:`~rram_cosim.cosim.spice.checks.floating_nodes`). Non-convergence is retried with :data:`RETRY_REMEDIES`, in order, by
inserting ``.options`` lines before ``.end``; a parse error or a singular matrix is a deck bug
and is raised at once. Every failure raises a subclass of
:class:`~rram_cosim.cosim.spice.errors.SimulationError` carrying the kept deck's path, the exit code
and the tail of ngspice's output.

Shared mode (:mod:`rram_cosim.cosim.spice.shared`) runs the deck in libngspice, loaded once
per process; the deck checks (statements, analyses, point counts, DC paths to ground) are in
:mod:`rram_cosim.cosim.spice.checks`.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...models.checks import check_choice, check_range
from ...models.errors import ConfigError
from ...models.io import cache_root, writable_cache
from ...netlists.deck import Deck
from . import shared
from .checks import (
    PLOTNAMES,
    Analysis,
    analyses,
    check_points,
    floating,
    logical_lines,
    parse_number,
)
from .errors import (
    ConvergenceError,
    DeckParseError,
    NgspiceNotFoundError,
    NgspiceVersionError,
    SimulationError,
    SimulationTimeoutError,
    SingularMatrixError,
)
from .processes import child
from .rawfile import RawFileError, RawPlot, read_raw

__all__ = [
    "AUTO_TIMEOUT_BASE_S",
    "AUTO_TIMEOUT_PER_ELEMENT_S",
    "MIN_NGSPICE_VERSION",
    "RETRY_REMEDIES",
    "WAIT_NOTICE_EVERY_S",
    "WAIT_NOTICE_S",
    "Remedy",
    "RunOptions",
    "SimResult",
    "analysis_points",
    "auto_timeout_s",
    "deck_digest",
    "ngspice_version",
    "parse_ngspice_version",
    "run_deck",
    "shared_library_version",
    "with_options",
]

MIN_NGSPICE_VERSION = (39, 0)  # Debian bookworm's ngspice; older ones are untested here
_TAIL_LINES = 20


# --------------------------------------------------------------------------------------------
# Options and results


@dataclass(frozen=True)
class RunOptions:
    """How :func:`run_deck` runs a deck (not what it simulates: that is the deck).

    Attributes
    ----------
    executable : str
        ngspice executable, a name looked up on PATH or a path (batch mode).
    mode : {"batch", "shared"}
        ``"batch"``: one ``ngspice -b`` subprocess per run. ``"shared"``: libngspice loaded in
        this process (:mod:`rram_cosim.cosim.spice.shared`; no process start, same results and
        names).
    run_dir : str or Path or None
        Folder under which each run gets its own subfolder (deck, raw file, log). None: a
        ``runs/`` folder under :func:`cache_root`.
    keep : {"failed", "always", "never"}
        Which run folders to keep. ``"failed"`` keeps a failing run's deck and log, so the
        error can point at them.
    timeout_s : float, "auto" or None
        Wall-clock limit of the whole call, retries included, in s. ``"auto"`` (default):
        scaled to the deck (:func:`auto_timeout_s`: a minute plus time per element and
        analysis point), so a hung ngspice on a small deck is stopped soon and a large deck
        gets the time it needs. None: no limit.
    retry : bool
        Retry non-convergence with :data:`RETRY_REMEDIES`.
    extra_options : tuple of str
        ``name=value`` (or bare flag) entries added as ``.options`` to every attempt, e.g.
        ``("reltol=1e-4", "temp=50")``.
    check_topology : bool
        Reject decks with nodes that have no DC path to ground
        (:func:`~rram_cosim.cosim.spice.checks.floating_nodes`);
        ngspice does not always notice them (a node fed only by a current source).
    """

    executable: str = "ngspice"
    mode: str = "batch"
    run_dir: str | Path | None = None
    keep: str = "failed"
    timeout_s: float | str | None = "auto"
    retry: bool = True
    extra_options: tuple[str, ...] = ()
    check_topology: bool = True

    def __post_init__(self) -> None:
        o = "RunOptions"
        check_choice(o, "mode", self.mode, ["batch", "shared"])
        check_choice(o, "keep", self.keep, ["failed", "always", "never"])
        if self.timeout_s is not None and self.timeout_s != "auto":
            check_range(o, "timeout_s", self.timeout_s, 0, None, lo_open=True, unit="s",
                        hint="Use 'auto' to scale it to the deck, or None for no limit.")
        if not isinstance(self.executable, str) or not self.executable:
            raise ConfigError("The 'executable' parameter of RunOptions must be a non-empty "
                              f"string (a name on PATH or a path). Got {self.executable!r}.")
        opts = tuple(self.extra_options)
        for entry in opts:
            if not isinstance(entry, str) or not re.fullmatch(r"[A-Za-z][\w.]*(=\S+)?", entry):
                raise ConfigError(
                    "Each entry of RunOptions.extra_options must be 'name=value' or a bare "
                    f"flag without spaces, e.g. 'reltol=1e-4'. Got {entry!r}.")
        object.__setattr__(self, "extra_options", opts)


@dataclass(frozen=True)
class Remedy:
    """A retry: a name and the ``.options`` entries it adds."""

    name: str
    options: tuple[str, ...]


#: Tried in order after a convergence failure, each alone on top of the deck's own options
#: (ngspice applies the last ``.options`` it reads). gmin_stepping adds 1e-10 S across each
#: junction, far below any cell's conductance; source stepping and more iterations leave the
#: solution unchanged; loose_tolerances accepts a 1 % error (reltol), hence last.
RETRY_REMEDIES: tuple[Remedy, ...] = (
    Remedy("gmin_stepping", ("gmin=1e-10", "gminsteps=100")),
    Remedy("source_stepping", ("srcsteps=100",)),
    Remedy("more_iterations", ("itl1=1000", "itl2=1000", "itl4=100")),
    Remedy("loose_tolerances", ("reltol=1e-2", "abstol=1e-10", "vntol=1e-4")),
)


@dataclass(frozen=True)
class SimResult:
    """The outcome of one deck.

    Attributes
    ----------
    plots : tuple of RawPlot
        Every plot (analysis) in the order ngspice produced them.
    vectors : dict of str to numpy.ndarray
        The primary plot's vectors (the plot of ``Deck.analysis``, else the last one), keyed
        by lower-case raw-file names (``"v(o3)"``, ``"i(vdd)"``); shape ``(n_points,)``.
    log : str
        ngspice's output of the successful attempt.
    deck_sha256 : str
        ``Deck.sha256`` of the deck that was run (without retry options).
    wall_time_s : float
        Wall time of the whole call in s, retries included.
    remedy : str or None
        Name of the :class:`Remedy` that made the deck converge, None if none was needed.
    mode : str
        ``"batch"`` or ``"shared"``.
    run_dir : str or None
        The kept run folder, None if it was removed.
    from_cache : bool
        True when :mod:`rram_cosim.cosim.spice.pool` served it from its disk cache.
    """

    plots: tuple[RawPlot, ...]
    vectors: dict[str, np.ndarray] = field(repr=False)
    log: str = field(repr=False)
    deck_sha256: str
    wall_time_s: float
    remedy: str | None = None
    mode: str = "batch"
    run_dir: str | None = None
    from_cache: bool = False


# --------------------------------------------------------------------------------------------
# Version


_VERSION_RE = re.compile(r"ngspice-(\d+)(?:\.(\d+))?", re.IGNORECASE)
_version_cache: dict[str, tuple[int, int]] = {}
_version_lock = threading.Lock()


def parse_ngspice_version(text: str) -> tuple[int, int] | None:
    """``(major, minor)`` from ngspice's banner (``** ngspice-39 : Circuit level ...``)."""
    m = _VERSION_RE.search(text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2) or 0)


def _resolve_executable(executable: str) -> str:
    path = shutil.which(executable)
    if path is None:
        raise NgspiceNotFoundError(
            f"The ngspice executable {executable!r} was not found "
            f"(PATH={os.environ.get('PATH', '')!r}). Install ngspice {MIN_NGSPICE_VERSION[0]} "
            "or newer (Debian/Ubuntu: apt-get install ngspice) or set "
            "RunOptions(executable='/path/to/ngspice').")
    return path


def _require_version(version: tuple[int, int], where: str,
                     minimum: tuple[int, int] | None) -> tuple[int, int]:
    if minimum is not None and version < tuple(minimum):
        raise NgspiceVersionError(
            f"{where} is ngspice {version[0]}.{version[1]}; this framework needs "
            f"ngspice {minimum[0]} or newer (its convergence fall-backs and messages differ). "
            "Install a newer ngspice or point RunOptions.executable at one.")
    return version


def ngspice_version(executable: str = "ngspice", *,
                    minimum: tuple[int, int] | None = MIN_NGSPICE_VERSION) -> tuple[int, int]:
    """Version of an ngspice executable, read once per process from ``ngspice -v``.

    Parameters
    ----------
    executable : str
        Name on PATH or path.
    minimum : (int, int) or None
        Raise :class:`NgspiceVersionError` below this version; None only reads it.

    Raises
    ------
    NgspiceNotFoundError
        The executable is not on PATH.
    NgspiceVersionError
        Older than ``minimum``, or its banner cannot be read.
    """
    path = _resolve_executable(executable)
    with _version_lock:
        version = _version_cache.get(path)
        if version is None:
            try:
                out = subprocess.run([path, "-v"], capture_output=True, text=True, check=False,
                                     errors="replace", timeout=60, stdin=subprocess.DEVNULL)
            except OSError as e:
                raise NgspiceNotFoundError(f"Cannot start {path!r}: {e}.") from e
            version = parse_ngspice_version(out.stdout + out.stderr)
            if version is None:
                raise NgspiceVersionError(
                    f"{path!r} -v printed no 'ngspice-<version>' banner; is it ngspice?",
                    output_tail=(out.stdout + out.stderr)[-2000:])
            _version_cache[path] = version
    return _require_version(version, repr(path), minimum)


# --------------------------------------------------------------------------------------------
# Deck text: options


_END_RE = re.compile(r"(?im)^[ \t]*\.end[ \t]*$")


def with_options(text: str, options: tuple[str, ...] | list[str]) -> str:
    """The deck with one ``.options`` line before its final ``.end`` (appended if none)."""
    if not options:
        return text
    line = ".options " + " ".join(options)
    ends = list(_END_RE.finditer(text))
    if not ends:
        return text.rstrip("\n") + "\n" + line + "\n"
    at = ends[-1].start()
    return text[:at] + line + "\n" + text[at:]


# --------------------------------------------------------------------------------------------
# Log diagnosis


_PARSE_PATTERNS = [
    r"could not find a valid modelname", r"can't find model", r"unknown model",
    r"unknown subckt", r"error on line", r"circuit not parsed", r"undefined parameter",
    r"cannot compute substitute", r"unknown device type", r"no such function",
    r"syntax error", r"could not find include file", r"can't open", r"cannot open",
    r"fatal error in ngspice", r"please check your input netlist",
    r"there aren't any circuits loaded", r"unable to find definition of model",
]
_SINGULAR_PATTERNS = [r"singular matrix"]
_FATAL_CONVERGENCE_PATTERNS = [
    r"timestep too small", r"no convergence", r"dc solution failed", r"transient op failed",
    r"simulation\(s\) aborted", r"iteration limit reached", r"doanalyses:",
]
_STEPPING_PATTERNS = [r"gmin stepping failed", r"source stepping failed"]
_NOISE_RE = re.compile(
    r"^\s*$|^\s*(total (dram|analysis|elapsed)|dram currently|maximum ngspice|current ngspice|"
    r"shared ngspice|text \(code\)|stack =|library pages|trying gmin|supplies reduced|"
    r"note: one successful|reference value|background thread stopped)", re.IGNORECASE)


def _first_match(log: str, patterns: list[str]) -> str | None:
    rx = re.compile("|".join(patterns), re.IGNORECASE)
    for line in log.splitlines():
        # "Circuit: <title>" echoes the deck's free-text title, which may say anything.
        if rx.search(line) and not line.lstrip().startswith("Circuit:"):
            return line.strip()
    return None


def _tail(log: str, n: int = _TAIL_LINES) -> str:
    """Last ``n`` informative lines (gmin/source-stepping chatter and resource usage dropped)."""
    lines = [ln.rstrip() for ln in log.splitlines() if not _NOISE_RE.match(ln)]
    return "\n".join(lines[-n:])


@dataclass
class _Attempt:
    """What one ngspice invocation left behind."""

    log: str
    returncode: int | None
    plots: list[RawPlot] | None
    raw_error: RawFileError | None = None
    timed_out: bool = False


@dataclass
class _Failure:
    cls: type[SimulationError]
    message: str


def _diagnose(att: _Attempt, lines: list[str], wanted: list[Analysis],
              check_topology: bool, timeout_s: float | None,
              auto: bool = False) -> _Failure | None:
    log = att.log
    if att.timed_out:
        how = " (scaled to the deck: RunOptions.timeout_s='auto')" if auto else \
            " (RunOptions.timeout_s)"
        return _Failure(SimulationTimeoutError,
                        f"ngspice did not finish within timeout_s={timeout_s:g} s{how}, "
                        "retries included; it was stopped. Shorten the analysis or raise "
                        "the timeout.")
    hit = _first_match(log, _PARSE_PATTERNS)
    if hit:
        return _Failure(DeckParseError,
                        f"ngspice could not parse the deck: {hit!r}. Check element and model "
                        "names, subcircuit definitions, parameters and .include paths in the "
                        "kept deck.")
    hit = _first_match(log, _SINGULAR_PATTERNS)
    if hit:
        nodes = floating(lines)
        where = f" Nodes without a DC path to ground: {', '.join(nodes)}." if nodes else ""
        return _Failure(SingularMatrixError,
                        f"ngspice reports a singular matrix ({hit!r}).{where} A floating node "
                        "(only capacitors or current sources attached) is a deck bug and is "
                        "not retried: connect it, or add a large resistor to ground.")
    stepping = _first_match(log, _STEPPING_PATTERNS)
    hit = _first_match(log, _FATAL_CONVERGENCE_PATTERNS)
    if hit:
        return _Failure(ConvergenceError, f"ngspice did not converge ({hit!r}).")
    if att.returncode not in (0, None):
        if stepping:
            return _Failure(ConvergenceError, f"ngspice did not converge ({stepping!r}).")
        return _Failure(SimulationError, "ngspice exited with an error and no recognised "
                                         "message; see its output below.")
    if att.plots is None:
        why = str(att.raw_error) if att.raw_error else "no results"
        cls = ConvergenceError if stepping else SimulationError
        return _Failure(cls, f"ngspice gave no usable results: {why}")
    mismatch = check_points(att.plots, wanted)
    if mismatch:
        cls = ConvergenceError if stepping else SimulationError
        return _Failure(cls, f"ngspice's results are incomplete: {mismatch}.")
    if check_topology:
        nodes = floating(lines)
        if nodes:
            return _Failure(SingularMatrixError,
                            f"Node(s) {', '.join(nodes)} have no DC path to ground (only "
                            "capacitors, current sources or gates attach to them); ngspice's "
                            "values for them are arbitrary. A floating node is a deck bug and "
                            "is not retried: connect it, or add a large resistor to ground "
                            "(or set RunOptions.check_topology=False if this is intended).")
    return None


# --------------------------------------------------------------------------------------------
# Batch mode


def _run_batch(text: str, folder: Path, tag: str, executable: str,
               timeout_s: float | None, notice: _Notice) -> _Attempt:
    deck_name, raw_name, log_name = f"deck{tag}.cir", f"out{tag}.raw", f"ngspice{tag}.log"
    (folder / deck_name).write_text(text)
    proc = subprocess.Popen([executable, "-b", "-r", raw_name, deck_name], cwd=folder,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    timed_out = False
    t0 = time.monotonic()
    # whatever ends this block early (Ctrl-C, SIGTERM, an error) kills ngspice first
    with child(proc):
        while True:
            left = None if timeout_s is None else timeout_s - (time.monotonic() - t0)
            wait = notice.next_in(time.monotonic() - t0)
            step = wait if left is None else min(wait, max(left, 0.0))
            try:
                out, _ = proc.communicate(timeout=step)
                break
            except subprocess.TimeoutExpired:
                if left is not None and time.monotonic() - t0 >= timeout_s:
                    timed_out = True
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    out, _ = proc.communicate()
                    break
                notice.say(time.monotonic() - t0, f"PID {proc.pid}, {folder / deck_name}")
    log = out.decode("utf-8", errors="replace")
    (folder / log_name).write_text(log)
    plots, raw_error = None, None
    if not timed_out:
        try:
            plots = read_raw(folder / raw_name)
        except RawFileError as e:
            raw_error = e
    return _Attempt(log=log, returncode=None if timed_out else proc.returncode, plots=plots,
                    raw_error=raw_error, timed_out=timed_out)


#: After this many seconds a run says that it waits on ngspice, and again every
#: :data:`WAIT_NOTICE_EVERY_S` (a long or hung ngspice prints nothing meanwhile).
WAIT_NOTICE_S = 20.0
WAIT_NOTICE_EVERY_S = 60.0


@dataclass
class _Notice:
    """Says on stderr that a run is still waiting on ngspice (how long, of what limit)."""

    timeout_s: float | None
    last: float = 0.0

    def next_in(self, elapsed: float) -> float:
        """Seconds from ``elapsed`` to the next notice."""
        due = WAIT_NOTICE_S if self.last == 0.0 else self.last + WAIT_NOTICE_EVERY_S
        return max(due - elapsed, 0.05)

    def say(self, elapsed: float, what: str) -> None:
        due = WAIT_NOTICE_S if self.last == 0.0 else self.last + WAIT_NOTICE_EVERY_S
        if elapsed < due:
            return
        self.last = elapsed
        limit = "no time limit" if self.timeout_s is None else \
            f"timeout {self.timeout_s:.0f} s (RunOptions.timeout_s)"
        print(f"rram-cosim: waiting on ngspice for {elapsed:.0f} s ({what}; {limit})",
              file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Shared mode (libngspice in this process: :mod:`rram_cosim.cosim.spice.shared`)


def shared_library_version() -> tuple[int, int]:
    """Version of the libngspice that shared mode loads (loads it on first call)."""
    return parse_ngspice_version(shared.banner()) or (0, 0)


def _run_shared(text: str, timeout_s: float | None, notice: _Notice) -> _Attempt:
    run = shared.run(text, timeout_s, on_wait=lambda t: notice.say(t, "libngspice"),
                     wait_step=notice.next_in)
    return _Attempt(log=run.log, returncode=None, plots=run.plots, timed_out=run.timed_out)


# --------------------------------------------------------------------------------------------
# run_deck


def primary_index(plots: list[RawPlot], analysis: str) -> int:
    """Index of the plot ``analysis`` produced (the last of its kind; else the last plot)."""
    want = PLOTNAMES.get(analysis.lower())
    for i in range(len(plots) - 1, -1, -1):
        if want and plots[i].plotname.strip().lower() == want:
            return i
    return len(plots) - 1


def run_deck(deck: Deck, options: RunOptions | None = None) -> SimResult:
    """Run one deck in ngspice and return its results.

    Parameters
    ----------
    deck : Deck
        The netlist (with an analysis line such as ``.op``, ``.dc``, ``.tran`` and ``.end``;
        no ``.control`` block).
    options : RunOptions, optional
        Executable, mode, run folder, keep policy, timeout, retries, extra ``.options``.

    Returns
    -------
    SimResult
        Plots, the primary plot's vectors (lower-case raw-file names), log and provenance.

    Raises
    ------
    NgspiceNotFoundError, NgspiceVersionError
        ngspice (or libngspice) missing or older than :data:`MIN_NGSPICE_VERSION`.
    DeckParseError
        ngspice could not parse the deck.
    SingularMatrixError
        A floating node (not retried).
    ConvergenceError
        No convergence, also after every remedy in :data:`RETRY_REMEDIES`.
    SimulationTimeoutError
        The run exceeded ``options.timeout_s``.
    SimulationError
        Anything else ngspice got wrong (missing or incomplete results).
    """
    opts = options or RunOptions()
    if not isinstance(deck, Deck):
        raise ConfigError(f"run_deck expects a rram_cosim.netlists.deck.Deck. Got "
                          f"{type(deck).__name__}; wrap text as Deck(text=...).")
    if re.search(r"(?im)^[ \t]*\.control\b", deck.text):
        raise ConfigError("run_deck runs the deck's own analyses (.op/.dc/.tran/.ac) and "
                          "reads the raw file; a .control block is not supported (it also "
                          "makes 'ngspice -b' exit 1 without 'quit'). Remove it.")
    lines = logical_lines(deck.text)
    wanted = analyses(lines)
    if not wanted:
        raise ConfigError("The deck has no analysis line (.op, .dc, .tran, .ac, ...), so "
                          "ngspice would compute nothing. Add one before .end.")
    t0 = time.perf_counter()
    sha = deck.sha256
    timeout_s = auto_timeout_s(lines, wanted) if opts.timeout_s == "auto" else opts.timeout_s
    notice = _Notice(timeout_s)
    folder = _RunFolder(opts, sha)
    attempts: list[tuple[str, str, str]] = []  # (tag, deck text, log) for the run folder
    succeeded = False
    try:
        try:
            if opts.mode == "batch":
                executable = _resolve_executable(opts.executable)
                ngspice_version(executable)
            else:
                _require_version(shared_library_version(), "libngspice", MIN_NGSPICE_VERSION)
        except (NgspiceNotFoundError, NgspiceVersionError) as e:
            attempts.append(("", with_options(deck.text, opts.extra_options), ""))
            raise type(e)(str(e).split("\n")[0], deck_path=folder.keep_failed(attempts),
                          output_tail=e.output_tail) from None
        remedies: list[Remedy | None] = [None, *(RETRY_REMEDIES if opts.retry else ())]
        deadline = None if timeout_s is None else t0 + timeout_s
        tried: list[str] = []
        failure: _Failure | None = None
        att: _Attempt | None = None
        for remedy in remedies:
            remaining = None if deadline is None else deadline - time.perf_counter()
            if remaining is not None and remaining <= 0:
                failure = _Failure(SimulationTimeoutError,
                                   f"ngspice did not converge and timeout_s={timeout_s:g} "
                                   f"s ran out during the retries (tried: {', '.join(tried)}).")
                break
            text = with_options(deck.text,
                                opts.extra_options + (remedy.options if remedy else ()))
            tag = f".{remedy.name}" if remedy else ""
            if opts.mode == "batch":
                att = _run_batch(text, folder.path(), tag, executable, remaining, notice)
            else:
                att = _run_shared(text, remaining, notice)
            attempts.append((tag, text, att.log))
            failure = _diagnose(att, lines, wanted, opts.check_topology, timeout_s,
                                opts.timeout_s == "auto")
            if failure is None:
                succeeded = True
                plots = att.plots or []
                primary = plots[primary_index(plots, deck.analysis)]
                run_dir = folder.keep_success(attempts)
                return SimResult(plots=tuple(plots), vectors=dict(primary.vectors),
                                 log=att.log, deck_sha256=sha,
                                 wall_time_s=time.perf_counter() - t0,
                                 remedy=remedy.name if remedy else None, mode=opts.mode,
                                 run_dir=run_dir)
            if failure.cls is not ConvergenceError:
                break
            tried.append(remedy.name if remedy else "default options")
        assert failure is not None and att is not None
        msg = failure.message
        if failure.cls is ConvergenceError and opts.retry:
            msg += (f" Tried: {', '.join(tried)} (each attempt's deck and log are in the run "
                    "folder). Look for a behavioural source without a solution or with a "
                    "jump, or a device far outside its model's range.")
        elif failure.cls is ConvergenceError:
            msg += " Retries are off (RunOptions.retry=False)."
        if opts.mode == "shared":
            msg += " [shared mode: libngspice, no exit code]"
        deck_path = folder.keep_failed(attempts)
        if deck_path is None:
            msg += " The run folder was removed (RunOptions.keep='never')."
        raise failure.cls(msg, deck_path=deck_path, returncode=att.returncode,
                          output_tail=_tail(att.log))
    finally:
        folder.finish(succeeded)


class _RunFolder:
    """A run's folder: created at once in batch mode (ngspice needs files), lazily in shared
    mode (only to keep a deck), removed at the end unless the keep policy says otherwise."""

    def __init__(self, opts: RunOptions, sha: str) -> None:
        self.opts = opts
        self.sha = sha
        self._path: Path | None = None
        if opts.mode == "batch":
            self.path()

    def path(self) -> Path:
        if self._path is None:
            parent = Path(self.opts.run_dir) if self.opts.run_dir is not None \
                else writable_cache(cache_root() / "runs", "The ngspice run folder cache")
            parent.mkdir(parents=True, exist_ok=True)
            self._path = Path(tempfile.mkdtemp(prefix=f"{self.sha[:12]}-", dir=parent))
        return self._path

    def _write(self, attempts: list[tuple[str, str, str]]) -> Path:
        folder = self.path()
        for tag, text, log in attempts:
            if not (folder / f"deck{tag}.cir").exists():
                (folder / f"deck{tag}.cir").write_text(text)
            if log and not (folder / f"ngspice{tag}.log").exists():
                (folder / f"ngspice{tag}.log").write_text(log)
        return folder / "deck.cir"

    def keep_success(self, attempts: list[tuple[str, str, str]]) -> str | None:
        if self.opts.keep != "always":
            return None
        self._write(attempts)
        return str(self.path())

    def keep_failed(self, attempts: list[tuple[str, str, str]]) -> Path | None:
        if self.opts.keep == "never":
            return None
        return self._write(attempts)

    def finish(self, succeeded: bool) -> None:
        keep = self.opts.keep == "always" or (self.opts.keep == "failed" and not succeeded)
        if self._path is not None and not keep:
            shutil.rmtree(self._path, ignore_errors=True)


#: :func:`auto_timeout_s`: the floor (a small deck that hangs is stopped after it) and the
#: time allowed per element line and thousand analysis points (generous: a loaded machine
#: runs ngspice several times slower than an idle one).
AUTO_TIMEOUT_BASE_S = 60.0
AUTO_TIMEOUT_PER_ELEMENT_S = 0.01


def analysis_points(a: Analysis) -> int:
    """Rough number of solution points of an analysis (1 for ``.op``; the sweep's or the
    time steps' count where the arguments say it; 1000 where they do not)."""
    nums = [parse_number(t) for t in a.args]
    if a.kind == "op":
        return 1
    if a.kind == "dc":
        total, args = 1, nums
        while len(args) >= 4:
            start, stop, step = args[1:4]
            if None in (start, stop, step) or step == 0:
                return 1000
            total *= int(abs((stop - start) / step)) + 1
            args = args[4:]
        return total
    if a.kind == "tran" and len(nums) >= 2 and nums[0] and nums[1]:
        return int(min(abs(nums[1] / nums[0]), 1e8)) + 1
    if a.kind == "ac" and len(nums) >= 4 and nums[1] and nums[2] and nums[3]:
        return int(nums[1] * max(1.0, math.log10(abs(nums[3] / nums[2])) + 1))
    return 1000


def auto_timeout_s(lines: list[str], wanted: list[Analysis]) -> float:
    """The ``"auto"`` timeout of a deck (its logical lines and analyses): a minute plus
    :data:`AUTO_TIMEOUT_PER_ELEMENT_S` per element line per thousand analysis points
    (at least one thousand)."""
    elements = sum(1 for ln in lines if ln and ln[0] not in ".*+")
    points = sum(analysis_points(a) for a in wanted) or 1
    return AUTO_TIMEOUT_BASE_S + AUTO_TIMEOUT_PER_ELEMENT_S * elements * max(1.0, points / 1000)


def deck_digest(deck: Deck, options: RunOptions) -> str:
    """Cache key of a run: the deck's hash plus the options that change its results."""
    h = hashlib.sha256(deck.sha256.encode())
    for entry in options.extra_options:
        h.update(b"\0" + entry.encode())
    return h.hexdigest()
