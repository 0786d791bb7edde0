"""Run folders: ``runs/<name>/`` with the resolved config, versions, tables, plots, report.md.

Every command writes one. The saved ``config.json`` replays the run (``--config FILE``).
"""

from __future__ import annotations

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


def versions() -> dict[str, str]:
    """Versions of this package, ngspice, numpy, scipy, pandas and Python."""
    import numpy
    import pandas
    import scipy

    return {"rram_cosim": __version__, "ngspice": ngspice_version_string(),
            "numpy": numpy.__version__, "scipy": scipy.__version__,
            "pandas": pandas.__version__, "python": platform.python_version()}


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
