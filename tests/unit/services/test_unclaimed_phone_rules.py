"""A binding whose claim was deleted by hand and which then does not take its phone again (its
pool queues or forbids it, it waits behind an older binding) stops the phone it last ran, as
its releasePolicy says, in the pass that lets the phone go; a phone someone holds is never
stopped (docs/safety.md, "A force-released binding that goes").

One pass at a time over the fakes: the claim and the pods as the API server keeps them, the
pools' ledger with its resourceVersions, phones whose stop can be made to fail.
"""

from __future__ import annotations

from typing import Any

import pytest
from fakes import FailingPhones, FakeKube
from pool_fakes import FakePoolStore

from conftest import NOW, make_binding, step
from phonefleet_operator.errors import GeelarkUnavailable
from phonefleet_operator.geelark import Phone, PhoneStatus
from phonefleet_operator.models import PhoneBinding, condition
from phonefleet_operator.render import build_claim
from phonefleet_operator.services.claims import ClaimService, binding_ref
from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.services.tenancy import Quota, Tenancy, TenancyView
from phonefleet_operator.settings import OperatorSettings


class Wired:
    """A reconciler with tenancy over the fakes; the claims view and the bindings view follow
    what each pass wrote, as the watches would."""

    def __init__(self, kube: FakeKube, phones: FailingPhones, store: FakePoolStore) -> None:
        self.kube = kube
        #: The Events the last pass posts (reason, message).
        self.events: list[tuple[str, str]] = []
        self.claims = ObservedClaims()
        settings = OperatorSettings(geelark_retry_seconds=10, error_recheck_seconds=300)
        self.tenancy = Tenancy(
            view=TenancyView(),
            quota=Quota(store),
            store=store,
            directory=phones,
            claims=self.claims,
            settings=settings,
            wake=lambda uid: None,
        )
        self.reconciler = BindingReconciler(
            directory=phones,
            power=phones,
            kube=kube,
            claims=ClaimService(kube, self.claims, power=phones),
            settings=settings,
            clock=lambda: NOW,
            tenancy=self.tenancy,
        )

    async def step(
        self, binding: PhoneBinding, waiters: dict[str, Any] | None = None
    ) -> PhoneBinding:
        """One pass; the binding's entry in the bindings view and in the fake API server
        follow its status."""
        after, report, _ = await step(self.reconciler, binding, waiters)
        self.events = [(e.reason, e.message) for e in report.events]
        self.kube.bindings[(after.namespace, after.name)] = after.to_dict()
        self.tenancy.view.saw_binding(after.to_dict())
        await self.tenancy.binding_event("MODIFIED", after.to_dict())
        return after


@pytest.fixture
def phones() -> FailingPhones:
    """FailingPhones 100 (phone-a) and 200 (phone-b) in Geelark group acme, both stopped."""
    fake = FailingPhones()
    for phone_id, serial in (("100", "phone-a"), ("200", "phone-b")):
        fake.add(phone_id, serial)
        fake.phones[phone_id] = Phone(id=phone_id, serial_name=serial, group_name="acme")
    return fake


@pytest.fixture
def store() -> FakePoolStore:
    """Pool acme (group acme, namespace "ns"), at most one binding running."""
    fake = FakePoolStore()
    fake.namespaces["ns"] = {"client": "acme"}
    fake.create("acme", max_running=1)
    return fake


@pytest.fixture
def wired(kube: FakeKube, phones: FailingPhones, store: FakePoolStore) -> Wired:
    """The reconciler, its tenancy and views."""
    return Wired(kube, phones, store)


def holders(store: FakePoolStore) -> list[str]:
    return [h["uid"] for h in store.pools["acme"]["status"].get("holders") or ()]


def claimed_reason(binding: PhoneBinding) -> str | None:
    found = condition(binding.status.conditions, "Claimed")
    return found.reason if found else None


async def force_released(wired: Wired, phones: FailingPhones, **spec: Any) -> PhoneBinding:
    """Binding "first" runs phone 100 with the pool's one slot; then ``kubectl delete
    phoneclaim 100``: its next pass removes the pod and lets the claim go. The phone runs on,
    held by nobody, and "first" still counts in the pool."""
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    first = await wired.step(make_binding("first", "phone-a", **spec))
    assert ("ns", "first-worker") in wired.kube.pods
    wired.kube.delete_claim_by_hand("100")
    wired.claims.saw(wired.kube.claims["100"])  # the claims watch's MODIFIED event
    first = await wired.step(first)
    assert "100" not in wired.kube.claims
    assert not wired.kube.pods
    assert claimed_reason(first) == "ClaimDeleted"
    assert phones.power["100"] is PhoneStatus.RUNNING
    return first


