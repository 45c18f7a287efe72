"""The whole worker against real tools: Debian's adb, a fake Geelark phone speaking the ADB
protocol (``FakeAdbd``), and Appium with its fake driver standing in for UiAutomator2.

Only the phone is fake; the worker runs as in its pod: adb commands, the Secret folder, Appium
sessions, probes and SIGTERM are all real.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from appium_support import (
    OTHER_PHONE_ID,
    PASSWORD,
    PHONE_ID,
    AdbServer,
    fake_driver_capabilities,
    probe_status,
)
from fake_adbd import FakeAdbd

from phonefleet_testbed.processes import free_port
from phonefleet_testbed.waiting import wait_until
from phonefleet_worker.lifecycle import Lifecycle
from phonefleet_worker.settings import WorkerSettings
from phonefleet_worker.states import DeviceState
from phonefleet_worker.worker import Worker, build_worker

pytestmark = pytest.mark.appium

S = DeviceState
log = logging.getLogger("phonefleet.e2e")


def write_secret(directory: Path, phone: FakeAdbd, *, password: str = PASSWORD) -> None:
    """Write the phone's connection data the way the kubelet updates a Secret volume."""
    version = directory / f"..{time.monotonic_ns()}"
    version.mkdir(parents=True)
    values = {"ip": "127.0.0.1", "port": str(phone.port), "password": password, "phoneId": PHONE_ID}
    for key, value in values.items():
        (version / key).write_text(value)
    staging = directory / "..data_tmp"
    staging.symlink_to(version.name)
    staging.replace(directory / "..data")
    for key in values:
        if not (directory / key).is_symlink():
            (directory / key).symlink_to(Path("..data") / key)


@pytest.fixture
def phone() -> Iterator[FakeAdbd]:
    """A fake Geelark phone for PHONE_ID."""
    device = FakeAdbd(props={"ro.gl.serialno": PHONE_ID}, password=PASSWORD).start()
    yield device
    device.close()


def make_settings(
    secret_dir: Path, adb_server: AdbServer, appium_url: str, **overrides: Any
) -> WorkerSettings:
    """Worker settings for PHONE_ID against the test's adb server and Appium, fast intervals."""
    values: dict[str, Any] = {
        "phone_id": PHONE_ID,
        "adb_secret_dir": secret_dir,
        "appium_url": appium_url,
        "adb_server": f"127.0.0.1:{adb_server.port}",
        "adb_path": adb_server.adb_path,
        "probe_host": "127.0.0.1",
        "probe_port": 0,
        "job_port": 0,
        "task_interval": 0.5,
        "device_check_interval": 0.5,
        "secret_poll_interval": 0.2,
        "recovery_initial_delay": 0.2,
        "recovery_max_delay": 1.0,
    }
    values.update(overrides)
    return WorkerSettings(**values)


def run_until_done(worker: Worker, script: Callable[[], None]) -> int:
    """Run the worker on this (main) thread while ``script`` runs beside it, then SIGTERM it."""
    failures: list[BaseException] = []

    def drive() -> None:
        try:
            script()
        except BaseException as exc:  # handed to the test below
            failures.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=drive, name="e2e-script", daemon=True).start()
    code = worker.run()
    if failures:
        raise failures[0]
    return code


def readyz(worker: Worker) -> int:
    """The status code of the worker's /readyz."""
    return requests.get(f"http://127.0.0.1:{worker.probes.port}/readyz", timeout=5).status_code


def entered(worker: Worker, state: DeviceState, *, times: int = 1) -> Callable[[], bool]:
    """A condition: the session entered ``state`` at least ``times`` times."""
    return lambda: sum(t.target is state for t in worker.session.history) >= times


def heartbeats(worker: Worker) -> int:
    """How many heartbeats finished."""
    return sum(t.reason == "task heartbeat finished" for t in worker.session.history)


