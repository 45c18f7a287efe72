"""In-memory fakes of the worker's gateways, clock and job source, and factories that wire them.

``make_world(**overrides)`` builds a ``DeviceSession`` for phone ``PHONE_ID`` against one fake
phone reachable at ``SERIAL``; tests change the fakes (lose the device, expire the login, rewrite
the connection data, crash the UiAutomator2 server) and step the session.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any, cast

from appium.webdriver.webdriver import WebDriver
from selenium.common.exceptions import InvalidSessionIdException, WebDriverException

from phonefleet_worker.backoff import Backoff
from phonefleet_worker.connection import AdbConnection
from phonefleet_worker.errors import (
    AdbConnectFailed,
    AppiumUnavailable,
    DeviceLost,
    GloginFailed,
    GloginRequired,
)
from phonefleet_worker.lifecycle import StopRequested
from phonefleet_worker.session import DeviceSession, SessionTimings
from phonefleet_worker.states import DeviceState
from phonefleet_worker.tasks import HeartbeatTask, PeriodicJobSource, Task, TaskContext, TaskResult

PHONE_ID = "526209711930868736"
OTHER_PHONE_ID = "526209711930868999"
IP = "10.7.0.21"
PORT = 40117
SERIAL = f"{IP}:{PORT}"
PASSWORD = "gl-pw-93e1c7"  # a fake; the tests check it never reaches a log line


def make_connection(**overrides: Any) -> AdbConnection:
    """Connection data as the operator writes it for PHONE_ID."""
    values: dict[str, Any] = {"ip": IP, "port": PORT, "password": PASSWORD, "phone_id": PHONE_ID}
    values.update(overrides)
    return AdbConnection(**values)


class FakePacer:
    """A clock that jumps instead of sleeping; records every wait."""

    def __init__(self) -> None:
        self.clock = 1000.0
        self.sleeps: list[float] = []
        self.beats = 0
        self.stop_event = threading.Event()
        self.stop_reason = ""
        self.on_sleep: Callable[[float], None] | None = None
        self.fail_next_now: Exception | None = None

    def now(self) -> float:
        if self.fail_next_now is not None:
            error, self.fail_next_now = self.fail_next_now, None
            raise error
        return self.clock

    def sleep(self, seconds: float) -> None:
        self.check()
        self.sleeps.append(seconds)
        self.clock += max(seconds, 0.0)
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        self.check()

    def check(self) -> None:
        if self.stop_event.is_set():
            raise StopRequested(self.stop_reason)

    def beat(self) -> None:
        self.beats += 1

    def call(
        self,
        func: Callable[[], Any],
        *,
        name: str,
        deadline: float | None = None,
        abandon: Callable[[], str | None] | None = None,
    ) -> Any:
        self.check()
        return func()

    def enter_cleanup(self) -> None:
        pass

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason
        self.stop_event.set()


@dataclasses.dataclass
class FakePhone:
    """One phone as adb sees it."""

    phone_id: str = PHONE_ID
    password: str = PASSWORD
    reachable: bool = True
    states_after_connect: list[str] = dataclasses.field(default_factory=lambda: ["device"])
    """The states ``adb devices`` reports after a connect, one per call; the last one repeats."""
    state: str | None = None
    logged_in: bool = False


class FakeAdb:
    """An adb server that knows a few phones by serial."""

    def __init__(self, phones: dict[str, FakePhone]) -> None:
        self.phones = phones
        self.calls: list[tuple[str, ...]] = []
        self._pending_states: dict[str, list[str]] = {}
        self.connect_error: Exception | None = None

    def phone(self, serial: str = SERIAL) -> FakePhone:
        return self.phones[serial]

    def count(self, command: str) -> int:
        return sum(1 for call in self.calls if call[0] == command)

    def connect(self, serial: str) -> None:
        self.calls.append(("connect", serial))
        if self.connect_error is not None:
            raise self.connect_error
        phone = self.phones.get(serial)
        if phone is None or not phone.reachable:
            raise AdbConnectFailed(f"adb connect {serial} failed: 'failed to connect to {serial}'")
        phone.logged_in = False
        self._pending_states[serial] = list(phone.states_after_connect)
        phone.state = self._pending_states[serial][0]

    def disconnect(self, serial: str) -> None:
        self.calls.append(("disconnect", serial))
        phone = self.phones.get(serial)
        if phone is not None:
            phone.state = None
            phone.logged_in = False

    def device_state(self, serial: str) -> str | None:
        self.calls.append(("devices",))
        phone = self.phones.get(serial)
        if phone is None:
            return None
        pending = self._pending_states.get(serial)
        if pending:
            phone.state = pending.pop(0) if len(pending) > 1 else pending[0]
        return phone.state

    def glogin(self, serial: str, password: str) -> None:
        self.calls.append(("glogin", serial, password))
        phone = self._ready_phone(serial)
        if password != phone.password:
            raise GloginFailed(f"glogin on {serial} failed (exit 1): 'login failed'")
        phone.logged_in = True

    def getprop(self, serial: str, name: str) -> str:
        self.calls.append(("getprop", serial, name))
        phone = self._ready_phone(serial)
        if not phone.logged_in:
            raise GloginRequired(f"{serial} wants glogin again")
        return phone.phone_id if name == "ro.gl.serialno" else ""

    def lose(self, serial: str = SERIAL) -> None:
        """The phone drops off the network: adb lists it offline until reconnected."""
        self._pending_states.pop(serial, None)
        self.phones[serial].state = "offline"

    def _ready_phone(self, serial: str) -> FakePhone:
        phone = self.phones.get(serial)
        if phone is None or phone.state is None:
            raise DeviceLost(f"error: device '{serial}' not found")
        if phone.state != "device":
            raise DeviceLost(f"error: device {phone.state}")
        return phone


class FakeDriver:
    """Enough of an Appium driver for the heartbeat task."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.failure: Exception | None = None
        self.window = {"width": 720, "height": 1280}

    def get_window_size(self, windowHandle: str = "current") -> dict[str, int]:
        if self.failure is not None:
            raise self.failure
        return dict(self.window)


