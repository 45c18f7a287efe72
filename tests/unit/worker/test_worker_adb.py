"""The adb gateway: the exact commands it runs and how it reads what real adb prints.

The outputs come from ``fixtures/adb_outputs.json``, recorded from Debian's adb 29.0.6 by
``tests/appium/record_adb_outputs.py``; each test names the recording it replays.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from phonefleet_worker.adb import AdbClient, AdbResult, SubprocessRunner, parse_devices
from phonefleet_worker.errors import (
    AdbConnectFailed,
    AdbError,
    AdbNotInstalled,
    DeviceLost,
    GloginFailed,
    GloginRequired,
)
from phonefleet_worker.lifecycle import StopRequested

RECORDINGS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "adb_outputs.json").read_text()
)
RECORDED_PASSWORD = "pw-7f3a9c"
RECORDED_PHONE_ID = "526209711930868736"


def recording(name: str) -> dict[str, Any]:
    """One recorded adb run."""
    return dict(RECORDINGS[name])


class ReplayRunner:
    """Answers each adb call with the next recording, after checking it is the recorded command."""

    def __init__(self, *names: str) -> None:
        self.pending = [recording(name) for name in names]
        self.argvs: list[list[str]] = []

    def __call__(self, argv: Sequence[str], *, timeout: float) -> AdbResult:
        self.argvs.append(list(argv))
        record = self.pending.pop(0)
        assert list(argv[3:]) == record["argv"], "the gateway ran another command than recorded"
        return AdbResult(record["returncode"], record["stdout"], record["stderr"])


class FixedRunner:
    """Answers every call with one result, or raises one error."""

    def __init__(self, result: AdbResult | None = None, error: BaseException | None = None):
        self.result = result or AdbResult(0, "", "")
        self.error = error
        self.argvs: list[list[str]] = []

    def __call__(self, argv: Sequence[str], *, timeout: float) -> AdbResult:
        self.argvs.append(list(argv))
        if self.error is not None:
            raise self.error
        return self.result


def make_client(runner: Any, **overrides: Any) -> AdbClient:
    """An AdbClient against the local adb server on port 5037."""
    values: dict[str, Any] = {"server_host": "127.0.0.1", "server_port": 5037, "runner": runner}
    values.update(overrides)
    return AdbClient(**values)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", ["adb", "-P", "5037", "devices"]),
        ("localhost", ["adb", "-P", "5037", "devices"]),
        ("adb.phonefleet.svc", ["adb", "-H", "adb.phonefleet.svc", "-P", "5037", "devices"]),
    ],
)
def test_the_adb_server_is_named_with_h_only_when_it_is_not_local(
    host: str, expected: list[str]
) -> None:
    """adb 29 refuses to start a server for ``-H 127.0.0.1``, so a local server gets only -P."""
    assert make_client(FixedRunner(), server_host=host).command("devices") == expected


@pytest.mark.parametrize(
    ("call", "expected_tail"),
    [
        (lambda c: c.connect("10.7.0.21:40117"), ["connect", "10.7.0.21:40117"]),
        (lambda c: c.disconnect("10.7.0.21:40117"), ["disconnect", "10.7.0.21:40117"]),
        (lambda c: c.device_state("10.7.0.21:40117"), ["devices"]),
        (
            lambda c: c.glogin("10.7.0.21:40117", "s3cret"),
            ["-s", "10.7.0.21:40117", "shell", "glogin", "s3cret"],
        ),
        (
            lambda c: c.getprop("10.7.0.21:40117", "ro.gl.serialno"),
            ["-s", "10.7.0.21:40117", "shell", "getprop", "ro.gl.serialno"],
        ),
    ],
    ids=["connect", "disconnect", "devices", "glogin", "getprop"],
)
def test_each_gateway_call_runs_exactly_one_adb_command(
    call: Any, expected_tail: list[str]
) -> None:
    """The gateway runs the documented command line against the configured server."""
    runner = FixedRunner(AdbResult(0, "connected to 10.7.0.21:40117\n", ""))
    client = make_client(runner, adb_path="/usr/bin/adb", server_port=5099)

    with contextlib.suppress(AdbError):  # the canned output fits only connect: argv is checked
        call(client)

    assert runner.argvs == [["/usr/bin/adb", "-P", "5099", *expected_tail]]


@pytest.mark.parametrize("name", ["connect_connected", "connect_already_connected"])
def test_connect_accepts_what_adb_prints_on_success(name: str) -> None:
    """``connected to`` and ``already connected to`` both leave the device connected."""
    record = recording(name)
    make_client(ReplayRunner(name)).connect(record["serial"])


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("connect_refused", "Connection refused"),
        ("connect_handshake_timeout", "failed to connect to"),
        ("connect_unauthorized", "failed to authenticate"),
        ("connect_unresolvable", "failed to resolve host"),
    ],
)
def test_connect_fails_on_every_failure_adb_reports_with_exit_code_zero(
    name: str, text: str
) -> None:
    """adb connect exits 0 even when it failed; its output is what the gateway reads."""
    record = recording(name)
    assert record["returncode"] == 0

    with pytest.raises(AdbConnectFailed, match=text):
        make_client(ReplayRunner(name)).connect(record["serial"])


@pytest.mark.parametrize(
    "output",
    [
        "unable to connect to 10.7.0.21:40117: Connection refused\n",
        "cannot connect to 10.7.0.21:40117: No route to host (113)\n",
        "error: cannot connect to daemon at tcp:5037: Connection refused\n",
        "\n",
    ],
    ids=["older-adb-unable", "older-adb-cannot", "no-server", "nothing"],
)
def test_connect_fails_on_older_adb_texts_and_on_anything_unknown(output: str) -> None:
    """Texts of older adb versions (reported) and unknown output are failures, never success."""
    with pytest.raises(AdbConnectFailed):
        make_client(FixedRunner(AdbResult(0, output, ""))).connect("10.7.0.21:40117")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("devices_empty", None),
        ("devices_device", "device"),
        ("devices_offline", "offline"),
        ("devices_unauthorized", "unauthorized"),
        ("devices_offline_after_timeout", "offline"),
    ],
)
def test_device_state_reads_the_serials_line_of_adb_devices(
    name: str, expected: str | None
) -> None:
    """The state is the second column of the device's line; no line means None."""
    serial = recording(name)["serial"] or "127.0.0.1:5555"
    assert make_client(ReplayRunner(name)).device_state(serial) == expected


