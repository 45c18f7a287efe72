"""Why a worker pod is not ready, when its worker said so: the termination message it left.

A worker that refuses to drive the device it reached (another phone's id at its address) or
cannot run (no adb) exits 1 and writes ``{"reason", "message"}`` to its termination message; the
kubelet copies it into the container's status. Reading it from the pod the operator already
watches turns a generic "not ready" into the worker's own words, without reaching into the pod.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from phonefleet_operator.constants import CONTAINER_WORKER

__all__ = ["WorkerFailure", "worker_failure"]

# Reasons are CamelCase words in conditions; a message from the pod is cut to a readable size.
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class WorkerFailure:
    """The worker's reason (e.g. ``IdentityMismatch``) and its one-line message."""

    reason: str
    message: str


def _terminated(status: dict[str, Any]) -> dict[str, Any]:
    for key in ("state", "lastState"):
        terminated = (status.get(key) or {}).get("terminated")
        if terminated and terminated.get("message"):
            return dict(terminated)
    return {}


def worker_failure(pod: dict[str, Any]) -> WorkerFailure | None:
    """The worker container's last failure as it reported it, or None if it reported none."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        if status.get("name") != CONTAINER_WORKER:
            continue
        text = _terminated(status).get("message", "")
        try:
            report = json.loads(text)
        except ValueError:
            return None
        if not isinstance(report, dict):
            return None
        reason = str(report.get("reason", ""))
        if not reason.isidentifier():
            return None
        return WorkerFailure(reason, str(report.get("message", ""))[:_MAX_MESSAGE])
    return None
