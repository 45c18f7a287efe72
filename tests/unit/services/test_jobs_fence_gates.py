"""The binding's side of a fenced attempt: while an attempt of its jobs may still run on a pod
that went away (``JobService.unsettled``), the reconcile creates no new worker pod and a deleted
binding neither stops its phone nor lets its claim go; both go ahead once the attempt ended.

The jobs' answer is a plain callable here (the job service's own rules are in
test_jobs_fencing.py); the reconciler runs against the fake API server and Geelark.
"""

from __future__ import annotations

import pytest
from fakes import FakeKube, FakePhones

from conftest import NOW, bring_up, step
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.services.claims import ClaimService
from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.settings import OperatorSettings

FENCING = "attempt 1 of PhoneJob post ran on a worker pod that went away"


class Jobs:
    """What the job service says about the binding: an attempt may still run, or none."""

    def __init__(self) -> None:
        self.why: str | None = None
        self.asked: list[tuple[str, str]] = []

    def unsettled(self, namespace: str, name: str) -> str | None:
        self.asked.append((namespace, name))
        return self.why


@pytest.fixture
def jobs() -> Jobs:
    return Jobs()


@pytest.fixture
def gated(kube: FakeKube, phones: FakePhones, jobs: Jobs) -> BindingReconciler:
    """The reconciler, asking ``jobs`` before it creates a pod or lets a phone go."""
    return BindingReconciler(
        directory=phones,
        power=phones,
        kube=kube,
        claims=ClaimService(kube, ObservedClaims(), power=phones),
        settings=OperatorSettings(),
        clock=lambda: NOW,
        unsettled=jobs.unsettled,
    )


async def test_no_new_worker_pod_while_an_attempt_of_the_gone_pod_may_still_run(
    kube: FakeKube, phones: FakePhones, gated: BindingReconciler, jobs: Jobs
) -> None:
    """The pod was force-deleted mid-attempt: the pass creates no pod and says why (Bound,
    WorkerReady False FencingAttempt); once the attempt ended, the next pass creates it."""
    binding = await bring_up(gated, phones)
    kube.pods.clear()  # force-deleted
    jobs.why = FENCING

    held, report, _ = await step(gated, binding)

    assert kube.pods == {}
    assert held.status.phase == "Bound"
    ready = {c.type: c for c in held.status.conditions}["WorkerReady"]
    assert (ready.status, ready.reason) == ("False", "FencingAttempt")
    assert FENCING in ready.message
    assert "CreatedPod" not in [event.reason for event in report.events]
    assert ("ns", "alpha") in jobs.asked

    jobs.why = None
    _, report, _ = await step(gated, held)
    assert ("ns", "alpha-worker") in kube.pods
    assert "CreatedPod" in [event.reason for event in report.events]


async def test_a_deleted_binding_keeps_its_phone_and_claim_until_the_attempt_ended(
    kube: FakeKube, phones: FakePhones, gated: BindingReconciler, jobs: Jobs
) -> None:
    """The release of a deleted binding whose pod is gone but whose attempt may still run
    there stops nothing and keeps the claim (finalizer kept: False); once the attempt ended it
    stops the phone and deletes the claim."""
    binding = await bring_up(gated, phones)
    kube.bindings[("ns", "alpha")] = {"metadata": {"uid": binding.uid}}
    kube.pods.clear()
    jobs.why = FENCING

    assert not await gated.finalize(binding)
    assert phones.count("stop") == 0
    assert "100" in kube.claims
    assert phones.power["100"] is PhoneStatus.RUNNING

    jobs.why = None
    assert await gated.finalize(binding)
    assert phones.count("stop") == 1
    assert "100" not in kube.claims
