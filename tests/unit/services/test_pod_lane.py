"""A fleet's pods come first: a lane's width of bindings at a time write their ADB Secret and
go on to create their pod (``services/pod_lane.py``), and a binding whose pod is ready is not
asked about in Geelark on its way to Running (``services/power.py``; docs/scale.md,
"Round 7b")."""

from __future__ import annotations

import asyncio
from typing import Any

from clocks import Clock
from fakes import FakeKube, FakePhones
from loop_order import until

from conftest import make_binding, make_reconciler, ready, step
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.pod_lane import PodLane
from phonefleet_operator.services.reconcile import POD_LANE_PER_API_THREAD
from phonefleet_operator.settings import OperatorSettings

Obj = dict[str, Any]


class _SlowPods(FakeKube):
    """The API server is slow to create pods: each create waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.let_go = asyncio.Event()
        self.creating = 0

    async def create_pod(self, pod: Obj) -> bool:
        self.creating += 1
        await self.let_go.wait()
        return await super().create_pod(pod)


async def test_a_lanes_width_of_bindings_write_their_secret_before_the_others() -> None:
    """Eight bindings read their ADB data at once, one API thread (a lane of four): four write
    their Secret and wait for their pod's creation; the other four write nothing until those
    passes end, then write theirs. Without the lane all eight Secrets go first, and every pod
    waits behind them."""
    kube, phones, clock = _SlowPods(), FakePhones(), Clock()
    names = [f"b{i}" for i in range(8)]
    for i, name in enumerate(names):
        phones.add(str(100 + i), f"phone-{name}", PhoneStatus.RUNNING)
        phones.adb_on.add(str(100 + i))
    settings = OperatorSettings(kube_api_workers=1)
    width = POD_LANE_PER_API_THREAD * settings.kube_api_workers
    assert width == 4
    reconciler = make_reconciler(kube, phones, clock, settings=settings)
    passes = [
        asyncio.ensure_future(step(reconciler, make_binding(name, f"phone-{name}")))
        for name in names
    ]
    await until(lambda: kube.creating >= width)
    assert len(kube.secrets) == width
    assert reconciler.tracked()["podLane"] == width

    kube.let_go.set()
    await asyncio.gather(*passes)
    assert len(kube.secrets) == len(names)
    assert len(kube.pods) == len(names)
    assert reconciler.tracked()["podLane"] == 0


async def test_a_pass_holds_one_slot_and_hands_it_on_when_it_ends() -> None:
    """A pass that enters twice holds one slot; the next binding waits for it, gets it when
    the pass leaves, and leaving twice frees nothing more."""
    lane = PodLane(1)
    await lane.enter("a")
    await lane.enter("a")  # the same pass again: no second slot
    waiting = asyncio.ensure_future(lane.enter("b"))
    await until(lambda: len(lane) == 1)
    assert not waiting.done()
    lane.leave("a")
    await waiting
    assert len(lane) == 1
    lane.leave("a")  # left already: nothing changes
    lane.leave("b")
    assert len(lane) == 0


async def test_a_failed_pod_creation_frees_the_binding_s_slot(
    kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """The API server refuses the pod: the pass reports it and the lane is empty after it."""
    kube.refuse_pods = True
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    reconciler = make_reconciler(kube, phones, clock)
    binding, _, _ = await step(reconciler, make_binding())
    assert ("ns", "alpha-adb") in kube.secrets
    assert binding.status.phase != "Running"
    assert reconciler.tracked()["podLane"] == 0


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
