"""A worker image of the previous release (main at f90bf98, before job leases) under this
operator, on the real control plane: its jobs still run.

The binding's job endpoint is that release's own worker code, run from git by
``tests/previous_release_worker.py`` on loopback (its session runs each delivered attempt with
a stand-in Appium driver), reached through the test-only endpoint override. Before this change
the operator delivered ``leaseSeconds`` to it, which it refused (400) on every attempt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.job_worker import StandInWorker
from phonefleet_testbed.jobs import JOB_ENV, make_job
from phonefleet_testbed.scenarios import (
    Fleet,
    Operator,
    binding,
    condition,
    make_binding,
    wait_job_token,
    wait_phase,
)
from phonefleet_testbed.waiting import wait_for

pytestmark = pytest.mark.integration

NAME = "elder"
SCRIPT = Path(__file__).resolve().parents[2] / "previous_release_worker.py"


@contextlib.contextmanager
def running_previous_worker(folder: Path) -> Iterator[tuple[str, Path]]:
    """The previous release's job endpoint, running each attempt it is given, until the block
    ends: (URL, token file)."""
    token_file, errors = folder / "jobToken", folder / "previous-worker.stderr"
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


@pytest.fixture
def previous_worker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The previous release's job endpoint: (URL, token file)."""
    with running_previous_worker(tmp_path) as worker:
        yield worker


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


def heartbeat_succeeds(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    """Apply a heartbeat job for the binding and wait until it succeeded; its status."""
    kubectl.apply(
        {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhoneJob",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"bindingName": NAME, "task": "heartbeat"},
        }
    )
    done: dict[str, Any] = wait_for(
        lambda: (
            (s := (kubectl.get("phonejob", name, namespace) or {}).get("status") or {})
            and s.get("phase") == "Succeeded"
            and s
        ),
        90,
        message=lambda: f"{name} to succeed: {kubectl.get('phonejob', name, namespace)}",
    )
    return done


def worker_image_condition(kubectl: Kubectl, namespace: str) -> dict[str, Any] | None:
    return condition(binding(kubectl, namespace, NAME) or {}, "WorkerImageCurrent")


def test_the_binding_shows_an_old_worker_image_as_a_condition_until_a_current_one_answers(
    *,
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
    tmp_path: Path,
) -> None:
    """The binding of a worker of the previous release carries ``WorkerImageCurrent=False``
    (reason OldWorkerImage), which ``kubectl describe`` and ``kubectl get -o wide`` show;
    once its worker is replaced by one of this release (the same endpoint), the next job's
    check turns it True (TakesLeases) and that job's attempt has its lease."""
    with running_previous_worker(tmp_path) as (url, token_file):
        operator_factory(
            PHONEFLEET_JOBS_ENDPOINT_OVERRIDES=json.dumps({f"{namespace}/{NAME}": url}), **JOB_ENV
        )
        kubectl.apply(make_binding(NAME, fleet.add_phone(), namespace))
        wait_phase(kubectl, namespace, NAME, "Running")
        token = wait_job_token(kubectl, namespace, NAME)
        token_file.write_text(token)
        heartbeat_succeeds(kubectl, namespace, "beat-old")
        old = wait_for(
            lambda: worker_image_condition(kubectl, namespace), 30, message="the condition"
        )
        described = kubectl("describe", "phonebinding", NAME, "-n", namespace).stdout
        wide = kubectl("get", "phonebinding", NAME, "-n", namespace, "-o", "wide").stdout

    # The image rebuilt: a worker of this release at the same endpoint.
    port = int(url.rsplit(":", 1)[1])
    current_folder = tmp_path / "current"
    current_folder.mkdir()
    current = StandInWorker(NAME, port, current_folder)
    current.start()
    try:
        current.mount_token(token)
        status = heartbeat_succeeds(kubectl, namespace, "beat-new")
        now = wait_for(
            lambda: (
                (c := worker_image_condition(kubectl, namespace)) and c["status"] == "True" and c
            ),
            30,
            message=lambda: (
                f"the condition to turn True: {worker_image_condition(kubectl, namespace)}"
            ),
        )
    finally:
        current.stop()

    assert (old["status"], old["reason"]) == ("False", "OldWorkerImage")
    assert "rebuild the worker image" in old["message"]
    assert "WorkerImageCurrent" in described
    assert "OldWorkerImage" in described
    header, row = wide.splitlines()[:2]
    assert header.split()[-1] == "WORKER"
    assert row.split()[-1] == "OldWorkerImage"
    assert now["reason"] == "TakesLeases"
    assert status["attempts"][0]["leaseSeconds"] > 0