def test_a_worker_goes_from_start_to_a_heartbeat_and_stops_on_sigterm(
    tmp_path: Path,
    adb_server: AdbServer,
    appium_url: str,
    phone: FakeAdbd,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """From start through every bring-up state to IDLE, a heartbeat, then SIGTERM and exit 0."""
    caplog.set_level(logging.INFO)
    secret = tmp_path / "adb-secret"
    write_secret(secret, phone)
    worker = build_worker(
        make_settings(secret, adb_server, appium_url),
        capabilities=fake_driver_capabilities,
        lifecycle=Lifecycle(slice_seconds=0.05),
    )
    started = time.time()
    seen: dict[str, Any] = {}

    def script() -> None:
        assert readyz(worker) == 503
        wait_until(lambda: heartbeats(worker) >= 1, timeout=60, what="the first heartbeat")
        seen["ready"] = readyz(worker)

    code = run_until_done(worker, script)

    assert code == 0
    assert seen["ready"] == 200
    assert [t.target for t in worker.session.history][:6] == [
        S.ADB_CONNECTING,
        S.ADB_READY,
        S.APPIUM_READY,
        S.IDLE,
        S.JOB_RUNNING,
        S.IDLE,
    ]
    assert worker.session.state is S.STOPPED
    assert phone.commands[:2] == [f"glogin {PASSWORD}", "getprop ro.gl.serialno"]
    assert PASSWORD not in caplog.text
    assert adb_server.run("devices").stdout.split() == ["List", "of", "devices", "attached"]
    for record in caplog.records:  # the timings, for anyone reading this test's log
        if record.getMessage().startswith(("Moved phone", "Connected adb", "Logged in", "Created")):
            log.info("%+7.3f s  %s", record.created - started, record.getMessage())


def test_the_installed_command_gets_ready_against_the_fake_driver_and_exits_0_on_sigterm(
    tmp_path: Path, adb_server: AdbServer, appium_url: str, phone: FakeAdbd
) -> None:
    """``phonefleet-worker`` as a process: /readyz turns 200 once the session is open."""
    secret = tmp_path / "adb-secret"
    write_secret(secret, phone)
    probe_port = free_port()
    command = [
        str(Path(sys.executable).with_name("phonefleet-worker")),
        "--phone-id", PHONE_ID,
        "--adb-secret-dir", str(secret),
        "--appium-url", appium_url,
        "--adb-server", f"127.0.0.1:{adb_server.port}",
        "--probe-port", str(probe_port),
        "--job-port", str(free_port()),
    ]  # fmt: skip
    env = {
        **os.environ,
        "PHONEFLEET_WORKER_PROBE_HOST": "127.0.0.1",
        "PHONEFLEET_WORKER_APPIUM_CAPABILITIES": json.dumps(fake_driver_capabilities("")),
    }
    spawned = time.monotonic()
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as worker:
        try:
            wait_until(
                lambda: probe_status(probe_port, "/readyz") == 200, timeout=60, what="/readyz"
            )
            ready_after = time.monotonic() - spawned
            worker.send_signal(signal.SIGTERM)
            _, stderr = worker.communicate(timeout=20)
        finally:
            if worker.poll() is None:
                worker.kill()

    assert worker.returncode == 0, stderr
    order = [
        "from WAITING_FOR_PHONE to ADB_CONNECTING",
        "from ADB_CONNECTING to ADB_READY",
        "from ADB_READY to APPIUM_READY",
        "from APPIUM_READY to IDLE",
        "to STOPPED: received SIGTERM",
    ]
    positions = [stderr.find(text) for text in order]
    assert -1 not in positions, stderr
    assert positions == sorted(positions), stderr
    log.info("The worker process was ready %.2f s after it was spawned", ready_after)


def test_the_worker_refuses_a_device_that_is_another_phone(
    tmp_path: Path, adb_server: AdbServer, appium_url: str
) -> None:
    """The installed command exits 1 with a clear message and never opens an Appium session."""
    impostor = FakeAdbd(props={"ro.gl.serialno": OTHER_PHONE_ID}, password=PASSWORD).start()
    secret = tmp_path / "adb-secret"
    write_secret(secret, impostor)
    command = [
        str(Path(sys.executable).with_name("phonefleet-worker")),
        "--phone-id", PHONE_ID,
        "--adb-secret-dir", str(secret),
        "--appium-url", appium_url,
        "--adb-server", f"127.0.0.1:{adb_server.port}",
        "--probe-port", "0",
    ]  # fmt: skip
    env = {**os.environ, "PHONEFLEET_WORKER_PROBE_HOST": "127.0.0.1"}
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        impostor.close()

    assert result.returncode == 1, result.stderr
    assert (
        f"Refused to drive {impostor.serial}: it reports phone id {OTHER_PHONE_ID!r}, "
        f"but this worker was started for phone id {PHONE_ID!r}"
    ) in result.stderr
    assert "Appium session" not in result.stderr
    assert impostor.commands == [f"glogin {PASSWORD}", "getprop ro.gl.serialno"]


def test_a_session_the_server_drops_is_recreated_by_the_worker(
    tmp_path: Path, adb_server: AdbServer, appium_url: str, phone: FakeAdbd
) -> None:
    """Appium deletes the session; the next heartbeat fails, the worker recovers, a new one runs."""
    secret = tmp_path / "adb-secret"
    write_secret(secret, phone)
    worker = build_worker(
        make_settings(secret, adb_server, appium_url),
        capabilities=fake_driver_capabilities,
        lifecycle=Lifecycle(slice_seconds=0.05),
    )
    sessions: list[str] = []

    def script() -> None:
        wait_until(lambda: heartbeats(worker) >= 1, timeout=60, what="the first heartbeat")
        first = worker.session.history[2].reason.split()[3]  # "opened Appium session <id> on ..."
        sessions.append(first)
        requests.delete(f"{appium_url}/session/{first}", timeout=10).raise_for_status()
        wait_until(entered(worker, S.RECOVERING), timeout=30, what="RECOVERING")
        wait_until(lambda: heartbeats(worker) >= 2, timeout=60, what="a heartbeat on a new session")
        opened = [t.reason for t in worker.session.history if t.target is S.APPIUM_READY]
        sessions.append(opened[-1].split()[3])

    assert run_until_done(worker, script) == 0
    assert sessions[0] != sessions[1]
    recovery = next(t for t in worker.session.history if t.target is S.RECOVERING)
    assert recovery.reason.startswith("The Appium session was lost")


def test_a_lost_phone_re_provisioned_at_a_new_address_is_picked_up_without_restart(
    tmp_path: Path, adb_server: AdbServer, appium_url: str, phone: FakeAdbd
) -> None:
    """The phone drops off; the operator writes new connection data; the worker follows it."""
    secret = tmp_path / "adb-secret"
    write_secret(secret, phone)
    worker = build_worker(
        make_settings(secret, adb_server, appium_url),
        capabilities=fake_driver_capabilities,
        lifecycle=Lifecycle(slice_seconds=0.05),
    )
    moved = FakeAdbd(props={"ro.gl.serialno": PHONE_ID}, password="gl-pw-new").start()

    def script() -> None:
        wait_until(entered(worker, S.IDLE), timeout=60, what="IDLE")
        phone.close()
        wait_until(entered(worker, S.RECOVERING), timeout=30, what="RECOVERING")
        write_secret(secret, moved, password="gl-pw-new")
        wait_until(
            lambda: (
                worker.session.state is S.IDLE
                and worker.session.connection is not None
                and worker.session.connection.serial == moved.serial
            ),
            timeout=60,
            what="IDLE on the new address",
        )

    try:
        assert run_until_done(worker, script) == 0
    finally:
        moved.close()
    first_recovery = next(t for t in worker.session.history if t.target is S.RECOVERING)
    assert first_recovery.reason == f"adb lists {phone.serial} as offline"
    assert moved.commands[:2] == ["glogin gl-pw-new", "getprop ro.gl.serialno"]
