"""ngspice as a shared library (libngspice) in this process: load, run a deck, read its plots.

The library is loaded once per process through PySpice's ``NgSpiceShared``. A fatal parse
error leaves it unusable ("ngspice.dll cannot recover and awaits to be detached"); the next
run then loads a fresh private copy of the library file. :func:`run` returns what
:mod:`rram_cosim.cosim.spice.runner` diagnoses, with vectors named as in batch mode's raw file.
"""

from __future__ import annotations

import ctypes.util
import locale
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...models.io import cache_root
from .errors import NgspiceNotFoundError, SimulationError
from .rawfile import RawPlot, normalise_vector_name

__all__ = ["SharedRun", "banner", "run"]


@dataclass
class SharedRun:
    """What one run in the library left behind: its output, its plots (None when it broke or
    timed out) and whether the deadline halted it."""

    log: str
    plots: list[RawPlot] | None
    timed_out: bool


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


def _library_class() -> type:
    """NgSpiceShared subclass: collects output, loads a given library file, quiet logging."""
    cls = _state.get("cls")
    if cls is not None:
        return cls  # type: ignore[return-value]
    from PySpice.Spice.NgSpice import Shared as pyspice_shared

    ffi = pyspice_shared.ffi
    quiet = logging.getLogger(__name__ + ".pyspice")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False  # PySpice echoes ngspice's stderr as errors; we keep it in the log

    class _Lib(pyspice_shared.NgSpiceShared):
        _logger = quiet

        def __init__(self, lib_path: str, ngspice_id: int) -> None:
            self.lib_path = lib_path
            self.lines: list[str] = []
            self.exited = threading.Event()
            super().__init__(ngspice_id=ngspice_id, send_data=False)

        def _load_library(self, verbose: bool) -> None:
            # ngspice reads numbers with the C library: force a '.' decimal point.
            locale.setlocale(locale.LC_NUMERIC, "C")
            if not _state.get("cdef"):
                api = Path(pyspice_shared.__file__).with_name("api.h").read_text()
                ffi.cdef(api)  # once per process: cffi refuses duplicate declarations
                _state["cdef"] = True
            self._ngspice_shared = ffi.dlopen(self.lib_path)

        def send_char(self, message: str, ngspice_id: int) -> int:
            prefix, _, content = message.partition(" ")
            self.lines.append(content if prefix in ("stdout", "stderr") else message)
            return 0

        @staticmethod
        def _background_thread_running(not_running, ngspice_id, user_data):
            # Measured with ngspice 39: called with False when the background thread starts
            # and True when it has finished (PySpice's handler returns None, which cffi
            # reports on every run).
            self = ffi.from_handle(user_data)
            if not_running:
                self.exited.set()
            return 0

        def command(self, cmd: str) -> int:
            return int(self._ngspice_shared.ngSpice_Command(cmd.encode()))

        def load(self, text: str) -> int:
            lines = [ln for ln in text.splitlines() if ln.strip()] + [""]
            keep = [ffi.new("char[]", ln.encode()) for ln in lines] + [ffi.NULL]
            return int(self._ngspice_shared.ngSpice_Circ(ffi.new("char *[]", keep)))

        def plot_names(self) -> list[str]:
            arr = self._ngspice_shared.ngSpice_AllPlots()
            names, i = [], 0
            while arr[i] != ffi.NULL:
                names.append(ffi.string(arr[i]).decode())
                i += 1
            return names

        def vector_names(self, plot: str) -> list[str]:
            arr = self._ngspice_shared.ngSpice_AllVecs(plot.encode())
            names, i = [], 0
            while arr[i] != ffi.NULL:
                names.append(ffi.string(arr[i]).decode())
                i += 1
            return names

        def vector(self, plot: str, name: str) -> tuple[int, np.ndarray]:
            info = self._ngspice_shared.ngGet_Vec_Info(f"{plot}.{name}".encode())
            n = int(info.v_length)
            if info.v_compdata == ffi.NULL:
                arr = np.frombuffer(ffi.buffer(info.v_realdata, n * 8), dtype=np.float64).copy()
            else:
                ri = np.frombuffer(ffi.buffer(info.v_compdata, n * 16), dtype=np.float64)
                arr = ri[0::2] + 1j * ri[1::2]
            return int(info.v_type), arr

    _state["cls"] = _Lib
    return _Lib


def _type_names(major: int) -> tuple[str, ...]:
    from PySpice.Spice.NgSpice.SimulationType import SIMULATION_TYPE

    return SIMULATION_TYPE.get(major, SIMULATION_TYPE["last"])


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


def _instance():
    """The live libngspice instance of this process, (re)loaded when needed."""
    lib = _state.get("lib")
    if lib is not None and not _state.get("broken"):
        return lib
    cls = _library_class()
    generation = int(_state.get("generation", 0))
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
        lib = cls(lib_path, generation)
    except OSError as e:
        raise NgspiceNotFoundError(f"libngspice could not be loaded from {lib_path!r}: {e}. "
                                   "Install libngspice0 or use RunOptions(mode='batch').") from e
    finally:
        if copy_path:
            os.unlink(copy_path)  # the mapping stays valid; nothing to clean up later
    init_log = "\n".join(lib.lines)
    lib.lines.clear()
    _state.update(lib=lib, broken=False, generation=generation + 1, banner=init_log,
                         major=int(lib.ngspice_version or 0))
    if "file" not in _state:
        _state["file"] = _loaded_library_file()
    return lib


def _plots(lib, title: str) -> list[RawPlot]:
    tnames = _type_names(int(_state["major"]))  # type: ignore[call-overload]
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
            tname = tnames[vtype] if 0 <= vtype < len(tnames) else "notype"
            tname = "notype" if tname == "no_type" else tname
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


def run(text: str, timeout_s: float | None) -> SharedRun:
    """Load ``text`` into the library, run its analyses (halted after ``timeout_s`` s unless
    None) and read back every plot."""
    with _lock:
        lib = _instance()
        lib.lines.clear()
        timed_out = False
        if lib.load(text) != 0:
            # ngSpice_Circ fails only on errors it cannot recover from.
            _state["broken"] = True
        elif timeout_s is None:
            lib.command("run")
        else:
            # The background thread can be halted at the deadline; a synchronous run cannot.
            lib.exited.clear()
            if lib.command("bg_run") == 0 and not lib.exited.wait(timeout_s):
                timed_out = True
                lib.command("bg_halt")
                if not lib.exited.wait(10.0):
                    _state["broken"] = True  # a thread we cannot stop: abandon it
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


def banner() -> str:
    """The library's ``version -f`` output (loads it on first call)."""
    with _lock:
        _instance()
        return str(_state["banner"])