async def lose_the_slot(wired: Wired, store: FakePoolStore) -> PhoneBinding:
    """The pool's ledger forgets every holder (a person reset it, or the pool was re-created),
    and binding "second" takes the one slot with phone 200."""
    store.pools["acme"]["status"]["holders"] = []
    store.bump("acme")
    wired.tenancy.pool_event("MODIFIED", store.pools["acme"])
    second = await wired.step(make_binding("second", "phone-b"))
    assert second.status.phase == "Bound"
    assert holders(store) == [second.uid]
    return second


def revoke(wired: Wired, store: FakePoolStore) -> None:
    """The pool no longer lets namespace "ns" bind its phones."""
    store.pools["acme"]["spec"]["namespaces"] = {"names": ["elsewhere"]}
    store.bump("acme")
    wired.tenancy.pool_event("MODIFIED", store.pools["acme"])


# ---------------------------------------------------------------------- Queued


async def test_a_force_released_binding_that_is_queued_stops_its_phone_in_that_pass(
    wired: Wired, phones: FailingPhones, store: FakePoolStore
) -> None:
    """Its slot is gone and the pool is full: the pass that queues it stops the phone it last
    ran (nobody holds it), and the status says the phone is stopped. Before the fix the phone
    ran on, held by nobody, until the binding was admitted again."""
    first = await force_released(wired, phones)
    await lose_the_slot(wired, store)

    first = await wired.step(first)

    assert first.status.phase == "Queued"
    assert phones.power["100"] is PhoneStatus.SHUT_DOWN
    assert first.status.phone is not None
    assert first.status.phone.status == "Stopped"
    assert "100" not in wired.kube.claims
    assert (
        "StoppedPhone",
        "Stopped phone 100: its PhoneClaim was deleted by hand and this binding does not take "
        "it again now (Queued)",
    ) in wired.events


async def test_a_queued_binding_stops_the_phone_once(
    wired: Wired, phones: FailingPhones, store: FakePoolStore
) -> None:
    """Its later passes, still queued, make no second stop call and read no claim."""
    first = await force_released(wired, phones)
    await lose_the_slot(wired, store)
    first = await wired.step(first)
    reads = wired.kube.reads["claim"]

    first = await wired.step(first)

    assert first.status.phase == "Queued"
    assert phones.count("stop") == 1
    assert wired.kube.reads["claim"] == reads


async def test_a_queued_keep_binding_leaves_its_phone_running(
    wired: Wired, phones: FailingPhones, store: FakePoolStore
) -> None:
    """releasePolicy Keep never stops the phone."""
    first = await force_released(wired, phones, releasePolicy="Keep")
    await lose_the_slot(wired, store)

    first = await wired.step(first)

    assert first.status.phase == "Queued"
    assert phones.count("stop") == 0
    assert phones.power["100"] is PhoneStatus.RUNNING


async def test_a_queued_binding_spares_a_phone_another_binding_took(
    wired: Wired, phones: FailingPhones, store: FakePoolStore, kube: FakeKube
) -> None:
    """Another binding created the claim on phone 100 meanwhile: no stop, and the queued
    binding's status no longer says it runs the phone (its deletion will not stop it)."""
    first = await force_released(wired, phones)
    await lose_the_slot(wired, store)
    other = make_binding("other", "phone-a")
    kube.bindings[("ns", "other")] = other.to_dict()
    await kube.create_claim(build_claim(other, "100", "phone-a"))

    first = await wired.step(first)

    assert first.status.phase == "Queued"
    assert phones.count("stop") == 0
    assert first.status.phone is not None
    assert first.status.phone.status is None
    assert await wired.reconciler.finalize(first)
    assert phones.count("stop") == 0


