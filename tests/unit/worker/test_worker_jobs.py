"""The worker's side of PhoneJobs: task plugins, the job desk (fencing) and the job endpoint."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import EntryPoint
from typing import Any

import pytest
import requests
from pydantic import BaseModel, ConfigDict
from worker_fakes import PHONE_ID, FakePacer, RecordingJobs, make_connection, make_world

from phonefleet_testbed.waiting import wait_for
from phonefleet_worker.builtin_tasks import UiSteps, UiStepsParams
from phonefleet_worker.job_desk import AttemptRequest, JobDesk
from phonefleet_worker.job_server import JobApi, JobServer
from phonefleet_worker.lifecycle import CallTimedOut, Lifecycle
from phonefleet_worker.registry import TaskRegistry
from phonefleet_worker.session import DeviceSession
from phonefleet_worker.states import DeviceState
from phonefleet_worker.task_api import (
    AccountTaskError,
    AttemptInfo,
    JobContext,
    JobTask,
    MediaFile,
    PermanentTaskError,
)
from phonefleet_worker.tasks import Device, HeartbeatTask, TaskContext, TaskResult

TOKEN = "job-token-for-tests"
NOT_AFTER = time.time() + 3600  # one value, so a redelivery carries exactly the same data


class PostParams(BaseModel):
    """A posting task's params."""

    model_config = ConfigDict(extra="forbid")
    caption: str
    fail: str | None = None


class FakePost(JobTask[PostParams]):
    """Posts (in memory); remembers what it posted so ``is_done`` can tell."""

    Params = PostParams
    description = "a fake post"
    deadline_seconds = 30.0

    def __init__(self) -> None:
        self.posted: dict[str, str] = {}
        self.runs = 0
        self.hang = threading.Event()
        self.hung = False

    def media(self, params: PostParams) -> list[MediaFile]:
        return []

    def is_done(self, context: JobContext, params: PostParams) -> Mapping[str, Any] | None:
        url = self.posted.get(context.attempt.job_uid)
        return {"url": url} if url else None

    def run(self, context: JobContext, params: PostParams) -> Mapping[str, Any]:
        self.runs += 1
        if params.fail == "permanent":
            raise PermanentTaskError("captcha")
        if params.fail == "account":
            raise AccountTaskError("account suspended")
        if params.fail == "hang":
            self.hung = True
            context.cancel.wait(30)  # a task that ignores everything until it is cancelled
            return {}
        if params.fail == "stubborn":
            self.hung = True
            self.hang.wait(30)  # a task that does not even watch its cancel event
            return {}
        if params.fail == "watchful":
            self.hung = True
            context.session.stop.wait(30)  # a task that gives up as the worker stops
            raise RuntimeError("cancelled while waiting for the share button")
        if params.fail == "lose-answer":
            self.posted[context.attempt.job_uid] = "https://example.invalid/p/1"
            raise RuntimeError("the answer was lost")
        url = f"https://example.invalid/p/{self.runs}"
        self.posted[context.attempt.job_uid] = url
        return {"url": url}


def registry(post: FakePost | None = None) -> TaskRegistry:
    """Built-ins plus the fake post task."""
    loaded = TaskRegistry.from_entry_points()
    return TaskRegistry({**loaded.tasks, "fake-post": post or FakePost()})


def attempt(number: int = 1, **overrides: Any) -> AttemptRequest:
    """An attempt of job farm/acme."""
    values: dict[str, Any] = {
        "job": "farm/acme",
        "job_uid": "uid-acme",
        "number": number,
        "id": f"attempt-{number}",
        "task": "fake-post",
        "params": {"caption": "hi"},
        "deadline_seconds": 60,
        "not_after": NOT_AFTER,
    }
    return AttemptRequest(**{**values, **overrides})


# ------------------------------------------------------------------ registry


def test_the_builtin_tasks_are_registered_through_entry_points() -> None:
    """heartbeat and ui-steps come from the phonefleet.tasks group, like any plugin."""
    tasks = TaskRegistry.from_entry_points().tasks

    assert {"heartbeat", "ui-steps"} <= set(tasks)