def test_parse_devices_skips_headers_daemon_notices_and_blank_lines() -> None:
    """Only device lines count, whatever adb printed around them."""
    output = (
        "* daemon not running; starting now at tcp:5037\n"
        "* daemon started successfully\n"
        "List of devices attached\n"
        "10.7.0.21:40117\tdevice\n"
        "10.7.0.22:40118\toffline\n"
        "emulator-5554\tno permissions (user in plugdev group); see [http://developer.android.com/tools/device.html]\n"
        "\n"
    )

    assert parse_devices(output) == {
        "10.7.0.21:40117": "device",
        "10.7.0.22:40118": "offline",
        "emulator-5554": "no permissions (user in plugdev group); "
        "see [http://developer.android.com/tools/device.html]",
    }


def test_getprop_returns_the_phone_id_the_device_reports() -> None:
    """``getprop ro.gl.serialno`` prints the Geelark phone id."""
    record = recording("getprop_serialno")
    client = make_client(ReplayRunner("getprop_serialno"))

    assert client.getprop(record["serial"], "ro.gl.serialno") == RECORDED_PHONE_ID


def test_getprop_of_a_missing_property_is_empty() -> None:
    """A phone without the property prints an empty line (and fails the identity check)."""
    record = recording("getprop_missing_property")
    client = make_client(ReplayRunner("getprop_missing_property"))

    assert client.getprop(record["serial"], "ro.no.such") == ""


def test_getprop_before_glogin_asks_for_glogin() -> None:
    """ "you should run glogin" on stdout with exit code 0 is not a value: glogin is required."""
    record = recording("getprop_before_glogin")
    assert record["returncode"] == 0

    with pytest.raises(GloginRequired):
        make_client(ReplayRunner("getprop_before_glogin")).getprop(
            record["serial"], "ro.gl.serialno"
        )


@pytest.mark.parametrize("name", ["getprop_offline", "getprop_not_found", "getprop_unauthorized"])
def test_a_device_that_cannot_take_commands_is_reported_lost(name: str) -> None:
    """offline, not found and unauthorized all mean the device is lost for now."""
    record = recording(name)
    client = make_client(ReplayRunner(name))

    with pytest.raises(DeviceLost):
        client.getprop(record["serial"], "ro.gl.serialno")


