"""Tenancy in the reconcile pass: what a binding is told, and that no claim or pod is made for
a binding the pools refuse or queue (fakes with the API server's semantics)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeKube, FakePhones
from pool_fakes import Catalog, FakePoolStore

from conftest import NOW, make_binding, ready, step
from phonefleet_operator.errors import KubernetesUnavailable
from phonefleet_operator.geelark import Phone, PhoneStatus
from phonefleet_operator.models import Phase, PhoneBinding, PhoneBindingSpec
from phonefleet_operator.services.admission import AdmissionService
from phonefleet_operator.services.claims import ClaimService
from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.services.replica import Replica
from phonefleet_operator.services.runtime import Runtime
from phonefleet_operator.services.tenancy import PoolReporter, Quota, Tenancy, TenancyView
from phonefleet_operator.services.tenancy.policy import not_available
from phonefleet_operator.settings import GeelarkSettings, OperatorSettings


class Wired:
    """A reconciler and its tenancy over the fakes; ``woken`` lists the uids woken."""

    def __init__(
        self, kube: FakeKube, phones: FakePhones, store: FakePoolStore, **settings: Any
    ) -> None:
        self.woken: list[str] = []
        self.claims = claims = ObservedClaims()
        self.tenancy = Tenancy(
            view=TenancyView(),
            quota=Quota(store),
            store=store,
            directory=phones,
            claims=claims,
            settings=OperatorSettings(**settings),
            wake=self.woken.append,
        )
        self.reconciler = BindingReconciler(
            directory=phones,
            power=phones,
            kube=kube,
            claims=ClaimService(kube, claims),
            settings=OperatorSettings(**settings),
            clock=lambda: NOW,
            tenancy=self.tenancy,
        )

    async def step(self, binding: PhoneBinding) -> tuple[PhoneBinding, Any, float]:
        """One pass; the binding's view entry follows its status, as the watch would."""
        after, report, delay = await step(self.reconciler, binding)
        self.tenancy.view.saw_binding(after.to_dict())
        return after, report, delay


def stored(kube: FakeKube, binding: PhoneBinding) -> dict[str, Any]:
    """The binding kept by the fake API server; the dict is the live body a pass is handed."""
    body = binding.to_dict()
    kube.bindings[binding.namespace, binding.name] = body
    return body


@pytest.fixture
def store() -> FakePoolStore:
    """No pools; namespace "ns" labelled client=acme."""
    fake = FakePoolStore()
    fake.namespaces["ns"] = {"client": "acme"}
    return fake


@pytest.fixture
def grouped(phones: FakePhones) -> FakePhones:
    """Phones 100 (phone-a) and 200 (phone-b) in Geelark group acme, 300 (phone-c) in none."""
    phones.phones["100"] = Phone(id="100", serial_name="phone-a", group_name="acme")
    phones.add("200", "phone-b")
    phones.phones["200"] = Phone(id="200", serial_name="phone-b", group_name="acme")
    phones.add("300", "phone-c")
    return phones


