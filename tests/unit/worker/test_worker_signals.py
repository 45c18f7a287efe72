"""The whole worker (probes, signal handling, session) against fakes: readiness and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from worker_fakes import (
    PHONE_ID,
    SERIAL,
    FakeAdb,
    FakeAppium,
    FakeConnections,
    FakePhone,
    RecordingJobs,
    ScriptedTask,
    make_connection,
)

from phonefleet_testbed.waiting import wait_until
from phonefleet_worker.lifecycle import Lifecycle
from phonefleet_worker.settings import WorkerSettings
from phonefleet_worker.states import DeviceState
from phonefleet_worker.tasks import HeartbeatTask, Task, TaskContext
from phonefleet_worker.worker import Worker, handle_signals

GRACE_SECONDS = 5.0


def make_settings(**overrides: Any) -> WorkerSettings:
    """Settings for PHONE_ID with probes on a free loopback port."""
    values: dict[str, Any] = {
        "phone_id": PHONE_ID,
        "probe_host": "127.0.0.1",
        "probe_port": 0,
        "job_port": 0,
    }
    values.update(overrides)
    return WorkerSettings(**values)


def make_worker(task: Task | None = None, **settings: Any) -> tuple[Worker, FakeAdb, FakeAppium]:
    """A worker for PHONE_ID wired to fakes, with a real Lifecycle."""
    adb = FakeAdb({SERIAL: FakePhone()})
    appium = FakeAppium()
    worker = Worker(
        make_settings(**settings),
        adb=adb,
        appium=appium,
        lifecycle=Lifecycle(slice_seconds=0.05),
        connections=FakeConnections(make_connection()),
        jobs=RecordingJobs(task or HeartbeatTask(), interval=30.0),
    )
    return worker, adb, appium


def readyz(worker: Worker) -> int:
    """The status code of /readyz."""
    url = f"http://127.0.0.1:{worker.probes.port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def signal_when(condition: Any, *, what: str) -> list[float]:
    """In the background, wait for ``condition`` then SIGTERM this process; returns [sent at]."""
    sent: list[float] = []

    def watch() -> None:
        wait_until(condition, timeout=30, what=what)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()
    return sent


def test_sigterm_while_idle_quits_the_session_disconnects_and_exits_0() -> None:
    """Ready while idle; on SIGTERM: session quit, adb disconnected, exit 0 within the grace."""
    worker, adb, appium = make_worker()
    previous = signal.getsignal(signal.SIGTERM)
    was_ready: list[int] = []

    def ready_and_idle() -> bool:
        if worker.session.state is not DeviceState.IDLE:
            return False
        was_ready.append(readyz(worker))
        return True

    sent = signal_when(ready_and_idle, what="IDLE")

    code = worker.run()
    stopped_after = time.monotonic() - sent[0]

    assert code == 0
    assert was_ready == [200]
    assert stopped_after < GRACE_SECONDS
    assert worker.session.history[-1].reason == "received SIGTERM"
    assert appium.quits == 1
    assert adb.calls[-1] == ("disconnect", SERIAL)
    assert signal.getsignal(signal.SIGTERM) is previous


def test_sigterm_during_a_job_does_not_wait_for_the_job_and_still_cleans_up() -> None:
    """A task that keeps running is abandoned: the stop is signalled to it, exit 0 in the grace."""
    running = threading.Event()
    release = threading.Event()
    contexts: list[TaskContext] = []

    def stubborn_job(context: TaskContext) -> None:
        contexts.append(context)
        running.set()
        release.wait(30)

    worker, adb, appium = make_worker(task=ScriptedTask(on_run=stubborn_job))
    sent = signal_when(running.is_set, what="the job to start")
    try:
        code = worker.run()
        stopped_after = time.monotonic() - sent[0]
    finally:
        release.set()

    assert code == 0
    assert stopped_after < GRACE_SECONDS
    assert [t.target for t in worker.session.history][-2:] == [
        DeviceState.JOB_RUNNING,
        DeviceState.STOPPED,
    ]
    assert contexts[0].stop.is_set()
    assert appium.quits == 1
    assert adb.calls[-1] == ("disconnect", SERIAL)


def test_liveness_fails_when_the_main_loop_stops_turning() -> None:
    """/livez is true while beats are fresh and false once the loop is stuck too long."""
    clock = [0.0]
    lifecycle = Lifecycle(clock=lambda: clock[0])
    worker = Worker(
        make_settings(liveness_timeout=90),
        adb=FakeAdb({}),
        appium=FakeAppium(),
        lifecycle=lifecycle,
        connections=FakeConnections(None),
    )
    try:
        lifecycle.beat()
        clock[0] = 89.0
        assert worker.liveness()[0] is True

        clock[0] = 91.0
        assert worker.liveness() == (False, "main loop turned 91.0 s ago")
    finally:
        worker.probes.close()


def test_readiness_is_false_until_the_session_is_open() -> None:
    """/readyz reports the state and is false while waiting for the phone."""
    worker = Worker(
        make_settings(),
        adb=FakeAdb({}),
        appium=FakeAppium(),
        lifecycle=Lifecycle(),
        connections=FakeConnections(None),
    )
    try:
        ready, body = worker.readiness()
        assert ready is False
        assert json.loads(body)["state"] == "WAITING_FOR_PHONE"
    finally:
        worker.probes.close()


def test_signal_handlers_are_only_installed_on_the_main_thread() -> None:
    """Elsewhere (a test thread, an embedding program) the worker leaves signals alone."""
    lifecycle = Lifecycle()
    outcome: list[object] = []

    def in_thread() -> None:
        with handle_signals(lifecycle):
            outcome.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(10)

    assert outcome == [before]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_both_stop_signals_request_a_stop_with_their_name(signum: signal.Signals) -> None:
    """SIGTERM (kubelet) and SIGINT (Ctrl-C) both stop the worker, saying which one came."""
    lifecycle = Lifecycle()

    with handle_signals(lifecycle):
        signal.raise_signal(signum)

    assert lifecycle.stop_reason == f"received {signum.name}"