def test_a_broken_plugin_is_reported_and_the_others_still_load() -> None:
    """An entry point that fails to import is listed as broken; the good one is registered."""
    found = [
        EntryPoint("heartbeat", "phonefleet_worker.builtin_tasks:HeartbeatJob", "phonefleet.tasks"),
        EntryPoint("broken", "no_such_module:Task", "phonefleet.tasks"),
        EntryPoint("not-a-task", "phonefleet_worker.tasks:HeartbeatTask", "phonefleet.tasks"),
    ]

    loaded = TaskRegistry.from_entry_points(found)

    assert list(loaded.tasks) == ["heartbeat"]
    assert set(loaded.broken) == {"broken", "not-a-task"}


def test_the_catalog_carries_each_tasks_params_schema_and_deadline() -> None:
    """GET /v1/tasks answers what the operator needs to check a job before delivering it."""
    catalog = registry().catalog()["tasks"]

    assert catalog["fake-post"]["deadlineSeconds"] == 30.0
    assert catalog["fake-post"]["paramsSchema"]["required"] == ["caption"]
    assert "steps" in catalog["ui-steps"]["paramsSchema"]["properties"]


@pytest.mark.parametrize(
    ("task", "params", "expected"),
    [
        ("fake-post", {"caption": "x"}, None),
        ("post-video", {}, "unknown task 'post-video'"),
        ("fake-post", {}, "caption: Field required"),
        ("fake-post", {"caption": "x", "colour": "red"}, "colour: Extra inputs"),
        ("ui-steps", {"steps": [{"action": "click"}]}, "click needs 'by' and 'value'"),
    ],
    ids=["fits", "unknown-task", "missing-param", "extra-param", "ui-step-incomplete"],
)
def test_problems_name_the_task_and_the_field(
    task: str, params: dict[str, Any], expected: str | None
) -> None:
    """Unknown tasks and params failing the task's schema get one clear line."""
    problem = registry().problem(task, params)

    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert expected in problem


# ------------------------------------------------------------------ the desk (fencing)


def test_one_attempt_at_a_time_and_redelivery_answers_the_same_record() -> None:
    """A second attempt is refused while one is open; the same id again is the same record."""
    desk = JobDesk(registry())

    assert desk.offer(attempt(1))[0] == 202
    assert desk.offer(attempt(1)) == (200, desk.lookup("attempt-1"))
    status, body = desk.offer(attempt(2))
    assert status == 409
    assert body["current"]["id"] == "attempt-1"


def test_a_redelivered_id_with_other_data_is_refused() -> None:
    """An attempt id names one delivery; reusing it for other params is a conflict."""
    desk = JobDesk(registry())
    desk.offer(attempt(1))

    assert desk.offer(attempt(1, params={"caption": "other"}))[0] == 409


def test_bad_input_is_refused_before_anything_runs() -> None:
    """Unknown task or bad params: 422 Permanent, and the desk stays free."""
    desk = JobDesk(registry())

    status, body = desk.offer(attempt(1, task="nope"))

    assert (status, body["errorClass"]) == (422, "Permanent")
    assert desk.lookup("attempt-1") is None
    assert desk.offer(attempt(2))[0] == 202


def run_world(desk: JobDesk, pacer: FakePacer | None = None) -> DeviceSession:
    """A fake-phone session taking its jobs from ``desk``, stepped to IDLE."""
    world = make_world()
    session = DeviceSession(
        phone_id=PHONE_ID,
        adb=world.adb,
        appium=world.appium,
        connections=world.connections,
        jobs=desk,
        pacer=pacer or world.pacer,
        backoff=world.session._backoff,
        timings=world.timings,
        hold=desk,
    )
    for _ in range(20):
        if session.state is DeviceState.IDLE:
            break
        session.step()
    assert session.state is DeviceState.IDLE
    return session


def step_until_final(session: DeviceSession, desk: JobDesk, attempt_id: str) -> dict[str, Any]:
    """Step the session until the attempt has a final record."""
    for _ in range(20):
        record = desk.lookup(attempt_id)
        assert record is not None
        if record["state"] not in ("Queued", "Running"):
            return record
        session.step()
    raise AssertionError(f"attempt {attempt_id} never ended: {desk.lookup(attempt_id)}")


