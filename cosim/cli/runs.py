"""Run folders: ``runs/<name>/`` with the resolved config, versions, tables, plots, report.md.

Every command writes one. The saved ``config.json`` replays the run (``--config FILE``).

A run claims its name before it computes anything: a lock (``runs/.<name>.lock``, holding the
claimant's PID) keeps a second run off the same name, an existing folder is refused unless
``--overwrite`` (which clears it) or the command resumes in place (the sweep), and the root
and folder are checked to be writable. ``run.json`` records the run's state: "running" from
the start, "complete" as the run's last write, so a killed run's folder never passes for a
finished one (``energy --from`` refuses it).
"""

from __future__ import annotations

import datetime
import fcntl
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ... import __version__
from ...models.errors import ConfigError
from ...models.io import atomic_write_text, probe_writable

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def ngspice_version_string(executable: str = "ngspice") -> str:
    """``ngspice -v`` first version line, or 'not installed'."""
    exe = shutil.which(executable)
    if exe is None:
        return "not installed"
    try:
        out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return f"unknown ({e})"
    m = re.search(r"ngspice-(\S+)", out)
    return m.group(1) if m else out.strip().splitlines()[0] if out.strip() else "unknown"


_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?[^;]*(?:;(.*))?")


def _requirements(distribution: str, extras: tuple[str, ...] = ()) -> list[tuple[str, list[str]]]:
    """(name, extras) of what ``distribution`` requires, without test or dev extras: its plain
    requirements, or those of one of ``extras``."""
    try:
        reqs = importlib.metadata.requires(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    out = []
    for req in reqs:
        m = _REQUIREMENT.match(req)
        if m is None:
            continue
        marker = m.group(3) or ""
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if (extra.group(1) in extras) if extra else not extras:
            out.append((m.group(1).lower(), [e.strip() for e in (m.group(2) or "").split(",")
                                             if e.strip()]))
    return out


def _dependencies() -> tuple[str, ...]:
    """The distributions rram-cosim requires (its installed metadata, pyproject.toml's
    ``dependencies``), with what their requested extras add (dask[distributed]: distributed)."""
    out: list[str] = []
    for name, extras in _requirements("rram-cosim"):
        out.append(name)
        if extras:
            out += [n for n, _ in _requirements(name, tuple(extras)) if n not in out]
    return tuple(dict.fromkeys(out))


#: The distributions the framework runs on; versions.json records each one's installed version.
DEPENDENCIES = _dependencies()


def _installed_version(distribution: str) -> str:
    """From the distribution's metadata, without importing it; 'not installed' if absent."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_state(folder: str | Path | None = None) -> dict[str, Any]:
    """``git_commit`` (HEAD) and ``git_dirty`` (uncommitted changes or untracked files) of the
    git checkout this package runs from; empty when it is not one (an installed wheel, no git).

    ``folder`` defaults to this module's folder; it counts only when git tracks files there
    (a package installed into a virtualenv inside some checkout does not).
    """
    folder = Path(folder) if folder is not None else Path(__file__).resolve().parent
    git = shutil.which("git")
    if git is None or not folder.is_dir():
        return {}

    def git_out(*args: str) -> str | None:
        try:
            out = subprocess.run([git, "-C", str(folder), *args], capture_output=True,
                                 text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None

    head = git_out("rev-parse", "HEAD")
    if not head or git_out("ls-files", "--error-unmatch", "--", ".") is None:
        return {}
    status = git_out("status", "--porcelain")
    if status is None:
        return {}
    return {"git_commit": head.strip(), "git_dirty": bool(status.strip())}


def versions() -> dict[str, Any]:
    """Versions of this package (and its git commit when run from a checkout), ngspice,
    Python and every dependency in :data:`DEPENDENCIES`."""
    return {"rram_cosim": __version__, **git_state(), "ngspice": ngspice_version_string(),
            "python": platform.python_version(),
            **{name: _installed_version(name) for name in DEPENDENCIES}}


#: The state file of a run folder: ``{"state": "running" | "complete", "command", "pid",
#: "host", "started", "finished"}``. Written first (running) and last (complete): a folder
#: whose state is not "complete" was killed, stopped by an error, or is still running.
STATE_FILE = "run.json"


@dataclass(frozen=True)
class RunDir:
    """A run's output folder, claimed by this process until :meth:`finish`.

    :meth:`create` takes the name's lock, refuses an existing run unless told to replace it
    (``overwrite``) or to continue it (``resume``, the sweep), and marks the folder as
    running; :meth:`finish` marks it complete, the last write of a run, and releases the lock.
    """

    path: Path
    command: str = ""
    lock: RunLock | None = field(default=None, compare=False, repr=False)

    @classmethod
    def create(cls, root: str | Path, name: str, *, command: str = "",
               overwrite: bool = False, resume: bool = False,
               root_option: str = "--out") -> RunDir:
        """Claim ``root/name`` for a run of ``command``.

        Parameters
        ----------
        root, name : the runs root and the run's name (its folder).
        command : the command that runs (recorded in ``run.json``; a resumed folder must be
            of the same command).
        overwrite : an existing folder is cleared first (only a run folder or an empty one).
        resume : an existing folder of the same command is continued in place.
        root_option : the option that names ``root`` (for messages).

        Raises
        ------
        ConfigError
            Bad name; the folder exists (without ``overwrite``/``resume``); another process
            holds its lock; the root cannot be written.
        """
        if not _NAME.match(name):
            raise ConfigError(
                f"Run name {name!r} must be 1-100 characters of letters, digits, '.', '_' or "
                "'-', starting with a letter or digit.")
        root = Path(root)
        p = root / name
        ensure_folder(root, f"the runs root ({root_option})")
        lock = RunLock.acquire(root / f".{name}.lock", p, command)
        try:
            _prepare(p, command, overwrite=overwrite, resume=resume)
            run = cls(p, command, lock)
            run._write_state("running")
        except BaseException:
            lock.release()
            raise
        return run

    def write_json(self, name: str, data: Any) -> Path:
        return atomic_write_text(self.path / name, json.dumps(data, indent=2, sort_keys=True,
                                                              default=_json_default) + "\n")

    def write_config(self, command: str, config: dict[str, Any]) -> Path:
        """Save the resolved configuration (replayable) and the tool versions."""
        self.write_json("versions.json", versions())
        return self.write_json("config.json", {"command": command, "config": config})

    def finish(self, **info: Any) -> Path:
        """Mark the run complete (its last write) and release the name's lock."""
        try:
            return self._write_state("complete", **info)
        finally:
            if self.lock is not None:
                self.lock.release()

    def _write_state(self, state: str, **info: Any) -> Path:
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        old = read_state(self.path) or {}
        data = {"state": state, "command": self.command, "pid": os.getpid(),
                "host": platform.node(),
                "started": old.get("started", now) if state != "running" else now, **info}
        if state == "complete":
            data["finished"] = now
        return self.write_json(STATE_FILE, data)


def read_state(folder: str | Path) -> dict[str, Any] | None:
    """A run folder's ``run.json``, or None (absent, unreadable: a folder written before run
    states existed, or not a run folder)."""
    try:
        d = json.loads((Path(folder) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def require_complete(folder: str | Path, what: str) -> None:
    """Raise :class:`ConfigError` unless ``folder`` holds a finished run (``what``: the
    option that named it, for the message). Folders written before run states existed are
    accepted."""
    folder = Path(folder)
    st = read_state(folder)
    if st is None or st.get("state") == "complete":
        return
    holder = RunLock.holder(folder.parent / f".{folder.name}.lock")
    why = (f"it is still running ({holder})" if holder else
           "it did not finish (killed, or stopped by an error), so its files may be partial")
    raise ConfigError(f"{what} {folder}: {why}. Use a finished run, or run this one again "
                      "under its name (its folder is then replaced).")


def _describe(folder: Path) -> str:
    st = read_state(folder)
    if st is not None:
        kind = "a finished" if st.get("state") == "complete" else "an unfinished"
        when = st.get("finished") or st.get("started") or "?"
        return f"{kind} '{st.get('command', '?')}' run ({when})"
    cmd = _command_of(folder)
    return f"a '{cmd}' run" if cmd else "files"


def _command_of(folder: Path) -> str | None:
    st = read_state(folder)
    if st is not None and st.get("command"):
        return str(st["command"])
    try:
        d = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return d.get("command") if isinstance(d, dict) else None


def _prepare(p: Path, command: str, *, overwrite: bool, resume: bool) -> None:
    """Make ``p`` a fresh (or, resuming, the same command's) run folder."""
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{p} is a file, not a run folder. Choose another --name.")
    if p.is_dir() and any(p.iterdir()):
        mine = _command_of(p)
        if resume and not overwrite and mine == command:
            return
        st = read_state(p)
        unfinished = st is not None and st.get("state") != "complete"
        if (unfinished and not overwrite and not resume and mine == command
                and not (p / "points").exists()):
            # the same command stopped before finishing (often at a bad input right after
            # claiming its folder): nothing of it is kept. Another command's folder, or one
            # holding finished sweep units, is never replaced without --overwrite.
            print(f"rram-cosim: note: replacing the unfinished '{mine}' run in {p}.",
                  file=sys.stderr)
            overwrite = True
        if not overwrite:
            raise ConfigError(
                f"{p} already exists and holds {_describe(p)}. Pass --overwrite to replace "
                "it (its files are removed first), or choose another --name.")
        if mine is None:
            raise ConfigError(
                f"{p} holds files that are not a rram-cosim run; --overwrite removes only run "
                "folders. Choose another --name.")
        try:
            shutil.rmtree(p)
        except OSError as e:
            raise ConfigError(f"Cannot clear {p} for --overwrite: {e.strerror or e}.") from e
    ensure_folder(p, "the run folder")


def ensure_folder(folder: str | Path, what: str) -> Path:
    """Create ``folder`` if needed and check that a file can be written there; raise one
    :class:`ConfigError` naming it otherwise (before any computation)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"Cannot write {what} {folder}: it is a file, not a folder.")
    try:
        probe_writable(folder)
    except OSError as e:
        raise ConfigError(f"Cannot write {what} {folder}: {e.strerror or e}. "
                          "Choose a writable folder.") from e
    return folder


def ensure_output_file(path: str | Path, option: str) -> Path:
    """Check, before any computation, that the output file ``path`` (given by ``option``)
    can be written: not a folder, its folder writable (made if missing)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; name the file to write.")
    try:
        ensure_folder(path.parent, "")
    except ConfigError as e:
        why = str(e.__cause__.strerror if isinstance(e.__cause__, OSError) else
                  f"{path.parent} is a file, not a folder")
        raise ConfigError(f"Cannot write {option} {path}: {why}. Choose another "
                          f"{option}.") from None
    return path


class RunLock:
    """An exclusive claim on a run name: ``flock`` on ``root/.<name>.lock``.

    The kernel drops the lock when its process ends, however it ends, so a lock left by a
    dead run is simply taken over; the file records the holder (PID, command, start) for the
    message another run gets. One process may claim a name again (a library caller that
    reruns after an error); the lock file is removed on release.
    """

    _held: ClassVar[dict[str, RunLock]] = {}

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def acquire(cls, path: Path, folder: Path, command: str) -> RunLock:
        key = str(path.resolve())
        if key in cls._held:
            return cls._held[key]
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e:
                raise ConfigError(f"Cannot write the runs root {path.parent}: "
                                  f"{e.strerror or e}. Choose a writable folder.") from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                holder = cls.holder(path, held=True)
                raise ConfigError(
                    f"The run folder {folder} is in use by another run ({holder}). Wait for "
                    "it to end, stop it, or choose another --name.") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed the file as we opened it: claim the new one
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": platform.node(),
                                 "command": command, "started": now}).encode())
        lock = cls(path, fd)
        cls._held[key] = lock
        return lock

    @staticmethod
    def holder(path: Path, held: bool = False) -> str | None:
        """Who holds the lock at ``path`` ("PID 123, 'classify' since ..."); None when no
        live process is recorded there. ``held``: the lock is known to be taken (then a
        process that ended is named too: processes it started still hold it)."""
        try:
            d = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            d = {}
        if not isinstance(d, dict) or not isinstance(d.get("pid"), int):
            return "a process that has not yet recorded itself" if held else None
        same_host = d.get("host") in (None, platform.node())
        alive = _alive(d["pid"]) if same_host else True
        if not alive and not held:
            return None
        text = f"PID {d['pid']}" + ("" if same_host else f" on {d['host']}")
        if d.get("command"):
            text += f", '{d['command']}'"
        if d.get("started"):
            text += f" since {d['started']}"
        if not alive:
            text += "; that process has ended, but processes it started still hold the lock"
        return text

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)
            self.fd = -1
            RunLock._held.pop(str(self.path.resolve()), None)

    @classmethod
    def release_all(cls) -> None:
        """Release every lock this process holds (the command line's exit)."""
        for lock in list(cls._held.values()):
            lock.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def load_config(path: str | Path, command: str) -> dict[str, Any]:
    """Read a saved ``config.json`` and check it belongs to ``command``."""
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"Cannot read the run configuration {path}: {e}.") from e
    if not isinstance(d, dict) or "config" not in d:
        raise ConfigError(f"{path} is not a run configuration (no 'config' key).")
    if d.get("command") != command:
        raise ConfigError(
            f"{path} is the configuration of a '{d.get('command')}' run, not '{command}'.")
    return d["config"]


def replay_note(path: str | Path) -> str | None:
    """A note when a ``config.json`` to replay belongs to a run that did not finish (it still
    describes that run: replaying it reruns what was stopped); None otherwise."""
    folder = Path(path).parent
    st = read_state(folder)
    if st is None or st.get("state") == "complete" or Path(path).name != "config.json":
        return None
    holder = RunLock.holder(folder.parent / f".{folder.name}.lock")
    why = f"is still running ({holder})" if holder else "did not finish"
    return f"{path} is the configuration of a run that {why}; replaying it."
