"""Letting a phone go: who may stop it, when a deleted binding's finalizer may go, the sweep.

What the real control plane cannot produce on demand lives here: a claims view that lags a
force-release by a watch event, and a Geelark stop call that fails in a chosen way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from fakes import FailingPhones, FakeKube

from conftest import NOW, bring_up, make_binding, step
from phonefleet_operator.errors import (
    GeelarkAuthError,
    GeelarkRequestError,
    GeelarkUnavailable,
    PhonefleetError,
)
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.render import build_claim
from phonefleet_operator.services.claims import ClaimService, binding_ref
from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.services.release import PhoneNotStopped
from phonefleet_operator.services.report import Report
from phonefleet_operator.settings import OperatorSettings


@pytest.fixture
def phones() -> FailingPhones:
    """One stopped phone, id 100, serialName phone-a; its stop call can be made to fail."""
    fake = FailingPhones()
    fake.add("100", "phone-a")
    return fake


@pytest.fixture
def observed() -> ObservedClaims:
    """The claims view, as the watch fills it."""
    return ObservedClaims()


def operator_process(
    kube: FakeKube, phones: FailingPhones, observed: ObservedClaims
) -> BindingReconciler:
    """The reconciler of one operator process, wired to the fakes and a claims view, its clock
    frozen at NOW (a restart: another one, which remembers nothing of the first's passes)."""
    return BindingReconciler(
        directory=phones,
        power=phones,
        kube=kube,
        claims=ClaimService(kube, observed, power=phones),
        settings=OperatorSettings(geelark_retry_seconds=10, error_recheck_seconds=300),
        clock=lambda: NOW,
    )


@pytest.fixture
def reconciler(
    kube: FakeKube, phones: FailingPhones, observed: ObservedClaims
) -> BindingReconciler:
    """The reconciler wired to the fakes and a claims view, its clock frozen at NOW."""
    return operator_process(kube, phones, observed)


def live(kube: FakeKube, *bindings: PhoneBinding) -> None:
    """Make the bindings exist in the fake API server (claims check that their holder lives)."""
    for binding in bindings:
        kube.bindings[(binding.namespace, binding.name)] = {"metadata": {"uid": binding.uid}}


def force_release_and_retake(kube: FakeKube, by: PhoneBinding) -> None:
    """``kubectl delete phoneclaim 100`` and another binding's create, behind the watch's back."""
    del kube.claims["100"]
    kube.claims["100"] = {
        **build_claim(by, "100", "phone-a"),
        "metadata": {"name": "100", "uid": "claim-retaken"},
    }


# ---------------------------------------------------------------------- one holder (defect 1)


async def test_after_a_restart_a_younger_holder_keeps_its_claim_and_pod_despite_older_waiters(
    kube: FakeKube, phones: FailingPhones, reconciler: BindingReconciler
) -> None:
    """With an empty claims view (a fresh operator) and older bindings waiting, the holder reads
    its claim instead of yielding: no pod is deleted, no Conflict reported."""
    older = make_binding("older")
    holder = await bring_up(reconciler, phones)
    live(kube, older, holder)
    fresh = BindingReconciler(  # what a restarted operator has: no claims view yet
        directory=phones,
        power=phones,
        kube=kube,
        claims=ClaimService(kube, ObservedClaims(), power=phones),
        settings=OperatorSettings(),
        clock=lambda: NOW,
    )
    pod_uid = kube.pods[("ns", "alpha-worker")]["metadata"]["uid"]

    after, report, _ = await step(fresh, holder, waiters={"100": [binding_ref(older)]})

    assert after.status.phase != "Conflict"
    assert after.status.conflict_with is None
    assert kube.pods[("ns", "alpha-worker")]["metadata"]["uid"] == pod_uid
    assert "DeletedPod" not in [e.reason for e in report.events]


async def test_a_younger_binding_waits_behind_an_older_waiter_only_when_the_claim_is_free(
    kube: FakeKube, reconciler: BindingReconciler
) -> None:
    """The oldest-waiter rule yields a free phone to the older waiter, after a read said free."""
    older, younger = make_binding("older"), make_binding("younger")
    result, _, _ = await step(reconciler, younger, waiters={"100": [binding_ref(older)]})
    assert result.status.phase == "Conflict"
    assert result.status.conflict_with == "ns/older"
    assert kube.reads["claim"] == 1
    assert not kube.claims


@dataclass
class VanishingClaims(FakeKube):
    """A claim exists when the create is tried and is gone when it is read (deleted between)."""

    async def create_claim(self, claim: dict[str, object]) -> bool:
        return False


async def test_a_claim_that_vanishes_between_create_and_read_gives_nothing_up(
    phones: FailingPhones,
) -> None:
    """A lost create followed by a read that finds no claim is no proof that another binding
    holds the phone: the pass keeps its pod and tries again soon."""
    kube = VanishingClaims()
    reconciler = BindingReconciler(
        directory=phones,
        power=phones,
        kube=kube,
        claims=ClaimService(kube, ObservedClaims(), power=phones),
        settings=OperatorSettings(),
        clock=lambda: NOW,
    )
    binding = make_binding()
    kube.pods[("ns", "alpha-worker")] = {"metadata": {"name": "alpha-worker", "uid": "pod-1"}}

    after, _, delay = await step(reconciler, binding)

    assert after.status.phase != "Conflict"
    assert ("ns", "alpha-worker") in kube.pods
    assert delay == 1


# ---------------------------------------------------------------------- the waiters (defect 5)


async def test_a_new_binding_looks_up_the_waiters_of_the_phone_it_resolved(
    kube: FakeKube, reconciler: BindingReconciler
) -> None:
    """A binding with no status yet (so no phone id) names its phone by serialName: the waiters
    of that phone, found once the pass resolved it, go first."""
    older, newcomer = make_binding("older", "100"), make_binding("newcomer", "phone-a")
    result, _, _ = await step(reconciler, newcomer, waiters={"100": [binding_ref(older)]})
    assert result.status.phase == "Conflict"
    assert result.status.conflict_with == "ns/older"
    assert not kube.claims


# ---------------------------------------------------------------------- stop only by the holder (7)


async def test_suspend_does_not_stop_a_phone_whose_claim_was_taken_behind_the_views_back(
    kube: FakeKube,
    phones: FailingPhones,
    observed: ObservedClaims,
    reconciler: BindingReconciler,
) -> None:
    """The view still says "mine", the API server says another binding holds the claim: the
    suspend pass does not stop the other binding's phone."""
    binding = await bring_up(reconciler, phones)
    other = make_binding("other")
    live(kube, binding, other)
    force_release_and_retake(kube, by=other)
    assert observed.holder_uid("100") == binding.uid  # the DELETED/ADDED events are not in yet

    suspended = binding.model_copy(
        update={"spec": binding.spec.model_copy(update={"suspend": True})}
    )
    after, report, _ = await step(reconciler, suspended)

    assert phones.count("stop") == 0
    assert phones.power["100"] is PhoneStatus.RUNNING
    assert "StoppedPhone" not in [e.reason for e in report.events]
    assert after.status.phase != "Suspended"
    assert observed.holder_uid("100") == other.uid  # the read corrected the view


async def test_a_deleted_binding_does_not_stop_a_phone_another_binding_now_holds(
    kube: FakeKube, phones: FailingPhones, reconciler: BindingReconciler
) -> None:
    """Its claim force-released and taken by another binding: the release stops nothing and
    deletes nothing of the new holder."""
    binding = await bring_up(reconciler, phones)
    kube.pods.clear()
    other = make_binding("other")
    live(kube, other)
    force_release_and_retake(kube, by=other)

    assert await reconciler.finalize(binding)
    assert phones.count("stop") == 0
    assert kube.claims["100"]["spec"]["holder"]["uid"] == other.uid


# ---------------------------------------------------------------------- a force-released holder


async def force_released(
    kube: FakeKube,
    phones: FailingPhones,
    observed: ObservedClaims,
    reconciler: BindingReconciler,
    **spec: object,
) -> PhoneBinding:
    """A binding that ran its phone, then ``kubectl delete phoneclaim 100``: after its next
    pass its pod is gone and its claim let go, and it has not taken the phone again."""
    binding = await bring_up(reconciler, phones)
    if spec:
        binding = binding.model_copy(update={"spec": binding.spec.model_copy(update=spec)})
    live(kube, binding)
    kube.delete_claim_by_hand("100")
    observed.saw(kube.claims["100"])  # the MODIFIED event the deletion makes
    after, _, _ = await step(reconciler, binding)
    assert "100" not in kube.claims
    assert not kube.pods
    assert after.status.phone is not None
    assert after.status.phone.status == "Running"
    return after


async def test_a_binding_deleted_after_its_claim_was_force_released_stops_its_phone(
    kube: FakeKube, phones: FailingPhones, observed: ObservedClaims, reconciler: BindingReconciler
) -> None:
    """No claim on the phone, and the binding's status says it ran it: its deletion stops the
    phone, as its holder's would. Before the fix the phone was left running for nobody."""
    binding = await force_released(kube, phones, observed, reconciler)

    assert await reconciler.finalize(binding)

    assert phones.count("stop") == 1
    assert phones.power["100"] is PhoneStatus.SHUT_DOWN
    assert not kube.claims


async def test_a_force_released_binding_whose_phone_another_took_does_not_stop_it(
    kube: FakeKube, phones: FailingPhones, observed: ObservedClaims, reconciler: BindingReconciler
) -> None:
    """Another binding created the claim meanwhile (the deleted one's status still says it ran
    the phone): the read before the stop names that holder, so nothing is stopped."""
    binding = await force_released(kube, phones, observed, reconciler)
    other = make_binding("other")
    live(kube, other)
    await kube.create_claim(build_claim(other, "100", "phone-a"))

    assert await reconciler.finalize(binding)

    assert phones.count("stop") == 0
    assert phones.power["100"] is PhoneStatus.RUNNING
    assert kube.claims["100"]["spec"]["holder"]["uid"] == other.uid


async def test_a_force_released_binding_that_saw_another_holder_stops_nothing(
    kube: FakeKube, phones: FailingPhones, observed: ObservedClaims, reconciler: BindingReconciler
) -> None:
    """Its last pass saw another binding hold the phone (which has let it go since): that
    binding ran the phone last, so the deleted one does not stop it."""
    binding = await force_released(kube, phones, observed, reconciler)
    other = make_binding("other")
    live(kube, other)
    await kube.create_claim(build_claim(other, "100", "phone-a"))
    binding, _, _ = await step(reconciler, binding)
    assert binding.status.phase == "Conflict"
    del kube.claims["100"]

    assert await reconciler.finalize(binding)

    assert phones.count("stop") == 0


async def test_a_force_released_keep_binding_leaves_its_phone_running(
    kube: FakeKube, phones: FailingPhones, observed: ObservedClaims, reconciler: BindingReconciler
) -> None:
    """releasePolicy Keep: the deletion leaves the phone on, as it would for a holder."""
    binding = await force_released(kube, phones, observed, reconciler, release_policy="Keep")

    assert await reconciler.finalize(binding)

    assert phones.count("stop") == 0
    assert phones.power["100"] is PhoneStatus.RUNNING


async def test_a_force_released_binding_whose_stop_fails_keeps_its_finalizer(
    kube: FakeKube, phones: FailingPhones, observed: ObservedClaims, reconciler: BindingReconciler
) -> None:
    """A refused stop keeps the finalizer (kopf retries), as for a holder; the next try stops."""
    binding = await force_released(kube, phones, observed, reconciler)
    phones.stop_error = GeelarkAuthError("token rejected", code=40003)

    with pytest.raises(PhoneNotStopped):
        await reconciler.finalize(binding)
    phones.stop_error = None

    assert await reconciler.finalize(binding)
    assert phones.power["100"] is PhoneStatus.SHUT_DOWN


async def test_a_force_released_binding_moved_to_another_phone_stops_the_old_one(
    kube: FakeKube, phones: FailingPhones, observed: ObservedClaims, reconciler: BindingReconciler
) -> None:
    """spec.phoneId names another phone before the binding took its old one again: the old
    phone, which nobody holds, is stopped as the binding lets it go."""
    phones.add("200", "phone-b")
    binding = await force_released(kube, phones, observed, reconciler)
    moved = binding.model_copy(
        update={"spec": binding.spec.model_copy(update={"phone_id": "phone-b"})}
    )

    after, _, _ = await step(reconciler, moved)

    assert phones.power["100"] is PhoneStatus.SHUT_DOWN
    assert after.status.phone is not None
    assert after.status.phone.id == "200"


async def test_a_force_released_binding_then_suspended_stops_its_phone(
    kube: FakeKube, phones: FailingPhones, observed: ObservedClaims, reconciler: BindingReconciler
) -> None:
    """Suspended instead of deleted: the pass takes the free phone again and stops it, keeping
    the claim (the suspend step)."""
    binding = await force_released(kube, phones, observed, reconciler, suspend=True)

    after, _, _ = await step(reconciler, binding)

    assert after.status.phase == "Suspended"
    assert phones.power["100"] is PhoneStatus.SHUT_DOWN
    assert kube.claims["100"]["spec"]["holder"]["uid"] == binding.uid


def spec_changed(binding: PhoneBinding, *, suspend: bool) -> PhoneBinding:
    """The binding after a person set ``spec.suspend`` (a new generation; the status as it was)."""
    body = binding.to_dict()
    body["metadata"]["generation"] += 1
    body["spec"]["suspend"] = suspend
    return PhoneBinding.from_body(body)


async def test_suspended_again_after_a_start_whose_status_was_never_written_stops_the_phone(
    kube: FakeKube, phones: FailingPhones, observed: ObservedClaims, reconciler: BindingReconciler
) -> None:
    """Suspended, resumed: the pass of the resumption started the phone, and the operator died
    before it wrote the status (SIGKILL between the two writes). Suspended again, the next
    operator's pass finds the status of the first suspension (Suspended, phone Stopped, an older
    generation): it stops the phone. It used to trust that status and leave the phone running,
    billed, while the binding said Suspended and freed its pool slot."""
    binding, _, _ = await step(reconciler, make_binding())
    suspended, _, _ = await step(reconciler, spec_changed(binding, suspend=True))
    assert suspended.status.phase == "Suspended"
    resumed = spec_changed(suspended, suspend=False)
    await reconciler.reconcile(resumed, {})  # its status is never written
    assert phones.power["100"] is PhoneStatus.STARTING
    restarted = operator_process(kube, phones, observed)

    after, _, _ = await step(restarted, spec_changed(resumed, suspend=True))

    assert after.status.phase == "Suspended"
    assert phones.power["100"] is PhoneStatus.SHUT_DOWN
    assert phones.count("stop") == 2


# ---------------------------------------------------------------------- the finalizer rule (2)

STOP_FAULTS = [
    pytest.param(GeelarkAuthError("token rejected", code=40003), id="auth"),
    pytest.param(GeelarkRequestError("IP not in the allowlist", code=40011), id="ip-allowlist"),
    pytest.param(GeelarkUnavailable("timed out"), id="unavailable"),
]


async def deleted_running_binding(
    kube: FakeKube, phones: FailingPhones, reconciler: BindingReconciler
) -> PhoneBinding:
    """A binding that held and ran its phone, its pod already gone (as after deletion)."""
    binding = await bring_up(reconciler, phones)
    live(kube, binding)
    kube.pods.clear()
    return binding


@pytest.mark.parametrize("fault", STOP_FAULTS)
async def test_a_stop_that_fails_keeps_the_finalizer_and_says_why(
    kube: FakeKube,
    phones: FailingPhones,
    reconciler: BindingReconciler,
    fault: PhonefleetError,
) -> None:
    """releasePolicy Stop and a failing stop: the release raises a retry (kopf keeps the
    finalizer), the claim stays, and the report carries condition Released=False with the
    reason and the way to give up, plus one Warning Event."""
    binding = await deleted_running_binding(kube, phones, reconciler)
    phones.stop_error = fault
    report = Report(binding, NOW)

    with pytest.raises(PhoneNotStopped) as raised:
        await reconciler.finalize(binding, report)

    assert "100" in kube.claims
    assert phones.power["100"] is PhoneStatus.RUNNING
    released = next(c for c in report.status.conditions if c.type == "Released")
    assert (released.status, released.reason) == ("False", fault.reason)
    assert "phonefleet.dev/abandon-phone" in released.message
    assert report.status.phase == "Error"
    assert [(e.reason, e.warning) for e in report.postings()] == [("PhoneNotStopped", True)]
    assert raised.value.delay == 10


@pytest.mark.parametrize(
    ("failing_for", "delay"),
    [(None, 10), (5, 10), (40, 40), (200, 200), (3600, 300)],
    ids=["first", "short", "doubling", "longer", "capped"],
)
async def test_the_tries_of_a_failing_stop_back_off_up_to_the_error_recheck(
    kube: FakeKube,
    phones: FailingPhones,
    reconciler: BindingReconciler,
    failing_for: int | None,
    delay: float,
) -> None:
    """The next try waits as long as the stop has failed so far (condition Released turned
    False then), so the wait doubles at each try: from geelark_retry_seconds (10 s) up to
    error_recheck_seconds (300 s)."""
    binding = await deleted_running_binding(kube, phones, reconciler)
    phones.stop_error = GeelarkAuthError("token rejected", code=40003)
    if failing_for is not None:
        first = Report(binding, NOW - timedelta(seconds=failing_for))
        with pytest.raises(PhoneNotStopped):
            await reconciler.finalize(binding, first)
        binding = binding.model_copy(update={"status": first.status})

    with pytest.raises(PhoneNotStopped) as raised:
        await reconciler.finalize(binding, Report(binding, NOW))

    assert raised.value.delay == delay


async def test_once_geelark_confirms_the_stop_the_release_completes(
    kube: FakeKube, phones: FailingPhones, reconciler: BindingReconciler
) -> None:
    """After the fault is gone, the next attempt stops the phone and deletes the claim."""
    binding = await deleted_running_binding(kube, phones, reconciler)
    phones.stop_error = GeelarkAuthError("token rejected", code=40003)
    with pytest.raises(PhoneNotStopped):
        await reconciler.finalize(binding)
    phones.stop_error = None

    assert await reconciler.finalize(binding)
    assert phones.power["100"] is PhoneStatus.SHUT_DOWN
    assert not kube.claims


async def test_the_abandon_annotation_lets_the_binding_go_with_a_warning(
    kube: FakeKube,
    phones: FailingPhones,
    reconciler: BindingReconciler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A person gave up on purpose: the claim goes, the phone (still running) is named in a
    Warning Event and in the log."""
    binding = await deleted_running_binding(kube, phones, reconciler)
    phones.stop_error = GeelarkAuthError("token rejected", code=40003)
    report = Report(binding, NOW)

    assert await reconciler.finalize(binding, report, abandon=True)

    assert not kube.claims
    assert [(e.reason, e.warning) for e in report.postings()] == [("AbandonedPhone", True)]
    assert "Abandoned phone 100 of ns/alpha" in caplog.text


async def test_keep_releases_without_asking_geelark(
    kube: FakeKube, phones: FailingPhones, reconciler: BindingReconciler
) -> None:
    """releasePolicy Keep: a Geelark that refuses every stop does not hold the release back."""
    binding = await bring_up(reconciler, phones)
    kube.pods.clear()
    keep = binding.model_copy(
        update={"spec": binding.spec.model_copy(update={"release_policy": "Keep"})}
    )
    phones.stop_error = GeelarkAuthError("token rejected", code=40003)
    assert await reconciler.finalize(keep)
    assert phones.count("stop-failed") == 0
    assert not kube.claims


async def test_without_a_recorded_phone_id_the_claim_is_found_when_geelark_cannot_resolve(
    kube: FakeKube, phones: FailingPhones, reconciler: BindingReconciler
) -> None:
    """A crash before status.phone was written, and Geelark refusing every call: the claim this
    binding holds names the phone, whose stop is then required."""
    binding = make_binding()
    await kube.create_claim(build_claim(binding, "100", "phone-a"))
    phones.power["100"] = PhoneStatus.RUNNING
    failing = GeelarkAuthError("token rejected", code=40003)
    phones.stop_error = failing

    async def refuse(reference: str) -> None:
        raise failing

    phones.resolve = refuse  # type: ignore[assignment,method-assign]

    with pytest.raises(PhoneNotStopped):
        await reconciler.finalize(binding)
    assert "100" in kube.claims


# ---------------------------------------------------------------------- the orphan sweep (2)


@pytest.mark.parametrize(
    ("policy", "stopped"), [("Stop", True), ("Keep", False)], ids=["Stop", "Keep"]
)
async def test_the_sweep_applies_the_release_policy_recorded_on_the_claim(
    kube: FakeKube, phones: FailingPhones, policy: str, stopped: bool
) -> None:
    """An orphaned claim (its holder is gone) is deleted; its phone stopped only for Stop."""
    ghost = make_binding("ghost", releasePolicy=policy)
    await kube.create_claim(build_claim(ghost, "100", "phone-a"))
    phones.power["100"] = PhoneStatus.RUNNING

    assert await ClaimService(kube, power=phones).release_orphans() == ["100"]

    assert not kube.claims
    assert (phones.power["100"] is PhoneStatus.SHUT_DOWN) is stopped


async def test_the_sweep_keeps_an_orphan_whose_phone_cannot_be_stopped(
    kube: FakeKube, phones: FailingPhones
) -> None:
    """A failing stop leaves the claim for the next sweep: a claim is the only record that the
    phone still runs for nobody."""
    ghost = make_binding("ghost")
    await kube.create_claim(build_claim(ghost, "100", "phone-a"))
    phones.stop_error = GeelarkAuthError("token rejected", code=40003)
    assert await ClaimService(kube, power=phones).release_orphans() == []
    assert "100" in kube.claims
    phones.stop_error = None
    assert await ClaimService(kube, power=phones).release_orphans() == ["100"]
