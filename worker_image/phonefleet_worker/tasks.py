"""Tasks: the jobs a worker runs through its Appium session, and where the next one comes from.

A ``Task`` gets a ``TaskContext`` (the driver, the device it drives, a stop event to honour) and
returns a ``TaskResult``. A ``JobSource`` hands the idle worker its next task and hears how it went;
today's source repeats one task on an interval (``--task heartbeat``). Posting plugs in later as
another task (a video and a caption in its fields) and another source (a queue of posting jobs that
acknowledges each result), without touching the device session.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from appium.webdriver.webdriver import WebDriver

__all__ = [
    "TASKS",
    "Device",
    "HeartbeatTask",
    "JobSource",
    "PeriodicJobSource",
    "Task",
    "TaskContext",
    "TaskResult",
    "build_task",
]


@dataclasses.dataclass(frozen=True)
class Device:
    """The phone a session drives: its Geelark id (checked on the device) and its adb serial."""

    phone_id: str
    serial: str


@dataclasses.dataclass(frozen=True)
class TaskContext:
    """Everything a task may use."""

    driver: WebDriver
    device: Device
    stop: threading.Event
    """Set when the worker is stopping: long tasks check it between steps and return early."""


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """What a task reports back: whether it did its job, and facts for the log or a job queue."""

    task: str
    ok: bool
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class Task(Protocol):
    """One job run through the Appium session.

    Raise to fail: errors of the session or device (see ``appium_gateway.classify_failure``) send
    the worker to RECOVERING, any other exception fails only this job.
    """

    @property
    def name(self) -> str:
        """A short name for logs and results."""
        ...

    def run(self, context: TaskContext) -> TaskResult:
        """Do the job."""
        ...


class HeartbeatTask:
    """Proves the session answers: asks the device, through UiAutomator2, for its window size."""

    name = "heartbeat"

    def run(self, context: TaskContext) -> TaskResult:
        """Read the window size."""
        size = context.driver.get_window_size()
        return TaskResult(
            self.name,
            ok=True,
            detail={"width": size["width"], "height": size["height"]},
        )


TASKS: Mapping[str, Callable[[], Task]] = {"heartbeat": HeartbeatTask}
"""The tasks ``--task`` can name."""


def build_task(name: str) -> Task:
    """Make the task called ``name``; raise ValueError for a name not in TASKS."""
    try:
        factory = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(sorted(TASKS))}") from None
    return factory()


class JobSource(Protocol):
    """Hands the idle worker its next task."""

    def next_job(self, now: float) -> Task | None:
        """The task to run now, or None to stay idle."""
        ...

    def seconds_until_next(self, now: float) -> float:
        """How long the worker may stay idle before asking again."""
        ...

    def report(self, result: TaskResult, now: float) -> None:
        """Hear how the last task handed out went."""
        ...


class PeriodicJobSource:
    """Runs one task right away, then again every ``interval`` seconds after each result."""

    def __init__(self, task: Task, *, interval: float) -> None:
        self._task = task
        self._interval = interval
        self._due = float("-inf")

    def next_job(self, now: float) -> Task | None:
        """The task when it is due."""
        return self._task if now >= self._due else None

    def seconds_until_next(self, now: float) -> float:
        """Time left until the task is due."""
        return max(0.0, self._due - now)

    def report(self, result: TaskResult, now: float) -> None:
        """Schedule the next run."""
        self._due = now + self._interval
