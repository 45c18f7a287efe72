"""The device session: the state machine that takes one phone from its connection data to jobs.

One ``step()`` does the work of the current state and moves to the next; ``run()`` steps until
STOPPED or FAILED and returns the exit code. Every move is checked against ``states.TRANSITIONS``
and logged with the phone id and the reason. The session never logs or raises the ADB password.

What each state does:

- WAITING_FOR_PHONE: read the connection data; none yet -> wait and read again.
- ADB_CONNECTING: ``adb connect``; wait (with a deadline) for the state ``device``; ``glogin``;
  read ``ro.gl.serialno``: another phone id -> FAILED, and the device is never driven.
- ADB_READY: wait (with a deadline) for Appium's ``/status`` to be ready; create the session.
- APPIUM_READY: the session is open -> IDLE.
- IDLE: watch the connection data (new data -> RECOVERING), check the device and its identity on an
  interval (glogin again when Geelark's login expired), hand out the next job -> JOB_RUNNING.
- JOB_RUNNING: run the task under its deadline; a lost session or device -> RECOVERING, other
  failures fail the job. A task that passes its deadline is cancelled and abandoned, and the
  session is torn down (RECOVERING) so the next job starts on a clean one.
- RECOVERING: quit the session, ``adb disconnect``, back off, read the connection data again.

A hold (``JobHold``: an attempt's lease ran out, the operator has not been heard from since, and
the pod may have been replaced) keeps the session in WAITING_FOR_PHONE, off the phone, until it
ends; an idle session that finds one drops its connection (RECOVERING).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import TYPE_CHECKING, Protocol

from phonefleet_worker import metrics
from phonefleet_worker.adb import DEVICE, SERIALNO_PROPERTY, AdbGateway
from phonefleet_worker.appium_gateway import AppiumGateway, classify_failure, first_line
from phonefleet_worker.backoff import Backoff
from phonefleet_worker.connection import AdbConnection, ConnectionSource
from phonefleet_worker.errors import (
    AdbConnectFailed,
    AppiumUnavailable,
    DeviceLost,
    FatalError,
    GloginRequired,
    IdentityMismatch,
    RecoverableError,
    TaskHung,
)
from phonefleet_worker.lifecycle import CallTimedOut, Pacer, StopRequested, call_with_deadline
from phonefleet_worker.states import TERMINAL_STATES, DeviceState, is_allowed
from phonefleet_worker.tasks import Device, JobSource, Task, TaskContext, TaskResult

if TYPE_CHECKING:
    from collections.abc import Callable

    from appium.webdriver.webdriver import WebDriver

__all__ = ["DeviceSession", "JobHold", "SessionTimings", "Transition"]

log = logging.getLogger(__name__)

S = DeviceState


@dataclasses.dataclass(frozen=True)
class SessionTimings:
    """How long the session waits for what; every field in seconds."""

    device_timeout: float = 60.0
    """How long a connected phone has to reach the adb state ``device``."""
    device_poll: float = 1.0
    """How often ``adb devices`` is asked while waiting for that."""
    appium_ready_timeout: float = 120.0
    """How long the Appium server has to report ready."""
    appium_poll: float = 1.0
    """How often ``/status`` is asked while waiting for that."""
    secret_poll_interval: float = 5.0
    """How often the connection data is read again."""
    device_check_interval: float = 30.0
    """How often an idle worker checks that the device is there and is still this phone."""
    cleanup_timeout: float = 10.0
    """How long each shutdown step (quit the session, disconnect adb) may take."""


class JobHold(Protocol):
    """Says when the worker must keep off the phone (the job desk)."""

    def held(self) -> str | None:
        """Why the worker must not drive the phone now, else None."""
        ...

    def release_hold(self) -> None:
        """The operator wrote other connection data: the hold ends."""
        ...


@dataclasses.dataclass(frozen=True)
class Transition:
    """One move of the state machine."""

    source: DeviceState
    target: DeviceState
    reason: str


class DeviceSession:
    """Drives the one phone ``phone_id`` names, through the gateways it is given."""

    def __init__(
        self,
        *,
        phone_id: str,
        adb: AdbGateway,
        appium: AppiumGateway,
        connections: ConnectionSource,
        jobs: JobSource,
        pacer: Pacer,
        backoff: Backoff,
        timings: SessionTimings | None = None,
        hold: JobHold | None = None,
    ) -> None:
        if not phone_id or not phone_id.strip():
            raise ValueError("phone_id is required: a worker drives only the phone it is given")
        self.phone_id = phone_id.strip()
        self._adb = adb
        self._appium = appium
        self._connections = connections
        self._jobs = jobs
        self._pacer = pacer
        self._backoff = backoff
        self._timings = timings or SessionTimings()
        self._hold = hold
        # The connection data in use when a hold began: other data written since ends it.
        self._held_with: AdbConnection | None = None
        self._state = S.WAITING_FOR_PHONE
        metrics.entered(self._state)
        self._connection: AdbConnection | None = None
        self._driver: WebDriver | None = None
        self._job: Task | None = None
        # The task a stop interrupted: reported ended once the shutdown has quit the session.
        self._interrupted: Task | None = None
        self._job_ends: float | None = None
        self._recovery_delay = 0.0
        self._next_secret_poll = 0.0
        self._next_device_check = 0.0
        self._announced_waiting = False
        self.history: collections.deque[Transition] = collections.deque(maxlen=200)
        """The latest transitions, oldest first."""
        self.failure: FatalError | None = None
        """Why the session FAILED, once it has."""

    @property
    def state(self) -> DeviceState:
        """The current state (read by the probe thread)."""
        return self._state

    @property
    def connection(self) -> AdbConnection | None:
        """The connection data in use."""
        return self._connection

    def run(self) -> int:
        """Step until STOPPED (exit code 0) or FAILED (exit code 1)."""
        try:
            while self._state not in TERMINAL_STATES:
                self._pacer.beat()
                self.step()
        except StopRequested as stop:
            reason = str(stop) or "a stop was requested"
            self._shutdown(reason)
            interrupted, self._interrupted = self._interrupted, None
            if interrupted is not None:
                # Only now, with the Appium session quit and adb disconnected, has it ended.
                message = f"the worker stopped ({reason}) and quit its Appium session"
                self._jobs.report(
                    TaskResult(interrupted.name, ok=False, detail={"error": message}),
                    self._pacer.now(),
                )
        return 0 if self._state is S.STOPPED else 1

    def step(self) -> None:
        """Do the current state's work once; raise StopRequested when asked to stop."""
        self._pacer.check()
        handlers: dict[DeviceState, Callable[[], None]] = {
            S.WAITING_FOR_PHONE: self._wait_for_phone,
            S.ADB_CONNECTING: self._connect_adb,
            S.ADB_READY: self._open_session,
            S.APPIUM_READY: self._appium_ready,
            S.IDLE: self._idle,
            S.JOB_RUNNING: self._run_job,
            S.RECOVERING: self._recover,
        }
        try:
            handlers[self._state]()
        except StopRequested:
            raise
        except FatalError as exc:
            self._fail(exc)
        except RecoverableError as exc:
            self._enter_recovery(str(exc))
        except Exception as exc:  # a bug or a fault nobody foresaw: recovering beats crashing
            log.exception("Phone %s: %s failed unexpectedly", self.phone_id, self._state.value)
            self._enter_recovery(f"unexpected {type(exc).__name__}: {first_line(exc)}")

    # The states' work.

    def _wait_for_phone(self) -> None:
        connection = self._connections.current()
        if self._held(connection):
            self._pacer.sleep(min(self._timings.secret_poll_interval, 1.0))
            return
        if connection is None:
            if not self._announced_waiting:
                log.info(
                    "Phone %s: waiting for connection data in %s",
                    self.phone_id,
                    self._connections.describe(),
                )
                self._announced_waiting = True
            self._pacer.sleep(self._timings.secret_poll_interval)
            return
        self._use(connection)
        self._move(S.ADB_CONNECTING, f"found connection data for {connection.serial}")

    def _connect_adb(self) -> None:
        connection = self._require_connection()
        serial = connection.serial
        self._adb.connect(serial)
        self._wait_for_device(serial)
        self._adb.glogin(serial, connection.password)
        self._verify_identity(serial)
        self._move(S.ADB_READY, f"{serial} reports phone id {self.phone_id}")

    def _open_session(self) -> None:
        serial = self._require_connection().serial
        deadline = self._pacer.now() + self._timings.appium_ready_timeout
        while not self._appium.is_ready():
            if self._pacer.now() >= deadline:
                raise AppiumUnavailable(
                    f"Appium was not ready after {self._timings.appium_ready_timeout:g} s"
                )
            self._pacer.sleep(self._timings.appium_poll)
        driver = self._pacer.call(
            lambda: self._appium.open_session(serial),
            name="open-session",
            deadline=self._timings.appium_ready_timeout,
        )
        self._driver = driver
        self._move(S.APPIUM_READY, f"opened Appium session {driver.session_id} on {serial}")

    def _appium_ready(self) -> None:
        now = self._pacer.now()
        self._next_secret_poll = now + self._timings.secret_poll_interval
        self._next_device_check = now + self._timings.device_check_interval
        self._move(S.IDLE, "the session takes jobs")

    def _idle(self) -> None:
        if self._hold is not None and (held := self._hold.held()):
            self._held_with = self._connection
            self._enter_recovery(f"keeping off the phone: {held}", delay=0.0)
            return
        now = self._pacer.now()
        if now >= self._next_secret_poll:
            self._next_secret_poll = now + self._timings.secret_poll_interval
            latest = self._connections.current()
            if latest != self._connection:
                what = "removed" if latest is None else "changed"
                self._enter_recovery(f"the connection data was {what}", delay=0.0)
                return
        if now >= self._next_device_check:
            self._check_device()
            self._next_device_check = self._pacer.now() + self._timings.device_check_interval
        job = self._jobs.next_job(self._pacer.now())
        if job is not None:
            self._job = job
            self._move(S.JOB_RUNNING, f"started task {job.name}")
            return
        now = self._pacer.now()
        self._pacer.sleep(
            min(
                self._jobs.seconds_until_next(now),
                self._next_secret_poll - now,
                self._next_device_check - now,
            )
        )

    def _run_job(self) -> None:
        job, driver = self._job, self._driver
        if job is None or driver is None:
            raise RuntimeError("JOB_RUNNING without a job or a session")
        self._job = None
        context = TaskContext(
            driver=driver,
            device=Device(self.phone_id, self._require_connection().serial),
            stop=self._pacer.stop_event,
        )
        started = self._pacer.now()
        deadline: float | None = getattr(job, "deadline_seconds", None)
        try:
            result = self._pacer.call(
                lambda: job.run(context),
                name=f"task-{job.name}",
                deadline=deadline,
                abandon=getattr(job, "abandon_reason", None),
            )
        except StopRequested:
            self._interrupted = job
            raise
        except CallTimedOut as exc:
            cancel = getattr(job, "cancel", None)
            if cancel is not None:
                cancel()
            message = (
                f"task {job.name} passed its deadline of {deadline:g} s and was cancelled"
                if exc.abandoned is None
                else f"task {job.name} was stopped: {exc.abandoned}"
            )
            self._jobs.report(
                TaskResult(job.name, ok=False, detail={"error": message, "timedOut": True}),
                self._pacer.now(),
            )
            # A hung or superseded task may hold the driver: quit the session, so that it can
            # drive the phone no more and the next job gets a clean one.
            raise TaskHung(message) from exc
        except Exception as exc:
            if self._pacer.stop_event.is_set():
                # The task ended because the worker is stopping (it watches the stop event): its
                # attempt ends as the stop, reported once the Appium session is quit (run()).
                self._interrupted = job
                self._pacer.check()
            fault = classify_failure(exc)
            message = str(fault) if fault is not None else first_line(exc)
            self._jobs.report(
                TaskResult(job.name, ok=False, detail={"error": message}), self._pacer.now()
            )
            if fault is not None:
                raise fault from exc
            log.warning("Phone %s: task %s failed: %s", self.phone_id, job.name, message)
            self._move(S.IDLE, f"task {job.name} failed")
            return
        self._jobs.report(result, self._pacer.now())
        if result.ok:
            self._backoff.reset()
        log.info(
            "Phone %s: finished task %s in %.2f s (ok=%s) %s",
            self.phone_id,
            job.name,
            self._pacer.now() - started,
            result.ok,
            dict(result.detail),
        )
        self._move(S.IDLE, f"task {job.name} finished")

    def _recover(self) -> None:
        self._quit_session()
        if self._connection is not None:
            try:
                self._adb.disconnect(self._connection.serial)
            except RecoverableError as exc:
                log.info("Phone %s: could not disconnect adb: %s", self.phone_id, exc)
        if self._recovery_delay > 0:
            log.info(
                "Phone %s: waiting %.1f s before reconnecting (attempt %d)",
                self.phone_id,
                self._recovery_delay,
                self._backoff.attempts,
            )
            self._pacer.sleep(self._recovery_delay)
        connection = self._connections.current()
        held = self._hold.held() if self._hold is not None else None
        if held:
            self._held_with = self._connection
            self._connection = None
            self._move(S.WAITING_FOR_PHONE, f"keeping off the phone: {held}")
            return
        if connection is None:
            self._connection = None
            self._announced_waiting = False
            self._move(S.WAITING_FOR_PHONE, "there is no connection data")
            return
        self._use(connection)
        self._move(S.ADB_CONNECTING, f"reconnecting to {connection.serial}")

    # Helpers.

    def _held(self, connection: AdbConnection | None) -> bool:
        """Whether a hold keeps the session off the phone; other connection data than when
        it began (the operator re-provisioned this pod's ADB) ends it."""
        if self._hold is None or not self._hold.held():
            return False
        if connection is not None and self._held_with is not None and connection != self._held_with:
            log.info("Phone %s: new connection data ends the hold", self.phone_id)
            self._hold.release_hold()
            return False
        return True

    def _use(self, connection: AdbConnection) -> None:
        if connection.phone_id and connection.phone_id != self.phone_id:
            raise IdentityMismatch(
                expected=self.phone_id,
                found=connection.phone_id,
                where=f"the connection data in {self._connections.describe()}",
            )
        self._connection = connection

    def _require_connection(self) -> AdbConnection:
        if self._connection is None:
            raise RuntimeError(f"{self._state.value} without connection data")
        return self._connection

    def _wait_for_device(self, serial: str) -> None:
        deadline = self._pacer.now() + self._timings.device_timeout
        while True:
            state = self._adb.device_state(serial)
            if state == DEVICE:
                return
            if state is None or state == "unauthorized":
                raise DeviceLost(f"adb lists {serial} as {state or 'absent'}")
            if self._pacer.now() >= deadline:
                raise AdbConnectFailed(
                    f"{serial} was still {state} after {self._timings.device_timeout:g} s"
                )
            self._pacer.sleep(self._timings.device_poll)

    def _verify_identity(self, serial: str, *, relogin: bool = False) -> None:
        try:
            found = self._adb.getprop(serial, SERIALNO_PROPERTY)
        except GloginRequired:
            if not relogin:
                raise
            log.info("Phone %s: the glogin on %s expired; logging in again", self.phone_id, serial)
            self._adb.glogin(serial, self._require_connection().password)
            found = self._adb.getprop(serial, SERIALNO_PROPERTY)
        if found != self.phone_id:
            raise IdentityMismatch(expected=self.phone_id, found=found, where=serial)

    def _check_device(self) -> None:
        serial = self._require_connection().serial
        state = self._adb.device_state(serial)
        if state != DEVICE:
            raise DeviceLost(f"adb lists {serial} as {state or 'absent'}")
        self._verify_identity(serial, relogin=True)

    def _enter_recovery(self, reason: str, *, delay: float | None = None) -> None:
        self._recovery_delay = self._backoff.next_delay() if delay is None else delay
        if self._state is S.RECOVERING:
            log.warning("Phone %s: recovery failed, trying again: %s", self.phone_id, reason)
            return
        self._move(S.RECOVERING, reason)

    def _quit_session(self) -> None:
        self._driver = None
        # Bounded: after a hung task the Appium server may not answer at all, and the client's
        # own timeout (600 s) would hold the main loop, and with it the liveness beat, that long.
        try:  # also ends a session an abandoned call opened meanwhile
            self._pacer.call(
                self._appium.quit_session,
                name="quit-session",
                deadline=self._timings.cleanup_timeout,
            )
        except CallTimedOut:
            log.warning(
                "Phone %s: gave up quitting the Appium session after %g s",
                self.phone_id,
                self._timings.cleanup_timeout,
            )

    def _fail(self, error: FatalError) -> None:
        self.failure = error
        log.error("Phone %s: %s", self.phone_id, error)
        self._cleanup()
        self._move(S.FAILED, str(error))

    def _shutdown(self, reason: str) -> None:
        self._pacer.enter_cleanup()
        self._cleanup()
        self._move(S.STOPPED, reason)

    def _cleanup(self) -> None:
        """Quit the session and disconnect adb, each within its deadline."""
        seconds = self._timings.cleanup_timeout
        self._driver = None
        call_with_deadline(self._appium.quit_session, seconds=seconds, name="quit the session")
        connection = self._connection
        if connection is not None:
            call_with_deadline(
                lambda: self._adb.disconnect(connection.serial),
                seconds=seconds,
                name=f"disconnect adb from {connection.serial}",
            )

    def _move(self, target: DeviceState, reason: str) -> None:
        source = self._state
        if not is_allowed(source, target):
            raise RuntimeError(f"illegal transition {source.value} -> {target.value} ({reason})")
        self._state = target
        metrics.moved(source, target)
        transition = Transition(source, target, reason)
        self.history.append(transition)
        level = logging.WARNING if target in (S.RECOVERING, S.FAILED) else logging.INFO
        log.log(
            level,
            "Moved phone %s from %s to %s: %s",
            self.phone_id,
            source.value,
            target.value,
            reason,
        )
