"""Seeds and content keys of a sweep, from parameters alone (never from execution order)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["content_hash", "derive_seed"]


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=repr)


def content_hash(obj: Any) -> str:
    """SHA-256 (hex) of ``obj``'s canonical JSON: the key of a cached result."""
    return hashlib.sha256(_canonical(obj).encode()).hexdigest()


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from the parts' canonical JSON (order of execution plays no role)."""
    return int.from_bytes(hashlib.sha256(_canonical(list(parts)).encode()).digest()[:8],
                          "big") >> 1