def test_a_delivered_attempt_runs_once_and_records_the_tasks_result() -> None:
    """The session runs the queued attempt first; its result lands on that attempt only."""
    post = FakePost()
    desk = JobDesk(registry(post), idle=RecordingJobs(HeartbeatTask(), interval=30.0))
    session = run_world(desk)
    desk.offer(attempt(1))

    record = step_until_final(session, desk, "attempt-1")

    assert record["state"] == "Succeeded"
    assert record["result"] == {"url": "https://example.invalid/p/1"}
    assert (post.runs, desk.runs) == (1, ["attempt-1"])


@pytest.mark.parametrize(
    ("fail", "error_class"),
    [("permanent", "Permanent"), ("account", "Account"), ("lose-answer", "Retryable")],
)
def test_task_errors_carry_their_class(fail: str, error_class: str) -> None:
    """PermanentTaskError, AccountTaskError and any other exception map to the three classes."""
    desk = JobDesk(registry())
    session = run_world(desk)
    desk.offer(attempt(1, params={"caption": "x", "fail": fail}))

    record = step_until_final(session, desk, "attempt-1")

    assert (record["state"], record["errorClass"]) == ("Failed", error_class)
    assert session.state is DeviceState.IDLE


def test_the_next_attempt_asks_is_done_first_and_does_not_post_twice() -> None:
    """The post happened but its answer was lost: attempt 2 ends AlreadyDone with the URL."""
    post = FakePost()
    desk = JobDesk(registry(post))
    session = run_world(desk)
    desk.offer(attempt(1, params={"caption": "x", "fail": "lose-answer"}))
    step_until_final(session, desk, "attempt-1")

    desk.offer(attempt(2))
    record = step_until_final(session, desk, "attempt-2")

    assert record["state"] == "AlreadyDone"
    assert record["result"] == {"url": "https://example.invalid/p/1"}
    assert post.runs == 1


def test_an_idle_session_looks_for_delivered_attempts_every_half_second() -> None:
    """The idle task is due in 30 s, yet the desk has the session look again within 0.5 s: a
    delivered attempt starts then, instead of losing the wait to its deadline."""
    idle = RecordingJobs(HeartbeatTask(), interval=30.0)
    desk = JobDesk(registry(), idle=idle)
    idle.report(TaskResult("heartbeat", ok=True), 0.0)  # it ran at 0: the next is due at 30

    assert desk.seconds_until_next(0.0) == 0.5
    desk.offer(attempt(1))
    assert desk.seconds_until_next(0.0) == 0.0


def test_an_attempt_past_not_after_never_starts() -> None:
    """A queued attempt whose notAfter passed ends TimedOut without running."""
    post = FakePost()
    desk = JobDesk(registry(post))
    session = run_world(desk)
    desk.offer(attempt(1, not_after=time.time() - 1))

    record = step_until_final(session, desk, "attempt-1")

    assert record["state"] == "TimedOut"
    assert post.runs == 0


class RealCallPacer(FakePacer):
    """The fake clock for waits, but real threads and deadlines for calls (as Lifecycle does)."""

    def __init__(self) -> None:
        super().__init__()
        self._lifecycle = Lifecycle(slice_seconds=0.02)

    def call(
        self,
        func: Any,
        *,
        name: str,
        deadline: float | None = None,
        abandon: Callable[[], str | None] | None = None,
    ) -> Any:
        return self._lifecycle.call(func, name=name, deadline=deadline, abandon=abandon)


def test_a_hung_task_is_cancelled_at_its_deadline_and_the_session_reopens() -> None:
    """Past its deadline the attempt ends TimedOut, the task is cancelled, and the worker goes
    through RECOVERING to a fresh Appium session, ready for the next job."""
    post = FakePost()
    desk = JobDesk(registry(post))
    session = run_world(desk, RealCallPacer())
    opened = len(session._appium.opened)  # type: ignore[attr-defined]
    desk.offer(attempt(1, params={"caption": "x", "fail": "hang"}, deadline_seconds=0.2))

    record = step_until_final(session, desk, "attempt-1")
    assert record["state"] == "TimedOut"
    assert post.hung
    assert session.state is DeviceState.RECOVERING
    for _ in range(20):
        if session.state is DeviceState.IDLE:
            break
        session.step()

    assert session.state is DeviceState.IDLE
    assert len(session._appium.opened) == opened + 1  # type: ignore[attr-defined]
    assert desk.offer(attempt(2))[0] == 202


