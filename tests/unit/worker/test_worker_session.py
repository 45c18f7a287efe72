"""The device session's state machine, against in-memory fakes of adb, Appium and the Secret."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

import pytest
from worker_fakes import (
    OTHER_PHONE_ID,
    PASSWORD,
    PHONE_ID,
    SERIAL,
    FakePhone,
    ScriptedTask,
    World,
    make_connection,
    make_world,
    session_deleted,
    uiautomator2_crashed,
)

from phonefleet_worker.errors import AdbConnectFailed, AppiumUnavailable, IdentityMismatch
from phonefleet_worker.states import TRANSITIONS, DeviceState

S = DeviceState
BRING_UP = [S.WAITING_FOR_PHONE, S.ADB_CONNECTING, S.ADB_READY, S.APPIUM_READY, S.IDLE]


def reach(world: World, state: DeviceState) -> None:
    """Bring the session into ``state`` the way it gets there in production."""
    if state is S.RECOVERING:
        world.adb.connect_error = AdbConnectFailed("failed to connect")
        world.step_until(S.RECOVERING)
        world.adb.connect_error = None
        return
    world.step_until(state)


def stop(world: World) -> None:
    world.pacer.request_stop("received SIGTERM")


def lose_device_before_check(world: World) -> None:
    world.pacer.clock += world.timings.device_check_interval
    world.adb.lose()


def swap_phone_before_check(world: World) -> None:
    world.pacer.clock += world.timings.device_check_interval
    world.adb.phone().phone_id = OTHER_PHONE_ID


def fail_the_task(error: Exception) -> Callable[[World], None]:
    def arrange(world: World) -> None:
        assert world.appium.driver is not None
        world.appium.driver.failure = error

    return arrange


def nothing(world: World) -> None:
    pass


TRIGGERS: dict[tuple[DeviceState, DeviceState], Callable[[World], None]] = {
    (S.WAITING_FOR_PHONE, S.ADB_CONNECTING): nothing,
    (S.WAITING_FOR_PHONE, S.RECOVERING): lambda w: setattr(
        w.connections, "error", RuntimeError("the Secret could not be read")
    ),
    (S.WAITING_FOR_PHONE, S.STOPPED): stop,
    (S.WAITING_FOR_PHONE, S.FAILED): lambda w: setattr(
        w.connections, "connection", make_connection(phone_id=OTHER_PHONE_ID)
    ),
    (S.ADB_CONNECTING, S.ADB_READY): nothing,
    (S.ADB_CONNECTING, S.RECOVERING): lambda w: setattr(w.adb.phone(), "reachable", False),
    (S.ADB_CONNECTING, S.STOPPED): stop,
    (S.ADB_CONNECTING, S.FAILED): lambda w: setattr(w.adb.phone(), "phone_id", OTHER_PHONE_ID),
    (S.ADB_READY, S.APPIUM_READY): nothing,
    (S.ADB_READY, S.RECOVERING): lambda w: w.appium.open_errors.append(
        AppiumUnavailable("Could not create an Appium session")
    ),
    (S.ADB_READY, S.STOPPED): stop,
    (S.APPIUM_READY, S.IDLE): nothing,
    (S.APPIUM_READY, S.RECOVERING): lambda w: setattr(
        w.pacer, "fail_next_now", RuntimeError("a fault nobody foresaw")
    ),
    (S.APPIUM_READY, S.STOPPED): stop,
    (S.IDLE, S.JOB_RUNNING): nothing,
    (S.IDLE, S.RECOVERING): lose_device_before_check,
    (S.IDLE, S.STOPPED): stop,
    (S.IDLE, S.FAILED): swap_phone_before_check,
    (S.JOB_RUNNING, S.IDLE): nothing,
    (S.JOB_RUNNING, S.RECOVERING): fail_the_task(uiautomator2_crashed()),
    (S.JOB_RUNNING, S.STOPPED): stop,
    (S.JOB_RUNNING, S.FAILED): fail_the_task(
        IdentityMismatch(expected=PHONE_ID, found=OTHER_PHONE_ID, where=SERIAL)
    ),
    (S.RECOVERING, S.ADB_CONNECTING): nothing,
    (S.RECOVERING, S.WAITING_FOR_PHONE): lambda w: setattr(w.connections, "connection", None),
    (S.RECOVERING, S.STOPPED): stop,
    (S.RECOVERING, S.FAILED): lambda w: setattr(
        w.connections, "connection", make_connection(phone_id=OTHER_PHONE_ID)
    ),
}

ALLOWED = sorted(
    ((source, target) for source, targets in TRANSITIONS.items() for target in targets),
    key=lambda pair: (pair[0].value, pair[1].value),
)


def test_every_allowed_transition_has_a_scenario() -> None:
    """Each transition the table allows is exercised below, and no other."""
    assert set(TRIGGERS) == set(ALLOWED)


@pytest.mark.parametrize(
    ("source", "target"), ALLOWED, ids=[f"{s.value}->{t.value}" for s, t in ALLOWED]
)
def test_each_allowed_transition_happens_for_its_reason(
    source: DeviceState, target: DeviceState
) -> None:
    """From each state, the session moves to each allowed next state when its cause occurs."""
    world = make_world()
    reach(world, source)
    TRIGGERS[(source, target)](world)

    if target is S.STOPPED:
        assert world.session.run() == 0
    else:
        world.session.step()

    last = world.session.history[-1]
    assert (last.source, last.target) == (source, target)
    assert last.reason


def test_a_healthy_phone_goes_from_waiting_to_idle_through_every_bring_up_state() -> None:
    """Connect, wait for ``device``, glogin, check the identity, open the session: then IDLE."""
    world = make_world()

    world.step_until(S.IDLE)

    assert world.states == BRING_UP
    assert world.adb.calls == [
        ("connect", SERIAL),
        ("devices",),
        ("glogin", SERIAL, PASSWORD),
        ("getprop", SERIAL, "ro.gl.serialno"),
    ]
    assert world.appium.opened == [SERIAL]


def test_every_transition_is_logged_with_the_phone_id_and_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each move writes one line naming the phone, both states and why."""
    world = make_world()
    caplog.set_level(logging.INFO, logger="phonefleet_worker")

    world.step_until(S.IDLE)

    moves = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Moved phone")]
    assert moves == [
        f"Moved phone {PHONE_ID} from WAITING_FOR_PHONE to ADB_CONNECTING: "
        f"found connection data for {SERIAL}",
        f"Moved phone {PHONE_ID} from ADB_CONNECTING to ADB_READY: "
        f"{SERIAL} reports phone id {PHONE_ID}",
        f"Moved phone {PHONE_ID} from ADB_READY to APPIUM_READY: "
        f"opened Appium session session-1 on {SERIAL}",
        f"Moved phone {PHONE_ID} from APPIUM_READY to IDLE: the session takes jobs",
    ]


