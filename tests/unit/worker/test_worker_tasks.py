"""Tasks, the heartbeat and the periodic job source."""

from __future__ import annotations

import threading
from typing import cast

import pytest
from appium.webdriver.webdriver import WebDriver
from worker_fakes import PHONE_ID, SERIAL, FakeDriver

from phonefleet_worker.tasks import (
    TASKS,
    Device,
    HeartbeatTask,
    PeriodicJobSource,
    TaskContext,
    TaskResult,
    build_task,
)


def make_context(driver: FakeDriver | None = None) -> TaskContext:
    """A task context for PHONE_ID with a fake driver."""
    return TaskContext(
        driver=cast(WebDriver, driver or FakeDriver("session-1")),
        device=Device(PHONE_ID, SERIAL),
        stop=threading.Event(),
    )


def test_the_heartbeat_reports_the_window_size_the_device_answered() -> None:
    """The heartbeat asks the device through the session and returns what it said."""
    result = HeartbeatTask().run(make_context())

    assert result == TaskResult("heartbeat", ok=True, detail={"width": 720, "height": 1280})


def test_the_heartbeat_lets_session_errors_through() -> None:
    """A dead session surfaces as the driver's error, for the session to classify."""
    driver = FakeDriver("session-1")
    driver.failure = RuntimeError("instrumentation process is not running")

    with pytest.raises(RuntimeError, match="instrumentation"):
        HeartbeatTask().run(make_context(driver))


def test_tasks_are_built_by_name() -> None:
    """--task names a task in TASKS; heartbeat is there."""
    assert isinstance(build_task("heartbeat"), HeartbeatTask)
    assert set(TASKS) == {"heartbeat"}


def test_an_unknown_task_name_is_refused_with_the_known_ones() -> None:
    """A typo in --task is an error that lists what exists."""
    with pytest.raises(ValueError, match="unknown task 'post'; known: heartbeat"):
        build_task("post")


def test_the_periodic_source_hands_out_its_task_at_once_then_on_its_interval() -> None:
    """First run right away; the next one ``interval`` seconds after the last result."""
    task = HeartbeatTask()
    jobs = PeriodicJobSource(task, interval=30.0)

    assert jobs.next_job(0.0) is task
    jobs.report(TaskResult("heartbeat", ok=True), 5.0)
    assert jobs.next_job(34.9) is None
    assert jobs.seconds_until_next(20.0) == pytest.approx(15.0)
    assert jobs.next_job(35.0) is task
