"""An Account error holds the binding's other jobs even when the API server fails the hold's
first write: the job's end is written only once the hold is.

The world of ``test_jobs_fencing`` (in-memory PhoneJobs with conditional writes, the worker's
own job endpoint and desk at the pod's IP, one clock), with annotation writes that can fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from job_fakes import FakeJobApi
from test_jobs_fencing import OLD, World, started

from phonefleet_operator.errors import KubernetesUnavailable
from phonefleet_operator.services.jobs.service import ACCOUNT_HOLD_ANNOTATION
from phonefleet_worker.tasks import TaskResult


class Annotations(FakeJobApi):
    """Binding annotations merged into the stored binding, as the API server's merge patch
    does; each write fails while ``failures`` is above zero (an API server that times out)."""

    def __init__(self, bindings: dict[tuple[str, str], dict[str, Any]]) -> None:
        super().__init__()
        self.bindings = bindings
        self.failures = 0

    async def annotate_binding(
        self, namespace: str, name: str, annotations: Mapping[str, str | None]
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise KubernetesUnavailable("Kubernetes did not answer patch of PhoneBinding: timeout")
        metadata = self.bindings[namespace, name]["metadata"]
        metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}


async def test_a_failed_write_of_the_account_hold_leaves_the_job_running_until_it_is_held() -> None:
    world = World()
    api = Annotations(world.kube.bindings)
    api.jobs = world.api.jobs
    world.api = api
    world.service = world.new_operator()
    await started(world)
    attempt = world.status()["attempts"][0]["id"]
    world.desks[OLD].report(
        TaskResult(
            "heartbeat",
            ok=False,
            detail={
                "attemptId": attempt,
                "state": "Failed",
                "error_class": "Account",
                "message": "account suspended",
            },
        ),
        0.0,
    )
    world.add_job("next")
    world.service.saw("ADDED", world.api.jobs["ns", "next"])

    api.failures = 1
    with pytest.raises(KubernetesUnavailable):
        await world.run_pass()
    assert world.status()["phase"] == "Running"  # not ended without its hold

    await world.run_pass()
    ended = world.status()
    assert (ended["phase"], ended["reason"]) == ("Failed", "AccountError")
    annotations = world.binding["metadata"]["annotations"]
    assert annotations[ACCOUNT_HOLD_ANNOTATION] == "job post: account suspended"

    await world.run_pass()
    waiting = world.api.jobs["ns", "next"]["status"]
    assert (waiting["phase"], waiting["reason"]) == ("Pending", "AccountHeld")
    assert world.api.jobs["ns", "next"]["status"].get("attemptCount", 0) == 0
