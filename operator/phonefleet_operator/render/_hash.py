"""Stable digests of rendered objects, so the operator tells changed objects from unchanged ones."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["stable_hash"]

_HEX_LENGTH = 16


def stable_hash(value: Any) -> str:
    """The first 16 hex digits of the SHA-256 of ``value`` as canonical JSON (sorted, compact)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:_HEX_LENGTH]