async def test_without_pools_nothing_changes_and_off_is_logged_once(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Tenancy off: the pass claims as before; no tenancy field or condition appears."""
    wired = Wired(kube, grouped, store)
    caplog.set_level(logging.INFO)

    first, _, _ = await wired.step(make_binding())
    await wired.step(first)

    assert "100" in kube.claims
    assert first.status.pool is None
    assert {c.type for c in first.status.conditions}.isdisjoint({"Admitted", "PoolAccessRevoked"})
    assert caplog.text.count("Tenancy is off") == 1


async def test_the_webhooks_copy_of_the_gate_leaves_saying_tenancy_is_off_to_the_pass(
    kubeconfig: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the webhook on, a replica's admission judges by a Tenancy of its own: it decides
    nothing about tenancy being on, so it says nothing (the pass's says it once, above)."""
    replica = Replica.create(
        OperatorSettings(kubeconfig=str(kubeconfig)),
        GeelarkSettings(url="http://127.0.0.1:9", token="t"),
    )
    replica.admission_view.load([], [])  # what its watches list: no pool, no namespace
    caplog.set_level(logging.INFO)
    try:
        # The refusal the webhook asks for each review (the private attribute is the webhook's
        # own Tenancy; a review would first ask Geelark, which is not what this test is about).
        assert await replica.admission._tenancy.refusal("ns", PhoneBindingSpec(phoneId="p")) is None
    finally:
        await replica.close()
    assert "Tenancy is" not in caplog.text


async def test_another_namespaces_phone_is_forbidden_and_unclaimed(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """The pool names another namespace: Forbidden, no claim, no phone data in the status."""
    store.create("acme", namespaces={"names": ["elsewhere"]})
    wired = Wired(kube, grouped, store)

    binding, report, _ = await wired.step(make_binding())

    assert binding.status.phase == "Forbidden"
    assert binding.status.phone is None
    assert kube.claims == {}
    admitted = next(c for c in binding.status.conditions if c.type == "Admitted")
    assert admitted.reason == "PhoneNotAvailable"
    assert "acme" not in binding.status.message  # type: ignore[operator]
    assert [e.reason for e in report.events if e.warning] == ["PhoneNotAvailable"]


async def test_a_missing_phone_is_told_like_a_forbidden_one_when_tenancy_is_on(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """No "PhoneNotFound" that would tell a tenant which phones exist elsewhere."""
    store.create("acme", namespaces={"names": ["elsewhere"]})
    wired = Wired(kube, grouped, store)

    missing, _, _ = await wired.step(make_binding("ghost", "phone-zzz"))
    foreign, _, _ = await wired.step(make_binding("foreign", "phone-a"))

    assert missing.status.phase == foreign.status.phase == "Forbidden"
    assert missing.status.message.replace("phone-zzz", "X") == (  # type: ignore[union-attr]
        foreign.status.message.replace("phone-a", "X")  # type: ignore[union-attr]
    )


async def test_above_max_running_a_binding_is_queued_then_promoted_when_a_slot_frees(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """maxRunning 1: the second binding waits (position 1, no claim) and is woken and admitted
    once the first is deleted."""
    store.create(
        "acme", max_running=1, namespaces={"selector": {"matchLabels": {"client": "acme"}}}
    )
    wired = Wired(kube, grouped, store)
    first, _, _ = await wired.step(make_binding("first", "phone-a"))
    second, _, _ = await wired.step(make_binding("second", "phone-b"))

    assert first.status.phase == "Bound"
    assert second.status.phase == "Queued"
    assert second.status.queue_position == 1
    assert "200" not in kube.claims

    await wired.tenancy.binding_event("DELETED", first.to_dict())
    assert wired.woken == [second.uid]
    second, _, _ = await wired.step(second)

    assert second.status.phase == "Bound"
    assert "200" in kube.claims
    assert [h["uid"] for h in store.pools["acme"]["status"]["holders"]] == [second.uid]


async def test_a_suspended_binding_frees_its_slot(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """The pass that stops a suspended binding's phone frees its slot."""
    store.create("acme", max_running=1)
    wired = Wired(kube, grouped, store)
    first, _, _ = await wired.step(make_binding("first", "phone-a"))
    first, _, _ = await wired.step(
        first.model_copy(update={"spec": first.spec.model_copy(update={"suspend": True})})
    )

    assert first.status.phase == "Suspended"
    assert grouped.count("stop") == 1
    assert store.pools["acme"]["status"]["holders"] == []


async def test_a_late_suspended_event_does_not_free_the_slot_of_a_binding_resumed_since(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """maxRunning 1: the watch event of a binding's Suspended status is handled after the pass
    of its resumption admitted it and started its phone. The event frees nothing, and a second
    binding queues (the pooled chaos test's seed 155619085 found 4 holders of 3: the stale event
    had freed the resumed binding's slot, and its next pass was counted above the limit)."""
    store.create("acme", max_running=1)
    wired = Wired(kube, grouped, store)
    first, _, _ = await wired.step(make_binding("first", "phone-a"))
    suspended, _, _ = await wired.step(
        first.model_copy(update={"spec": first.spec.model_copy(update={"suspend": True})})
    )
    resume = suspended.model_copy(
        update={"spec": suspended.spec.model_copy(update={"suspend": False})}
    )
    resumed, _, _ = await step(wired.reconciler, resume)  # the view has not seen it yet
    assert resumed.status.phase == "Bound"
    assert [h["uid"] for h in store.pools["acme"]["status"]["holders"]] == [first.uid]
    assert grouped.count("start") == 2

    await wired.tenancy.binding_event("MODIFIED", suspended.to_dict())
    second, _, _ = await wired.step(make_binding("second", "phone-b"))

    assert [h["uid"] for h in store.pools["acme"]["status"]["holders"]] == [first.uid]
    assert second.status.phase == "Queued"
    assert grouped.count("start") == 2


async def test_the_sweep_wakes_a_holder_the_view_thinks_suspended_instead_of_freeing_it(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """The pools' background sweep sees a holder whose last seen status says Suspended: the
    view may be older than a pass that admitted it again, so the holder keeps its slot and is
    woken (its own pass frees the slot if it still runs nothing)."""
    store.create("acme", max_running=1, namespaces={"names": ["ns"]})
    wired = Wired(kube, grouped, store)
    first, _, _ = await wired.step(make_binding("first", "phone-a"))
    wired.tenancy.pool_event("MODIFIED", store.pools["acme"])
    stale = first.model_copy(
        update={"status": first.status.model_copy(update={"phase": Phase.SUSPENDED})}
    )
    wired.tenancy.view.saw_binding(stale.to_dict())

    async def exists(namespace: str, name: str, uid: str) -> bool:
        return True

    reporter = PoolReporter(wired.tenancy, Catalog(grouped), exists, clock=lambda: NOW)
    wired.tenancy.view.namespaces["ns"] = {}
    await reporter.report_once()

    assert [h["uid"] for h in store.pools["acme"]["status"]["holders"]] == [first.uid]
    assert wired.woken == [first.uid]


async def test_a_suspended_binding_that_failed_a_pass_waits_for_a_slot_when_resumed(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """maxRunning 1: a suspended binding gave its slot to another; a pass of it then ended in
    Error (Geelark refused the credentials). Resumed, it still holds its phone's claim, but its
    phone is stopped: it queues instead of being counted above the limit (the pooled chaos
    test's seed 1 found it admitted as 4 of 3 and starting its phone)."""
    store.create("acme", max_running=1)
    wired = Wired(kube, grouped, store)
    first, _, _ = await wired.step(make_binding("first", "phone-a"))
    first, _, _ = await wired.step(
        first.model_copy(update={"spec": first.spec.model_copy(update={"suspend": True})})
    )
    await wired.tenancy.binding_event("MODIFIED", first.to_dict())
    second, _, _ = await wired.step(make_binding("second", "phone-b"))
    assert second.status.phase == "Bound"
    errored = first.status.model_copy(update={"phase": Phase.ERROR})
    resumed = first.model_copy(
        update={"spec": first.spec.model_copy(update={"suspend": False}), "status": errored}
    )

    resumed, _, _ = await wired.step(resumed)

    assert resumed.status.phase == "Queued"
    assert [h["uid"] for h in store.pools["acme"]["status"]["holders"]] == [second.uid]
    assert grouped.count("start") == 2  # first's one start before the suspension, second's


async def test_a_suspended_binding_keeps_its_slot_until_its_suspended_status_is_written(
    kubeconfig: Path, kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """maxRunning 1: the pass that stops a suspended binding's phone cannot write its status
    (the API server restarting; a SIGKILL between the two writes leaves the same). Its slot
    stays until a status saying its phone is stopped is written, so a second binding queues.
    Freed at once, the second was admitted and started its phone, and the first, resumed with
    its status still saying its phone runs, was counted above the limit as one that had been
    running: 2 holders of 1, 2 phones billed."""
    store.create("acme", max_running=1)
    wired = Wired(kube, grouped, store)
    runtime = Runtime.create(
        OperatorSettings(kubeconfig=str(kubeconfig)),
        GeelarkSettings(url="http://127.0.0.1:9", token="t"),
    )
    runtime.kube = kube  # type: ignore[assignment]
    runtime.reconciler = wired.reconciler
    first, second = (
        stored(kube, make_binding(n, p)) for n, p in (("first", "phone-a"), ("second", "phone-b"))
    )
    try:
        await runtime.reconcile(first, {})
        assert grouped.power["100"] is PhoneStatus.STARTING
        first["spec"]["suspend"] = True
        first["metadata"]["generation"] += 1
        kube.status_write_error = KubernetesUnavailable("the API server is restarting")
        with pytest.raises(KubernetesUnavailable):
            await runtime.reconcile(first, {})
        assert grouped.power["100"] is PhoneStatus.SHUT_DOWN
        kube.status_write_error = None

        await runtime.reconcile(second, {})
        first["spec"]["suspend"] = False
        first["metadata"]["generation"] += 1
        await runtime.reconcile(first, {})
    finally:
        await runtime.close()

    assert [h["uid"] for h in store.pools["acme"]["status"]["holders"]] == [
        first["metadata"]["uid"]
    ]
    assert second["status"]["phase"] == "Queued"
    assert grouped.power["200"] is PhoneStatus.SHUT_DOWN


async def test_a_holder_whose_claim_was_deleted_by_hand_keeps_its_slot(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """maxRunning 1: a claim deleted by hand leaves its phone running (billed); the holder keeps
    counting until it takes the phone again or another binding takes it with a slot of its own,
    so a second binding queues (the pooled chaos test's seed 1 found 4 phones on in a pool of
    3: the old holder had given its slot back at once)."""
    store.create("acme", max_running=1)
    wired = Wired(kube, grouped, store)
    first, _, _ = await wired.step(make_binding("first", "phone-a"))
    assert grouped.count("start") == 1
    kube.delete_claim_by_hand("100")
    wired.claims.saw(kube.claims["100"])  # the claims watch's MODIFIED event

    first, _, _ = await wired.step(first)
    await wired.tenancy.binding_event("MODIFIED", first.to_dict())
    second, _, _ = await wired.step(make_binding("second", "phone-b"))

    assert first.status.phase == "Conflict"
    assert [h["uid"] for h in store.pools["acme"]["status"]["holders"]] == [first.uid]
    assert second.status.phase == "Queued"
    assert grouped.count("start") == 1


async def test_a_forbidden_image_gets_no_pod(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """An override outside the pool's patterns: Forbidden (ImageNotAllowed), no claim, no pod."""
    store.create("acme", images={"worker": ["registry.example/acme/*"]})
    wired = Wired(kube, grouped, store)
    grouped.power["100"] = PhoneStatus.RUNNING
    grouped.adb_on.add("100")

    binding, _, _ = await wired.step(make_binding(worker={"image": "evil/bot"}))

    assert binding.status.phase == "Forbidden"
    assert kube.pods == {}
    assert kube.claims == {}


async def test_a_revoked_binding_keeps_running_unless_the_pool_says_stop(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """Keep: a PoolAccessRevoked condition and a Warning Event, the pod stays. Stop: the pod,
    the claim and the phone are let go."""
    store.create("acme")
    wired = Wired(kube, grouped, store)
    grouped.power["100"] = PhoneStatus.RUNNING
    grouped.adb_on.add("100")
    binding, _, _ = await wired.step(make_binding())
    ready(kube.pods[("ns", "alpha-worker")])
    binding, _, _ = await wired.step(binding)
    assert binding.status.phase == "Running"

    revoked_pool = {
        **store.pools["acme"],
        "spec": {**store.pools["acme"]["spec"], "namespaces": {"names": []}},
    }
    wired.tenancy.pool_event("MODIFIED", revoked_pool)
    binding, report, _ = await wired.step(binding)

    revoked = next(c for c in binding.status.conditions if c.type == "PoolAccessRevoked")
    assert revoked.status == "True"
    assert binding.status.phase == "Running"
    assert ("ns", "alpha-worker") in kube.pods
    assert "PoolAccessRevoked" in [e.reason for e in report.events if e.warning]

    stop = {**revoked_pool, "spec": {**revoked_pool["spec"], "onRevoke": "Stop"}}
    wired.tenancy.pool_event("MODIFIED", stop)
    binding, _, _ = await wired.step(binding)
    assert binding.status.phase == "Forbidden"
    assert kube.pods == {}
    binding, _, _ = await wired.step(binding)  # the pod is gone: the phone and claim go next

    assert kube.claims == {}
    assert grouped.power["100"] is PhoneStatus.SHUT_DOWN


async def test_the_webhook_refuses_a_foreign_phone_but_lets_a_revoked_holder_suspend(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """At admission: "not yours" and "no such phone" read alike; the namespace that still holds
    the phone after losing access may change its binding, but not to a disallowed image."""
    store.create("acme", namespaces={"names": ["other"]})
    admission = AdmissionService(grouped, kube, tenancy=Wired(kube, grouped, store).tenancy)

    foreign = await admission.review("ns", "x", {"phoneId": "phone-a"})
    missing = await admission.review("ns", "x", {"phoneId": "phone-zz"})

    assert foreign == [not_available("phone-a", "ns").message]
    assert missing == [not_available("phone-zz", "ns").message]
    kube.claims["100"] = {
        "metadata": {"name": "100", "uid": "claim-1"},
        "spec": {
            "phoneId": "100",
            "serialName": "phone-a",
            "holder": {"namespace": "ns", "name": "alpha", "uid": "uid-alpha"},
        },
    }
    kube.bindings[("ns", "alpha")] = {"metadata": {"name": "alpha", "uid": "uid-alpha"}}
    suspend = {"phoneId": "phone-a", "suspend": True}
    assert await admission.review("ns", "alpha", suspend) == []
    evil = {"phoneId": "phone-a", "worker": {"image": "evil/bot"}}
    assert "evil/bot" in (await admission.review("ns", "alpha", evil))[0]


async def test_an_image_override_does_not_reveal_another_tenants_pool(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """A foreign phone with a disallowed image is refused as "not available", not by its pool's
    image patterns (which would name the pool)."""
    store.create("acme", namespaces={"names": ["other"]}, images={"worker": ["acme/*"]})
    wired = Wired(kube, grouped, store)

    binding, _, _ = await wired.step(make_binding(worker={"image": "evil/bot"}))

    assert binding.status.message == not_available("phone-a", "ns").message


async def test_the_reporter_writes_counts_and_overlaps_and_sweeps_gone_holders(
    kube: FakeKube, grouped: FakePhones, store: FakePoolStore
) -> None:
    """PHONES, BOUND, RUNNING, NAMESPACES and overlaps on each pool; a holder whose binding no
    longer exists stops counting."""
    store.create("acme", max_running=1, namespaces={"names": ["ns"]})
    store.create("tagged", phones={"serialNames": ["phone-b"]}, namespaces={"names": []})
    wired = Wired(kube, grouped, store)
    first, _, _ = await wired.step(make_binding("first", "phone-a"))
    for body in store.pools.values():
        wired.tenancy.pool_event("MODIFIED", body)

    async def exists(namespace: str, name: str, uid: str) -> bool:
        return False  # "first" was deleted while no watch event reached the operator

    wired.tenancy.view.binding_gone(first.uid)
    reporter = PoolReporter(wired.tenancy, Catalog(grouped), exists, clock=lambda: NOW)
    wired.tenancy.view.namespaces["ns"] = {}
    await reporter.report_once()

    acme = store.pools["acme"]["status"]
    assert (acme["phones"], acme["running"], acme["namespaces"]) == (2, 0, "ns")
    assert acme["holders"] == []
    assert acme["overlapping"] == ["200"]
    assert store.pools["tagged"]["status"]["overlapping"] == ["200"]
    overlap = next(c for c in acme["conditions"] if c["type"] == "Overlapping")
    assert overlap["status"] == "True"
    assert "tagged" in overlap["message"]
