"""The finalizer ``phonefleet.dev/worker-gone`` of every PhoneClaim: a claim goes only once no
worker pod of its holder is left, so a claim deleted by hand never lets a second worker on.

The fake API server honours finalizers (a delete sets deletionTimestamp, the last finalizer's
removal deletes) and here keeps a deleted pod terminating until the test lets it go, as a
kubelet does while the worker shuts down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from fakes import FakeKube, FakePhones

from conftest import NOW, bring_up, make_binding, step
from phonefleet_operator.constants import CLAIM_FINALIZER
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.render import build_claim, pod_name
from phonefleet_operator.services.claims import ClaimService, binding_ref
from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.settings import OperatorSettings


@dataclass
class TerminatingPods(FakeKube):
    """Pods that stay, with a deletionTimestamp, after their deletion until ``finish`` (their
    node has a worker to shut down)."""

    terminating: set[tuple[str, str]] = field(default_factory=set)

    async def delete_pod(self, namespace: str, name: str, uid: str | None = None) -> bool:
        pod = self.pods.get((namespace, name))
        if pod is None or (uid is not None and pod["metadata"]["uid"] != uid):
            return False
        pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        self.terminating.add((namespace, name))
        return True

    def finish(self) -> None:
        """Every terminating pod is gone from the API server."""
        for key in self.terminating:
            self.pods.pop(key, None)
        self.terminating.clear()


@pytest.fixture
def kube() -> TerminatingPods:
    """Kubernetes objects in memory; deleted pods terminate until finished."""
    return TerminatingPods()


@pytest.fixture
def observed() -> ObservedClaims:
    """The claims view, as the watch fills it."""
    return ObservedClaims()


@pytest.fixture
def reconciler(
    kube: TerminatingPods, phones: FakePhones, observed: ObservedClaims
) -> BindingReconciler:
    """The reconciler wired to the fakes and a claims view, its clock frozen at NOW."""
    return BindingReconciler(
        directory=phones,
        power=phones,
        kube=kube,
        claims=ClaimService(kube, observed, power=phones),
        settings=OperatorSettings(),
        clock=lambda: NOW,
    )


def live(kube: FakeKube, *bindings: PhoneBinding) -> None:
    """Make the bindings exist in the fake API server (claims check that their holder lives)."""
    for binding in bindings:
        kube.bindings[(binding.namespace, binding.name)] = {"metadata": {"uid": binding.uid}}


def delete_by_hand(kube: FakeKube, observed: ObservedClaims) -> None:
    """``kubectl delete phoneclaim 100``, and the MODIFIED event it makes."""
    kube.delete_claim_by_hand("100")
    observed.saw(kube.claims["100"])


async def test_every_claim_carries_the_finalizer(
    kube: TerminatingPods, phones: FakePhones, reconciler: BindingReconciler
) -> None:
    """The claim a pass creates holds the finalizer from its first moment."""
    await bring_up(reconciler, phones)
    assert kube.claims["100"]["metadata"]["finalizers"] == [CLAIM_FINALIZER]


async def test_a_claim_deleted_by_hand_stays_until_the_holders_pod_is_gone(
    kube: TerminatingPods,
    phones: FakePhones,
    observed: ObservedClaims,
    reconciler: BindingReconciler,
) -> None:
    """Force-release: the holder deletes its pod; while the pod terminates the claim stays (so
    the waiter's create fails and it makes no pod); once a read shows the pod gone the holder
    removes the finalizer, and only then does the waiter take the phone and start its worker."""
    holder = await bring_up(reconciler, phones)
    waiter = make_binding("waiter")
    live(kube, holder, waiter)
    holder_pod = ("ns", pod_name(holder.name))
    assert holder_pod in kube.pods

    delete_by_hand(kube, observed)
    holder, _, _ = await step(reconciler, holder)

    assert kube.pods[holder_pod]["metadata"].get("deletionTimestamp")
    assert kube.claims["100"]["metadata"]["finalizers"] == [CLAIM_FINALIZER]
    assert holder.status.phase == "Conflict"
    claimed = next(c for c in holder.status.conditions if c.type == "Claimed")
    assert (claimed.status, claimed.reason) == ("False", "ClaimDeleted")
    assert "is released once Pod alpha-worker is gone" in (holder.status.message or "")
    waiter, _, _ = await step(reconciler, waiter)
    assert waiter.status.phase == "Conflict"
    assert kube.claims["100"]["spec"]["holder"]["uid"] == holder.uid
    assert list(kube.pods) == [holder_pod]
    assert phones.count("stop") == 0  # a force-release hands the phone on: it keeps running

    kube.finish()
    holder, _, _ = await step(reconciler, holder)
    assert "100" not in kube.claims
    assert holder.status.phase == "Conflict"

    waiter, _, _ = await step(reconciler, waiter)
    assert kube.claims["100"]["spec"]["holder"]["uid"] == waiter.uid
    assert list(kube.pods) == [("ns", pod_name(waiter.name))]


async def test_a_deleted_binding_lets_its_claim_go_only_after_its_pod(
    kube: TerminatingPods, phones: FakePhones, reconciler: BindingReconciler
) -> None:
    """The binding's own release (its deletion) deletes the claim, finalizer included, once its
    pod is gone; before that the claim stays untouched."""
    holder = await bring_up(reconciler, phones)

    assert not await reconciler.finalize(holder)
    assert kube.claims["100"]["metadata"].get("deletionTimestamp") is None
    kube.finish()
    assert await reconciler.finalize(holder)
    assert "100" not in kube.claims


async def test_a_rebound_binding_lets_its_old_claim_go_completely(
    kube: TerminatingPods, phones: FakePhones, reconciler: BindingReconciler
) -> None:
    """spec.phoneId names another phone: the old claim goes (no deleted claim left behind on
    its finalizer) once the old pod is gone, and the new phone is claimed."""
    phones.add("200", "phone-b")
    holder = await bring_up(reconciler, phones)
    moved = holder.model_copy(update={"spec": holder.spec.model_copy(update={"phone_id": "200"})})
    moved, _, _ = await step(reconciler, moved)
    assert "100" in kube.claims
    assert "200" not in kube.claims
    kube.finish()
    await step(reconciler, moved)
    assert "100" not in kube.claims
    assert kube.claims["200"]["spec"]["holder"]["uid"] == holder.uid


async def test_the_sweep_keeps_an_orphan_while_a_worker_pod_of_its_phone_is_left(
    kube: TerminatingPods, phones: FakePhones, reconciler: BindingReconciler
) -> None:
    """A force-deleted binding's pod still terminating (garbage collection comes after the
    binding): the orphan sweep neither stops the phone nor lets the claim go until it is gone."""
    gone = await bring_up(reconciler, phones)
    kube.bindings.clear()  # the binding was force-deleted; its pod is being collected
    await kube.delete_pod("ns", pod_name(gone.name))
    sweep = ClaimService(kube, power=phones)

    assert await sweep.release_orphans() == []
    assert "100" in kube.claims
    assert phones.power["100"] is PhoneStatus.RUNNING

    kube.finish()
    assert await sweep.release_orphans() == ["100"]
    assert "100" not in kube.claims
    assert phones.power["100"] is PhoneStatus.SHUT_DOWN


async def test_a_waiter_does_not_take_over_an_orphan_whose_worker_is_left(
    kube: TerminatingPods, phones: FakePhones, reconciler: BindingReconciler
) -> None:
    """A waiter that comes across the orphan while its holder's pod terminates stays in
    Conflict; it takes the phone once the pod is gone."""
    gone = await bring_up(reconciler, phones)
    kube.bindings.clear()
    await kube.delete_pod("ns", pod_name(gone.name))
    heir = make_binding("heir")
    live(kube, heir)

    heir, _, _ = await step(reconciler, heir)
    assert heir.status.phase == "Conflict"
    assert kube.claims["100"]["spec"]["holder"]["uid"] == gone.uid

    kube.finish()
    heir, _, _ = await step(reconciler, heir)
    assert kube.claims["100"]["spec"]["holder"]["uid"] == heir.uid
    assert list(kube.pods) == [("ns", pod_name(heir.name))]


async def test_a_claim_made_before_the_finalizer_is_released_as_before(
    kube: TerminatingPods, phones: FakePhones, reconciler: BindingReconciler
) -> None:
    """A claim without the finalizer (made by an older operator) is deleted outright."""
    holder = make_binding()
    old = build_claim(holder, "100", "phone-a")
    del old["metadata"]["finalizers"]
    await kube.create_claim(old)
    live(kube, holder)

    assert await ClaimService(kube).release(binding_ref(holder), "100")
    assert "100" not in kube.claims
