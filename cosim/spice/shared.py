"""ngspice as a shared library (libngspice) in this process: load, run a deck, read its plots.

A small cffi binding to ngspice's shared-library API (``sharedspice.h``): ``ngSpice_Init``
registers the output and background-thread callbacks, ``ngSpice_Circ`` loads a deck,
``ngSpice_Command`` runs it and switches plots, ``ngSpice_AllPlots``/``ngSpice_AllVecs`` list
the results and ``ngGet_Vec_Info`` hands out each vector's data.

The library is loaded once per process (``$NGSPICE_LIBRARY_PATH``, else the system's
``libngspice``). A fatal parse error leaves it unusable ("ngspice.dll cannot recover and awaits
to be detached"); the next run then loads a fresh private copy of the library file. :func:`run`
returns what :mod:`rram_cosim.cosim.spice.runner` diagnoses, with vectors named as in batch
mode's raw file.
"""

from __future__ import annotations

import ctypes.util
import locale
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cffi import FFI

from ...models.io import cache_root
from .errors import NgspiceNotFoundError, SimulationError
from .rawfile import RawPlot, normalise_vector_name

__all__ = ["SharedRun", "banner", "run"]

# The part of ngspice's sharedspice.h used here. Callbacks get the ngspice instance's id and
# the user pointer last; SendData and SendInitData pass structures this module never reads.
_CDEF = """
typedef struct ngcomplex { double cx_real; double cx_imag; } ngcomplex_t;
typedef struct vector_info {
    char *v_name; int v_type; short v_flags; double *v_realdata; ngcomplex_t *v_compdata;
    int v_length;
} vector_info, *pvector_info;
typedef int (SendChar) (char *, int, void *);
typedef int (SendStat) (char *, int, void *);
typedef int (ControlledExit) (int, bool, bool, int, void *);
typedef int (SendData) (void *, int, int, void *);
typedef int (SendInitData) (void *, int, void *);
typedef int (BGThreadRunning) (bool, int, void *);
int ngSpice_Init(SendChar *, SendStat *, ControlledExit *, SendData *, SendInitData *,
                 BGThreadRunning *, void *);
int ngSpice_Command(char *);
int ngSpice_Circ(char **);
char **ngSpice_AllPlots(void);
char **ngSpice_AllVecs(char *);
pvector_info ngGet_Vec_Info(char *);
"""
_ffi = FFI()
_ffi.cdef(_CDEF)

#: ngspice's vector types (``enum simulation_types`` of its ``sim.h``, unchanged since ngspice
#: 27), named as the raw file names them where it does.
_TYPE_NAMES = (
    "notype", "time", "frequency", "voltage", "current", "voltage_density", "current_density",
    "sqr_voltage_density", "sqr_current_density", "sqr_voltage", "sqr_current", "pole", "zero",
    "s_parameter", "temperature", "res", "impedance", "admittance", "power", "phase", "db",
    "capacitance", "charge",
)


@dataclass
class SharedRun:
    """What one run in the library left behind: its output, its plots (None when it broke or
    timed out) and whether the deadline halted it."""

    log: str
    plots: list[RawPlot] | None
    timed_out: bool


def _strings(arr) -> list[str]:
    """A NULL-terminated ``char **`` as a list."""
    out, i = [], 0
    while arr[i] != _ffi.NULL:
        out.append(_ffi.string(arr[i]).decode("utf-8", errors="replace"))
        i += 1
    return out


