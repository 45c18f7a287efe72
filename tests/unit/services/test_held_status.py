"""The pass that writes the ADB Secret and creates the pod holds its status back while the pod
starts: the pass that finds the pod Running writes it all (status_memo.py, ``HeldStatuses``;
docs/scale.md, "Round 5b"), and posts the one Event of the way up (event_hold.py, "Round 8")."""

from __future__ import annotations

import pytest
from clocks import Clock
from fakes import FakeKube, FakePhones

from conftest import make_binding, make_reconciler, ready, step
from phonefleet_operator.geelark import AdbEndpoint, PhoneStatus
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.services.report import Report

POD = ("ns", "alpha-worker")


@pytest.fixture
def reconciler(
    kube: FakeKube, phones: FakePhones, pods: ObservedPods, clock: Clock
) -> BindingReconciler:
    return make_reconciler(kube, phones, clock, pods=pods)


def _running(kube: FakeKube, pods: ObservedPods) -> None:
    """The pod turns Ready, and the watch shows it."""
    ready(kube.pods[POD])
    pods.saw(kube.pods[POD])


def _reasons(report: Report) -> list[str]:
    return [event.reason for event in report.postings()]


def _conditions(binding: PhoneBinding) -> dict[str, str]:
    return {c.type: c.status for c in binding.status.conditions}


async def _to_the_pod(
    reconciler: BindingReconciler, phones: FakePhones, clock: Clock
) -> tuple[PhoneBinding, Report, float, int]:
    """Claim and start the phone, switch ADB on once it runs, then read it: the Secret written
    and the pod created. Returns the binding as written, the last pass, its delay and the
    number of status writes so far."""
    writes = 0
    binding, report, delay = await step(reconciler, make_binding())
    writes += report.status_patch() is not None
    clock.advance(delay)
    phones.power["100"] = PhoneStatus.RUNNING
    binding, report, delay = await step(reconciler, binding)  # ADB switched on: held (round 2)
    writes += report.status_patch() is not None
    clock.advance(delay)
    phones.adb_on.add("100")
    binding, report, delay = await step(reconciler, binding)
    writes += report.status_patch() is not None
    return binding, report, delay, writes


async def test_the_way_to_running_writes_the_status_twice_and_posts_one_event(
    reconciler: BindingReconciler,
    kube: FakeKube,
    phones: FakePhones,
    pods: ObservedPods,
    clock: Clock,
) -> None:
    """Phone started, then Secret and pod (nothing written, nothing posted while the pod starts,
    also on the pod's next change), then Running: the Secret's time, the phone running and the
    pod in one status write, and one Event naming every step from the claim on."""
    binding, report, _, writes = await _to_the_pod(reconciler, phones, clock)
    assert writes == 1
    assert report.held
    assert _reasons(report) == []
    assert ("ns", "alpha-adb") in kube.secrets
    assert POD in kube.pods
    assert binding.status.phase == "Bound"
    assert _conditions(binding)["Reconciling"] == "True"

    clock.advance(1)  # the pod scheduled: the watch wakes the binding, the pod still starts
    binding, report, _ = await step(reconciler, binding)
    assert report.status_patch() is None
    assert _reasons(report) == []

    _running(kube, pods)
    binding, report, _ = await step(reconciler, binding)
    assert report.status_patch() is not None
    assert binding.status.phase == "Running"
    assert binding.status.phone is not None
    assert binding.status.phone.adb_provisioned_at
    assert "Reconciling" not in _conditions(binding)
    (event,) = report.postings()
    assert event.reason == "WorkerRunning"
    assert event.message.startswith("Created PhoneClaim 100; Started phone 100; ")
    assert "Secret alpha-adb" in event.message
    assert "Created Pod alpha-worker" in event.message
    assert phones.count("adb_endpoint") == 1  # the held status said the Secret was written


def _taken_by_its_node(kube: FakeKube, pods: ObservedPods) -> None:
    """A kubelet took the pod and pulls its image: Pending, not ready, containers creating."""
    kube.pods[POD]["status"] = {
        "phase": "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "False"},
        ],
        "containerStatuses": [
            {"name": "worker", "state": {"waiting": {"reason": "ContainerCreating"}}}
        ],
    }
    pods.saw(kube.pods[POD])


def _scheduled(kube: FakeKube, pods: ObservedPods) -> None:
    """The scheduler bound the pod to its node, which has not taken it yet."""
    kube.pods[POD]["status"] = {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
    }
    pods.saw(kube.pods[POD])


