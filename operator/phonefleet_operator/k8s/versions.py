"""Ordering two versions of one object by resourceVersion (etcd revisions on this API server)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["newer"]


def newer(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether ``old`` is a later version than ``new`` (resourceVersions of one object grow)."""
    try:
        return int(old["metadata"]["resourceVersion"]) > int(new["metadata"]["resourceVersion"])
    except (KeyError, ValueError, TypeError):
        return False
