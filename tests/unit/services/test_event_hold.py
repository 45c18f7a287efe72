"""A binding on its way to Running holds its Normal Events and posts them as one with the Running
one; a Warning is posted at once; a binding not Running within the hold's limit has them posted
then; a deleted binding drops them; a restarted operator has lost them (event_hold.py;
docs/scale.md, "Round 8").

The passes run on looptime's virtual clock: the reconciler's clock is the loop's, and a driver
runs each next pass after the delay the last one asked for, as the binding's loop does.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from fakes import FakeKube, FakePhones
from loop_order import let_virtual_time_pass

from conftest import NOW, make_binding, make_reconciler, ready, step
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.models import Phase, PhoneBinding
from phonefleet_operator.services.event_hold import MOST_HELD, HeldEvents
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.services.report import Event, Report
from phonefleet_operator.settings import OperatorSettings

pytestmark = pytest.mark.looptime

POD = ("ns", "alpha-worker")
LIMIT = 120.0


class LoopClock:
    """The reconciler's clock: NOW when the test starts, then the event loop's (virtual) time."""

    def __init__(self) -> None:
        self._start = asyncio.get_running_loop().time()

    def __call__(self) -> datetime:
        return NOW + timedelta(seconds=asyncio.get_running_loop().time() - self._start)

    def timestamp(self) -> float:
        return self().timestamp()

    def seconds(self) -> float:
        """Seconds since the test started."""
        return asyncio.get_running_loop().time() - self._start


Posted = list[tuple[float, Event]]


async def _drive(
    reconciler: BindingReconciler,
    binding: PhoneBinding,
    clock: LoopClock,
    posted: Posted,
    *,
    passes: int,
) -> PhoneBinding:
    """Run ``passes`` passes, each after the delay the one before asked for (virtual time),
    noting every Event a pass posts with the second it was posted."""
    for _ in range(passes):
        binding, report, delay = await step(reconciler, binding)
        posted += [(clock.seconds(), event) for event in report.postings()]
        await let_virtual_time_pass(delay)
    return binding


def _reconciler(
    kube: FakeKube, phones: FakePhones, clock: LoopClock, pods: ObservedPods
) -> BindingReconciler:
    return make_reconciler(
        kube, phones, clock, pods=pods, settings=OperatorSettings(event_hold_seconds=LIMIT)
    )


async def test_a_binding_reaching_running_posts_one_event_naming_every_step(
    kube: FakeKube, phones: FakePhones
) -> None:
    """Claim and start, ADB on, Secret and pod, Running: four passes, no Event until Running,
    then one Normal Event, WorkerRunning, whose message lists each step in order."""
    clock = LoopClock()
    pods = ObservedPods(clock=clock.timestamp)
    reconciler = _reconciler(kube, phones, clock, pods)
    posted: Posted = []
    binding = await _drive(reconciler, make_binding(), clock, posted, passes=1)
    phones.power["100"] = PhoneStatus.RUNNING
    binding = await _drive(reconciler, binding, clock, posted, passes=1)
    phones.adb_on.add("100")
    binding = await _drive(reconciler, binding, clock, posted, passes=1)
    assert POD in kube.pods
    assert posted == []
    assert reconciler.tracked()["heldEvents"] == 1

    ready(kube.pods[POD])
    pods.saw(kube.pods[POD])
    binding = await _drive(reconciler, binding, clock, posted, passes=1)
    assert binding.status.phase == Phase.RUNNING
    ((_, event),) = posted
    assert (event.reason, event.warning) == ("WorkerRunning", False)
    steps = event.message.split("; ")
    assert steps[:2] == ["Created PhoneClaim 100", "Started phone 100"]
    assert any("Secret alpha-adb" in s for s in steps)
    assert steps[-2:] == ["Created Pod alpha-worker", "Pod alpha-worker drives phone 100"]
    assert reconciler.tracked()["heldEvents"] == 0


async def test_a_stuck_binding_posts_its_events_when_the_hold_ends(
    kube: FakeKube, phones: FakePhones
) -> None:
    """The phone never finishes booting: the passes poll it, and the first pass at or after the
    hold's limit (the passes ask for no later one) posts the held Event, once; later passes post
    nothing more."""
    clock = LoopClock()
    reconciler = _reconciler(kube, phones, clock, ObservedPods(clock=clock.timestamp))
    posted: Posted = []
    binding = await _drive(reconciler, make_binding(), clock, posted, passes=1)
    boot_poll = reconciler._settings.boot_poll_seconds
    binding = await _drive(reconciler, binding, clock, posted, passes=int(LIMIT / boot_poll) + 5)
    assert binding.status.phase == Phase.BOUND
    ((when, event),) = posted
    assert LIMIT <= when <= LIMIT + boot_poll
    assert event.message == "Created PhoneClaim 100; Started phone 100"
    assert reconciler.tracked()["heldEvents"] == 0


async def test_a_warning_is_posted_at_once_with_the_events_held_so_far(
    kube: FakeKube, phones: FakePhones
) -> None:
    """The phone's subscription runs out while it boots: the pass that learns it posts the
    PhoneExpired Warning at once, and the held Normal Event with it (long before the limit)."""
    clock = LoopClock()
    reconciler = _reconciler(kube, phones, clock, ObservedPods(clock=clock.timestamp))
    posted: Posted = []
    binding = await _drive(reconciler, make_binding(), clock, posted, passes=1)
    assert posted == []
    phones.power["100"] = PhoneStatus.EXPIRED
    await _drive(reconciler, binding, clock, posted, passes=3)  # the boot's polls ask
    events = [event for _, event in posted]
    assert [(e.reason, e.warning) for e in events] == [
        ("PhoneExpired", True),
        ("StartedPhone", False),
    ]
    assert events[1].message == "Created PhoneClaim 100; Started phone 100"
    assert posted[0][0] == posted[1][0] < LIMIT
    assert reconciler.tracked()["heldEvents"] == 0


async def test_a_binding_deleted_during_the_hold_drops_its_events(
    kube: FakeKube, phones: FakePhones
) -> None:
    """Deleted while its phone boots: the release and the binding's removal from the view drop
    what was held (nothing is posted for a binding that is gone, and nothing stays)."""
    clock = LoopClock()
    reconciler = _reconciler(kube, phones, clock, ObservedPods(clock=clock.timestamp))
    first = await _drive(reconciler, make_binding(), clock, [], passes=1)
    second = await _drive(reconciler, make_binding("beta", "phone-b"), clock, [], passes=1)
    assert reconciler.tracked()["heldEvents"] == 1  # beta's phone is not in Geelark: no hold
    phones.add("200", "phone-b")
    second = await _drive(reconciler, second, clock, [], passes=1)
    assert reconciler.tracked()["heldEvents"] == 2

    assert await reconciler.finalize(first)  # no pod yet: released in one go
    assert reconciler.tracked()["heldEvents"] == 1
    reconciler.forget(second.uid, "200")  # the view saw beta gone (runtime.forget)
    assert reconciler.tracked()["heldEvents"] == 0


async def test_a_restarted_operator_posts_only_the_steps_it_took(
    kube: FakeKube, phones: FakePhones
) -> None:
    """The operator restarts while the phone boots: the held Event (claim, start) is lost; the
    new operator's Running Event names its own steps, and the status still says the phone is
    claimed and which one it is."""
    clock = LoopClock()
    pods = ObservedPods(clock=clock.timestamp)
    reconciler = _reconciler(kube, phones, clock, pods)
    binding = await _drive(reconciler, make_binding(), clock, [], passes=1)

    restarted = _reconciler(kube, phones, clock, pods)
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    posted: Posted = []
    binding = await _drive(restarted, binding, clock, posted, passes=1)
    ready(kube.pods[POD])
    pods.saw(kube.pods[POD])
    binding = await _drive(restarted, binding, clock, posted, passes=1)
    assert binding.status.phase == Phase.RUNNING
    ((_, event),) = posted
    assert "Created PhoneClaim" not in event.message
    assert "Started phone" not in event.message
    assert "Created Pod alpha-worker" in event.message
    claimed = {c.type: c for c in binding.status.conditions}["Claimed"]
    assert claimed.status == "True"
    assert binding.status.phone is not None
    assert binding.status.phone.id == "100"


async def test_a_binding_leaving_running_posts_at_once() -> None:
    """A binding the API server shows Running whose pass leaves it Bound (its pod went) posts
    its Events at once: only the way up is held."""
    binding = make_binding()
    body = binding.to_dict()
    body["status"] = {"phase": "Running"}
    report = Report(PhoneBinding.from_body(body), NOW)
    report.phase(Phase.BOUND, "PodStarting", "Pod alpha-worker is starting")
    report.event("CreatedPod", "Created Pod alpha-worker")
    held = HeldEvents(limit=LIMIT)
    assert held.settle(binding.uid, report, 10.0, 0.0) == 10.0
    assert [e.reason for e in report.postings()] == ["CreatedPod"]
    assert len(held) == 0


async def test_no_more_than_the_most_held_events_are_kept_per_binding() -> None:
    """A binding whose passes keep adding Normal Events on the way up (a phone that flaps) has
    them posted once more would be held than MOST_HELD: memory per binding stays bounded."""
    binding = make_binding()
    held = HeldEvents(limit=LIMIT)
    posted: list[Event] = []
    for n in range(MOST_HELD + 1):
        report = Report(binding, NOW)
        report.phase(Phase.BOUND, "PhoneStarting", "Phone 100 is starting")
        report.event("StartedPhone", f"Started phone 100 ({n})")
        delay = held.settle(binding.uid, report, 2.0, float(n))
        assert delay == 2.0
        posted += report.postings()
    (event,) = posted
    assert event.message.count("Started phone 100") == MOST_HELD + 1
    assert len(held) == 0
