"""The probe endpoint, served for real on loopback."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from phonefleet_worker.probes import ProbeServer


class Health:
    """Probe answers the test can change."""

    def __init__(self) -> None:
        self.ready = (False, "ADB_CONNECTING")
        self.alive = (True, "main loop turned 0.1 s ago")


@pytest.fixture
def served() -> Iterator[tuple[ProbeServer, Health]]:
    """A probe server on a free loopback port."""
    health = Health()
    server = ProbeServer(
        host="127.0.0.1", port=0, readiness=lambda: health.ready, liveness=lambda: health.alive
    )
    server.start()
    yield server, health
    server.close()


def get(server: ProbeServer, path: str) -> tuple[int, str]:
    """GET a path: (status, body)."""
    url = f"http://127.0.0.1:{server.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.parametrize(
    ("ready", "expected"),
    [((False, "ADB_CONNECTING"), 503), ((True, "IDLE"), 200)],
)
def test_readyz_follows_the_readiness_check(
    served: tuple[ProbeServer, Health], ready: tuple[bool, str], expected: int
) -> None:
    """/readyz answers 200 when ready and 503 otherwise, saying the state."""
    server, health = served
    health.ready = ready

    assert get(server, "/readyz") == (expected, f"{ready[1]}\n")


def test_livez_fails_once_the_main_loop_is_stuck(served: tuple[ProbeServer, Health]) -> None:
    """/livez answers 503 when the liveness check says the loop stopped turning."""
    server, health = served
    assert get(server, "/livez")[0] == 200

    health.alive = (False, "main loop turned 300.0 s ago")

    assert get(server, "/livez") == (503, "main loop turned 300.0 s ago\n")


def test_other_paths_are_not_found(served: tuple[ProbeServer, Health]) -> None:
    """Only the two probe paths (and /metrics) exist."""
    server, _ = served

    assert get(server, "/other")[0] == 404


def test_a_server_that_never_started_closes_cleanly() -> None:
    """close() releases the port even when start() was never called."""
    server = ProbeServer(
        host="127.0.0.1", port=0, readiness=lambda: (True, ""), liveness=lambda: (True, "")
    )

    server.close()
