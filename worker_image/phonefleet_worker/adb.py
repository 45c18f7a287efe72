"""The adb gateway: the only code that runs the adb binary, and the parsing of what adb prints.

Commands (``<server>`` is ``-P PORT`` for a local adb server, ``-H HOST -P PORT`` otherwise)::

    adb <server> connect IP:PORT
    adb <server> disconnect IP:PORT
    adb <server> devices
    adb <server> -s IP:PORT shell glogin PASSWORD
    adb <server> -s IP:PORT shell getprop ro.gl.serialno
    adb <server> -s IP:PORT push LOCAL REMOTE          (media files of jobs)

Facts this module relies on (recorded from Debian's adb 1:29.0.6 unless marked "reported"):

- ``adb connect`` exits 0 whether or not it connected; only its output tells: ``connected to X``,
  ``already connected to X``, ``failed to connect to X`` (after a 10 s handshake timeout the
  device stays listed as ``offline``), ``failed to connect to 'X': Connection refused``,
  ``failed to resolve host: ...``; older adb versions print ``unable to connect to X`` or
  ``cannot connect to X: ...``, and ``failed to authenticate to X`` when the key is refused.
- ``adb -s X shell ...`` against a device that is not ready exits 1 with ``error: device offline``,
  ``error: device 'X' not found`` or ``error: device unauthorized.`` on stderr.
- adb refuses to start a server for ``-H 127.0.0.1`` ("cannot start server on remote host"): for a
  loopback server the ``-H`` flag is left out, so adb starts the shared server when it is not up.
- Reported by public Geelark projects: a connected phone is ``offline`` for 5-20 s before it turns
  ``device``; Geelark's shell login expires after about 10 minutes, after which every shell command
  prints ``error: you should run glogin to login first`` and exits 0; ``glogin`` prints a line
  containing "success" when it logged in.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import threading
from collections.abc import Sequence
from typing import Protocol

from phonefleet_worker.errors import (
    AdbConnectFailed,
    AdbError,
    AdbNotInstalled,
    DeviceLost,
    GloginFailed,
    GloginRequired,
)
from phonefleet_worker.lifecycle import StopRequested

__all__ = [
    "DEVICE",
    "SERIALNO_PROPERTY",
    "AdbClient",
    "AdbGateway",
    "AdbResult",
    "AdbRunner",
    "SubprocessRunner",
    "parse_connect",
    "parse_devices",
]

log = logging.getLogger(__name__)

DEVICE = "device"
"""The adb state of a device that accepts commands."""

SERIALNO_PROPERTY = "ro.gl.serialno"
"""The system property in which a Geelark phone reports its Geelark phone id."""

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

CONNECT_FAILURES = (
    "failed to connect",
    "cannot connect",
    "unable to connect",
    "failed to authenticate",
    "failed to resolve host",
    "empty address",
    "bad port",
    "error:",
)

DEVICE_LOST_ERRORS = (
    "error: device offline",
    "error: device unauthorized",
    "error: device still authorizing",
    "error: device still connecting",
    "error: no devices/emulators found",
    "error: closed",
    "error: protocol fault",
)

GLOGIN_REQUIRED_MARKER = "run glogin"
GLOGIN_FAILURE_MARKERS = ("fail", "error", "denied", "incorrect", "invalid", "wrong", "not found")
REDACTED = "***"


@dataclasses.dataclass(frozen=True)
class AdbResult:
    """What one adb invocation printed and how it exited."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """Standard output and standard error together, stripped."""
        return "\n".join(part for part in (self.stdout.strip(), self.stderr.strip()) if part)


class AdbRunner(Protocol):
    """Runs one adb command line; tests inject recorded outputs through it."""

    def __call__(self, argv: Sequence[str], *, timeout: float) -> AdbResult:
        """Run ``argv``; raise FileNotFoundError when the binary is missing and
        subprocess.TimeoutExpired when it runs longer than ``timeout`` seconds."""
        ...


class SubprocessRunner:
    """Runs adb as a child process, killing it early when ``cancel`` is set (SIGTERM)."""

    def __init__(self, cancel: threading.Event | None = None, *, poll_seconds: float = 0.2) -> None:
        self._cancel = cancel
        self._poll = poll_seconds

    def __call__(self, argv: Sequence[str], *, timeout: float) -> AdbResult:
        """Run ``argv`` and collect its output."""
        with subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            waited = 0.0
            while True:
                try:
                    stdout, stderr = process.communicate(timeout=self._poll)
                    break
                except subprocess.TimeoutExpired:
                    waited += self._poll
                    if self._cancel is not None and self._cancel.is_set():
                        process.kill()
                        process.communicate()
                        raise StopRequested("adb interrupted by a stop request") from None
                    if waited >= timeout:
                        process.kill()
                        process.communicate()
                        raise
        return AdbResult(process.returncode, stdout, stderr)


class AdbGateway(Protocol):
    """What the device session asks of adb; ``AdbClient`` is the real one."""

    def connect(self, serial: str) -> None:
        """Connect the adb server to a network device; raise AdbConnectFailed if it did not."""
        ...

    def disconnect(self, serial: str) -> None:
        """Drop the device from the adb server; a device that is not there is not an error."""
        ...

    def device_state(self, serial: str) -> str | None:
        """The device's state as ``adb devices`` lists it, or None when it is not listed."""
        ...

    def glogin(self, serial: str, password: str) -> None:
        """Run Geelark's on-device login; raise GloginFailed or DeviceLost if it did not work."""
        ...

    def getprop(self, serial: str, name: str) -> str:
        """Read a system property; raise GloginRequired or DeviceLost when the device refuses."""
        ...


