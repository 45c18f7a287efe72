"""Helpers for the tests that run real tools: free ports, waiting with a deadline, capabilities.

(The unit tests have the same two small helpers in ``worker_fakes``; these folders are not
packages, so each keeps its own copy.)
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

FAKE_APP = Path(__file__).parent / "fixtures" / "fake_app.xml"
PHONE_ID = "526209711930868736"
OTHER_PHONE_ID = "526209711930868999"
PASSWORD = "gl-pw-93e1c7"


def probe_status(port: int, path: str) -> int:
    """The status code of a worker's probe, 0 while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def fake_driver_capabilities(serial: str) -> dict[str, Any]:
    """Capabilities for Appium's fake driver, standing in for UiAutomator2 on a real phone."""
    return {
        "platformName": "Fake",
        "appium:automationName": "Fake",
        "appium:deviceName": "Fake",
        "appium:app": str(FAKE_APP),
        "appium:newCommandTimeout": 120,
    }


@dataclasses.dataclass(frozen=True)
class AdbServer:
    """A private adb server for one test."""

    adb_path: str
    port: int
    home: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``adb -P PORT ARGS`` against this server."""
        return subprocess.run(
            [self.adb_path, "-P", str(self.port), *args],
            env={**os.environ, "HOME": str(self.home)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
