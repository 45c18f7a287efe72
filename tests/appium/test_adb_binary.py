"""The adb gateway driving Debian's real adb binary, against devices that are not there and a fake
Geelark phone (``FakeAdbd``) that speaks the ADB protocol on loopback.

These need ``adb`` installed; they run with the Appium tests (marker ``appium``: the tier of
tests that need tools from outside Python).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from appium_support import PASSWORD, PHONE_ID, AdbServer
from fake_adbd import FakeAdbd

from phonefleet_testbed.processes import free_port
from phonefleet_testbed.waiting import wait_until
from phonefleet_worker.adb import AdbClient, SubprocessRunner
from phonefleet_worker.errors import (
    AdbConnectFailed,
    DeviceLost,
    GloginFailed,
    GloginRequired,
)
from phonefleet_worker.lifecycle import StopRequested

pytestmark = pytest.mark.appium


def make_client(server: AdbServer, runner: SubprocessRunner | None = None) -> AdbClient:
    """A gateway using the real adb binary against the test's private adb server."""
    return AdbClient(
        server_host="127.0.0.1",
        server_port=server.port,
        adb_path=server.adb_path,
        timeout=30,
        runner=runner,
    )


@pytest.fixture
def phone() -> Iterator[FakeAdbd]:
    """A fake Geelark phone for PHONE_ID with glogin password PASSWORD."""
    device = FakeAdbd(props={"ro.gl.serialno": PHONE_ID}, password=PASSWORD).start()
    yield device
    device.close()


def test_connecting_to_a_closed_port_fails_cleanly(adb_server: AdbServer) -> None:
    """No device behind the port: connect raises, nothing is listed, shell says not found."""
    client = make_client(adb_server)
    serial = f"127.0.0.1:{free_port()}"

    with pytest.raises(AdbConnectFailed, match="Connection refused"):
        client.connect(serial)
    assert client.device_state(serial) is None
    with pytest.raises(DeviceLost, match="not found"):
        client.getprop(serial, "ro.gl.serialno")
    client.disconnect(serial)


def test_the_adb_bring_up_works_step_by_step_against_a_geelark_like_phone(
    adb_server: AdbServer, phone: FakeAdbd
) -> None:
    """connect, device, glogin, getprop: the gateway's part of ADB_CONNECTING, with real adb."""
    client = make_client(adb_server)

    client.connect(phone.serial)
    client.connect(phone.serial)
    wait_until(lambda: client.device_state(phone.serial) == "device", timeout=10, what="device")
    with pytest.raises(GloginRequired):
        client.getprop(phone.serial, "ro.gl.serialno")
    client.glogin(phone.serial, PASSWORD)

    assert client.getprop(phone.serial, "ro.gl.serialno") == PHONE_ID
    assert phone.commands[-2:] == [f"glogin {PASSWORD}", "getprop ro.gl.serialno"]


def test_a_wrong_password_and_an_expired_login_are_told_apart(
    adb_server: AdbServer, phone: FakeAdbd
) -> None:
    """A refused glogin raises GloginFailed; an expired one GloginRequired on the next command."""
    client = make_client(adb_server)
    client.connect(phone.serial)
    wait_until(lambda: client.device_state(phone.serial) == "device", timeout=10, what="device")

    with pytest.raises(GloginFailed):
        client.glogin(phone.serial, "not-the-password")
    client.glogin(phone.serial, PASSWORD)
    phone.logged_in = False

    with pytest.raises(GloginRequired):
        client.getprop(phone.serial, "ro.gl.serialno")


def test_a_phone_that_vanishes_is_offline_then_lost(adb_server: AdbServer, phone: FakeAdbd) -> None:
    """When the phone drops off, adb lists it offline and shell commands raise DeviceLost."""
    client = make_client(adb_server)
    client.connect(phone.serial)
    wait_until(lambda: client.device_state(phone.serial) == "device", timeout=10, what="device")

    phone.close()

    wait_until(lambda: client.device_state(phone.serial) == "offline", timeout=10, what="offline")
    with pytest.raises(DeviceLost, match="offline"):
        client.getprop(phone.serial, "ro.gl.serialno")
    with pytest.raises(AdbConnectFailed):
        client.connect(phone.serial)
    client.disconnect(phone.serial)
    assert client.device_state(phone.serial) is None


def test_an_unauthorized_phone_fails_to_connect(adb_server: AdbServer) -> None:
    """A phone that never accepts the adb key: connect fails and adb lists it unauthorized."""
    locked = FakeAdbd(props={}, password=PASSWORD, authorized=False).start()
    try:
        client = make_client(adb_server)

        with pytest.raises(AdbConnectFailed, match="failed to authenticate"):
            client.connect(locked.serial)
        assert client.device_state(locked.serial) == "unauthorized"
    finally:
        locked.close()


def test_a_stop_kills_an_adb_command_that_hangs(adb_server: AdbServer) -> None:
    """adb connect to a port that never answers takes 10 s; a stop ends it at once."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    cancel = threading.Event()

    def hold_the_connection_then_stop() -> None:
        held.append(listener.accept()[0])
        cancel.set()

    threading.Thread(target=hold_the_connection_then_stop, daemon=True).start()
    client = make_client(adb_server, SubprocessRunner(cancel, poll_seconds=0.05))
    started = time.monotonic()
    try:
        with pytest.raises(StopRequested):
            client.connect(f"127.0.0.1:{listener.getsockname()[1]}")
    finally:
        listener.close()
        for connection in held:
            connection.close()

    assert time.monotonic() - started < 5
