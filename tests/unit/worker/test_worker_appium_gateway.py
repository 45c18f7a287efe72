"""The Appium gateway's pure parts: capabilities and the translation of driver faults.

Its talk with a real Appium server is tested in tests/appium/.
"""

from __future__ import annotations

import pytest
import requests
import urllib3.exceptions
from selenium.common.exceptions import (
    InvalidSessionIdException,
    NoSuchElementException,
    WebDriverException,
)
from worker_fakes import UIAUTOMATOR2_CRASH

from phonefleet_testbed.processes import free_port
from phonefleet_worker.appium_gateway import (
    AppiumClient,
    classify_failure,
    merged_capabilities,
    uiautomator2_capabilities,
)
from phonefleet_worker.errors import AppiumUnavailable, DeviceLost, SessionLost


def test_uiautomator2_capabilities_are_the_set_known_to_work_with_geelark_phones() -> None:
    """udid is ip:port, systemPort comes from the settings, the timeouts are geelark-api.md's."""
    assert uiautomator2_capabilities("10.7.0.21:40117", system_port=8201) == {
        "platformName": "Android",
        "appium:automationName": "UiAutomator2",
        "appium:udid": "10.7.0.21:40117",
        "appium:noReset": True,
        "appium:newCommandTimeout": 120,
        "appium:adbExecTimeout": 120_000,
        "appium:uiautomator2ServerInstallTimeout": 120_000,
        "appium:uiautomator2ServerLaunchTimeout": 10_000,
        "appium:androidDeviceReadyTimeout": 60,
        "appium:systemPort": 8201,
    }


def test_extra_capabilities_are_merged_over_the_defaults_and_null_removes_one() -> None:
    """Settings can add or change capabilities, and drop a default by setting it to null."""
    build = merged_capabilities(
        lambda serial: uiautomator2_capabilities(serial, system_port=8200),
        {"appium:disableWindowAnimation": True, "appium:noReset": False, "appium:systemPort": None},
    )

    capabilities = build("10.7.0.21:40117")

    assert capabilities["appium:disableWindowAnimation"] is True
    assert capabilities["appium:noReset"] is False
    assert "appium:systemPort" not in capabilities
    assert capabilities["appium:udid"] == "10.7.0.21:40117"


@pytest.mark.parametrize(
    "error",
    [
        WebDriverException(UIAUTOMATOR2_CRASH),
        WebDriverException("'POST /element' cannot be proxied to UiAutomator2 server"),
        WebDriverException("The UiAutomator2 server probably crashed"),
        InvalidSessionIdException("A session is either terminated or not started"),
        WebDriverException("invalid session id: session deleted"),
    ],
    ids=["not-running", "cannot-be-proxied", "probably-crashed", "invalid-session", "deleted"],
)
def test_a_dead_session_or_uiautomator2_server_is_session_lost(error: Exception) -> None:
    """The error texts of geelark-api.md, and a session the server dropped, mean SessionLost."""
    assert isinstance(classify_failure(error), SessionLost)


@pytest.mark.parametrize(
    "error",
    [
        urllib3.exceptions.MaxRetryError(None, "/session", reason=None),  # type: ignore[arg-type]
        urllib3.exceptions.ProtocolError("Connection aborted."),
        requests.ConnectionError("connection refused"),
        ConnectionRefusedError(111, "Connection refused"),
    ],
    ids=["max-retries", "protocol-error", "requests", "refused"],
)
def test_an_unreachable_appium_server_is_appium_unavailable(error: Exception) -> None:
    """When the Appium server does not answer, the worker recovers (the sidecar restarts)."""
    assert isinstance(classify_failure(error), AppiumUnavailable)


def test_our_own_errors_pass_through_unchanged() -> None:
    """A task that already knows what happened keeps its error."""
    lost = DeviceLost("error: device offline")

    assert classify_failure(lost) is lost


@pytest.mark.parametrize(
    "error",
    [NoSuchElementException("no such element: id=create"), ValueError("caption too long")],
)
def test_any_other_error_is_the_tasks_own_failure(error: Exception) -> None:
    """A missing button or a bad input fails the job, not the session."""
    assert classify_failure(error) is None


def test_a_server_that_does_not_answer_is_not_ready() -> None:
    """GET /status on a port nobody listens on means not ready, not an exception."""
    client = AppiumClient(
        f"http://127.0.0.1:{free_port()}", capabilities=lambda serial: {}, status_timeout=2.0
    )

    assert client.is_ready() is False


def test_quitting_without_a_session_does_nothing() -> None:
    """quit_session() is safe to call at any time."""
    client = AppiumClient("http://127.0.0.1:9", capabilities=lambda serial: {})

    client.quit_session()

    assert client.driver is None
