"""The reconcile pass, one step at a time, against in-memory gateways."""

from __future__ import annotations

from fakes import FakeKube, FakePhones

from conftest import bring_up, make_binding, ready, step
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.services.reconcile import BindingReconciler, binding_ref


def live(kube: FakeKube, *bindings: PhoneBinding) -> None:
    """Make the bindings exist in the fake API server (claims check that their holder lives)."""
    for binding in bindings:
        kube.bindings[(binding.namespace, binding.name)] = {"metadata": {"uid": binding.uid}}


async def test_a_new_binding_claims_its_phone_and_starts_it(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones
) -> None:
    """The first pass claims the phone and starts it; nothing else runs yet."""
    binding, report, delay = await step(reconciler, make_binding())
    assert "100" in kube.claims
    assert kube.claims["100"]["spec"]["holder"]["uid"] == binding.uid
    assert phones.count("start") == 1
    assert binding.status.phase == "Bound"
    assert binding.status.phone is not None
    assert binding.status.phone.live_view_url == "https://live.example/100"
    assert not kube.pods
    assert delay == reconciler._settings.boot_poll_seconds  # no boot seen yet: the usual poll
    assert [e.reason for e in report.events] == ["Claimed", "StartedPhone"]


async def test_adb_is_enabled_once_then_polled_until_it_answers(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones
) -> None:
    """While ADB comes up, passes poll its data without switching it on again."""
    phones.power["100"] = PhoneStatus.RUNNING
    binding, _, _ = await step(reconciler, make_binding())
    binding, _, _ = await step(reconciler, binding)
    binding, _, _ = await step(reconciler, binding)
    assert phones.count("enable_adb") == 1
    assert phones.count("adb_endpoint") == 3
    assert binding.status.phase == "Bound"
    phones.adb_on.add("100")
    binding, report, _ = await step(reconciler, binding)
    assert ("ns", "alpha-adb") in kube.secrets
    assert ("ns", "alpha-worker") in kube.pods
    assert report.status.phone is not None  # written once the pod runs (status_memo.py)
    assert report.status.phone.adb_provisioned_at is not None


async def test_a_ready_pod_makes_the_binding_running_and_a_steady_pass_writes_nothing(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones
) -> None:
    """Ready pod -> Running; the next pass finds nothing to change (no status patch)."""
    binding = await bring_up(reconciler, phones)
    ready(kube.pods[("ns", "alpha-worker")])
    binding, _, delay = await step(reconciler, binding)
    assert binding.status.phase == "Running"
    assert delay == reconciler._settings.running_recheck_seconds
    _, report, _ = await step(reconciler, binding)
    assert report.status_patch() is None


async def test_a_second_binding_for_a_held_phone_is_a_conflict_and_never_gets_a_pod(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones
) -> None:
    """The loser names the holder, says how to hand the phone over, and has no pod; the phone
    is started once."""
    first, second = make_binding("holder", "phone-a"), make_binding("loser", "100")
    live(kube, first, second)
    await step(reconciler, first)
    loser, report, _ = await step(reconciler, second)
    assert loser.status.phase == "Conflict"
    assert loser.status.conflict_with == "ns/holder"
    assert (loser.status.message or "").endswith(
        "this binding takes it when that one goes (delete or suspend it to hand the phone over "
        "now, or name another phone in spec.phoneId)"
    )
    assert report.events[-1].warning
    assert phones.count("start") == 1
    assert ("ns", "loser-worker") not in kube.pods


async def test_an_older_waiter_goes_first_when_the_phone_is_free(
    reconciler: BindingReconciler, kube: FakeKube
) -> None:
    """A free phone is not taken while an older binding waits for it."""
    older = make_binding("older", "phone-a")
    younger = make_binding("younger", "phone-a")
    result, _, _ = await step(reconciler, younger, waiters={"100": (binding_ref(older),)})
    assert result.status.phase == "Conflict"
    assert result.status.conflict_with == "ns/older"
    assert not kube.claims


async def test_suspend_stops_the_phone_removes_pod_and_secret_but_keeps_the_claim(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones
) -> None:
    """suspend: true -> Suspended, phone stopped, claim kept."""
    binding = await bring_up(reconciler, phones)
    suspended = binding.model_copy(
        update={"spec": binding.spec.model_copy(update={"suspend": True})}
    )
    binding, _, _ = await step(reconciler, suspended)
    assert binding.status.phase == "Suspended"
    assert phones.power["100"] is PhoneStatus.SHUT_DOWN
    assert not kube.pods
    assert not kube.secrets
    assert "100" in kube.claims


async def test_an_expired_phone_is_an_error_and_is_not_started(
    reconciler: BindingReconciler, phones: FakePhones
) -> None:
    """Status 3 (expired) -> Error with reason PhoneExpired, no start call."""
    phones.power["100"] = PhoneStatus.EXPIRED
    binding, _, _ = await step(reconciler, make_binding())
    assert binding.status.phase == "Error"
    assert phones.count("start") == 0


async def test_an_unknown_phone_is_phone_not_found_and_claims_nothing(
    reconciler: BindingReconciler, kube: FakeKube
) -> None:
    """PhoneNotFound leaves no claim, asks to look again later and says what a person can do."""
    binding, _, delay = await step(reconciler, make_binding("lost", "phone-zzz"))
    assert binding.status.phase == "PhoneNotFound"
    assert "create it in Geelark or correct spec.phoneId" in (binding.status.message or "")
    assert not kube.claims
    assert delay == reconciler._settings.not_found_recheck_seconds


async def test_worker_args_overriding_the_phone_id_are_refused(
    reconciler: BindingReconciler, kube: FakeKube
) -> None:
    """A spec that would point the worker at another phone is an Error; nothing is claimed."""
    binding, _, _ = await step(reconciler, make_binding(worker={"args": ["--phone-id=999"]}))
    assert binding.status.phase == "Error"
    assert "--phone-id" in (binding.status.message or "")
    assert not kube.claims


async def test_finalize_stops_only_a_phone_the_binding_holds(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones
) -> None:
    """Deleting a binding in Conflict never stops the holder's phone."""
    first, second = make_binding("holder", "phone-a"), make_binding("loser", "phone-a")
    live(kube, first, second)
    holder, _, _ = await step(reconciler, first)
    loser, _, _ = await step(reconciler, second)
    phones.power["100"] = PhoneStatus.RUNNING
    assert await reconciler.finalize(loser)
    assert phones.count("stop") == 0
    assert "100" in kube.claims
    assert await reconciler.finalize(holder)
    assert phones.count("stop") == 1
    assert "100" not in kube.claims


async def test_a_release_policy_of_keep_leaves_the_phone_running(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones
) -> None:
    """releasePolicy Keep: the claim goes, the phone is not stopped."""
    keeper, _, _ = await step(reconciler, make_binding("keeper", releasePolicy="Keep"))
    assert await reconciler.finalize(keeper)
    assert phones.count("stop") == 0
    assert not kube.claims