def test_the_worker_waits_for_connection_data_and_connects_once_it_appears() -> None:
    """With no Secret data yet, the worker polls it and connects as soon as it is there."""
    world = make_world()
    world.connections.connection = None

    def provision_on_third_poll(seconds: float) -> None:
        if len(world.pacer.sleeps) == 3:
            world.connections.connection = make_connection()

    world.pacer.on_sleep = provision_on_third_poll
    world.step_until(S.IDLE)

    assert world.pacer.sleeps[:3] == [5.0, 5.0, 5.0]
    assert world.states == BRING_UP


def test_the_session_polls_adb_until_the_phone_turns_device() -> None:
    """A freshly connected phone is offline for a while: the session waits for ``device``."""
    world = make_world(phone=FakePhone(states_after_connect=["offline", "offline", "device"]))

    world.step_until(S.ADB_READY)

    assert world.pacer.sleeps == [1.0, 1.0]
    assert world.adb.count("devices") == 3


def test_a_phone_that_never_turns_device_leads_to_recovery_at_the_deadline() -> None:
    """The wait for ``device`` has a deadline; past it the session recovers."""
    world = make_world(phone=FakePhone(states_after_connect=["offline"]))

    world.step_until(S.RECOVERING)

    assert world.pacer.sleeps == [1.0] * 10
    assert world.session.history[-1].reason == f"{SERIAL} was still offline after 10 s"


def test_an_unauthorized_phone_is_not_waited_for() -> None:
    """``unauthorized`` does not heal by waiting: the session recovers at once."""
    world = make_world(phone=FakePhone(states_after_connect=["unauthorized"]))

    world.step_until(S.RECOVERING)

    assert world.pacer.sleeps == []
    assert "unauthorized" in world.session.history[-1].reason


def test_a_wrong_glogin_password_leads_to_recovery() -> None:
    """A refused glogin is not a reason to drive the phone: the session recovers."""
    world = make_world(phone=FakePhone(password="the-real-one"))

    world.step_until(S.RECOVERING)

    assert world.states[-2:] == [S.ADB_CONNECTING, S.RECOVERING]
    assert world.adb.count("getprop") == 0
    assert world.appium.opened == []


