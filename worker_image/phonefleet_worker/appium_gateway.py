"""The Appium gateway: the only code that talks to the Appium server, one session at a time.

The capabilities are injected: production uses ``uiautomator2_capabilities`` (the set that works
against Geelark phones, from ``geelark-api.md``), the tests use Appium's fake driver. Faults are
translated into our errors by ``classify_failure``: a dead session or a crashed UiAutomator2
server becomes ``SessionLost``, an unreachable server ``AppiumUnavailable``; anything else is the
task's own failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import requests
import urllib3.exceptions
from appium.options.common.base import AppiumOptions
from appium.webdriver.client_config import AppiumClientConfig
from appium.webdriver.webdriver import WebDriver
from selenium.common.exceptions import InvalidSessionIdException, WebDriverException

from phonefleet_worker.errors import AppiumUnavailable, SessionLost, WorkerError

__all__ = [
    "SESSION_LOST_TEXTS",
    "AppiumClient",
    "AppiumGateway",
    "CapabilitiesFactory",
    "classify_failure",
    "merged_capabilities",
    "uiautomator2_capabilities",
]

log = logging.getLogger(__name__)

CapabilitiesFactory = Callable[[str], dict[str, Any]]
"""Builds a session's capabilities from the device's adb serial (``ip:port``)."""

SESSION_LOST_TEXTS = (
    # The UiAutomator2 server on the phone died (geelark-api.md).
    "instrumentation process is not running",
    "cannot be proxied",
    "probably crashed",
    # The Appium server no longer knows the session (deleted, newCommandTimeout, restart).
    "session is either terminated or not started",
    "invalid session id",
    "no such session",
)

UNREACHABLE = (
    requests.ConnectionError,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
)


def uiautomator2_capabilities(serial: str, *, system_port: int) -> dict[str, Any]:
    """The UiAutomator2 capabilities for a Geelark phone reached at ``serial``."""
    return {
        "platformName": "Android",
        "appium:automationName": "UiAutomator2",
        "appium:udid": serial,
        "appium:noReset": True,
        "appium:newCommandTimeout": 120,
        "appium:adbExecTimeout": 120_000,
        "appium:uiautomator2ServerInstallTimeout": 120_000,
        "appium:uiautomator2ServerLaunchTimeout": 10_000,
        "appium:androidDeviceReadyTimeout": 60,
        "appium:systemPort": system_port,
    }


def merged_capabilities(
    base: CapabilitiesFactory, overrides: dict[str, Any]
) -> CapabilitiesFactory:
    """``base``'s capabilities with ``overrides`` on top; an override of None removes the key."""
    if not overrides:
        return base

    def build(serial: str) -> dict[str, Any]:
        capabilities = {**base(serial), **overrides}
        return {key: value for key, value in capabilities.items() if value is not None}

    return build


def classify_failure(exc: BaseException) -> WorkerError | None:
    """Translate a fault raised while driving a session; None means "the task failed, not us"."""
    if isinstance(exc, WorkerError):
        return exc
    text = str(exc).lower()
    if isinstance(exc, InvalidSessionIdException) or (
        isinstance(exc, WebDriverException) and any(t in text for t in SESSION_LOST_TEXTS)
    ):
        return SessionLost(f"The Appium session was lost: {first_line(exc)}")
    if isinstance(exc, UNREACHABLE):
        return AppiumUnavailable(f"The Appium server did not answer: {first_line(exc)}")
    return None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (WebDriver errors carry whole stack traces)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class AppiumGateway(Protocol):
    """What the device session asks of Appium; ``AppiumClient`` is the real one."""

    def is_ready(self) -> bool:
        """True when the server answers ``GET /status`` with ``value.ready``."""
        ...

    def open_session(self, serial: str) -> WebDriver:
        """Create the session for the device at ``serial``; raise AppiumUnavailable on failure."""
        ...

    def quit_session(self) -> None:
        """Quit the current session, if any; never raises."""
        ...


class AppiumClient:
    """Talks to one Appium server through appium-python-client."""

    def __init__(
        self,
        url: str,
        *,
        capabilities: CapabilitiesFactory,
        command_timeout: int = 600,
        status_timeout: float = 5.0,
    ) -> None:
        self._url = url.rstrip("/")
        self._capabilities = capabilities
        self._command_timeout = command_timeout
        self._status_timeout = status_timeout
        self._driver: WebDriver | None = None

    @property
    def driver(self) -> WebDriver | None:
        """The open session's driver, if any."""
        return self._driver

    def is_ready(self) -> bool:
        """Ask ``GET /status``; any failure to answer counts as not ready."""
        try:
            response = requests.get(f"{self._url}/status", timeout=self._status_timeout)
            response.raise_for_status()
            return response.json().get("value", {}).get("ready") is True
        except (requests.RequestException, ValueError, AttributeError) as exc:
            log.debug("Appium at %s is not ready: %s", self._url, exc)
            return False

    def open_session(self, serial: str) -> WebDriver:
        """Quit any previous session, then create a new one for ``serial``."""
        self.quit_session()
        options = AppiumOptions().load_capabilities(self._capabilities(serial))
        config = AppiumClientConfig(self._url, timeout=self._command_timeout)
        try:
            driver = WebDriver(self._url, options=options, client_config=config)
        except (WebDriverException, *UNREACHABLE) as exc:
            raise AppiumUnavailable(
                f"Could not create an Appium session: {first_line(exc)}"
            ) from exc
        self._driver = driver
        log.info("Created Appium session %s for %s", driver.session_id, serial)
        return driver

    def quit_session(self) -> None:
        """Quit the session; a session the server already dropped is simply forgotten."""
        driver, self._driver = self._driver, None
        if driver is None:
            return
        try:
            driver.quit()
            log.info("Quit Appium session %s", driver.session_id)
        except Exception as exc:  # the session may be long gone: nothing left to clean up
            log.info("Forgot Appium session %s: %s", driver.session_id, first_line(exc))
