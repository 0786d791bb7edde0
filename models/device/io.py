"""Device parameter files: the breakdown parameters ``rram-cosim fit-device`` writes and
``rram-cosim form --device-params FILE`` reads (JSON, written atomically)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io import atomic_write_text
from ..params import BreakdownParams, from_dict, to_dict

__all__ = ["load_device_params", "save_device_params"]

_FILE_KIND = "rram-cosim device parameters"


def save_device_params(path: str | Path, params: BreakdownParams,
                       meta: dict[str, Any] | None = None) -> Path:
    """Write a parameter file that ``form --device-params`` and ``fit-device`` read (atomic)."""
    data = {"kind": _FILE_KIND, "breakdown_params": to_dict(params), "meta": meta or {}}
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def load_device_params(path: str | Path) -> BreakdownParams:
    """Read a device parameter file (or a bare JSON object of BreakdownParams fields)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"Cannot read the device parameter file {path}: {e}.") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a device parameter file (a JSON object).")
    if "breakdown_params" in data:
        data = data["breakdown_params"]
    return from_dict(BreakdownParams, data)
