"""The Appium gateway against a real Appium server (npm's appium with its fake driver)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests
from appium_support import PHONE_ID, fake_driver_capabilities

from phonefleet_worker.appium_gateway import AppiumClient, classify_failure
from phonefleet_worker.errors import AppiumUnavailable, SessionLost
from phonefleet_worker.tasks import Device, HeartbeatTask, TaskContext

pytestmark = pytest.mark.appium

SERIAL = "127.0.0.1:40117"


@pytest.fixture
def client(appium_url: str) -> Iterator[AppiumClient]:
    """A gateway to the test Appium server whose sessions use the fake driver."""
    gateway = AppiumClient(appium_url, capabilities=fake_driver_capabilities, command_timeout=60)
    yield gateway
    gateway.quit_session()


def heartbeat(client: AppiumClient) -> dict[str, object]:
    """Run the heartbeat task through the client's session."""
    assert client.driver is not None
    context = TaskContext(client.driver, Device(PHONE_ID, SERIAL), threading.Event())
    return dict(HeartbeatTask().run(context).detail)


def test_the_server_reports_ready(client: AppiumClient) -> None:
    """GET /status on a started Appium answers value.ready."""
    assert client.is_ready() is True


def test_a_session_opens_and_the_heartbeat_gets_an_answer(client: AppiumClient) -> None:
    """The gateway opens a session and the heartbeat reads the (fake) device's window size."""
    driver = client.open_session(SERIAL)

    assert driver.session_id
    assert heartbeat(client) == {"width": 720, "height": 1280}
    assert "phonefleet fake phone" in driver.page_source


def test_a_session_the_server_dropped_is_reported_lost_and_can_be_recreated(
    client: AppiumClient, appium_url: str
) -> None:
    """After the server deletes the session, the heartbeat fails as SessionLost; a new one works."""
    first = client.open_session(SERIAL).session_id
    requests.delete(f"{appium_url}/session/{first}", timeout=10).raise_for_status()

    with pytest.raises(Exception) as caught:  # noqa: PT011 (classified below, as the session does)
        heartbeat(client)
    assert isinstance(classify_failure(caught.value), SessionLost)

    second = client.open_session(SERIAL).session_id
    assert second != first
    assert heartbeat(client) == {"width": 720, "height": 1280}


def test_opening_a_new_session_quits_the_previous_one(
    client: AppiumClient, appium_url: str
) -> None:
    """One session at a time: the old session is gone on the server once a new one opens."""
    first = client.open_session(SERIAL).session_id
    client.open_session(SERIAL)

    gone = requests.get(f"{appium_url}/session/{first}/window/rect", timeout=10)

    assert gone.status_code == 404
    assert gone.json()["value"]["error"] == "invalid session id"


def test_capabilities_the_server_rejects_are_appium_unavailable(appium_url: str) -> None:
    """A session the server refuses to create raises AppiumUnavailable with its reason."""
    gateway = AppiumClient(
        appium_url,
        capabilities=lambda serial: {"platformName": "Fake", "appium:automationName": "Nope"},
    )

    with pytest.raises(AppiumUnavailable, match="Could not create an Appium session"):
        gateway.open_session(SERIAL)