async def test_a_pod_slower_than_its_poll_has_its_status_written_then(
    reconciler: BindingReconciler,
    kube: FakeKube,
    phones: FakePhones,
    pods: ObservedPods,
    clock: Clock,
) -> None:
    """The hold lasts at most pod_poll_seconds from the pass that created the pod once its node
    has taken it (pulling its image): the pass it asks for then writes "pod starting" with the
    Secret's time; its Events stay held for the Running one (still on the way up)."""
    limit = reconciler._settings.pod_poll_seconds
    binding, _, delay, _ = await _to_the_pod(reconciler, phones, clock)
    assert delay <= limit
    clock.advance(limit / 2)
    _taken_by_its_node(kube, pods)
    binding, report, delay = await step(reconciler, binding)
    assert report.held
    assert delay <= limit / 2

    clock.advance(delay)
    binding, report, _ = await step(reconciler, binding)
    assert not report.held
    assert binding.status.phone is not None
    assert binding.status.phone.adb_provisioned_at
    assert binding.status.message == "Pod alpha-worker is starting"
    assert _conditions(binding)["Reconciling"] == "True"
    assert _reasons(report) == []
    assert report.events_held
    assert phones.count("adb_endpoint") == 1


async def test_a_restart_during_the_hold_reads_adb_again_and_keeps_the_pod(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """The operator restarts before the held status was written: the written status does not
    say the Secret was written, so the new operator reads the ADB data and writes the Secret
    again, finds the pod there (not created again) and reaches Running."""
    binding, _, _, _ = await _to_the_pod(reconciler, phones, clock)
    pod_uid = kube.pods[POD]["metadata"]["uid"]
    assert binding.status.phone is not None
    assert not binding.status.phone.adb_provisioned_at

    restarted = make_reconciler(kube, phones, clock, pods=ObservedPods(clock=clock.timestamp))
    ready(kube.pods[POD])
    binding, _, _ = await step(restarted, binding)
    assert phones.count("adb_endpoint") == 2
    assert ("ns", "alpha-adb") in kube.secrets
    assert kube.pods[POD]["metadata"]["uid"] == pod_uid
    assert binding.status.phase == "Running"
    assert binding.status.phone is not None
    assert binding.status.phone.adb_provisioned_at


async def test_a_spec_change_during_the_hold_is_written_at_once(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """A new generation is observed in the status of the next pass, held steps included (their
    Events stay held for the Running one)."""
    binding, _, _, _ = await _to_the_pod(reconciler, phones, clock)
    body = binding.to_dict()
    body["metadata"]["generation"] = 2
    binding, report, _ = await step(reconciler, PhoneBinding.from_body(body))
    assert not report.held
    assert binding.status.observed_generation == 2
    assert binding.status.phone is not None
    assert binding.status.phone.adb_provisioned_at
    assert "CreatedPod" in [event.reason for event in report.earlier]


async def test_a_stale_body_during_the_hold_does_not_lose_it(
    reconciler: BindingReconciler,
    kube: FakeKube,
    phones: FakePhones,
    pods: ObservedPods,
    clock: Clock,
) -> None:
    """The pass that creates the pod runs on a body from before the first status write (the
    watch is behind): it holds against our last write, and the pass on the up-to-date body
    carries on from the held status (no second ADB read, one write)."""
    stale = make_binding()
    first, report, delay = await step(reconciler, stale)
    assert report.status_patch() is not None
    clock.advance(delay)
    phones.power["100"] = PhoneStatus.RUNNING
    await step(reconciler, stale)  # ADB switched on, from the stale body
    clock.advance(3)
    phones.adb_on.add("100")
    _, report, _ = await step(reconciler, stale)
    assert report.held
    assert POD in kube.pods

    _running(kube, pods)
    binding, report, _ = await step(reconciler, first)
    assert report.status_patch() is not None
    assert binding.status.phase == "Running"
    assert binding.status.phone is not None
    assert binding.status.phone.adb_provisioned_at
    assert phones.count("adb_endpoint") == 1


class _SlowAdb(FakePhones):
    """Geelark's ADB read waits behind the account's pace: the clock moves during the call."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        super().__init__()
        self._clock, self._seconds = clock, seconds

    async def adb_endpoint(self, phone_id: str) -> AdbEndpoint:
        self._clock.advance(self._seconds)
        return await super().adb_endpoint(phone_id)


async def test_a_hold_starts_when_its_pass_ends_not_when_it_began(
    kube: FakeKube, pods: ObservedPods, clock: Clock
) -> None:
    """The ADB read waited 40 s for the account's budget: the pass that created the pod after it
    holds its status for the whole limit from then, so the pod's next change still writes
    nothing and Running writes everything once."""
    phones = _SlowAdb(clock, 40)
    phones.add("100", "phone-a")
    reconciler = make_reconciler(kube, phones, clock, pods=pods)
    binding, _, _, writes = await _to_the_pod(reconciler, phones, clock)
    assert writes == 1
    clock.advance(2)  # the pod scheduled
    binding, report, _ = await step(reconciler, binding)
    assert report.held
    _running(kube, pods)
    binding, report, _ = await step(reconciler, binding)
    assert binding.status.phase == "Running"
    assert [event.reason for event in report.postings()] == ["WorkerRunning"]


async def test_a_status_changed_by_someone_else_ends_the_hold_and_keeps_its_events(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """Someone rewrote the status during the hold (a person with kubectl): the pass starts from
    what is written, so it writes the ADB Secret again, and the held Events are kept."""
    binding, _, _, _ = await _to_the_pod(reconciler, phones, clock)
    body = binding.to_dict()
    body["status"]["message"] = "edited by hand"
    binding, report, _ = await step(reconciler, PhoneBinding.from_body(body))
    assert phones.count("adb_endpoint") == 2
    assert "CreatedPod" in [event.reason for event in report.earlier]


async def test_a_binding_deleted_during_the_hold_loses_its_pod_secret_claim_and_phone(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """The written status does not say the Secret was written: the release deletes the pod and
    the Secret all the same, stops the phone and drops the claim, and nothing stays held."""
    binding, _, _, _ = await _to_the_pod(reconciler, phones, clock)
    assert not await reconciler.finalize(binding)  # the pod is deleted first
    assert await reconciler.finalize(binding)
    assert POD not in kube.pods
    assert ("ns", "alpha-adb") not in kube.secrets
    assert "100" not in kube.claims
    assert phones.count("stop") == 1
    assert reconciler.tracked()["heldStatuses"] == 0
    assert reconciler.tracked()["heldEvents"] == 0


async def test_a_pod_waiting_in_the_clusters_queues_is_held_until_it_runs(
    reconciler: BindingReconciler,
    kube: FakeKube,
    phones: FakePhones,
    pods: ObservedPods,
    clock: Clock,
) -> None:
    """A fleet's pods are created faster than they run: the pod waits for the scheduler, then
    for its node, six polls long. Nothing is written while it waits; Running writes it all
    once, with one Event."""
    binding, _, delay, writes = await _to_the_pod(reconciler, phones, clock)
    passes = 0
    while passes < 6:
        clock.advance(delay)
        if passes == 3:
            _scheduled(kube, pods)
        binding, report, delay = await step(reconciler, binding)
        assert report.held, passes
        assert report.status_patch() is None
        passes += 1
    _running(kube, pods)
    binding, report, _ = await step(reconciler, binding)
    assert writes == 1
    assert binding.status.phase == "Running"
    assert [event.reason for event in report.postings()] == ["WorkerRunning"]
    assert phones.count("adb_endpoint") == 1


async def test_a_queued_pod_has_its_status_written_after_a_worker_s_unready_threshold(
    reconciler: BindingReconciler,
    kube: FakeKube,
    phones: FakePhones,
    pods: ObservedPods,
    clock: Clock,
) -> None:
    """A pod nobody schedules (the scheduler is down) is held no longer than a worker may stay
    not ready: then "pod starting" is written. The Events of the way up stay held until their
    own hold ends (longer), then are posted once, as one."""
    settings = reconciler._settings
    threshold = settings.worker_unready_threshold_seconds
    assert settings.event_hold_seconds > threshold
    binding, _, delay, _ = await _to_the_pod(reconciler, phones, clock)
    waited = 0.0
    posted = []
    while waited < threshold:
        clock.advance(delay)
        waited += delay
        binding, report, delay = await step(reconciler, binding)
        assert report.held == (waited < threshold), waited
        posted += report.postings()
    assert binding.status.message == "Pod alpha-worker is starting"
    assert posted == []
    while waited < settings.event_hold_seconds:
        clock.advance(delay)
        waited += delay
        binding, report, delay = await step(reconciler, binding)
        posted += report.postings()
    (event,) = posted
    assert event.reason == "CreatedPod"
    assert "Created PhoneClaim 100" in event.message


async def test_a_pod_the_scheduler_refuses_ends_the_queued_hold(
    reconciler: BindingReconciler,
    kube: FakeKube,
    phones: FakePhones,
    pods: ObservedPods,
    clock: Clock,
) -> None:
    """The scheduler cannot place the pod (PodScheduled False) after the poll's limit: the pass
    its change wakes writes "pod starting" at once."""
    binding, _, _, _ = await _to_the_pod(reconciler, phones, clock)
    clock.advance(2 * reconciler._settings.pod_poll_seconds)
    kube.pods[POD]["status"] = {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
    }
    pods.saw(kube.pods[POD])
    binding, report, _ = await step(reconciler, binding)
    assert not report.held
    assert binding.status.message == "Pod alpha-worker is starting"
