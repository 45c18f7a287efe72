"""The worker's composition root: builds the gateways, the session and the probes, and runs them.

``run_worker(settings)`` is what the CLI calls. ``Worker`` takes its gateways as arguments, so
tests run the whole worker (probes, signals, session) against in-memory fakes or a real Appium.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from phonefleet_worker.adb import AdbClient, AdbGateway, SubprocessRunner
from phonefleet_worker.appium_gateway import (
    AppiumClient,
    AppiumGateway,
    CapabilitiesFactory,
    merged_capabilities,
    uiautomator2_capabilities,
)
from phonefleet_worker.backoff import Backoff
from phonefleet_worker.connection import ConnectionSource, SecretDirConnectionSource
from phonefleet_worker.job_desk import JobDesk, MediaPusher
from phonefleet_worker.job_server import JobServer, token_from_file
from phonefleet_worker.lifecycle import Lifecycle
from phonefleet_worker.media import HttpMediaPusher
from phonefleet_worker.metrics import MeteredJobs
from phonefleet_worker.probes import ProbeServer
from phonefleet_worker.registry import TaskRegistry
from phonefleet_worker.report import readiness_report, write_termination_message
from phonefleet_worker.session import DeviceSession, SessionTimings
from phonefleet_worker.settings import WorkerSettings
from phonefleet_worker.tasks import JobSource, PeriodicJobSource, build_task

__all__ = ["Worker", "build_worker", "handle_signals", "run_worker"]

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def run_worker(settings: WorkerSettings) -> int:
    """Run the worker for ``settings.phone_id`` until SIGTERM; return the process exit code."""
    if not settings.phone_id:
        raise ValueError("a phone id is required: a worker drives only the phone it is given")
    return build_worker(settings).run()


def build_worker(
    settings: WorkerSettings,
    *,
    capabilities: CapabilitiesFactory | None = None,
    lifecycle: Lifecycle | None = None,
) -> Worker:
    """Wire the real gateways (the adb binary, the Appium server) for ``settings``."""
    lifecycle = lifecycle or Lifecycle()
    adb = AdbClient(
        server_host=settings.adb_server_host,
        server_port=settings.adb_server_port,
        adb_path=settings.adb_path,
        timeout=settings.adb_command_timeout,
        runner=SubprocessRunner(lifecycle.cancel_event),
    )
    defaults = functools.partial(uiautomator2_capabilities, system_port=settings.system_port)
    appium = AppiumClient(
        settings.appium_url,
        capabilities=capabilities or merged_capabilities(defaults, settings.appium_capabilities),
        command_timeout=settings.appium_command_timeout,
    )
    return Worker(
        settings,
        adb=adb,
        appium=appium,
        lifecycle=lifecycle,
        media=HttpMediaPusher(adb),
    )


class Worker:
    """One worker process: the device session, its probes and its signal handling."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        adb: AdbGateway,
        appium: AppiumGateway,
        lifecycle: Lifecycle,
        connections: ConnectionSource | None = None,
        jobs: JobSource | None = None,
        registry: TaskRegistry | None = None,
        media: MediaPusher | None = None,
    ) -> None:
        if not settings.phone_id:
            raise ValueError("a phone id is required: a worker drives only the phone it is given")
        self.settings = settings
        self.lifecycle = lifecycle
        # Delivered PhoneJobs come first; the idle task runs while none waits.
        self.desk = JobDesk(
            registry or TaskRegistry.from_entry_points(),
            idle=MeteredJobs(
                jobs
                or PeriodicJobSource(build_task(settings.task), interval=settings.task_interval),
                tasks=[settings.task],
            ),
            media=media,
            on_superseded=lifecycle.request_stop,
        )
        self.session = DeviceSession(
            phone_id=settings.phone_id,
            adb=adb,
            appium=appium,
            connections=connections or SecretDirConnectionSource(settings.adb_secret_dir),
            jobs=self.desk,
            pacer=lifecycle,
            backoff=Backoff(
                initial=settings.recovery_initial_delay, maximum=settings.recovery_max_delay
            ),
            timings=SessionTimings(
                device_timeout=settings.adb_device_timeout,
                appium_ready_timeout=settings.appium_ready_timeout,
                secret_poll_interval=settings.secret_poll_interval,
                device_check_interval=settings.device_check_interval,
            ),
            hold=self.desk,
        )
        self.probes = ProbeServer(
            host=settings.probe_host,
            port=settings.probe_port,
            readiness=self.readiness,
            liveness=self.liveness,
        )
        self.job_server = JobServer(
            host=settings.probe_host,
            port=settings.job_port,
            desk=self.desk,
            token=token_from_file(settings.job_token_path),
        )

    def readiness(self) -> tuple[bool, str]:
        """Ready while the Appium session is open (a JSON body: state and reason).

        JOB_RUNNING counts as ready because it cannot outlast the task's deadline: the session
        runs every task through ``Lifecycle.call`` with that deadline, cancels it there and
        reopens the session (RECOVERING, not ready), so a hung task cannot hold the pod Ready.
        """
        return readiness_report(self.session)

    def liveness(self) -> tuple[bool, str]:
        """Alive while the main loop turned within the liveness timeout."""
        age = self.lifecycle.now() - self.lifecycle.last_beat
        return age <= self.settings.liveness_timeout, f"main loop turned {age:.1f} s ago"

    def run(self) -> int:
        """Serve the probes and run the session until it stops; return the exit code."""
        self.probes.start()
        self.job_server.start()
        log.info(
            "Started the worker for phone %s (connection data in %s, adb server %s, Appium at %s)",
            self.settings.phone_id,
            self.settings.adb_secret_dir,
            self.settings.adb_server,
            self.settings.appium_url,
        )
        try:
            with handle_signals(self.lifecycle):
                code = self.session.run()
                # The operator ends an attempt whose pod went away only once it hears that it
                # ended (or its lease ran out): it asks within its poll, 2 s by default.
                self.desk.stop(self.session.state.value)
                if not self.desk.wait_told(self.settings.job_linger_seconds):
                    log.info("Stopped serving the job endpoint: the operator did not ask")
            write_termination_message(self.session)
        finally:
            self.job_server.close()
            self.probes.close()
        log.info(
            "Stopped the worker for phone %s in state %s (exit code %d)",
            self.settings.phone_id,
            self.session.state.value,
            code,
        )
        return code


@contextlib.contextmanager
def handle_signals(lifecycle: Lifecycle) -> Iterator[None]:
    """Turn SIGTERM and SIGINT into a stop request while inside; restore the old handlers after.

    Signal handlers can only be set from the main thread; elsewhere (tests) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        lifecycle.request_stop(f"received {signal.Signals(signum).name}")

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