def test_glogin_on_an_offline_device_reports_it_lost() -> None:
    """A glogin that cannot reach the device is a lost device, not a wrong password."""
    record = recording("glogin_offline")
    client = make_client(ReplayRunner("glogin_offline"))

    with pytest.raises(DeviceLost):
        client.glogin(record["serial"], RECORDED_PASSWORD)


def test_glogin_accepts_what_the_phone_prints_on_success() -> None:
    """Exit 0 and a success line: logged in."""
    record = recording("glogin_success")
    make_client(ReplayRunner("glogin_success")).glogin(record["serial"], RECORDED_PASSWORD)


def test_glogin_with_a_wrong_password_fails() -> None:
    """A refused login is an error that names the device, not the password."""
    record = recording("glogin_wrong_password")

    with pytest.raises(GloginFailed, match=record["serial"]) as caught:
        make_client(ReplayRunner("glogin_wrong_password")).glogin(
            record["serial"], "wrong-password"
        )

    assert "wrong-password" not in str(caught.value)


@pytest.mark.parametrize(
    "result",
    [
        AdbResult(0, "login failed\n", ""),
        AdbResult(0, "Permission denied\n", ""),
        AdbResult(127, "", "/system/bin/sh: glogin: not found\n"),
    ],
    ids=["failure-text-exit-0", "denied-exit-0", "no-glogin-on-device"],
)
def test_glogin_fails_on_failure_text_even_with_exit_code_zero(result: AdbResult) -> None:
    """Geelark's tools may exit 0 on failure; their words count too."""
    with pytest.raises(GloginFailed):
        make_client(FixedRunner(result)).glogin("10.7.0.21:40117", "s3cret")


def test_the_password_is_redacted_from_errors_and_debug_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Even a device that echoes the password back never gets it into a log line or an error."""
    caplog.set_level(logging.DEBUG)
    password = "pw-echoed-93e1"
    runner = FixedRunner(AdbResult(1, "", f"glogin: bad password {password}\n"))

    with pytest.raises(GloginFailed) as caught:
        make_client(runner).glogin("10.7.0.21:40117", password)

    assert password not in str(caught.value)
    assert "***" in str(caught.value)
    assert password not in caplog.text
    assert "shell glogin ***" in caplog.text


def test_a_hanging_adb_becomes_an_adb_error_without_the_password() -> None:
    """An adb call past its timeout raises AdbError naming the command, password redacted."""
    runner = FixedRunner(error=subprocess.TimeoutExpired(["adb"], 30))

    with pytest.raises(AdbError, match=r"shell glogin \*\*\* timed out after 30 s") as caught:
        make_client(runner, timeout=30).glogin("10.7.0.21:40117", "s3cret")

    assert "s3cret" not in str(caught.value)


def test_a_missing_adb_binary_is_fatal() -> None:
    """Without adb nothing can work: that is AdbNotInstalled, not a retry."""
    runner = FixedRunner(error=FileNotFoundError(2, "No such file or directory"))

    with pytest.raises(AdbNotInstalled, match="No such file or directory"):
        make_client(runner).device_state("10.7.0.21:40117")


@pytest.mark.parametrize("name", ["disconnect_connected", "disconnect_unknown"])
def test_disconnect_never_fails_on_what_adb_prints(name: str) -> None:
    """Disconnecting a device that is already gone is not an error."""
    make_client(ReplayRunner(name)).disconnect(recording(name)["serial"])


def test_the_subprocess_runner_collects_exit_code_and_both_streams() -> None:
    """The real runner returns what the child printed and how it exited."""
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"

    result = SubprocessRunner()([sys.executable, "-c", code], timeout=30)

    assert result == AdbResult(3, "out\n", "err\n")


def test_the_subprocess_runner_kills_a_child_past_its_timeout() -> None:
    """A child running past the timeout is killed and TimeoutExpired raised."""
    with pytest.raises(subprocess.TimeoutExpired):
        SubprocessRunner(poll_seconds=0.05)(
            [sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.2
        )


def test_the_subprocess_runner_kills_the_child_when_a_stop_is_requested() -> None:
    """On SIGTERM the running adb command is killed instead of waited for."""
    cancel = threading.Event()
    cancel.set()

    with pytest.raises(StopRequested):
        SubprocessRunner(cancel, poll_seconds=0.05)(
            [sys.executable, "-c", "import time; time.sleep(60)"], timeout=60
        )
