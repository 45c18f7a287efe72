"""A worker image of the previous release (main at f90bf98, before job leases) under this
operator, on the real control plane: its jobs still run.

The binding's job endpoint is that release's own worker code, run from git by
``tests/previous_release_worker.py`` on loopback (its session runs each delivered attempt with
a stand-in Appium driver), reached through the test-only endpoint override. Before this change
the operator delivered ``leaseSeconds`` to it, which it refused (400) on every attempt.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.jobs import make_job
from phonefleet_testbed.waiting import wait_for

pytestmark = pytest.mark.integration

NAME = "elder"
SCRIPT = Path(__file__).resolve().parents[2] / "previous_release_worker.py"


@pytest.fixture
def previous_worker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The previous release's job endpoint, running each attempt it is given: (URL, token
    file)."""
    token_file, errors = tmp_path / "jobToken", tmp_path / "previous-worker.stderr"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(token_file), "--autorun"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    assert process.stdin is not None
    port = process.stdout.readline().strip()
    if not port.isdigit():
        process.kill()
        process.wait()
        pytest.fail(f"the previous release's worker did not start: {errors.read_text().strip()}")
    try:
        yield f"http://127.0.0.1:{port}", token_file
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_worker_image_of_the_previous_release_runs_its_jobs_without_a_lease(
    *,
    kubectl: Kubectl,
    namespace: str,
    job_binding: Callable[..., str],
    previous_worker: tuple[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A heartbeat job on a binding whose worker is the previous release's succeeds with the
    task's result; its attempt has no lease; the binding has a Warning Event OldWorkerImage
    (once), and no Event or log line holds the job token."""
    caplog.set_level(logging.INFO)
    url, token_file = previous_worker
    token = job_binding(NAME, url)
    token_file.write_text(token)
    for name in ("beat-1", "beat-2"):
        kubectl.apply(make_job(name, NAME, namespace, task="heartbeat", params={}))

    def succeeded(name: str) -> dict[str, Any] | None:
        status = (kubectl.get("phonejob", name, namespace) or {}).get("status") or {}
        return status if status.get("phase") == "Succeeded" else None

    done = [
        wait_for(
            lambda name=name: succeeded(name),
            90,
            message=lambda name=name: (
                f"{name} to succeed; it has "
                f"{(kubectl.get('phonejob', name, namespace) or {}).get('status')}"
            ),
        )
        for name in ("beat-1", "beat-2")
    ]

    for status in done:
        attempt = status["attempts"][0]
        assert (status["attemptCount"], attempt["outcome"]) == (1, "Succeeded")
        assert attempt["result"] == {"width": 720, "height": 1280}
        assert "leaseSeconds" not in attempt
    events = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    old = [e for e in events if e["reason"] == "OldWorkerImage"]
    assert [(e["type"], e["involvedObject"]["kind"]) for e in old] == [("Warning", "PhoneBinding")]
    assert "rebuild the worker image" in old[0]["message"]
    started = [e["message"] for e in events if e["reason"] == "StartedAttempt"]
    assert started
    assert all(m.endswith("without a lease (the worker image predates them)") for m in started)
    assert all(token not in json.dumps(e) for e in events)
    assert token not in caplog.text