def test_after_a_hung_task_an_appium_that_never_answers_does_not_hold_the_main_loop() -> None:
    """The hung task's Appium hangs the quit too: recovery gives the quit up at the cleanup
    deadline and reconnects, so the main loop (and the liveness beat) turns on. Before, the quit
    waited for the Appium client's own timeout (600 s) with the beat stopped."""
    desk = JobDesk(registry(FakePost()))
    session = run_world(desk, RealCallPacer())
    session._timings = dataclasses.replace(session._timings, cleanup_timeout=0.2)
    release = threading.Event()
    quits: list[str] = []

    def hung_quit() -> None:
        quits.append("asked")
        release.wait()

    session._appium.quit_session = hung_quit  # type: ignore[attr-defined]
    desk.offer(attempt(1, params={"caption": "x", "fail": "hang"}, deadline_seconds=0.2))
    assert step_until_final(session, desk, "attempt-1")["state"] == "TimedOut"
    assert session.state is DeviceState.RECOVERING

    stepper = threading.Thread(target=session.step, daemon=True)
    stepper.start()
    stepper.join(30)  # a deadline for the test, not a timing: the quit gives up after 0.2 s
    release.set()

    assert not stepper.is_alive(), "the recovery still waits for the hung quit"
    assert quits == ["asked"]
    assert session.state is DeviceState.ADB_CONNECTING


class Ticks:
    """A monotonic clock the test moves by hand (the desk's lease clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_question_of_the_operator_renews_the_lease_and_a_cancel_does_not() -> None:
    """An attempt with a 10 s lease: a GET at 8 s renews it (alive at 15 s); with no question
    after that it has run out at 18.5 s. A cancel is no question: it never renews."""
    ticks = Ticks()
    desk = JobDesk(registry(), clock=ticks)
    desk.offer(attempt(1, lease_seconds=10))
    task = desk.next_job(0.0)
    assert task is not None
    reason = task.abandon_reason  # type: ignore[attr-defined]

    ticks.now += 8
    desk.lookup("attempt-1", renew=True)
    ticks.now += 7
    assert reason() is None
    ticks.now += 3.5
    assert reason() == "its lease ran out (no word from the operator for 10 s)"

    fresh = JobDesk(registry(), clock=ticks)
    fresh.offer(attempt(1, lease_seconds=10))
    ticks.now += 6
    fresh.cancel("attempt-9")  # not this attempt; and a cancel of it renews nothing either
    fresh.lookup("attempt-1")  # a read of the worker's own, not the operator's question
    ticks.now += 5
    assert fresh.next_job(0.0) is None
    record = fresh.lookup("attempt-1")
    assert record is not None
    assert record["state"] == "TimedOut"
    assert "lease ran out" in record["message"]


def test_an_attempt_without_a_lease_runs_to_its_deadline_unasked() -> None:
    """An operator that sends no lease (an older one) gets the old behaviour: no lease."""
    ticks = Ticks()
    desk = JobDesk(registry(), clock=ticks)
    desk.offer(attempt(1))
    task = desk.next_job(0.0)
    ticks.now += 3600
    assert task is not None
    assert task.abandon_reason() is None  # type: ignore[attr-defined]


def test_a_lapsed_lease_is_not_renewed_by_a_late_question() -> None:
    """Once the lease has run out the operator may already count the attempt over: a late GET
    cannot bring it back."""
    ticks = Ticks()
    desk = JobDesk(registry(), clock=ticks)
    desk.offer(attempt(1, lease_seconds=10))
    task = desk.next_job(0.0)
    assert task is not None
    ticks.now += 11
    desk.lookup("attempt-1", renew=True)
    assert task.abandon_reason() is not None  # type: ignore[attr-defined]


def lapse_a_running_attempt(post: FakePost, desk: JobDesk) -> tuple[DeviceSession, int]:
    """A worker whose running attempt's 0.2 s lease ran out; (its session, sessions opened)."""
    session = run_world(desk, RealCallPacer())
    opened = len(session._appium.opened)  # type: ignore[attr-defined]
    desk.offer(attempt(1, params={"caption": "x", "fail": "stubborn"}, lease_seconds=0.2))
    record = step_until_final(session, desk, "attempt-1")
    post.hang.set()
    assert record["state"] == "TimedOut"
    assert record["message"] == (
        "task fake-post was stopped: its lease ran out (no word from the operator for 0.2 s)"
    )
    assert post.hung
    assert session.state is DeviceState.RECOVERING
    return session, opened


