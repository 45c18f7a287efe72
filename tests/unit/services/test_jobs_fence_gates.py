"""The binding's side of a fenced attempt: while an attempt of its jobs may still run on a pod
that went away (``JobService.unsettled``), the reconcile creates no new worker pod, a deleted or
suspended binding does not stop its phone, and neither a deleted binding nor the orphan sweep
lets its claim go; each goes ahead once the attempt ended.

The jobs' answer is a plain callable here (the job service's own rules are in
test_jobs_fencing.py); the reconciler runs against the fake API server and Geelark.
"""

from __future__ import annotations

import pytest
from fakes import FakeKube, FakePhones

from conftest import NOW, bring_up, make_binding, step
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.render import build_claim
from phonefleet_operator.services.claims import ClaimService, binding_ref
from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.settings import OperatorSettings

FENCING = "attempt 1 of PhoneJob post ran on a worker pod that went away"


class Jobs:
    """What the job service says about the binding: an attempt may still run, or none."""

    def __init__(self) -> None:
        self.why: str | None = None
        self.asked: list[tuple[str, str]] = []

    def unsettled(self, namespace: str, name: str, uid: str | None = None) -> str | None:
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


async def test_a_suspended_binding_keeps_its_phone_running_until_the_attempt_ended(
    kube: FakeKube, phones: FakePhones, gated: BindingReconciler, jobs: Jobs
) -> None:
    """Suspended while an attempt may still run on its worker: the pod and the Secret go at
    once, the phone stops only once the attempt ended, and meanwhile the binding says why
    (Suspended, PhoneReady False with reason FencingAttempt and the job's words)."""
    binding = await bring_up(gated, phones)
    suspended = binding.model_copy(
        update={"spec": binding.spec.model_copy(update={"suspend": True})}
    )
    jobs.why = FENCING

    held, _, _ = await step(gated, suspended)

    assert held.status.phase == "Suspended"
    assert phones.power["100"] is PhoneStatus.RUNNING
    assert phones.count("stop") == 0
    assert not kube.pods
    assert not kube.secrets
    phone_ready = {c.type: c for c in held.status.conditions}["PhoneReady"]
    assert (phone_ready.status, phone_ready.reason) == ("False", "FencingAttempt")
    assert FENCING in phone_ready.message
    ready = {c.type: c for c in held.status.conditions}["Ready"]
    assert ready.reason == "FencingAttempt"

    jobs.why = None
    stopped, _, _ = await step(gated, held)
    assert phones.count("stop") == 1
    assert phones.power["100"] is PhoneStatus.SHUT_DOWN
    assert (stopped.status.phase, stopped.status.phone and stopped.status.phone.status) == (
        "Suspended",
        "Stopped",
    )
    assert "100" in kube.claims


async def test_an_orphaned_claim_keeps_its_phone_until_its_holders_attempt_is_fenced(
    kube: FakeKube, phones: FakePhones, jobs: Jobs
) -> None:
    """The holder of a Stop claim is gone while an attempt of its jobs may still run on its
    worker: neither the orphan sweep nor another binding asking for the phone stops it or
    lets the claim go; once the attempt is fenced, the sweep stops the phone and deletes it."""
    gone = make_binding("gone")
    await kube.create_claim(build_claim(gone, "100", "phone-a"))
    claims = ClaimService(kube, ObservedClaims(), power=phones, unsettled=jobs.unsettled)
    jobs.why = FENCING

    assert await claims.release_orphans() == []
    other = make_binding("beta")
    taken = await claims.acquire(binding_ref(other), "100", build_claim(other, "100", "a"), [])
    assert (taken.held, taken.holder) == (False, "ns/gone")
    assert "100" in kube.claims
    assert phones.count("stop") == 0
    assert ("ns", "gone") in jobs.asked

    jobs.why = None
    assert await claims.release_orphans() == ["100"]
    assert phones.count("stop") == 1
    assert "100" not in kube.claims
