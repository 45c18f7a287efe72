"""The worker's exception tree: every fault the device session reacts to, and how.

    WorkerError
    ├── FatalError                 the worker must stop (exit 1) and never drive the device
    │   ├── IdentityMismatch       the device (or the mounted connection data) is another phone
    │   └── AdbNotInstalled        the adb binary is missing: no retry can fix that
    └── RecoverableError           RECOVERING: back off, reconnect, glogin again, new session
        ├── AdbError               the adb binary failed or timed out
        │   ├── AdbConnectFailed   ``adb connect`` failed, or the device never reached ``device``
        │   ├── DeviceLost         the device is offline, unauthorized or gone
        │   ├── GloginFailed       Geelark's on-device login refused the password
        │   └── GloginRequired     the device answered "you should run glogin" (login expired)
        ├── AppiumError            the Appium side failed
        │   ├── AppiumUnavailable  the server did not answer or could not create a session
        │   └── SessionLost        the session died: deleted, timed out, UiAutomator2 crashed
        └── TaskHung               a task passed its deadline: cancelled, the session reopened

A task may raise anything else: that fails the job, not the device, and the worker stays IDLE.
Messages never contain the ADB password (``adb`` redacts it before raising).
"""

from __future__ import annotations

__all__ = [
    "AdbConnectFailed",
    "AdbError",
    "AdbNotInstalled",
    "AppiumError",
    "AppiumUnavailable",
    "DeviceLost",
    "FatalError",
    "GloginFailed",
    "GloginRequired",
    "IdentityMismatch",
    "RecoverableError",
    "SessionLost",
    "TaskHung",
    "WorkerError",
]


class WorkerError(Exception):
    """Base of every error the worker raises on purpose."""


class FatalError(WorkerError):
    """A fault no retry can fix: the worker stops with a non-zero exit code."""


class IdentityMismatch(FatalError):
    """The phone reached is not the phone the worker was given."""

    def __init__(self, *, expected: str, found: str, where: str) -> None:
        super().__init__(
            f"Refused to drive {where}: it reports phone id {found!r}, "
            f"but this worker was started for phone id {expected!r}"
        )
        self.expected = expected
        self.found = found
        self.where = where


class AdbNotInstalled(FatalError):
    """The adb binary could not be executed."""


class RecoverableError(WorkerError):
    """A fault that reconnecting may fix: the session goes to RECOVERING."""


class AdbError(RecoverableError):
    """The adb binary failed, timed out or printed something unexpected."""


class AdbConnectFailed(AdbError):
    """``adb connect`` failed, or the device did not reach the ``device`` state in time."""


class DeviceLost(AdbError):
    """The adb server lists the device as offline or unauthorized, or not at all."""


class GloginFailed(AdbError):
    """``glogin <password>`` did not log in."""


class GloginRequired(AdbError):
    """The device refused a shell command until ``glogin`` runs again."""


class AppiumError(RecoverableError):
    """The Appium server or its session failed."""


class AppiumUnavailable(AppiumError):
    """The Appium server is not ready or could not create a session."""


class SessionLost(AppiumError):
    """The Appium session is gone (deleted, timed out, or its UiAutomator2 server died)."""


class TaskHung(RecoverableError):
    """A task passed its deadline: it was cancelled and the session is torn down and reopened."""
