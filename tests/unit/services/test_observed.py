"""Passes read claims and pods from the watches' views when they can, and from the API when not."""

from __future__ import annotations

from fakes import FakeKube, FakePhones

from conftest import NOW, bring_up, make_binding, step
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.services.claims import ClaimService
from phonefleet_operator.services.observed import ObservedClaims, ObservedPods
from phonefleet_operator.services.reconcile import BindingReconciler, binding_ref
from phonefleet_operator.settings import OperatorSettings


def watched_reconciler(
    kube: FakeKube, phones: FakePhones
) -> tuple[BindingReconciler, ObservedClaims, ObservedPods]:
    claims, pods = ObservedClaims(), ObservedPods()
    reconciler = BindingReconciler(
        directory=phones,
        power=phones,
        kube=kube,
        claims=ClaimService(kube, claims),
        settings=OperatorSettings(),
        pods=pods,
        clock=lambda: NOW,
    )
    return reconciler, claims, pods


async def with_pod(
    kube: FakeKube, phones: FakePhones
) -> tuple[BindingReconciler, ObservedClaims, ObservedPods, PhoneBinding]:
    """A reconciler with watch views and a binding whose phone runs: its pod is created."""
    reconciler, claims, pods = watched_reconciler(kube, phones)
    return reconciler, claims, pods, await bring_up(reconciler, phones)


async def test_a_claim_this_binding_created_is_not_read_again(
    kube: FakeKube, phones: FakePhones
) -> None:
    reconciler, claims, _ = watched_reconciler(kube, phones)
    binding, _, _ = await step(reconciler, make_binding())
    assert claims.holder_uid("100") == binding.uid
    reads = kube.reads["claim"]
    for _ in range(3):
        binding, _, _ = await step(reconciler, binding)
    assert kube.reads["claim"] == reads
    assert binding.status.phase == "Bound"


async def test_a_claim_seen_held_by_another_binding_is_still_read(kube: FakeKube) -> None:
    """The view only ever saves the read of one's own claim; "someone else" is checked."""
    claims = ClaimService(kube, ObservedClaims())
    other, me = make_binding("other"), make_binding("me")
    kube.bindings[("ns", "other")] = {"metadata": {"uid": other.uid}}
    claims._observed.saw({"metadata": {"name": "100"}, "spec": {"holder": {"uid": other.uid}}})
    result = await claims.acquire(binding_ref(me), "100", {"metadata": {"name": "100"}}, ())
    assert result.held  # the view was stale: no claim exists, so this one is created
    assert kube.reads["claim"] == 1


async def test_release_forgets_the_claim(kube: FakeKube) -> None:
    observed = ObservedClaims()
    claims = ClaimService(kube, observed)
    me = make_binding()
    manifest = {"metadata": {"name": "100"}, "spec": {"holder": {"uid": me.uid}}}
    await claims.acquire(binding_ref(me), "100", manifest, ())
    assert observed.holder_uid("100") == me.uid
    assert await claims.release(binding_ref(me), "100")
    assert observed.holder_uid("100") is None


async def test_a_pod_the_watch_shows_is_not_read_and_its_state_drives_the_phase(
    kube: FakeKube, phones: FakePhones
) -> None:
    reconciler, _, pods, binding = await with_pod(kube, phones)
    pod = kube.pods[("ns", "alpha-worker")]
    reads = kube.reads["pod"]

    pods.saw({**pod, "status": {"phase": "Pending"}})
    binding, _, _ = await step(reconciler, binding)
    assert binding.status.message == "Pod alpha-worker is starting"

    pods.saw(
        {
            **pod,
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]},
        }
    )
    binding, _, _ = await step(reconciler, binding)
    assert binding.status.message == "Pod alpha-worker is not ready"

    pods.saw(
        {**pod, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    )
    binding, _, _ = await step(reconciler, binding)
    assert binding.status.phase == "Running"
    assert kube.reads["pod"] == reads


async def test_a_pod_gone_from_the_view_is_read_and_recreated(
    kube: FakeKube, phones: FakePhones
) -> None:
    reconciler, _, pods, binding = await with_pod(kube, phones)
    first = kube.pods.pop(("ns", "alpha-worker"))
    pods.gone("ns", "alpha-worker")
    binding, report, _ = await step(reconciler, binding)
    assert "CreatedPod" in [e.reason for e in report.events]
    assert kube.pods[("ns", "alpha-worker")]["metadata"]["uid"] != first["metadata"]["uid"]


async def test_a_running_bindings_periodic_pass_reads_and_writes_nothing(
    kube: FakeKube, phones: FakePhones
) -> None:
    """At rest the views are trusted: no read of the claim or the pod, no create answered 409."""
    reconciler, _, pods, binding = await with_pod(kube, phones)
    pod = kube.pods[("ns", "alpha-worker")]
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    pods.saw(pod)
    binding, _, _ = await step(reconciler, binding)
    assert binding.status.phase == "Running"
    reads, creates = dict(kube.reads), dict(kube.creates)
    for _ in range(3):
        binding, report, _ = await step(reconciler, binding)
    assert binding.status.phase == "Running"
    assert kube.reads == reads
    assert kube.creates == creates
    assert report.events == []


async def test_deletions_the_watch_reports_after_a_gap_are_acted_on_at_the_next_pass(
    kube: FakeKube, phones: FakePhones
) -> None:
    """The watch's relist reports a claim and a pod deleted during a gap: the next pass takes
    the phone again and creates the pod."""
    reconciler, claims, pods, binding = await with_pod(kube, phones)
    pod = kube.pods[("ns", "alpha-worker")]
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    pods.saw(pod)
    binding, _, _ = await step(reconciler, binding)

    del kube.claims["100"]
    del kube.pods[("ns", "alpha-worker")]
    claims.gone("100")  # what the relist reports (handlers.watches)
    pods.gone("ns", "alpha-worker")
    binding, report, _ = await step(reconciler, binding)
    assert "100" in kube.claims  # taken again (no one else wanted it)
    assert ("ns", "alpha-worker") in kube.pods
    assert claims.holder_uid("100") == binding.uid
    assert "CreatedPod" in [e.reason for e in report.events]


async def test_the_orphan_sweep_reads_no_binding_whose_loop_runs_here(kube: FakeKube) -> None:
    """The binding's loop runs in this operator, so it exists: its claim is kept, unread."""
    holder = {"namespace": "ns", "name": "alpha", "uid": "b-1"}
    kube.claims["100"] = {"metadata": {"name": "100", "uid": "c-1"}, "spec": {"holder": holder}}
    service = ClaimService(kube, known_alive={"b-1"}.__contains__)
    assert await service.release_orphans() == []
    assert kube.reads["binding"] == 0
    assert "100" in kube.claims
