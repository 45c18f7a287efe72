"""Real tools for the tests in this folder: an Appium server with the fake driver, an adb server.

Nothing here skips. When a tool is missing the fixture fails and says how to install it; CI runs
``hack/appium/install.sh`` (Node.js 20 + npm) and ``apt-get install -y adb`` first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from appium_support import AdbServer

from phonefleet_testbed.processes import free_port
from phonefleet_testbed.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "hack" / "appium" / "install.sh"
APPIUM_START_TIMEOUT = 60.0


def log_tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, for failure messages."""
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def appium_home() -> Path:
    """APPIUM_HOME with appium and @appium/fake-driver, installed (or found) by install.sh."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail(
            "Node.js 20.19+ and npm are needed for the Appium tests (NodeSource's nodejs 20 "
            "package; Debian bookworm's nodejs 18 is too old for Appium 3)"
        )
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{INSTALL_SCRIPT.relative_to(REPO)} failed with exit code {result.returncode}:\n"
            f"{result.stderr[-3000:]}"
        )
    home = Path(result.stdout.strip().splitlines()[-1])
    if not (home / "node_modules" / ".bin" / "appium").exists():
        pytest.fail(f"install.sh printed {home}, which holds no node_modules/.bin/appium")
    return home


def appium_ready(url: str) -> bool:
    """True when GET /status answers value.ready."""
    try:
        return requests.get(f"{url}/status", timeout=2).json()["value"]["ready"] is True
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return False


@pytest.fixture(scope="session")
def appium_url(appium_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An Appium server on a free loopback port, ready, stopped after the session."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("appium") / "appium.log"
    command = [
        str(appium_home / "node_modules" / ".bin" / "appium"),
        "--address", "127.0.0.1",
        "--port", str(port),
        "--log-no-colors",
        "--log-level", "info",
    ]  # fmt: skip
    with log_path.open("w") as log:
        server = subprocess.Popen(
            command,
            env={**os.environ, "APPIUM_HOME": str(appium_home)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            wait_until(
                lambda: server.poll() is not None or appium_ready(url),
                timeout=APPIUM_START_TIMEOUT,
                what=f"Appium's /status on {url}",
            )
        except AssertionError as exc:
            pytest.fail(f"{exc}\n{log_tail(log_path)}")
        if server.poll() is not None:
            pytest.fail(f"Appium exited with code {server.returncode}:\n{log_tail(log_path)}")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


@pytest.fixture(scope="session")
def adb_path() -> str:
    """The adb binary on PATH."""
    path = shutil.which("adb")
    if path is None:
        pytest.fail("adb is not on PATH: install Debian's adb package (apt-get install -y adb)")
    return path


@pytest.fixture
def adb_server(adb_path: str, tmp_path: Path) -> Iterator[AdbServer]:
    """An adb server of its own on a free port (never the machine's 5037), killed afterwards."""
    home = tmp_path / "adb-home"
    home.mkdir()
    server = AdbServer(adb_path, free_port(), home)
    started = server.run("start-server")
    if started.returncode != 0:
        pytest.fail(f"adb start-server failed: {started.stderr}")
    try:
        yield server
    finally:
        server.run("kill-server")