def step_until(session: DeviceSession, state: DeviceState) -> None:
    for _ in range(20):
        if session.state is state:
            return
        session.step()
    assert session.state is state


def test_a_running_attempt_whose_lease_runs_out_is_stopped_and_the_worker_keeps_off() -> None:
    """Cut off from the operator (its pod force-deleted, its node partitioned), the worker stops
    the attempt once nobody asked about it for its lease: it ends TimedOut with the reason, the
    task's thread is abandoned and the Appium session quit. Its pod may have been replaced by
    now, so it does not connect again (WAITING_FOR_PHONE, not ready) until the operator asks
    with the binding's token (a wrong token does not count); then it opens a fresh session.
    Before, it reconnected at once, beside the replacement pod's worker."""
    post = FakePost()
    desk = JobDesk(registry(post))
    session, opened = lapse_a_running_attempt(post, desk)
    adb = session._adb  # type: ignore[attr-defined]
    connects = adb.count("connect")

    for _ in range(5):
        session.step()
    assert session.state is DeviceState.WAITING_FOR_PHONE
    assert "keeping off the phone: attempt attempt-1 ended as its lease ran out" in (
        session.history[-1].reason
    )
    api = JobApi(desk, lambda: TOKEN)
    assert api.handle("GET", "/v1/tasks", "Bearer wrong", b"")[0] == 401
    session.step()
    assert session.state is DeviceState.WAITING_FOR_PHONE
    assert adb.count("connect") == connects
    assert len(session._appium.opened) == opened  # type: ignore[attr-defined]

    assert api.handle("GET", "/v1/attempts/attempt-1", f"Bearer {TOKEN}", b"")[0] == 200
    step_until(session, DeviceState.IDLE)
    assert len(session._appium.opened) == opened + 1  # type: ignore[attr-defined]


def test_other_connection_data_ends_the_hold_after_a_lapsed_lease() -> None:
    """A worker kept off the phone connects again when the operator writes other ADB data into
    its Secret (a re-provision of this pod's phone), even without a request."""
    post = FakePost()
    desk = JobDesk(registry(post))
    session, opened = lapse_a_running_attempt(post, desk)
    step_until(session, DeviceState.WAITING_FOR_PHONE)
    connections = session._connections  # type: ignore[attr-defined]

    session._adb.phone().password = "fresh"  # type: ignore[attr-defined]
    connections.connection = make_connection(password="fresh")  # ADB switched on again
    step_until(session, DeviceState.IDLE)

    assert desk.held() is None
    assert len(session._appium.opened) == opened + 1  # type: ignore[attr-defined]


def test_an_attempt_that_ended_in_its_lease_holds_nothing_afterwards() -> None:
    """Only a lapsed lease holds the worker: an attempt that ended while the operator asked
    leaves none, however long nobody asks after it."""
    ticks = Ticks()
    desk = JobDesk(registry(), clock=ticks)
    desk.offer(attempt(1, lease_seconds=10))
    task = desk.next_job(0.0)
    assert task is not None
    desk.report(task.run(TaskContext(None, Device(PHONE_ID, "s"), threading.Event())), 0.0)  # type: ignore[arg-type]

    ticks.now += 3600
    assert desk.lookup("attempt-1")["state"] == "Succeeded"  # type: ignore[index]
    assert desk.held() is None


