"""Reading a worker's own reason from its pod's status (the termination message it wrote)."""

from __future__ import annotations

import json
from typing import Any

from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.worker_failure import WorkerFailure, worker_failure


def _pod(*statuses: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "status": {"containerStatuses": list(statuses)}}


def _worker(last_message: str | None, *, now: str = "waiting") -> dict[str, Any]:
    last = {"terminated": {"exitCode": 1, "message": last_message}} if last_message else {}
    return {"name": "worker", "state": {now: {}}, "lastState": last}


MISMATCH = json.dumps({"reason": "IdentityMismatch", "message": "Refused to drive 10.0.0.2:1"})


def test_the_restarted_workers_last_termination_message_is_its_reason() -> None:
    """CrashLoopBackOff: the reason sits in lastState.terminated.message."""
    assert worker_failure(_pod(_worker(MISMATCH))) == WorkerFailure(
        "IdentityMismatch", "Refused to drive 10.0.0.2:1"
    )


def test_the_appium_sidecars_message_is_not_the_workers() -> None:
    """Only the worker container speaks for the worker."""
    appium = {"name": "appium", "lastState": {"terminated": {"message": MISMATCH}}}
    assert worker_failure(_pod(appium, _worker(None))) is None


def test_a_message_that_is_not_the_workers_json_is_ignored() -> None:
    """Plain text (a crash's last log lines) or a reason that is not one word: no reason."""
    assert worker_failure(_pod(_worker("Traceback (most recent call last):"))) is None
    odd = json.dumps({"reason": "two words", "message": "x"})
    assert worker_failure(_pod(_worker(odd))) is None


def test_a_pod_without_statuses_has_no_reason() -> None:
    """A pod the kubelet has not reported on yet (or a KWOK pod)."""
    assert worker_failure({"metadata": {"name": "p"}}) is None


def test_the_pods_view_keeps_the_workers_reason_and_drops_the_rest() -> None:
    """The watch's compact copy of a pod still says why the worker stopped."""
    pods = ObservedPods()
    appium = {"name": "appium", "lastState": {"terminated": {"message": MISMATCH}}, "image": "x"}
    pod = _pod(appium, {**_worker(MISMATCH), "image": "phonefleet/worker:dev"})
    pod["metadata"].update(namespace="ns", uid="u")

    pods.saw(pod)
    kept = pods.get("ns", "p")

    assert kept is not None
    assert worker_failure(kept) == WorkerFailure("IdentityMismatch", "Refused to drive 10.0.0.2:1")
    assert [s["name"] for s in kept["status"]["containerStatuses"]] == ["worker"]
    assert "image" not in kept["status"]["containerStatuses"][0]
