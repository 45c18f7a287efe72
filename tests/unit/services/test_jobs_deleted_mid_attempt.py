"""Deleting a PhoneJob whose attempt runs cancels the attempt on its worker (kubectl delete pj is
how a person cancels a job); the binding's next job then runs on the same worker.

The world of test_jobs_fencing.py: the job service's passes against in-memory PhoneJobs and the
worker's own job endpoint and desk, on one clock the test moves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loop_order import until
from test_jobs_fencing import OLD, World, started

from phonefleet_worker.tasks import TaskResult


def cancelled_by(world: World) -> Callable[[], Any]:
    """The session's report of a task it abandoned on the operator's cancel."""
    return lambda: world.desks[OLD].report(
        TaskResult(
            "heartbeat",
            ok=False,
            detail={"error": "task heartbeat was stopped: cancelled", "timedOut": True},
        ),
        0.0,
    )


async def test_deleting_a_running_job_cancels_its_attempt_and_the_next_job_runs() -> None:
    """kubectl delete pj post while attempt 1 runs: the operator cancels attempt 1 on the worker
    at once (before: it ran on until the worker's lease lapsed, a post made after its job was
    deleted, and the next job, refused by the busy worker, was said to be Running), says so in
    an Event on the binding, and the next job's attempt is the one the worker runs next."""
    world = World()
    task = await started(world)
    world.service.saw("ADDED", world.add_job("next"))

    deleted = world.api.jobs.pop(("ns", "post"))
    world.service.saw("DELETED", deleted)
    await until(lambda: task.abandon_reason() is not None, within=30)  # type: ignore[attr-defined]

    assert ("POST", OLD, f"/v1/attempts/{deleted['status']['attempts'][0]['id']}/cancel") in [
        (m, b, p) for m, b, p in world.workers.calls
    ]
    await until(lambda: world.kube.events["CancelledAttempt"] == 1, within=30)

    cancelled_by(world)()
    await world.run_pass()
    await world.run_pass()  # the next job's delivery, refused while attempt 1 ran, goes in
    following = world.desks[OLD].next_job(0.0)

    assert following is not None
    nxt = world.api.jobs["ns", "next"]["status"]
    assert (nxt["phase"], nxt["attempts"][0]["outcome"]) == ("Running", "Running")
    assert world.desks[OLD].lookup(nxt["attempts"][0]["id"]) is not None


async def test_a_job_deleted_after_its_pod_was_force_deleted_stops_the_old_worker() -> None:
    """The pod was force-deleted mid-attempt (its worker may still run), then the job deleted:
    the deleted job leaves the view the replacement pod's gate reads, so the old worker is told
    at the attempt's recorded address that it is superseded, and stops altogether (before: it
    ran on until its lease lapsed, beside the replacement pod's worker)."""
    world = World()
    task = await started(world)
    world.force_delete()

    deleted = world.api.jobs.pop(("ns", "post"))
    world.service.saw("DELETED", deleted)
    await until(lambda: world.stopped, within=30)

    assert world.stopped == [(OLD, "cancelled by the operator: its pod went away")]
    assert task.abandon_reason() == "cancelled by the operator"  # type: ignore[attr-defined]
    await until(lambda: world.kube.events["CancelledAttempt"] == 1, within=30)