UIAUTOMATOR2_CRASH = (
    "An unknown server-side error occurred while processing the command. Original error: "
    "'GET /window/current/size' cannot be proxied to UiAutomator2 server because the "
    "instrumentation process is not running (probably crashed). Check the server log and/or "
    "the logcat output for more details"
)


def session_deleted() -> Exception:
    """What the client raises after the server dropped the session."""
    return InvalidSessionIdException("A session is either terminated or not started")


def uiautomator2_crashed() -> Exception:
    """What the client raises when the UiAutomator2 server on the phone died."""
    return WebDriverException(UIAUTOMATOR2_CRASH)


class FakeAppium:
    """An Appium server: not ready for ``not_ready_polls`` calls, then one session at a time."""

    def __init__(self) -> None:
        self.not_ready_polls = 0
        self.status_polls = 0
        self.open_errors: list[Exception] = []
        self.opened: list[str] = []
        self.quits = 0
        self.driver: FakeDriver | None = None

    def is_ready(self) -> bool:
        self.status_polls += 1
        if self.not_ready_polls > 0:
            self.not_ready_polls -= 1
            return False
        return True

    def open_session(self, serial: str) -> WebDriver:
        if self.open_errors:
            raise self.open_errors.pop(0)
        if self.driver is not None:
            raise AppiumUnavailable("one session at a time: the previous one was not quit")
        self.driver = FakeDriver(f"session-{len(self.opened) + 1}")
        self.opened.append(serial)
        return cast(WebDriver, self.driver)

    def quit_session(self) -> None:
        if self.driver is not None:
            self.quits += 1
            self.driver = None


class FakeConnections:
    """The mounted Secret, as a value the test sets."""

    def __init__(self, connection: AdbConnection | None) -> None:
        self.connection = connection
        self.error: Exception | None = None

    def current(self) -> AdbConnection | None:
        if self.error is not None:
            raise self.error
        return self.connection

    def describe(self) -> str:
        return "the fake Secret"


class ScriptedTask:
    """A task that raises the scripted errors in order, then succeeds."""

    name = "scripted"

    def __init__(self, *errors: Exception, on_run: Callable[[TaskContext], None] | None = None):
        self.errors = list(errors)
        self.runs = 0
        self.on_run = on_run

    def run(self, context: TaskContext) -> TaskResult:
        self.runs += 1
        if self.on_run is not None:
            self.on_run(context)
        if self.errors:
            raise self.errors.pop(0)
        return TaskResult(self.name, ok=True)


class RecordingJobs(PeriodicJobSource):
    """The periodic source, remembering every result."""

    def __init__(self, task: Task, *, interval: float) -> None:
        super().__init__(task, interval=interval)
        self.results: list[TaskResult] = []
        self.times: list[float] = []
        self.error: Exception | None = None

    def next_job(self, now: float) -> Task | None:
        if self.error is not None:
            raise self.error
        return super().next_job(now)

    def report(self, result: TaskResult, now: float) -> None:
        self.results.append(result)
        self.times.append(now)
        super().report(result, now)


@dataclasses.dataclass
class World:
    """A session and every fake around it."""

    session: DeviceSession
    adb: FakeAdb
    appium: FakeAppium
    connections: FakeConnections
    pacer: FakePacer
    jobs: RecordingJobs
    timings: SessionTimings

    @property
    def states(self) -> list[DeviceState]:
        """Every state the session entered, in order, starting with the first."""
        history = list(self.session.history)
        return [DeviceState.WAITING_FOR_PHONE, *(t.target for t in history)]

    def step_until(self, state: DeviceState, *, max_steps: int = 50) -> None:
        """Step until the session is in ``state``; fail if it does not get there."""
        for _ in range(max_steps):
            if self.session.state is state:
                return
            self.session.step()
        raise AssertionError(f"never reached {state}; went {[s.value for s in self.states]}")


def make_world(
    *,
    connection: AdbConnection | None = None,
    phone: FakePhone | None = None,
    task: Task | None = None,
    timings: SessionTimings | None = None,
    phone_id: str = PHONE_ID,
) -> World:
    """A session for ``phone_id`` whose Secret points at one fake phone at SERIAL."""
    pacer = FakePacer()
    adb = FakeAdb({SERIAL: phone or FakePhone()})
    appium = FakeAppium()
    connections = FakeConnections(connection if connection is not None else make_connection())
    jobs = RecordingJobs(task or HeartbeatTask(), interval=30.0)
    timings = timings or SessionTimings(
        device_timeout=10.0,
        device_poll=1.0,
        appium_ready_timeout=20.0,
        appium_poll=1.0,
        secret_poll_interval=5.0,
        device_check_interval=30.0,
        cleanup_timeout=5.0,
    )
    session = DeviceSession(
        phone_id=phone_id,
        adb=adb,
        appium=appium,
        connections=connections,
        jobs=jobs,
        pacer=pacer,
        backoff=Backoff(initial=2.0, maximum=60.0, jitter=0.0),
        timings=timings,
    )
    return World(session, adb, appium, connections, pacer, jobs, timings)