def test_a_cancel_stops_a_running_attempt_that_ignores_it() -> None:
    """The operator cancels an attempt whose pod went away: even a task that does not watch its
    cancel event is abandoned at once (not at its deadline, 60 s here) and Appium is quit."""
    post = FakePost()
    desk = JobDesk(registry(post))
    session = run_world(desk, RealCallPacer())
    desk.offer(attempt(1, params={"caption": "x", "fail": "stubborn"}))
    desk.cancel("attempt-1")  # still queued: it never starts
    assert desk.lookup("attempt-1")["state"] == "Failed"  # type: ignore[index]
    desk.offer(attempt(2, params={"caption": "x", "fail": "stubborn"}))
    session.step()  # IDLE -> JOB_RUNNING
    assert session.state is DeviceState.JOB_RUNNING
    runner = threading.Thread(target=session.step, daemon=True)
    runner.start()
    wait_for(lambda: post.hung, 30, message="the task to run")
    desk.cancel("attempt-2")
    runner.join(30)  # a deadline for the test: the abandon comes within a slice
    post.hang.set()

    assert not runner.is_alive()
    record = desk.lookup("attempt-2")
    assert record is not None
    assert record["state"] == "TimedOut"
    assert record["message"] == "task fake-post was stopped: cancelled by the operator"
    assert session.state is DeviceState.RECOVERING


class StoppableCallPacer(RealCallPacer):
    """RealCallPacer whose stop request also reaches the real calls (as SIGTERM does)."""

    def request_stop(self, reason: str) -> None:
        super().request_stop(reason)
        self._lifecycle.request_stop(reason)


@pytest.mark.parametrize(
    "task", ["stubborn", "watchful"], ids=["a task blind to the stop", "a task that gives up on it"]
)
def test_a_stop_mid_attempt_ends_it_once_appium_is_quit_and_the_operator_is_told(
    task: str,
) -> None:
    """SIGTERM while an attempt runs (an ordinary pod delete): the attempt is recorded Failed
    (Retryable), in the stop's words (also when the task itself gave up as the worker stopped),
    only after the shutdown quit the Appium session, a queued one never starts, new deliveries
    are refused, and the worker waits for the operator to read the outcome before its job
    endpoint closes: the operator retries at once, rather than at the attempt's lease."""
    post = FakePost()
    desk = JobDesk(registry(post))
    pacer = StoppableCallPacer()
    session = run_world(desk, pacer)
    appium = session._appium  # type: ignore[attr-defined]
    quits_when_reported: list[int] = []
    report = desk.report

    def recording_report(result: TaskResult, now: float) -> None:
        quits_when_reported.append(appium.quits)
        report(result, now)

    desk.report = recording_report  # type: ignore[method-assign]
    desk.offer(attempt(1, params={"caption": "x", "fail": task}))
    runner = threading.Thread(target=session.run, daemon=True)
    runner.start()
    wait_for(lambda: post.hung, 30, message="the task to run")
    pacer.request_stop("received SIGTERM")
    runner.join(30)
    post.hang.set()

    assert not runner.is_alive()
    record = desk.lookup("attempt-1")
    assert record is not None
    assert (record["state"], record["errorClass"]) == ("Failed", "Retryable")
    assert record["message"] == (
        "the worker stopped (received SIGTERM) and quit its Appium session"
    )
    assert quits_when_reported == [1]  # quit before the attempt was reported ended
    assert desk.wait_told(0) is False  # nobody asked yet: the endpoint would stay up
    desk.stop("STOPPED")
    assert desk.offer(attempt(2))[0] == 409
    desk.lookup("attempt-1", renew=True)  # the operator's poll
    assert desk.wait_told(0) is True


