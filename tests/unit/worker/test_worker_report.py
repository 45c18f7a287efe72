"""The worker's report: the JSON /readyz body, and the termination message of a FAILED worker."""

from __future__ import annotations

import json
from pathlib import Path

from worker_fakes import OTHER_PHONE_ID, PHONE_ID, FakePhone, make_world

from phonefleet_worker.report import readiness_report, write_termination_message
from phonefleet_worker.states import DeviceState as S


def test_readiness_names_the_state_and_the_reason_of_the_last_move() -> None:
    """Not ready while connecting; the body says where the worker is and why it got there."""
    world = make_world()
    world.step_until(S.ADB_CONNECTING)

    ready, body = readiness_report(world.session)

    assert ready is False
    report = json.loads(body)
    assert report["state"] == "ADB_CONNECTING"
    assert report["reason"] == world.session.history[-1].reason != ""


def test_readiness_is_true_once_the_session_is_open() -> None:
    """APPIUM_READY and after: ready, as the kubelet sees it from the status code."""
    world = make_world()
    world.step_until(S.IDLE)

    ready, body = readiness_report(world.session)

    assert ready is True
    assert json.loads(body)["state"] == "IDLE"


def test_a_worker_refusing_another_phone_leaves_why_in_its_termination_message(
    tmp_path: Path,
) -> None:
    """The message names the refusal and both ids, and never the ADB password."""
    world = make_world(phone=FakePhone(phone_id=OTHER_PHONE_ID))
    assert world.session.run() == 1
    log = tmp_path / "termination-log"
    log.touch()

    assert write_termination_message(world.session, log) is True

    message = json.loads(log.read_text())
    assert message["reason"] == "IdentityMismatch"
    assert OTHER_PHONE_ID in message["message"]
    assert PHONE_ID in message["message"]
    assert world.connections.current().password not in log.read_text()


def test_a_worker_that_did_not_fail_writes_no_termination_message(tmp_path: Path) -> None:
    """Stopped, or still running: nothing to report, and nothing is written."""
    world = make_world()
    world.step_until(S.IDLE)
    log = tmp_path / "termination-log"

    assert write_termination_message(world.session, log) is False
    assert not log.exists()
