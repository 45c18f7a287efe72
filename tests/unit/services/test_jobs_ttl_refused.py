"""A finished job whose ttlSecondsAfterFinished passed, and whose delete the API server refuses
(the operator's RBAC lacks it): the binding's other jobs go on, the refusal is told once (a log
line and a Warning Event on the job), and the delete is tried again with a backoff, not at every
pass.

The world of test_jobs_fencing.py: the job service's passes against in-memory PhoneJobs and the
worker's own job endpoint and desk, on one clock the test moves.
"""

from __future__ import annotations

from typing import Any

from test_jobs_fencing import OLD, World

from phonefleet_operator.errors import KubernetesRefused

FINISHED = {
    "phase": "Succeeded",
    "reason": "Succeeded",
    "completionTime": "2026-11-28T11:30:00Z",
    "attemptCount": 1,
}


class RefusedDeletes:
    """The API server refusing every delete (or patch) of a PhoneJob (403), counting them."""

    def __init__(self) -> None:
        self.tries = 0

    async def __call__(self, *_: Any) -> None:
        self.tries += 1
        raise KubernetesRefused(
            'phonejobs.phonefleet.dev "done" is forbidden: User "system:serviceaccount:'
            'phonefleet-system:phonefleet-operator" cannot delete resource "phonejobs"',
            status=403,
        )


async def test_a_refused_ttl_delete_is_told_once_retried_with_backoff_and_stalls_nothing() -> None:
    world = World()
    done = world.add_job("done", ttlSecondsAfterFinished=0)
    world.api.jobs["ns", "done"]["status"] = dict(FINISHED)
    done["status"] = dict(FINISHED)
    world.service.saw("ADDED", done)
    refused = RefusedDeletes()
    world.api.delete_job = refused  # type: ignore[method-assign]

    await world.run_pass()

    post = world.status()
    assert (post["phase"], post["attempts"][0]["outcome"]) == ("Running", "Running")
    assert world.desks[OLD].lookup(post["attempts"][0]["id"]) is not None
    assert refused.tries == 1
    assert world.kube.events["HousekeepingRefused"] == 1

    for _ in range(3):  # passes within the backoff do not ask again
        world.clock.advance(2)
        await world.run_pass()
    assert refused.tries == 1

    world.clock.advance(5)  # 11 s after the refusal
    await world.run_pass()
    assert refused.tries == 2
    world.clock.advance(11)  # the backoff doubled: 20 s
    await world.run_pass()
    assert refused.tries == 2
    world.clock.advance(10)
    await world.run_pass()
    assert refused.tries == 3
    assert world.kube.events["HousekeepingRefused"] == 1  # told once
    assert ("ns", "done") in world.api.jobs


async def test_a_job_whose_finalizer_is_refused_waits_saying_so_and_never_starts() -> None:
    """RBAC of an earlier release (no patch on phonejobs): the job cannot hold its finalizer, so
    no attempt starts (it could not be fenced once deleted); it waits with a reason that says
    what to grant, and the pass does not fail."""
    world = World()
    refused = RefusedDeletes()  # as refused, for the finalizer's patch
    world.api.set_job_finalizers = refused  # type: ignore[method-assign]
    await world.run_pass()

    status = world.status()
    assert (status["phase"], status["reason"]) == ("Pending", "FinalizerRefused")
    assert "grant it patch on phonejobs.phonefleet.dev" in status["message"]
    assert world.attempts_on(OLD) == []
    assert world.kube.events["HousekeepingRefused"] == 1

    world.clock.advance(5)
    await world.run_pass()  # within the backoff: not asked again
    assert refused.tries == 1
    world.clock.advance(6)
    await world.run_pass()
    assert (refused.tries, world.status()["reason"]) == (2, "FinalizerRefused")
