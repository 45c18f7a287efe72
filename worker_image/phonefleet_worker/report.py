"""What the worker says about itself beyond 200/503: a JSON ``/readyz`` body, a termination message.

The kubelet only reads the probe's status code; people and tools reading ``/readyz`` get the state
and the reason of the last move. A worker that FAILED (another phone's id at its address, no adb)
writes the reason to the container's termination message (``/dev/termination-log``), which the
kubelet copies into the pod's status (``lastState.terminated.message``), where the operator reads
it without reaching into the pod. Neither ever holds the ADB password (errors never do).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from phonefleet_worker.session import DeviceSession
from phonefleet_worker.states import READY_STATES

__all__ = ["TERMINATION_LOG", "readiness_report", "write_termination_message"]

TERMINATION_LOG = Path("/dev/termination-log")
# The kubelet keeps at most 4096 bytes of a termination message.
_MESSAGE_LIMIT = 4096


def readiness_report(session: DeviceSession) -> tuple[bool, str]:
    """Ready while the Appium session is open; the body is one JSON line saying where and why."""
    state = session.state
    ready = state in READY_STATES
    last = session.history[-1].reason if session.history else ""
    return ready, json.dumps({"ready": ready, "state": state.value, "reason": last})


def write_termination_message(session: DeviceSession, path: Path = TERMINATION_LOG) -> bool:
    """Write why the session FAILED, as JSON ``{"reason", "message"}``; False when it did not fail
    or there is no termination log to write (a worker run outside Kubernetes)."""
    failure = session.failure
    # The kubelet creates the file; outside a pod (even as root) nothing is created in /dev.
    if failure is None or not path.is_file():
        return False
    text = json.dumps({"reason": type(failure).__name__, "message": str(failure)})
    with contextlib.suppress(OSError):
        path.write_text(text[:_MESSAGE_LIMIT])
        return True
    return False