async def test_a_queued_binding_whose_stop_fails_tries_again_at_its_next_pass(
    wired: Wired, phones: FailingPhones, store: FakePoolStore
) -> None:
    """Geelark does not answer: the status still says the binding ran the phone, and the next
    pass stops it."""
    first = await force_released(wired, phones)
    await lose_the_slot(wired, store)
    phones.stop_error = GeelarkUnavailable("timed out")

    first = await wired.step(first)
    assert phones.power["100"] is PhoneStatus.RUNNING
    assert first.status.phone is not None
    assert first.status.phone.status == "Running"
    phones.stop_error = None
    first = await wired.step(first)

    assert first.status.phase == "Queued"
    assert phones.power["100"] is PhoneStatus.SHUT_DOWN


async def test_a_queued_binding_whose_pod_is_left_removes_it_before_the_stop(
    wired: Wired, phones: FailingPhones, store: FakePoolStore, kube: FakeKube
) -> None:
    """The claim went without the operator (its finalizer removed by hand), so the worker pod
    is still there when the binding is queued: the pass deletes the pod, and the phone is
    stopped only at the pass that finds the pod gone."""
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    first = await wired.step(make_binding("first", "phone-a"))
    first = await wired.step(first)  # ADB data written, pod created
    assert ("ns", "first-worker") in kube.pods
    del kube.claims["100"]
    wired.claims.gone("100")
    await lose_the_slot(wired, store)
    stopped_with_pod: list[bool] = []
    stop = phones.stop

    async def watched_stop(phone_id: str) -> None:
        stopped_with_pod.append(("ns", "first-worker") in kube.pods)
        await stop(phone_id)

    phones.stop = watched_stop  # type: ignore[method-assign]
    delete_pod = kube.delete_pod
    deleted: list[str] = []

    async def slow_delete(namespace: str, name: str, uid: str | None = None) -> bool:
        deleted.append(name)
        return (namespace, name) in kube.pods  # accepted; the pod terminates, goes later

    kube.delete_pod = slow_delete  # type: ignore[method-assign]
    first = await wired.step(first)
    assert first.status.phase == "Queued"
    assert deleted
    assert phones.power["100"] is PhoneStatus.RUNNING
    kube.delete_pod = delete_pod  # type: ignore[method-assign]
    del kube.pods[("ns", "first-worker")]

    first = await wired.step(first)

    assert phones.power["100"] is PhoneStatus.SHUT_DOWN
    assert stopped_with_pod == [False]


# ---------------------------------------------------------------------- Forbidden


async def test_a_force_released_binding_that_is_forbidden_stops_its_phone_in_that_pass(
    wired: Wired, phones: FailingPhones, store: FakePoolStore
) -> None:
    """The pool stops admitting its namespace before it took the phone again: the pass that
    forbids it stops the phone. Before the fix the phone ran on, held by nobody."""
    first = await force_released(wired, phones)
    revoke(wired, store)

    first = await wired.step(first)

    assert first.status.phase == "Forbidden"
    assert phones.power["100"] is PhoneStatus.SHUT_DOWN
    assert first.status.phone is None  # a forbidden binding shows nothing of the phone
    assert holders(store) == []


async def test_a_forbidden_binding_whose_stop_fails_keeps_the_phone_in_its_status(
    wired: Wired, phones: FailingPhones, store: FakePoolStore
) -> None:
    """Geelark refuses the stop: the status keeps the phone (and that its claim was deleted),
    so that its deletion still stops the phone. Before the fix the Forbidden status dropped
    status.phone and the deletion stopped nothing."""
    first = await force_released(wired, phones)
    revoke(wired, store)
    phones.stop_error = GeelarkUnavailable("timed out")

    first = await wired.step(first)
    assert first.status.phase == "Forbidden"
    assert first.status.phone is not None
    assert first.status.phone.id == "100"
    assert claimed_reason(first) == "ClaimDeleted"
    phones.stop_error = None

    assert await wired.reconciler.finalize(first)
    assert phones.power["100"] is PhoneStatus.SHUT_DOWN


async def test_a_forbidden_keep_binding_leaves_its_phone_running(
    wired: Wired, phones: FailingPhones, store: FakePoolStore
) -> None:
    """releasePolicy Keep never stops the phone."""
    first = await force_released(wired, phones, releasePolicy="Keep")
    revoke(wired, store)

    first = await wired.step(first)

    assert first.status.phase == "Forbidden"
    assert phones.count("stop") == 0
    assert phones.power["100"] is PhoneStatus.RUNNING


