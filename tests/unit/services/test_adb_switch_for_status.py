"""After a phone's boot is due, its ADB switch stands in for the status poll (docs/scale.md,
"Round 6b"): Geelark refuses the switch of a phone that does not run (42002), so a switch taken
means "running" and a refused one "starting". These tests hold the operator to what follows:
a refused switch is followed by a status poll (a phone stopped meanwhile is started again), the
Secret is only ever written from a successful read, and an account whose Geelark takes the
switch from a booting phone (a reading no public source rules out) is found out by the first
read after it and gets status polls first again."""

from __future__ import annotations

from dataclasses import dataclass

from clocks import Clock
from fakes import FakeKube, FakePhones

from conftest import make_binding, make_reconciler, ready, step
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.services.adb import ADB_ENABLE_SECONDS
from phonefleet_operator.services.reconcile import BindingReconciler

LEARNED = 10.0  # what earlier boots taught
SECRET = ("ns", "alpha-adb")


@dataclass
class SwitchTakingPhones(FakePhones):
    """A Geelark that takes (and drops) an ADB switch of a phone that does not run."""

    async def enable_adb(self, phone_id: str) -> None:
        self.calls.append(("enable_adb", phone_id))


def counts(phones: FakePhones) -> tuple[int, int, int]:
    """Status polls, ADB switches and ADB reads so far."""
    return phones.count("status"), phones.count("enable_adb"), phones.count("adb_endpoint")


async def started(reconciler: BindingReconciler, phones: FakePhones, clock: Clock) -> object:
    """A binding whose phone was started here with a learned 10 s boot, now due."""
    reconciler._powers.boots.expected = LEARNED
    binding, _, delay = await step(reconciler, make_binding())
    assert delay == LEARNED
    assert phones.power["100"] is PhoneStatus.STARTING
    clock.advance(delay)
    return binding


async def test_a_switch_refused_while_the_phone_boots_says_starting_and_a_status_poll_follows(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """Its boot due but not over: the switch is refused (42002), the binding reads "phone
    starting" (not ADB), nothing is written to a Secret, and the next question is a status
    poll, which finds the phone stopped meanwhile (by hand, say) and starts it again."""
    binding = await started(reconciler, phones, clock)
    before = counts(phones)

    binding, _, delay = await step(reconciler, binding)
    assert counts(phones)[:2] == (before[0], before[1] + 1)
    assert binding.status.phase == "Bound"
    assert binding.status.phone is not None
    assert binding.status.phone.status == "Starting"
    ready_condition = {c.type: c for c in binding.status.conditions}["PhoneReady"]
    assert ready_condition.reason == "PhoneStarting"
    assert SECRET not in kube.secrets

    phones.power["100"] = PhoneStatus.SHUT_DOWN  # stopped behind the operator's back
    clock.advance(delay)
    binding, _, _ = await step(reconciler, binding)
    assert counts(phones)[:2] == (before[0] + 1, before[1] + 1)  # a poll, not a switch
    assert phones.count("start") == 2
    assert phones.power["100"] is PhoneStatus.STARTING


async def test_a_read_that_finds_the_phone_not_running_is_not_answered_with_running_again(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """The switch was taken (the phone ran), then the phone went down before its read: the read
    says 42002. The next pass asks Geelark (it used to reuse "running" for 60 s, reading "not
    running" over and over), finds it stopped and starts it; no Secret is written."""
    binding = await started(reconciler, phones, clock)
    phones.power["100"] = PhoneStatus.RUNNING
    binding, _, delay = await step(reconciler, binding)
    assert delay == ADB_ENABLE_SECONDS
    before = counts(phones)

    phones.power["100"] = PhoneStatus.SHUT_DOWN
    clock.advance(delay)
    binding, _, delay = await step(reconciler, binding)
    assert counts(phones) == (before[0], before[1], before[2] + 1)
    assert SECRET not in kube.secrets

    clock.advance(delay)
    binding, _, _ = await step(reconciler, binding)
    assert phones.count("status") == before[0] + 1
    assert phones.count("start") == 2
    assert binding.status.phone is not None
    assert binding.status.phone.status == "Starting"


async def test_not_enabled_after_a_switch_made_in_place_of_a_poll_switches_again_at_once(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """A read after such a switch that says 49001 (ADB not enabled: a switch Geelark dropped
    while the boot ended) switches again at once, not after adb_enable_timeout_seconds; the
    read after that one writes the Secret."""
    binding = await started(reconciler, phones, clock)
    phones.power["100"] = PhoneStatus.RUNNING
    binding, _, delay = await step(reconciler, binding)
    before = counts(phones)

    clock.advance(delay)
    binding, _, delay = await step(reconciler, binding)  # 49001: the switch did not stick
    assert counts(phones) == (before[0], before[1] + 1, before[2] + 1)
    assert delay == ADB_ENABLE_SECONDS

    phones.adb_on.add("100")
    clock.advance(delay)
    binding, _, _ = await step(reconciler, binding)
    assert SECRET in kube.secrets
    assert counts(phones) == (before[0], before[1] + 1, before[2] + 2)


async def test_a_geelark_that_takes_switches_from_booting_phones_gets_status_polls_again(
    kube: FakeKube, clock: Clock
) -> None:
    """Reading B: Geelark takes the switch of a phone still booting and drops it. The read 3 s
    later says 42002: no Secret; the phone is asked for its status (not taken for running),
    switched on once it runs and read; and from then on every phone's status is asked before
    its ADB is switched on (the switch proves nothing on this account)."""
    phones = SwitchTakingPhones()
    phones.add("100", "phone-a")
    phones.add("200", "phone-b")
    reconciler = make_reconciler(kube, phones, clock)
    binding = await started(reconciler, phones, clock)

    binding, _, delay = await step(reconciler, binding)  # taken from a booting phone
    assert delay == ADB_ENABLE_SECONDS
    clock.advance(delay)
    binding, _, delay = await step(reconciler, binding)  # the read: 42002
    assert SECRET not in kube.secrets
    assert not reconciler._adb.switch_proves_running
    before = counts(phones)

    phones.power["100"] = PhoneStatus.RUNNING
    clock.advance(delay)
    binding, _, delay = await step(reconciler, binding)
    assert counts(phones) == (before[0] + 1, before[1] + 1, before[2])  # asked, then switched
    phones.adb_on.add("100")
    clock.advance(delay)
    binding, _, _ = await step(reconciler, binding)
    assert SECRET in kube.secrets
    ready(kube.pods[("ns", "alpha-worker")])
    binding, _, _ = await step(reconciler, binding)
    assert binding.status.phase == "Running"

    other, _, delay = await step(reconciler, make_binding("beta", "phone-b"))
    clock.advance(delay)
    before = counts(phones)
    other, _, _ = await step(reconciler, other)  # its boot due: a poll, no switch
    assert counts(phones)[:2] == (before[0] + 1, before[1])
