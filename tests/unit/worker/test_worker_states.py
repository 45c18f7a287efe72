"""The states of the device session and the transitions between them."""

from __future__ import annotations

import itertools

import pytest

from phonefleet_worker.states import (
    READY_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    DeviceState,
    is_allowed,
)

S = DeviceState
RUNNING = [state for state in S if state not in TERMINAL_STATES]


def test_every_state_has_an_entry_in_the_transition_table() -> None:
    """The table is complete: no state is forgotten."""
    assert set(TRANSITIONS) == set(S)


def test_terminal_states_are_never_left() -> None:
    """STOPPED and FAILED have no way out."""
    assert all(not TRANSITIONS[state] for state in TERMINAL_STATES)


@pytest.mark.parametrize("state", RUNNING, ids=[s.value for s in RUNNING])
def test_every_running_state_can_stop_and_recover(state: DeviceState) -> None:
    """SIGTERM is honoured everywhere, and any fault can be recovered from (except mid-recovery)."""
    assert is_allowed(state, S.STOPPED)
    assert is_allowed(state, S.RECOVERING) == (state is not S.RECOVERING)


def test_the_bring_up_path_is_allowed_in_order() -> None:
    """WAITING_FOR_PHONE -> ADB_CONNECTING -> ADB_READY -> APPIUM_READY -> IDLE."""
    path = [S.WAITING_FOR_PHONE, S.ADB_CONNECTING, S.ADB_READY, S.APPIUM_READY, S.IDLE]

    assert all(is_allowed(a, b) for a, b in itertools.pairwise(path))


def test_no_state_skips_the_adb_checks_on_its_way_to_a_session() -> None:
    """Only ADB_READY (adb connected, glogin done, identity confirmed) leads to APPIUM_READY."""
    assert [s for s in S if is_allowed(s, S.APPIUM_READY)] == [S.ADB_READY]
    assert [s for s in S if is_allowed(s, S.ADB_READY)] == [S.ADB_CONNECTING]


def test_readiness_holds_exactly_while_the_session_is_open() -> None:
    """/readyz is true from APPIUM_READY on: APPIUM_READY, IDLE and JOB_RUNNING."""
    assert {S.APPIUM_READY, S.IDLE, S.JOB_RUNNING} == READY_STATES