# ---------------------------------------------------------------------- waiting behind another


async def test_a_force_released_binding_behind_an_older_waiter_keeps_its_slot_and_its_stop(
    wired: Wired, phones: FailingPhones, store: FakePoolStore
) -> None:
    """An older binding waits for phone 100 too and goes first: until it holds the phone, the
    force-released binding still counts in the pool (the phone runs) and still stops the phone
    if it is deleted meanwhile. Before the fix it gave its slot back and, deleted, stopped
    nothing: with the older binding queued, the phone ran for nobody."""
    older = make_binding("older", "phone-a")
    first = await force_released(wired, phones)

    first = await wired.step(first, {"100": [binding_ref(older)]})

    assert first.status.phase == "Conflict"
    assert first.status.conflict_with == "ns/older"
    assert holders(store) == [first.uid]
    assert await wired.reconciler.finalize(first)
    assert phones.power["100"] is PhoneStatus.SHUT_DOWN


async def test_once_the_older_waiter_holds_the_phone_the_binding_lets_it_go_for_good(
    wired: Wired, phones: FailingPhones, store: FakePoolStore, kube: FakeKube
) -> None:
    """The older binding took the claim: the force-released binding gives its slot back and
    its deletion stops nothing."""
    older = make_binding("older", "phone-a")
    first = await force_released(wired, phones)
    first = await wired.step(first, {"100": [binding_ref(older)]})
    kube.bindings[("ns", "older")] = older.to_dict()
    await kube.create_claim(build_claim(older, "100", "phone-a"))

    first = await wired.step(first)

    assert first.status.phase == "Conflict"
    assert holders(store) == []
    assert await wired.reconciler.finalize(first)
    assert phones.count("stop") == 0


# ---------------------------------------------------------------------- moved to a refused phone


async def test_a_binding_moved_to_a_phone_its_pool_refuses_lets_its_old_phone_go(
    wired: Wired, phones: FailingPhones, store: FakePoolStore, kube: FakeKube
) -> None:
    """spec.phoneId now names a phone of another tenant's pool: Forbidden, and the phone it
    held is let go as on any move (pod, then the stop and the claim). Before the fix the old
    pod ran on and the old claim stayed, while the status no longer named the old phone."""
    phones.add("300", "phone-c")
    phones.phones["300"] = Phone(id="300", serial_name="phone-c", group_name="beta")
    store.create("beta", namespaces={"names": ["elsewhere"]})
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    first = await wired.step(make_binding("first", "phone-a"))
    assert ("ns", "first-worker") in kube.pods
    moved = first.model_copy(update={"spec": first.spec.model_copy(update={"phone_id": "phone-c"})})

    first = await wired.step(moved)
    assert first.status.phase == "Forbidden"
    assert not kube.pods
    assert phones.power["100"] is PhoneStatus.RUNNING  # the worker first
    first = await wired.step(first)

    assert phones.power["100"] is PhoneStatus.SHUT_DOWN
    assert "100" not in kube.claims
    assert first.status.phone is None


# ---------------------------------------------------------------------- after a restart


async def test_after_a_restart_a_revoked_holder_keeps_its_pod_and_phone(
    wired: Wired, phones: FailingPhones, store: FakePoolStore, kube: FakeKube
) -> None:
    """A holder whose namespace lost access runs on (PoolAccessRevoked). The operator restarts:
    its claims view is empty until the watch has listed, and the first pass must not take the
    binding for one that holds nothing (Forbidden, its phone forgotten or stopped): the pass
    reads the claim first. Before the fix it went Forbidden with its pod left running and its
    phone gone from the status."""
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    first = await wired.step(make_binding("first", "phone-a"))
    kube.pods[("ns", "first-worker")]["status"] = {
        "conditions": [{"type": "Ready", "status": "True"}]
    }
    first = await wired.step(first)
    revoke(wired, store)
    first = await wired.step(first)
    assert first.status.phase == "Running"
    assert condition(first.status.conditions, "PoolAccessRevoked") is not None

    restarted = Wired(kube, phones, store)
    first = await restarted.step(first)

    assert first.status.phase == "Running"
    assert ("ns", "first-worker") in kube.pods
    assert phones.power["100"] is PhoneStatus.RUNNING
    assert first.status.phone is not None
    assert first.status.phone.id == "100"