class _Library:
    """One loaded libngspice: its output lines and the end of its background thread."""

    def __init__(self, lib_path: str) -> None:
        # ngspice reads numbers with the C library: force a '.' decimal point.
        locale.setlocale(locale.LC_NUMERIC, "C")
        self.lines: list[str] = []
        self.exited = threading.Event()
        self.api = _ffi.dlopen(lib_path)
        # The callbacks must live as long as the library may call them (see _graveyard).
        self._callbacks = (
            _ffi.callback("SendChar", self._send_char, error=0),
            _ffi.callback("SendStat", lambda *_: 0, error=0),
            _ffi.callback("ControlledExit", lambda status, *_: status, error=0),
            _ffi.NULL,  # SendData: values point by point, not needed
            _ffi.callback("SendInitData", lambda *_: 0, error=0),
            _ffi.callback("BGThreadRunning", self._thread_running, error=0),
        )
        if self.api.ngSpice_Init(*self._callbacks, _ffi.NULL) != 0:
            raise OSError("ngSpice_Init failed")

    def _send_char(self, message, ngspice_id, user_data) -> int:
        text = _ffi.string(message).decode("utf-8", errors="replace")
        prefix, _, content = text.partition(" ")
        self.lines.append(content if prefix in ("stdout", "stderr") else text)
        return 0

    def _thread_running(self, not_running, ngspice_id, user_data) -> int:
        # Measured with ngspice 39: called with False when the background thread starts and
        # True when it has finished.
        if not_running:
            self.exited.set()
        return 0

    def command(self, cmd: str) -> int:
        return int(self.api.ngSpice_Command(cmd.encode()))

    def load(self, text: str) -> int:
        lines = [ln for ln in text.splitlines() if ln.strip()] + [""]
        keep = [_ffi.new("char[]", ln.encode()) for ln in lines] + [_ffi.NULL]
        return int(self.api.ngSpice_Circ(_ffi.new("char *[]", keep)))

    def plot_names(self) -> list[str]:
        return _strings(self.api.ngSpice_AllPlots())

    def vector_names(self, plot: str) -> list[str]:
        return _strings(self.api.ngSpice_AllVecs(plot.encode()))

    def vector(self, plot: str, name: str) -> tuple[int, np.ndarray]:
        info = self.api.ngGet_Vec_Info(f"{plot}.{name}".encode())
        n = int(info.v_length)
        if info.v_compdata == _ffi.NULL:
            arr = np.frombuffer(_ffi.buffer(info.v_realdata, n * 8), dtype=np.float64).copy()
        else:
            ri = np.frombuffer(_ffi.buffer(info.v_compdata, n * 16), dtype=np.float64)
            arr = ri[0::2] + 1j * ri[1::2]
        return int(info.v_type), arr


_lock = threading.RLock()
_state: dict[str, object] = {}
_graveyard: list[object] = []  # broken library instances: their callbacks must stay alive


def _library_name() -> str:
    env = os.environ.get("NGSPICE_LIBRARY_PATH")
    if env:
        return env
    name = ctypes.util.find_library("ngspice")
    if name is None:
        raise NgspiceNotFoundError(
            "libngspice (ngspice as a shared library) was not found. Install it (Debian/"
            "Ubuntu: apt-get install libngspice0), set NGSPICE_LIBRARY_PATH to the .so file, "
            "or use RunOptions(mode='batch').")
    return name


