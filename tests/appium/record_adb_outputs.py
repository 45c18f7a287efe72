"""Records what the real adb binary prints into the fixture the adb gateway's unit tests read.

Run it by hand when the adb version in CI changes (it needs ``adb`` on PATH, about 15 s):

    .venv/bin/python tests/appium/record_adb_outputs.py \
        > tests/unit/worker/fixtures/adb_outputs.json

The devices are this folder's ``FakeAdbd`` (a Geelark-like phone speaking the ADB protocol), a
closed port and a port that accepts TCP but never answers. What adb prints about them (connect,
devices, offline, unauthorized, not found, exit codes, which stream) is adb's own text; the text of
``glogin`` and of "run glogin" inside the device's output comes from the fake.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from fake_adbd import FakeAdbd

PHONE_ID = "526209711930868736"
PASSWORD = "pw-7f3a9c"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def silent_listener() -> socket.socket:
    """A TCP port that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return listener


def main() -> None:
    """Record every case and print them as JSON."""
    adb = shutil.which("adb")
    if adb is None:
        sys.exit("adb not found on PATH (Debian: apt-get install -y adb)")
    version = subprocess.run([adb, "version"], capture_output=True, text=True, check=True)
    server_port = free_port()
    home = tempfile.mkdtemp(prefix="adb-home-")
    env = {**os.environ, "HOME": home}
    records: dict[str, Any] = {
        "_about": (
            "Recorded by tests/appium/record_adb_outputs.py with "
            + " / ".join(version.stdout.splitlines()[:2])
            + ". argv omits 'adb -P <server port>'."
        )
    }

    def record(name: str, serial: str, *args: str) -> None:
        result = subprocess.run(
            [adb, "-P", str(server_port), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )
        records[name] = {
            "serial": serial,
            "argv": list(args),
            "returncode": result.returncode,
            "stdout": result.stdout,
            "stderr": result.stderr,
        }

    subprocess.run(
        [adb, "-P", str(server_port), "start-server"], env=env, check=True, capture_output=True
    )
    phone = FakeAdbd(props={"ro.gl.serialno": PHONE_ID}, password=PASSWORD).start()
    locked = FakeAdbd(props={}, password=PASSWORD, authorized=False).start()
    silent = silent_listener()
    silent_serial = f"127.0.0.1:{silent.getsockname()[1]}"
    closed_serial = f"127.0.0.1:{free_port()}"
    try:
        s = phone.serial
        record("devices_empty", "", "devices")
        record("connect_connected", s, "connect", s)
        record("connect_already_connected", s, "connect", s)
        record("devices_device", s, "devices")
        record("getprop_before_glogin", s, "-s", s, "shell", "getprop", "ro.gl.serialno")
        record("glogin_wrong_password", s, "-s", s, "shell", "glogin", "wrong-password")
        record("glogin_success", s, "-s", s, "shell", "glogin", PASSWORD)
        record("getprop_serialno", s, "-s", s, "shell", "getprop", "ro.gl.serialno")
        record("getprop_missing_property", s, "-s", s, "shell", "getprop", "ro.no.such")
        phone.close()
        record("devices_offline", s, "devices")
        record("getprop_offline", s, "-s", s, "shell", "getprop", "ro.gl.serialno")
        record("glogin_offline", s, "-s", s, "shell", "glogin", PASSWORD)
        record("disconnect_connected", s, "disconnect", s)
        record("disconnect_unknown", s, "disconnect", s)
        record("getprop_not_found", s, "-s", s, "shell", "getprop", "ro.gl.serialno")
        record("connect_refused", closed_serial, "connect", closed_serial)
        record("connect_unauthorized", locked.serial, "connect", locked.serial)
        record("devices_unauthorized", locked.serial, "devices")
        record(
            "getprop_unauthorized",
            locked.serial,
            "-s",
            locked.serial,
            "shell",
            "getprop",
            "ro.gl.serialno",
        )
        record("connect_handshake_timeout", silent_serial, "connect", silent_serial)
        record("devices_offline_after_timeout", silent_serial, "devices")
        record(
            "connect_unresolvable",
            "no-such-host.invalid:5555",
            "connect",
            "no-such-host.invalid:5555",
        )
    finally:
        locked.close()
        silent.close()
        subprocess.run(
            [adb, "-P", str(server_port), "kill-server"], env=env, check=False, capture_output=True
        )
        shutil.rmtree(home, ignore_errors=True)
    json.dump(records, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
