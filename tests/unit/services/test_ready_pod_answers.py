"""A binding whose worker pod is ready is not asked about in Geelark on its way to Running
(``services/power.py``, ``WorkerPodStep.ready_in_view``; docs/scale.md, "Round 7b")."""

from __future__ import annotations

from clocks import Clock
from fakes import FakeKube, FakePhones

from conftest import make_binding, make_reconciler, ready, step
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.services.observed import ObservedPods


async def test_a_binding_whose_pod_is_ready_is_not_asked_about_on_its_way_to_running(
    kube: FakeKube, phones: FakePhones, pods: ObservedPods, clock: Clock
) -> None:
    """The pod ran long after the ADB read (a fleet's backlog): Geelark's last "running" answer
    is older than a binding on its way trusts, but the ready worker (its Appium session on the
    phone is open) is as good an answer: Running is written without a status call. A Running
    binding's periodic check still asks."""
    reconciler = make_reconciler(kube, phones, clock, pods=pods)
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    binding, _, _ = await step(reconciler, make_binding())
    assert ("ns", "alpha-worker") in kube.pods
    clock.advance(10 * reconciler._settings.worker_unready_threshold_seconds)
    asked = phones.count("status")
    ready(kube.pods[("ns", "alpha-worker")])
    pods.saw(kube.pods[("ns", "alpha-worker")])
    binding, _, delay = await step(reconciler, binding)
    assert binding.status.phase == "Running"
    assert phones.count("status") == asked

    clock.advance(delay)
    binding, _, _ = await step(reconciler, binding)
    assert phones.count("status") == asked + 1


async def test_a_ready_pod_does_not_stand_for_a_phone_a_read_found_stopped(
    kube: FakeKube, phones: FakePhones, pods: ObservedPods, clock: Clock
) -> None:
    """An ADB read said the phone does not run (42002) since: the pod's readiness, not yet
    changed in the view, does not answer for it; Geelark is asked."""
    reconciler = make_reconciler(kube, phones, clock, pods=pods)
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    binding, _, _ = await step(reconciler, make_binding())
    ready(kube.pods[("ns", "alpha-worker")])
    pods.saw(kube.pods[("ns", "alpha-worker")])
    reconciler._adb._not_running.add("100")  # what a read answered 42002 leaves
    asked = phones.count("status")
    await step(reconciler, binding)
    assert phones.count("status") == asked + 1