def test_a_worker_told_its_pod_is_gone_stops_altogether_without_reopening_appium() -> None:
    """The operator cancels the attempt as superseded (its pod was force-deleted, the containers
    still run): the worker ends the attempt, quits Appium and stops (STOPPED), instead of
    reopening a session that would fight the replacement pod's on the phone. A worker that does
    not have the attempt (another incarnation) is not stopped."""
    post = FakePost()
    pacer = StoppableCallPacer()
    desk = JobDesk(registry(post), on_superseded=pacer.request_stop)
    session = run_world(desk, pacer)
    appium = session._appium  # type: ignore[attr-defined]
    opened = len(appium.opened)
    desk.offer(attempt(1, params={"caption": "x", "fail": "stubborn"}))
    runner = threading.Thread(target=session.run, daemon=True)
    runner.start()
    wait_for(lambda: post.hung, 30, message="the task to run")

    assert desk.cancel("attempt-9", superseded=True) is None
    assert not pacer.stop_event.is_set()
    desk.cancel("attempt-1", superseded=True)
    runner.join(30)
    post.hang.set()

    assert not runner.is_alive()
    assert session.state is DeviceState.STOPPED
    record = desk.lookup("attempt-1")
    assert record is not None
    assert (record["state"], record["message"]) == (
        "Failed",
        "the worker stopped (cancelled by the operator: its pod went away) and quit its Appium "
        "session",
    )
    assert appium.quits >= 1
    assert len(appium.opened) == opened


def test_a_stop_ends_a_queued_attempt_that_never_started() -> None:
    """An attempt delivered but not started when the worker stops ends Failed (Retryable) with
    the reason, so the operator need not wait for its lease."""
    desk = JobDesk(registry())
    desk.offer(attempt(1))

    desk.stop("STOPPED")

    record = desk.lookup("attempt-1")
    assert record is not None
    assert record["state"] == "Failed"
    assert record["message"] == "the worker stopped (STOPPED) before it started"
    assert desk.next_job(0.0) is None


def test_lifecycle_call_gives_up_at_its_deadline() -> None:
    """Lifecycle.call stops beating and raises CallTimedOut when the call overruns."""
    lifecycle = Lifecycle(slice_seconds=0.02)
    release = threading.Event()

    with pytest.raises(CallTimedOut, match="passed its deadline"):
        lifecycle.call(lambda: release.wait(30), name="stuck", deadline=0.1)
    release.set()


# ------------------------------------------------------------------ the endpoint


@pytest.fixture
def endpoint() -> Iterator[tuple[str, JobDesk, dict[str, str | None]]]:
    """A job server on a free loopback port; the token is whatever the dict holds."""
    desk = JobDesk(registry())
    token: dict[str, str | None] = {"value": TOKEN}
    server = JobServer(host="127.0.0.1", port=0, desk=desk, token=lambda: token["value"])
    server.start()
    yield f"http://127.0.0.1:{server.port}", desk, token
    server.close()


def call(
    url: str, method: str, path: str, body: Any = None, token: str = TOKEN
) -> requests.Response:
    """One request with the bearer token."""
    return requests.request(
        method, url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )


def test_the_endpoint_refuses_a_wrong_token_and_works_with_the_right_one(
    endpoint: tuple[str, JobDesk, dict[str, str | None]],
) -> None:
    """401 without the binding's token, 200 with it; 503 while the Secret has no token."""
    url, _, token = endpoint

    assert call(url, "GET", "/v1/tasks", token="guess").status_code == 401
    assert requests.get(url + "/v1/tasks", timeout=5).status_code == 401
    assert "fake-post" in call(url, "GET", "/v1/tasks").json()["tasks"]
    token["value"] = None
    assert call(url, "GET", "/v1/tasks").status_code == 503


def test_the_endpoint_delivers_validates_and_reports_attempts(
    endpoint: tuple[str, JobDesk, dict[str, str | None]],
) -> None:
    """POST /v1/attempts takes an attempt, GET reads it back, cancel ends a queued one."""
    url, _, _ = endpoint
    body = json.loads(attempt(1).model_dump_json(by_alias=True))

    assert (
        call(url, "POST", "/v1/validate", {"task": "fake-post", "params": {}}).json()["ok"] is False
    )
    assert call(url, "POST", "/v1/attempts", body).status_code == 202
    assert call(url, "GET", "/v1/attempts/attempt-1").json()["state"] == "Queued"
    assert call(url, "GET", "/v1/attempts/attempt-9").status_code == 404
    assert call(url, "POST", "/v1/attempts", {"job": "x"}).status_code == 400
    cancelled = call(url, "POST", "/v1/attempts/attempt-1/cancel")
    assert (cancelled.status_code, cancelled.json()["state"]) == (202, "Failed")


