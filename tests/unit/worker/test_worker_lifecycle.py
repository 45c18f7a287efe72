"""Stop requests, stop-aware waits and the liveness beat of the main loop."""

from __future__ import annotations

import threading

import pytest

from phonefleet_worker.lifecycle import Lifecycle, StopRequested, call_with_deadline


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sleep_returns_after_the_time_has_passed_and_beats() -> None:
    """Without a stop, sleep waits its time and records a beat on the way."""
    clock = FakeClock()
    lifecycle = Lifecycle(slice_seconds=0.001, clock=clock)
    clock.now = 200.0

    lifecycle.sleep(0)

    assert lifecycle.last_beat == 200.0


def test_a_stop_request_ends_a_long_sleep_at_once() -> None:
    """A sleep of an hour returns as soon as the stop arrives, raising StopRequested."""
    lifecycle = Lifecycle(slice_seconds=3600)
    threading.Timer(0.05, lifecycle.request_stop, args=("received SIGTERM",)).start()

    with pytest.raises(StopRequested, match="received SIGTERM"):
        lifecycle.sleep(3600)


def test_the_first_stop_reason_wins() -> None:
    """A second signal does not rewrite why the worker is stopping."""
    lifecycle = Lifecycle()
    lifecycle.request_stop("received SIGTERM")
    lifecycle.request_stop("received SIGINT")

    assert lifecycle.stop_reason == "received SIGTERM"
    with pytest.raises(StopRequested, match="SIGTERM"):
        lifecycle.check()


def test_cleanup_stops_cancelling_adb_but_the_stop_stays_requested() -> None:
    """During shutdown adb commands may run again, while the stop itself remains set."""
    lifecycle = Lifecycle()
    lifecycle.request_stop("received SIGTERM")
    assert lifecycle.cancel_event.is_set()

    lifecycle.enter_cleanup()

    assert not lifecycle.cancel_event.is_set()
    assert lifecycle.stop_event.is_set()


def test_call_returns_the_result_of_the_blocking_function() -> None:
    """A long call run through the lifecycle gives back its value."""
    assert Lifecycle(slice_seconds=0.01).call(lambda: 42, name="answer") == 42


def test_call_raises_what_the_blocking_function_raised() -> None:
    """Errors of the helper thread reach the caller unchanged."""

    def broken() -> None:
        raise ValueError("session not created")

    with pytest.raises(ValueError, match="session not created"):
        Lifecycle(slice_seconds=0.01).call(broken, name="broken")


def test_call_gives_up_on_a_blocked_function_when_a_stop_arrives() -> None:
    """A stop abandons a call that would block for minutes (creating a UiAutomator2 session)."""
    lifecycle = Lifecycle(slice_seconds=0.01)
    release = threading.Event()
    started = threading.Event()

    def blocked() -> None:
        started.set()
        release.wait(60)

    def stop_once_started() -> None:
        started.wait(10)
        lifecycle.request_stop("received SIGTERM")

    threading.Thread(target=stop_once_started, daemon=True).start()
    try:
        with pytest.raises(StopRequested):
            lifecycle.call(blocked, name="blocked")
    finally:
        release.set()


def test_call_with_deadline_reports_whether_the_cleanup_finished() -> None:
    """A cleanup step that hangs is given up after its deadline; one that ends is reported done."""
    release = threading.Event()
    try:
        assert call_with_deadline(lambda: None, seconds=5, name="quit") is True
        assert call_with_deadline(lambda: release.wait(60), seconds=0.05, name="hang") is False
    finally:
        release.set()


def test_call_with_deadline_logs_and_swallows_cleanup_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Cleanup is best effort: a failing step is logged, not raised."""

    def broken() -> None:
        raise RuntimeError("Appium is gone")

    assert call_with_deadline(broken, seconds=5, name="quit the session") is True
    assert "Could not quit the session" in caplog.text