def _loaded_library_file() -> str | None:
    """Path of the libngspice file mapped into this process (Linux), for fresh copies."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split(None, 5)[-1] if len(line.split(None, 5)) == 6 else ""
        if "libngspice" in Path(path).name and Path(path).exists():
            return path
    return None


def _instance() -> _Library:
    """The live libngspice instance of this process, (re)loaded when needed."""
    lib = _state.get("lib")
    if lib is not None and not _state.get("broken"):
        return lib  # type: ignore[return-value]
    generation = int(_state.get("generation", 0))  # type: ignore[call-overload]
    copy_path = None
    if lib is None and generation == 0:
        lib_path = _library_name()
    else:
        # A broken libngspice cannot be re-initialised in place: load a private copy.
        _graveyard.append(lib)
        source = _state.get("file") or _loaded_library_file()
        if not source:
            raise SimulationError("libngspice broke after a fatal error and its file cannot be "
                                  "located to load a fresh copy. Use RunOptions(mode='batch') "
                                  "or restart the process.")
        # Under the cache rather than /tmp, which may be mounted noexec (dlopen would fail).
        folder = cache_root() / "libngspice"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            folder = Path(tempfile.gettempdir())
        fd, copy_path = tempfile.mkstemp(prefix="libngspice-", suffix=".so", dir=folder)
        os.close(fd)
        shutil.copyfile(str(source), copy_path)
        lib_path = copy_path
    try:
        lib = _Library(lib_path)
    except OSError as e:
        raise NgspiceNotFoundError(f"libngspice could not be loaded from {lib_path!r}: {e}. "
                                   "Install libngspice0 or use RunOptions(mode='batch').") from e
    finally:
        if copy_path:
            os.unlink(copy_path)  # the mapping stays valid; nothing to clean up later
    lib.command("version -f")
    init_log = "\n".join(lib.lines)
    lib.command("set nomoremode")  # no paging of long output (it would wait for a key)
    lib.lines.clear()
    _state.update(lib=lib, broken=False, generation=generation + 1, banner=init_log)
    if "file" not in _state:
        _state["file"] = _loaded_library_file()
    return lib


def _plots(lib: _Library, title: str) -> list[RawPlot]:
    plots = []
    for pn in reversed([p for p in lib.plot_names() if p != "const"]):
        mark = len(lib.lines)
        lib.command(f"setplot {pn}")
        lib.command("echo rram-cosim-plotname: $curplotname")
        lib.command("echo rram-cosim-plottitle: $curplottitle")
        # Other output may arrive meanwhile (ngspice reports the end of its background thread
        # at the next command), hence the markers; that output stays in the log.
        echoed = {}
        for ln in lib.lines[mark:]:
            key, sep, value = ln.partition(": ")
            if sep and key.startswith("rram-cosim-"):
                echoed[key] = value.strip()
        lib.lines[mark:] = [ln for ln in lib.lines[mark:] if not ln.startswith("rram-cosim-")]
        plotname = echoed.get("rram-cosim-plotname", pn)
        ptitle = echoed.get("rram-cosim-plottitle", title)
        names, types, vectors = [], [], {}
        cplx = False
        # ngspice lists vectors newest first; the raw file writes them in creation order.
        for vn in reversed(lib.vector_names(pn)):
            vtype, arr = lib.vector(pn, vn)
            tname = _TYPE_NAMES[vtype] if 0 <= vtype < len(_TYPE_NAMES) else "notype"
            name = normalise_vector_name(vn, tname)
            if np.iscomplexobj(arr):
                cplx = True
                if tname == "frequency":
                    arr = np.ascontiguousarray(arr.real)
            arr.flags.writeable = False
            names.append(name)
            types.append(tname)
            vectors[name] = arr
        plots.append(RawPlot(title=ptitle, plotname=plotname,
                             flags=("complex",) if cplx else ("real",), names=tuple(names),
                             types=tuple(types), vectors=vectors))
    return plots


def run(text: str, timeout_s: float | None, *,
        on_wait: Callable[[float], None] | None = None,
        wait_step: Callable[[float], float] | None = None) -> SharedRun:
    """Load ``text`` into the library, run its analyses (halted after ``timeout_s`` s unless
    None) and read back every plot.

    While the analyses run, ``on_wait(elapsed_s)`` is called every ``wait_step(elapsed_s)``
    seconds (a notice that the run is waiting); an interrupt (Ctrl-C, SIGTERM) halts the
    background thread before it propagates.
    """
    with _lock:
        lib = _instance()
        lib.lines.clear()
        timed_out = False
        if lib.load(text) != 0:
            # ngSpice_Circ fails only on errors it cannot recover from.
            _state["broken"] = True
        else:
            # The background thread can be halted (at the deadline, or on an interrupt); a
            # synchronous run cannot.
            lib.exited.clear()
            if lib.command("bg_run") == 0:
                timed_out = _wait(lib, timeout_s, on_wait, wait_step)
        log = "\n".join(ln.rstrip("\r") for ln in lib.lines)
        if "cannot recover" in log:
            _state["broken"] = True
        plots = None
        if not _state.get("broken"):
            if not timed_out:
                plots = _plots(lib, text.splitlines()[0] if text else "")
            mark = len(lib.lines)
            lib.command("destroy all")
            lib.command("remcirc")
            del lib.lines[mark:]
        return SharedRun(log=log, plots=plots, timed_out=timed_out)


def _halt(lib: _Library) -> None:
    lib.command("bg_halt")
    if not lib.exited.wait(10.0):
        _state["broken"] = True  # a thread we cannot stop: abandon it


def _wait(lib: _Library, timeout_s: float | None, on_wait: Callable[[float], None] | None,
          wait_step: Callable[[float], float] | None) -> bool:
    """Wait for the background thread; True if halted at ``timeout_s``."""
    t0 = time.monotonic()
    try:
        while True:
            elapsed = time.monotonic() - t0
            step = wait_step(elapsed) if wait_step is not None else 3600.0
            if timeout_s is not None:
                step = min(step, max(timeout_s - elapsed, 0.0))
            if lib.exited.wait(step):
                return False
            elapsed = time.monotonic() - t0
            if timeout_s is not None and elapsed >= timeout_s:
                _halt(lib)
                return True
            if on_wait is not None:
                on_wait(elapsed)
    except BaseException:
        _halt(lib)
        raise


def banner() -> str:
    """The library's ``version -f`` output (loads it on first call)."""
    with _lock:
        _instance()
        return str(_state["banner"])