class AdbClient:
    """Runs the adb binary against one adb server."""

    def __init__(
        self,
        *,
        server_host: str = "127.0.0.1",
        server_port: int = 5037,
        adb_path: str = "adb",
        timeout: float = 30.0,
        runner: AdbRunner | None = None,
    ) -> None:
        self._adb_path = adb_path
        self._server_host = server_host
        self._server_port = server_port
        self._timeout = timeout
        self._runner: AdbRunner = runner if runner is not None else SubprocessRunner()

    def command(self, *args: str) -> list[str]:
        """The full command line of ``adb <args>`` against this client's adb server."""
        server = ["-P", str(self._server_port)]
        if self._server_host not in LOOPBACK_HOSTS:
            server = ["-H", self._server_host, *server]
        return [self._adb_path, *server, *args]

    def connect(self, serial: str) -> None:
        """Run ``adb connect``; raise AdbConnectFailed unless adb says it is connected."""
        result = self._run("connect", serial)
        already = parse_connect(result.output, serial)
        log.info(
            "%s %s", "Found adb already connected to" if already else "Connected adb to", serial
        )

    def disconnect(self, serial: str) -> None:
        """Run ``adb disconnect``; its "no such device" error means there was nothing to drop."""
        result = self._run("disconnect", serial)
        log.debug("Ran adb disconnect %s: %s", serial, result.output)

    def device_state(self, serial: str) -> str | None:
        """Run ``adb devices`` and return this serial's state."""
        result = self._run("devices")
        if result.returncode != 0:
            raise AdbError(f"adb devices failed (exit {result.returncode}): {result.output}")
        return parse_devices(result.stdout).get(serial)

    def glogin(self, serial: str, password: str) -> None:
        """Run ``glogin <password>`` on the device (the password is never logged or raised)."""
        result = self._run("-s", serial, "shell", "glogin", password, secret=password)
        raise_if_device_lost(result, serial)
        lowered = result.output.lower()
        if result.returncode != 0 or any(marker in lowered for marker in GLOGIN_FAILURE_MARKERS):
            raise GloginFailed(
                f"glogin on {serial} failed (exit {result.returncode}): {result.output!r}"
            )
        log.info("Logged in to %s with glogin", serial)

    def getprop(self, serial: str, name: str) -> str:
        """Run ``getprop <name>`` on the device and return its value."""
        result = self._run("-s", serial, "shell", "getprop", name)
        raise_if_device_lost(result, serial)
        if GLOGIN_REQUIRED_MARKER in result.output.lower():
            raise GloginRequired(f"{serial} wants glogin again: {result.output!r}")
        if result.returncode != 0:
            raise AdbError(
                f"getprop {name} on {serial} failed (exit {result.returncode}): {result.output!r}"
            )
        return result.stdout.strip()

    def push(self, serial: str, local: str, remote: str) -> None:
        """Copy the file ``local`` to ``remote`` on the device (``adb push``)."""
        result = self._run("-s", serial, "push", local, remote)
        raise_if_device_lost(result, serial)
        if result.returncode != 0 or "error" in result.output.lower():
            raise AdbError(
                f"adb push to {remote} on {serial} failed (exit {result.returncode}): "
                f"{result.output.strip()!r}"
            )
        log.info("Pushed %s to %s on %s", local, remote, serial)

    def _run(self, *args: str, secret: str | None = None) -> AdbResult:
        argv = self.command(*args)
        shown = " ".join(REDACTED if arg == secret else arg for arg in argv[1:])
        try:
            result = self._runner(argv, timeout=self._timeout)
        except FileNotFoundError as exc:
            raise AdbNotInstalled(f"Could not run {self._adb_path!r}: {exc.strerror}") from None
        except subprocess.TimeoutExpired:
            raise AdbError(f"adb {shown} timed out after {self._timeout:g} s") from None
        if secret:
            result = AdbResult(
                result.returncode,
                result.stdout.replace(secret, REDACTED),
                result.stderr.replace(secret, REDACTED),
            )
        log.debug("Ran adb %s: exit %d, %r", shown, result.returncode, result.output)
        return result


def parse_connect(output: str, serial: str) -> bool:
    """Read ``adb connect`` output: True if it was already connected, False if it connected now.

    Raises AdbConnectFailed for every other outcome, including output adb never printed before.
    """
    lowered = output.lower()
    if any(failure in lowered for failure in CONNECT_FAILURES):
        raise AdbConnectFailed(f"adb connect {serial} failed: {output.strip()!r}")
    if "already connected to" in lowered:
        return True
    if "connected to" in lowered:
        return False
    raise AdbConnectFailed(f"adb connect {serial} printed something unexpected: {output.strip()!r}")


def parse_devices(output: str) -> dict[str, str]:
    """Read ``adb devices`` output into {serial: state}, e.g. ``{"10.0.0.7:5555": "offline"}``."""
    devices: dict[str, str] = {}
    for line in output.splitlines():
        if not line.strip() or line.startswith(("List of devices", "*", "adb ")):
            continue
        serial, _, rest = line.strip().partition("\t")
        if not rest:
            serial, _, rest = line.strip().partition(" ")
        state = rest.strip()
        if serial and state:
            devices[serial] = state
    return devices


def raise_if_device_lost(result: AdbResult, serial: str) -> None:
    """Raise DeviceLost when adb itself says the device cannot take commands."""
    lowered = result.stderr.lower()
    if f"device '{serial}' not found".lower() in lowered or any(
        error in lowered for error in DEVICE_LOST_ERRORS
    ):
        raise DeviceLost(f"{serial}: {result.stderr.strip()}")