def test_a_delivery_with_fields_of_a_later_protocol_is_taken_and_their_names_logged(
    endpoint: tuple[str, JobDesk, dict[str, str | None]], caplog: pytest.LogCaptureFixture
) -> None:
    """A later operator's delivery adds fields this worker does not know: the worker takes the
    attempt (202, and the same record on re-delivery) and logs the fields' names at debug, never
    their values. The task's own params stay strict."""
    url, desk, _ = endpoint
    body = json.loads(attempt(1).model_dump_json(by_alias=True))
    later = {**body, "priority": "s3cr3t-value", "fencingToken": {"epoch": 7}}

    with caplog.at_level(logging.DEBUG, logger="phonefleet_worker.job_server"):
        assert call(url, "POST", "/v1/attempts", later).status_code == 202
        assert call(url, "POST", "/v1/attempts", later).status_code == 200

    assert desk.lookup("attempt-1") is not None
    assert "['fencingToken', 'priority']" in caplog.text
    assert "s3cr3t-value" not in caplog.text
    strict = {**later, "params": {"caption": "hi", "colour": "red"}}
    status, refusal = JobDesk(registry()).offer(AttemptRequest.model_validate(strict))
    assert (status, refusal["errorClass"]) == (422, "Permanent")
    assert "colour: Extra inputs" in refusal["message"]


def test_the_worker_names_what_it_understands_in_its_answer_to_validate(
    endpoint: tuple[str, JobDesk, dict[str, str | None]],
) -> None:
    """The operator reads the worker's features from the validate it asks before each attempt:
    this worker takes leases and a superseded cancel."""
    url, _, _ = endpoint

    answer = call(url, "POST", "/v1/validate", {"task": "fake-post", "params": {"caption": "x"}})

    assert answer.json() == {"ok": True, "message": "", "features": ["lease", "superseded"]}


# ------------------------------------------------------------------ ui-steps and media


class RecordingDriver:
    """Records the driver calls of ui-steps' back step."""

    def __init__(self) -> None:
        self.backs = 0

    def back(self) -> None:
        self.backs += 1


def test_ui_steps_back_presses_back_on_the_device() -> None:
    """The back step calls the driver's back (the fake Appium driver lacks the command)."""
    driver = RecordingDriver()
    context = JobContext(
        session=TaskContext(driver, Device(PHONE_ID, "s"), threading.Event()),  # type: ignore[arg-type]
        attempt=AttemptInfo("farm/a", "uid", 1, "a-1"),
        cancel=threading.Event(),
    )

    result = UiSteps().run(
        context, UiStepsParams.model_validate({"steps": [{"action": "back"}] * 2})
    )

    assert (result, driver.backs) == ({"steps": 2}, 2)


class MediaPost(FakePost):
    """Asks for one video on the phone and reports where it was put."""

    def media(self, params: PostParams) -> list[MediaFile]:
        return [MediaFile("https://cdn.invalid/v.mp4", "/sdcard/Download/v.mp4")]

    def run(self, context: JobContext, params: PostParams) -> Mapping[str, Any]:
        return {"video": context.media["https://cdn.invalid/v.mp4"]}


def test_an_attempts_media_is_pushed_to_its_device_before_the_task_runs() -> None:
    """The desk hands the task's files to the pusher with the device's serial; the task sees
    each URL's path on the phone."""
    pushed: list[tuple[str, list[MediaFile]]] = []

    def pusher(serial: str, files: Any) -> dict[str, str]:
        pushed.append((serial, list(files)))
        return {f.url: f.path for f in files}

    desk = JobDesk(registry(MediaPost()), media=pusher)
    session = run_world(desk)
    desk.offer(attempt(1))

    record = step_until_final(session, desk, "attempt-1")

    assert record["result"] == {"video": "/sdcard/Download/v.mp4"}
    assert pushed[0][0] == session.connection.serial  # type: ignore[union-attr]
