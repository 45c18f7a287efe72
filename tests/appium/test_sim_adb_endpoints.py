"""The simulator's ADB endpoints against Debian's real adb: what a worker on the real node meets.

A phone's endpoint (the address ``adb/getData`` hands out) takes connections only while the phone
runs with ADB on, wants the password of the current power-on, answers ``ro.gl.serialno`` with the
phone's id, and can be told to answer another phone's id, to hang, or to drop.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from appium_support import AdbServer

from phonefleet_testbed.geelark_sim import GeelarkSimulator, OpenApiProbe, SimulatorConfig
from phonefleet_testbed.geelark_sim.endpoints import ADB_GET_DATA, ADB_SET_STATUS, PHONE_START
from phonefleet_testbed.processes import free_port
from phonefleet_testbed.waiting import wait_until


@pytest.fixture
def sim() -> Iterator[GeelarkSimulator]:
    """A simulator serving two phones' ADB endpoints on loopback, phones booting at once."""
    base = free_port()
    config = SimulatorConfig(phones=2, boot_seconds=0.0, adb_port_base=base, serve_adb=True)
    with GeelarkSimulator(config) as simulator:
        yield simulator


def _ready_phone(sim: GeelarkSimulator) -> tuple[str, str, str]:
    """Start the first phone, turn ADB on; return (phone id, serial, password) from getData."""
    probe = OpenApiProbe(sim.base_url)
    try:
        phone_id = sim.admin.phones()[0].id
        probe.data(PHONE_START, {"ids": [phone_id]})
        probe.data(ADB_SET_STATUS, {"ids": [phone_id], "open": True})
        item = probe.data(ADB_GET_DATA, {"ids": [phone_id]})["items"][0]
    finally:
        probe.close()
    return phone_id, f"{item['ip']}:{item['port']}", item["pwd"]


def _shell(adb: AdbServer, serial: str, *command: str) -> str:
    return adb.run("-s", serial, "shell", *command).stdout.strip()


def test_a_running_phone_with_adb_on_logs_in_and_tells_its_id(
    sim: GeelarkSimulator, adb_server: AdbServer
) -> None:
    """connect, glogin with getData's password, getprop ro.gl.serialno = the phone's id."""
    phone_id, serial, password = _ready_phone(sim)
    assert "connected" in adb_server.run("connect", serial).stdout
    assert _shell(adb_server, serial, "getprop", "ro.gl.serialno").startswith("error: you should")
    assert "login success" in _shell(adb_server, serial, "glogin", password)
    assert _shell(adb_server, serial, "getprop", "ro.gl.serialno") == phone_id


def test_a_stopped_phone_cuts_the_connection_and_refuses_new_ones(
    sim: GeelarkSimulator, adb_server: AdbServer
) -> None:
    """Stopped behind the operator's back: adb sees the device go, and connect fails."""
    phone_id, serial, password = _ready_phone(sim)
    adb_server.run("connect", serial)
    _shell(adb_server, serial, "glogin", password)
    sim.admin.update_phone(phone_id, status=2)  # stopped, out of band

    def gone() -> bool:
        devices = adb_server.run("devices").stdout
        return f"{serial}\tdevice" not in devices

    wait_until(gone, timeout=30, what=f"{serial} to leave adb devices")
    adb_server.run("disconnect", serial)
    assert "connected to" not in adb_server.run("connect", serial).stdout


def test_an_impersonating_endpoint_answers_another_phones_id(
    sim: GeelarkSimulator, adb_server: AdbServer
) -> None:
    """The fault a worker must refuse: the right address, the wrong phone."""
    phone_id, serial, password = _ready_phone(sim)
    sim.adb.impersonate(phone_id, "someone-else")
    adb_server.run("connect", serial)
    _shell(adb_server, serial, "glogin", password)
    assert _shell(adb_server, serial, "getprop", "ro.gl.serialno") == "someone-else"
    sim.adb.heal(phone_id)
    assert _shell(adb_server, serial, "getprop", "ro.gl.serialno") == phone_id
