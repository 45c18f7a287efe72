"""The device session's states and the transitions allowed between them.

    WAITING_FOR_PHONE -> ADB_CONNECTING -> ADB_READY -> APPIUM_READY -> IDLE <-> JOB_RUNNING
    any running state -> RECOVERING (lost device, dead session, new connection data, any fault)
    RECOVERING -> WAITING_FOR_PHONE (no connection data) | ADB_CONNECTING (reconnect)
    any running state -> STOPPED (SIGTERM)
    WAITING_FOR_PHONE | ADB_CONNECTING | IDLE | JOB_RUNNING | RECOVERING -> FAILED
        (the device or the connection data names another phone; adb is missing)

STOPPED and FAILED are terminal. Readiness (``/readyz``) holds from APPIUM_READY on.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = ["READY_STATES", "TERMINAL_STATES", "TRANSITIONS", "DeviceState", "is_allowed"]


class DeviceState(enum.Enum):
    """Where the worker is with its phone."""

    WAITING_FOR_PHONE = "WAITING_FOR_PHONE"
    """No usable connection data in the mounted Secret yet."""
    ADB_CONNECTING = "ADB_CONNECTING"
    """Connecting adb, waiting for the device, glogin, checking the phone's identity."""
    ADB_READY = "ADB_READY"
    """The device is this phone and takes commands; the Appium session is being created."""
    APPIUM_READY = "APPIUM_READY"
    """The Appium session is open."""
    IDLE = "IDLE"
    """Waiting for the next job; watching the device and the connection data."""
    JOB_RUNNING = "JOB_RUNNING"
    """A task drives the phone."""
    RECOVERING = "RECOVERING"
    """Something broke: tear down, back off, then connect again."""
    STOPPED = "STOPPED"
    """Stopped on request (exit 0)."""
    FAILED = "FAILED"
    """Stopped for good: the worker must not drive this device (exit 1)."""


S = DeviceState

TRANSITIONS: Mapping[DeviceState, frozenset[DeviceState]] = {
    S.WAITING_FOR_PHONE: frozenset({S.ADB_CONNECTING, S.RECOVERING, S.STOPPED, S.FAILED}),
    S.ADB_CONNECTING: frozenset({S.ADB_READY, S.RECOVERING, S.STOPPED, S.FAILED}),
    S.ADB_READY: frozenset({S.APPIUM_READY, S.RECOVERING, S.STOPPED}),
    S.APPIUM_READY: frozenset({S.IDLE, S.RECOVERING, S.STOPPED}),
    S.IDLE: frozenset({S.JOB_RUNNING, S.RECOVERING, S.STOPPED, S.FAILED}),
    S.JOB_RUNNING: frozenset({S.IDLE, S.RECOVERING, S.STOPPED, S.FAILED}),
    S.RECOVERING: frozenset({S.WAITING_FOR_PHONE, S.ADB_CONNECTING, S.STOPPED, S.FAILED}),
    S.STOPPED: frozenset(),
    S.FAILED: frozenset(),
}
"""For each state, the states it may move to."""

READY_STATES = frozenset({S.APPIUM_READY, S.IDLE, S.JOB_RUNNING})
"""States in which the worker reports ready: the session is open."""

TERMINAL_STATES = frozenset({S.STOPPED, S.FAILED})
"""States the worker never leaves."""


def is_allowed(source: DeviceState, target: DeviceState) -> bool:
    """True when the state machine may move from ``source`` to ``target``."""
    return target in TRANSITIONS[source]
