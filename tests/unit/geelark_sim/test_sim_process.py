"""The simulator as a process: serves the Open API, prints its URL, stops cleanly on SIGTERM."""

from __future__ import annotations

import subprocess
import sys
from contextlib import closing

import pytest
import requests

from phonefleet_testbed.geelark_sim import OpenApiProbe, SimulatorAdmin

EXIT_TIMEOUT = 30.0


def test_process_prints_its_url_serves_and_exits_on_sigterm() -> None:
    """The module run as a process seeds phones, authenticates, and exits 0 on SIGTERM."""
    command = [
        sys.executable,
        "-m",
        "phonefleet_testbed.geelark_sim",
        "--phones", "12", "--token", "process-token", "--boot-seconds", "0",
        "--rate-limit", "50", "--latency-ms", "1",
    ]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            with (
                closing(OpenApiProbe(url, token="process-token")) as probe,
                closing(SimulatorAdmin(url)) as admin,
            ):
                data = probe.data("phone/list", {"page": 2, "pageSize": 10})
                assert [item["serialName"] for item in data["items"]] == ["phone-011", "phone-012"]
                assert admin.settings()["rateLimitPerMinute"] == 50
        finally:
            process.terminate()
            assert process.wait(EXIT_TIMEOUT) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_sim/health", timeout=2)
