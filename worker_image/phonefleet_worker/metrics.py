"""The worker's Prometheus metrics, served on the probe port at ``/metrics``.

One worker drives one phone, so the pod is the unit: no label names a phone or a binding
(Prometheus adds the pod's own labels). States and task names are small fixed sets.

Hooks: ``entered`` and ``moved`` in the session (its start and its one transition method),
``MeteredJobs`` around the job source in the composition root, ``exposition`` in the probe
server.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from phonefleet_worker.states import DeviceState
from phonefleet_worker.tasks import JobSource, Task, TaskResult

__all__ = [
    "ADB_RECONNECTS",
    "APPIUM_RESTARTS",
    "RECOVERIES",
    "SESSION_STATE",
    "TASKS",
    "TASK_DURATION",
    "MeteredJobs",
    "entered",
    "exposition",
    "moved",
]

S = DeviceState

SESSION_STATE: Final = Gauge(
    "phonefleet_worker_session_state",
    "1 for the state the device session is in, 0 for the others.",
    ["state"],
)
RECOVERIES: Final = Counter(
    "phonefleet_worker_recoveries", "Times the session went to RECOVERING (something broke)."
)
ADB_RECONNECTS: Final = Counter(
    "phonefleet_worker_adb_reconnects", "adb connections made again after a recovery."
)
APPIUM_RESTARTS: Final = Counter(
    "phonefleet_worker_appium_session_restarts",
    "Appium sessions opened after the first one (each follows a lost session or device).",
)
TASKS: Final = Counter(
    "phonefleet_worker_tasks", "Tasks run, by task and outcome (ok, failed).", ["task", "outcome"]
)
TASK_DURATION: Final = Histogram(
    "phonefleet_worker_task_duration_seconds",
    "Wall time of one task, by task.",
    ["task"],
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0),
)

_opened = {"sessions": 0}


def entered(state: DeviceState) -> None:
    """The session is in ``state`` now (also its first state, before any transition)."""
    for each in DeviceState:
        SESSION_STATE.labels(state=each.value).set(1 if each is state else 0)


def moved(source: DeviceState, target: DeviceState) -> None:
    """Record one transition of the device session."""
    entered(target)
    if target is S.RECOVERING:
        RECOVERIES.inc()
    elif target is S.ADB_CONNECTING and source is S.RECOVERING:
        ADB_RECONNECTS.inc()
    elif target is S.APPIUM_READY:
        if _opened["sessions"]:
            APPIUM_RESTARTS.inc()
        _opened["sessions"] += 1


class MeteredJobs:
    """A job source that counts and times the tasks it hands out."""

    def __init__(self, inner: JobSource, *, tasks: Iterable[str] = ()) -> None:
        """``tasks``: names to export at zero from the start (so queries match before a run)."""
        self._inner = inner
        self._running: tuple[str, float] | None = None
        for name in tasks:
            for outcome in ("ok", "failed"):
                TASKS.labels(task=name, outcome=outcome)
            TASK_DURATION.labels(task=name)

    def next_job(self, now: float) -> Task | None:
        """The inner source's next task; its clock starts now."""
        job = self._inner.next_job(now)
        if job is not None:
            self._running = (job.name, now)
        return job

    def seconds_until_next(self, now: float) -> float:
        """As the inner source says."""
        return self._inner.seconds_until_next(now)

    def report(self, result: TaskResult, now: float) -> None:
        """Count the outcome and the time since the task was handed out, then pass it on."""
        if self._running is not None:
            name, started = self._running
            self._running = None
            TASKS.labels(task=name, outcome="ok" if result.ok else "failed").inc()
            TASK_DURATION.labels(task=name).observe(max(0.0, now - started))
        self._inner.report(result, now)


def exposition() -> tuple[bytes, str]:
    """The process's metrics in Prometheus' text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