@pytest.mark.parametrize("found", [OTHER_PHONE_ID, ""], ids=["another-phone", "no-property"])
def test_an_identity_mismatch_fails_the_worker_and_never_drives_the_device(found: str) -> None:
    """A device reporting another phone id (or none) stops the worker with exit code 1."""
    world = make_world(phone=FakePhone(phone_id=found))

    assert world.session.run() == 1

    assert world.states == [S.WAITING_FOR_PHONE, S.ADB_CONNECTING, S.FAILED]
    assert world.appium.status_polls == 0
    assert world.appium.opened == []
    assert world.adb.calls[-1] == ("disconnect", SERIAL)
    assert isinstance(world.session.failure, IdentityMismatch)
    assert f"phone id {found!r}" in str(world.session.failure)
    assert f"phone id {PHONE_ID!r}" in str(world.session.failure)


def test_connection_data_for_another_phone_fails_before_adb_connects() -> None:
    """The Secret's own phoneId must match too; otherwise adb is never even asked."""
    world = make_world(connection=make_connection(phone_id=OTHER_PHONE_ID))

    assert world.session.run() == 1

    assert world.adb.calls == []
    assert world.states == [S.WAITING_FOR_PHONE, S.FAILED]


@pytest.mark.parametrize(
    "failure",
    [uiautomator2_crashed(), session_deleted()],
    ids=["uiautomator2-crashed", "session-deleted"],
)
def test_a_dead_session_is_recreated_after_reconnecting_and_a_new_glogin(
    failure: Exception,
) -> None:
    """A heartbeat that finds the session dead sends the worker through RECOVERING to a new one."""
    world = make_world()
    world.step_until(S.IDLE)
    world.step_until(S.JOB_RUNNING)
    assert world.appium.driver is not None
    world.appium.driver.failure = failure

    world.session.step()
    assert world.session.state is S.RECOVERING
    assert "The Appium session was lost" in world.session.history[-1].reason
    world.step_until(S.IDLE)

    assert world.states[-5:] == [S.RECOVERING, *BRING_UP[1:]]
    assert world.appium.quits == 1
    assert world.appium.opened == [SERIAL, SERIAL]
    assert world.adb.count("glogin") == 2
    assert ("disconnect", SERIAL) in world.adb.calls
    assert world.jobs.results[-1].ok is False


def test_a_device_lost_while_idle_is_reconnected() -> None:
    """The idle device check notices an offline phone; the worker reconnects once it is back."""
    world = make_world()
    world.step_until(S.IDLE)
    lose_device_before_check(world)

    world.session.step()
    assert world.session.state is S.RECOVERING
    assert world.session.history[-1].reason == f"adb lists {SERIAL} as offline"
    world.step_until(S.IDLE)

    assert world.adb.count("connect") == 2
    assert world.appium.opened == [SERIAL, SERIAL]


def test_an_expired_glogin_is_renewed_without_leaving_idle() -> None:
    """Geelark's shell login expires; the idle check logs in again and keeps the session."""
    world = make_world()
    world.step_until(S.IDLE)
    world.adb.phone().logged_in = False
    world.pacer.clock += world.timings.device_check_interval

    world.session.step()

    assert S.RECOVERING not in world.states
    assert world.adb.count("glogin") == 2
    assert world.appium.opened == [SERIAL]


def test_a_task_failing_on_its_own_fails_only_that_job() -> None:
    """An error that is not about the session or device fails the job; the worker stays IDLE."""
    world = make_world(task=ScriptedTask(ValueError("no button 'Share' on screen")))
    world.step_until(S.JOB_RUNNING)

    world.session.step()

    assert world.session.state is S.IDLE
    assert world.session.history[-1].reason == "task scripted failed"
    assert world.jobs.results[-1].ok is False
    assert world.jobs.results[-1].detail == {"error": "no button 'Share' on screen"}
    assert world.appium.quits == 0


def test_the_heartbeat_runs_on_its_interval_and_reports_the_window_size() -> None:
    """While idle, the heartbeat runs every 30 s and returns what the device answered."""
    world = make_world()
    world.step_until(S.IDLE)

    for _ in range(50):
        if len(world.jobs.results) == 3:
            break
        world.session.step()

    assert [r.detail for r in world.jobs.results] == [{"width": 720, "height": 1280}] * 3
    assert [b - a for a, b in itertools.pairwise(world.jobs.times)] == [30.0, 30.0]
    assert S.RECOVERING not in world.states


