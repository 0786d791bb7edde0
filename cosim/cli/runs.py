"""Run folders: ``runs/<name>/`` with the resolved config, versions, tables, plots, report.md.

Every command writes one. The saved ``config.json`` replays the run (``--config FILE``).
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import __version__
from ...models.errors import ConfigError
from ...models.io import atomic_write_text

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


@dataclass(frozen=True)
class RunDir:
    """A run's output folder."""

    path: Path

    @classmethod
    def create(cls, root: str | Path, name: str) -> RunDir:
        if not _NAME.match(name):
            raise ConfigError(
                f"Run name {name!r} must be 1-100 characters of letters, digits, '.', '_' or "
                "'-', starting with a letter or digit.")
        p = Path(root) / name
        p.mkdir(parents=True, exist_ok=True)
        return cls(p)

    def write_json(self, name: str, data: Any) -> Path:
        return atomic_write_text(self.path / name, json.dumps(data, indent=2, sort_keys=True,
                                                              default=_json_default) + "\n")

    def write_config(self, command: str, config: dict[str, Any]) -> Path:
        """Save the resolved configuration (replayable) and the tool versions."""
        self.write_json("versions.json", versions())
        return self.write_json("config.json", {"command": command, "config": config})


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
