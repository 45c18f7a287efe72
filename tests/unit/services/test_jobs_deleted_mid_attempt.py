"""Deleting a PhoneJob whose attempt runs cancels the attempt on its worker (kubectl delete pj is
how a person cancels a job); the binding's next job then runs on the same worker. The job holds
the finalizer phonefleet.dev/attempt-fenced from its first attempt's start: deleted, it stays
until no attempt of it can run any more, so the gate of a replacement pod keeps waiting for it.

The world of test_jobs_fencing.py: the job service's passes against in-memory PhoneJobs and the
worker's own job endpoint and desk, on one clock the test moves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loop_order import until
from test_jobs_fencing import GRACE, LEASE, OLD, World, _succeeded, delete_binding, started

from phonefleet_operator.constants import JOB_FINALIZER
from phonefleet_worker.tasks import TaskResult


def delete(world: World, name: str = "post") -> dict[str, Any]:
    """``kubectl delete pj``: the API server's answer, and its watch event, reach the operator."""
    event, body = world.api.delete("ns", name)
    world.service.saw(event, body)
    return body


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

    deleted = delete(world)
    assert ("ns", "post") in world.api.jobs  # its finalizer keeps it while the attempt runs
    await world.run_pass()
    await until(lambda: task.abandon_reason() is not None, within=30)  # type: ignore[attr-defined]

    assert ("POST", OLD, f"/v1/attempts/{deleted['status']['attempts'][0]['id']}/cancel") in [
        (m, b, p) for m, b, p in world.workers.calls
    ]
    await until(lambda: world.kube.events["CancelledAttempt"] == 1, within=30)

    cancelled_by(world)()
    await world.run_pass()  # attempt 1 ends in the worker's words; the job goes
    assert ("ns", "post") not in world.api.jobs
    await world.run_pass()
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

    delete(world)
    await world.run_pass()
    await until(lambda: world.stopped, within=30)

    assert world.stopped == [(OLD, "cancelled by the operator: its pod went away")]
    assert task.abandon_reason() == "cancelled by the operator"  # type: ignore[attr-defined]
    await until(lambda: world.kube.events["CancelledAttempt"] == 1, within=30)


async def test_a_deleted_jobs_attempt_holds_the_replacement_pod_until_it_is_fenced() -> None:
    """The pod was force-deleted mid-attempt with its worker cut off, then the job deleted: the
    replacement pod's gate (``unsettled``) still waits for attempt 1 until its lease and the
    grace ran out since the worker was last heard, through an operator restart too; then the
    attempt ends Lost, the job goes, and the gate opens. Before, the deleted job left the view at
    once and the gate let the new pod's worker drive the phone beside the old one."""
    world = World()
    fenced: list[str] = []
    task = await started(world)
    world.remove_pod()  # force-deleted; no replacement pod yet
    world.workers.at.pop(OLD)  # cut off, its run goes on

    delete(world)
    await world.run_pass()
    held = world.service.unsettled("ns", "alpha")
    assert held is not None
    assert held.startswith("attempt 1 of PhoneJob post ran on a worker pod that went away")
    assert JOB_FINALIZER in world.api.jobs["ns", "post"]["metadata"]["finalizers"]
    status = world.status()
    assert (status["phase"], status["reason"]) == ("Running", "Fencing")
    assert status["message"].startswith("the job was deleted; attempt 1/3: pod alpha-worker")

    world.clock.advance(LEASE / 2)
    world.service = world.new_operator()  # a restart: it reads the deleted job from the list
    world.service.on_fenced = fenced.append
    await world.run_pass()
    assert world.service.unsettled("ns", "alpha") is not None
    assert task.abandon_reason() is None  # type: ignore[attr-defined]

    world.clock.advance(LEASE + GRACE + 1)  # from the restarted operator's first look
    assert task.abandon_reason() is not None  # type: ignore[attr-defined]
    await world.run_pass()
    assert ("ns", "post") not in world.api.jobs
    assert world.service.unsettled("ns", "alpha") is None
    assert fenced == ["uid-alpha"]


async def test_a_finished_job_no_longer_holds_the_finalizer() -> None:
    """The finalizer is held from the first attempt's start only until the job finished: a
    finished job is deleted without the operator."""
    world = World()
    task = await started(world)
    world.desks[OLD].report(_succeeded(task), 0.0)

    await world.run_pass()

    job = world.api.jobs["ns", "post"]
    assert (job["status"]["phase"], job["metadata"]["finalizers"]) == ("Succeeded", [])


async def test_a_deleted_job_waiting_for_its_retry_goes_at_once_and_never_starts_again() -> None:
    """A job deleted between its attempts (none runs) loses its finalizer at the next pass and
    goes; its retry never starts."""
    world = World()
    await started(world)
    cancelled_by(world)()  # attempt 1 ends (Retryable)
    await world.run_pass()
    assert world.status()["reason"] == "RetryBackoff"
    delivered = len(world.attempts_on(OLD))

    delete(world)
    await world.run_pass()
    assert ("ns", "post") not in world.api.jobs
    world.clock.advance(3600)
    await world.run_pass()
    assert world.attempts_on(OLD)[delivered:] == []


async def test_an_attempt_an_earlier_operator_started_gets_the_finalizer_at_the_first_pass() -> (
    None
):
    """An upgrade mid-attempt: the job runs attempt 1 without the finalizer (the operator of the
    earlier release set none). The new operator's first pass sets it, so the job, deleted
    then, stays until its attempt is fenced."""
    world = World()
    await started(world)
    job = world.api.jobs["ns", "post"]
    job["metadata"]["finalizers"] = []  # as the earlier release left it
    world.service = world.new_operator()

    await world.run_pass()

    assert world.api.jobs["ns", "post"]["metadata"]["finalizers"] == [JOB_FINALIZER]
    assert world.status()["attempts"][0]["outcome"] == "Running"


async def test_a_deleted_job_whose_binding_vanished_goes_once_its_attempt_is_fenced() -> None:
    """The binding vanishes (its finalizer removed by hand) while its worker, out of reach, runs
    attempt 1, and the job is deleted: nothing of the binding is left to remove the job's
    finalizer, yet the job goes, once the lease and the grace ran out (its loop asks on)."""
    world = World()
    await started(world)
    world.workers.at.pop(OLD)
    delete_binding(world)
    delete(world)

    await world.service.check_orphan(world.api.jobs["ns", "post"])
    assert world.status()["reason"] == "Fencing"
    world.clock.advance(LEASE + GRACE - 1)
    asked = len(world.workers.calls)
    await until(lambda: len(world.workers.calls) > asked)  # the loop asked the worker again
    assert ("ns", "post") in world.api.jobs

    world.clock.advance(2)
    await until(lambda: ("ns", "post") not in world.api.jobs)
    await until(lambda: not world.service.keeps_state_of("ns", "alpha"))
    await world.service.close()