def test_new_connection_data_is_picked_up_without_a_restart() -> None:
    """When the operator re-provisions ADB, the worker moves to the new endpoint and password."""
    world = make_world()
    world.step_until(S.IDLE)
    new = make_connection(ip="10.7.0.99", port=41000, password="gl-pw-new")
    world.adb.phones[new.serial] = FakePhone(password="gl-pw-new")
    world.connections.connection = new
    world.pacer.clock += world.timings.secret_poll_interval

    world.session.step()
    assert world.session.state is S.RECOVERING
    assert world.session.history[-1].reason == "the connection data was changed"
    world.step_until(S.IDLE)

    assert world.pacer.sleeps == []
    assert ("disconnect", SERIAL) in world.adb.calls
    assert ("glogin", new.serial, "gl-pw-new") in world.adb.calls
    assert world.appium.opened == [SERIAL, new.serial]
    assert world.session.connection == new


def test_removed_connection_data_sends_the_worker_back_to_waiting() -> None:
    """When the Secret is emptied (ADB disabled), the worker tears down and waits."""
    world = make_world()
    world.step_until(S.IDLE)
    world.connections.connection = None
    world.pacer.clock += world.timings.secret_poll_interval

    world.step_until(S.WAITING_FOR_PHONE)

    assert world.states[-2:] == [S.RECOVERING, S.WAITING_FOR_PHONE]
    assert world.appium.quits == 1


def test_recovery_backs_off_exponentially_and_resets_after_a_good_heartbeat() -> None:
    """Failed reconnects wait 2, 4, 8 s...; a successful task resets the delay."""
    world = make_world()
    world.adb.phone().reachable = False

    for _ in range(4):
        world.step_until(S.RECOVERING)
        world.session.step()
    assert world.pacer.sleeps == [2.0, 4.0, 8.0, 16.0]

    world.adb.phone().reachable = True
    world.step_until(S.JOB_RUNNING)
    world.session.step()
    assert world.jobs.results[-1].ok is True
    world.pacer.sleeps.clear()
    lose_device_before_check(world)
    world.step_until(S.ADB_CONNECTING)

    assert world.pacer.sleeps == [2.0]


def test_appium_that_never_gets_ready_leads_to_recovery_at_the_deadline() -> None:
    """The wait for Appium's /status has a deadline too."""
    world = make_world()
    world.appium.not_ready_polls = 1000

    world.step_until(S.RECOVERING)

    assert world.session.history[-1].reason == "Appium was not ready after 20 s"
    assert world.appium.opened == []


def test_a_stop_while_idle_quits_the_session_and_disconnects_adb() -> None:
    """SIGTERM while idle: quit the session, disconnect adb, STOPPED, exit code 0."""
    world = make_world()
    world.step_until(S.IDLE)
    world.pacer.request_stop("received SIGTERM")

    assert world.session.run() == 0

    assert world.session.state is S.STOPPED
    assert world.session.history[-1].reason == "received SIGTERM"
    assert world.appium.quits == 1
    assert world.adb.calls[-1] == ("disconnect", SERIAL)


def test_a_stop_interrupts_the_wait_for_the_device() -> None:
    """SIGTERM during a long wait ends that step at once instead of at its deadline."""
    world = make_world(phone=FakePhone(states_after_connect=["offline"]))

    def stop_on_second_poll(seconds: float) -> None:
        if len(world.pacer.sleeps) == 2:
            world.pacer.request_stop("received SIGTERM")

    world.pacer.on_sleep = stop_on_second_poll

    assert world.session.run() == 0

    assert world.pacer.sleeps == [1.0, 1.0]
    assert world.states[-2:] == [S.ADB_CONNECTING, S.STOPPED]
    assert world.adb.calls[-1] == ("disconnect", SERIAL)


def test_the_password_never_reaches_a_log_line_or_a_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through refusals, recoveries and renewals, the ADB password is never logged."""
    caplog.set_level(logging.DEBUG)
    world = make_world(phone=FakePhone(password="not-yet"))
    world.step_until(S.RECOVERING)
    world.adb.phone().password = PASSWORD
    world.step_until(S.IDLE)
    world.adb.phone().logged_in = False
    world.pacer.clock += world.timings.device_check_interval
    world.session.step()
    world.pacer.request_stop("received SIGTERM")
    world.session.run()

    assert world.adb.count("glogin") == 3
    assert PASSWORD not in caplog.text
    assert all(PASSWORD not in t.reason for t in world.session.history)
    assert PASSWORD not in repr(world.session.connection)


@pytest.mark.parametrize("phone_id", ["", "   "])
def test_a_session_without_a_phone_id_is_refused(phone_id: str) -> None:
    """The state machine cannot be built without the phone it is for."""
    with pytest.raises(ValueError, match="phone_id is required"):
        make_world(phone_id=phone_id)
