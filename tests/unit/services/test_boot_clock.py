"""A phone started here is first polled when its boot should be over, and ADB is switched on
without asking first: one status call, one ADB switch and one ADB read per phone when the boot
takes what was expected; the pass that switches ADB on writes no status (docs/scale.md,
"Geelark's floor")."""

from __future__ import annotations

import pytest
from clocks import Clock
from fakes import FakeKube, FakePhones

from conftest import make_binding, ready, step
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.services.adb import ADB_ENABLE_SECONDS
from phonefleet_operator.services.boot_clock import BootClock
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.settings import OperatorSettings

SETTINGS = OperatorSettings()
POLL = SETTINGS.boot_poll_seconds
LEARNED = 10.0  # what earlier boots taught (the simulator's boot in make bench)


async def test_a_phone_started_here_costs_one_status_one_adb_switch_and_one_adb_read(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """Once boots are known to take 10 s: start, then one poll when the boot is expected to be
    over, ADB switched on at once (no read answered "not enabled" first, no status write), its
    data read once after Geelark's delay: the Secret, the pod and the phone's state written
    with the pod Running, in one write."""
    reconciler._powers.boots.expected = LEARNED
    binding, _, delay = await step(reconciler, make_binding())
    assert delay == LEARNED
    asked = phones.count("status")  # the first look (the gateway answers it from the listing)

    clock.advance(delay)
    phones.power["100"] = PhoneStatus.RUNNING
    binding, report, delay = await step(reconciler, binding)
    assert (phones.count("status") - asked, phones.count("enable_adb")) == (1, 1)
    assert phones.count("adb_endpoint") == 0
    assert delay == ADB_ENABLE_SECONDS
    assert report.status_patch() is None  # the next pass, 3 s later, says it all in one write
    assert binding.status.phase == "Bound"

    clock.advance(delay)
    phones.adb_on.add("100")
    binding, report, _ = await step(reconciler, binding)
    assert report.status_patch() is None  # held back while the pod starts (status_memo.py)
    assert phones.count("adb_endpoint") == 1
    assert phones.count("status") - asked == 1  # "running" is reused while the binding comes up
    assert ("ns", "alpha-worker") in kube.pods
    ready(kube.pods[("ns", "alpha-worker")])
    binding, report, _ = await step(reconciler, binding)
    assert binding.status.phase == "Running"
    assert binding.status.phone is not None
    assert binding.status.phone.status == "Running"
    assert binding.status.phone.adb_provisioned_at is not None  # the Secret, the pod: one write
    assert phones.count("adb_endpoint") == 1
    assert phones.count("enable_adb") == 1


async def test_a_boot_that_outlasts_the_guess_is_polled_every_boot_poll_then_learned(
    reconciler: BindingReconciler, phones: FakePhones, clock: Clock
) -> None:
    """No boot seen yet: polled every boot_poll_seconds; a boot that took longer than that
    makes the next phone started wait longer before its first poll."""
    binding, _, delay = await step(reconciler, make_binding())
    assert delay == POLL
    asked = phones.count("status")
    clock.advance(delay)
    binding, _, delay = await step(reconciler, binding)  # still STARTING
    assert delay == POLL
    clock.advance(delay)
    phones.power["100"] = PhoneStatus.RUNNING
    await step(reconciler, binding)
    assert phones.count("status") - asked == 2

    phones.add("200", "phone-b")
    _, _, delay = await step(reconciler, make_binding("beta", "phone-b"))
    assert POLL < delay <= 2 * POLL


def test_the_expected_boot_follows_the_boots_seen() -> None:
    """Too early: raised by half the gap to what the boot took (at most one poll past the
    last "starting"). On time and running: lowered by a hundredth. Late: left alone."""
    boots = BootClock(floor=POLL, guess=10.0)
    boots.started("a", at=0.0)
    assert boots.remaining("a", now=4.0) == 6.0
    boots.saw("a", running=False, now=10.0)
    boots.saw("a", running=True, now=30.0)  # took 10..30 s; 12 counts (one poll past 10)
    assert boots.expected == pytest.approx(11.0)

    boots.started("b", at=100.0)
    boots.saw("b", running=True, now=111.5)  # on time
    assert boots.expected == pytest.approx(11.0 * 0.99)

    before = boots.expected
    boots.started("c", at=200.0)
    boots.saw("c", running=True, now=260.0)  # a stretched poll: says nothing of a short boot
    assert boots.expected == before
    assert len(boots) == 0


def test_a_fleet_of_slow_boots_teaches_the_expected_boot_within_a_few_phones() -> None:
    """Boots of 10 s, polled every 2 s from an expectation of 2 s: a few phones in, the
    expectation is within one poll of 10 s (later phones need one or two polls, not five)."""
    boots = BootClock(floor=POLL)
    for n in range(20):
        began = 100.0 * n
        boots.started(str(n), at=began)
        polled = began + boots.expected
        while polled - began < 10.0:
            boots.saw(str(n), running=False, now=polled)
            polled += POLL
        boots.saw(str(n), running=True, now=polled)
    assert 10.0 - POLL <= boots.expected <= 10.0 + POLL


def test_the_expected_boot_never_goes_below_the_poll_interval() -> None:
    """A fleet of quick boots brings the expectation down to boot_poll_seconds, no lower."""
    boots = BootClock(floor=POLL, guess=10.0)
    for n in range(1000):
        boots.started(str(n), at=float(n))
        boots.saw(str(n), running=True, now=n + boots.expected)
    assert boots.expected == POLL


def test_a_phone_not_started_here_is_not_timed() -> None:
    """A phone found booting (started elsewhere) has no expected remaining boot."""
    boots = BootClock(floor=POLL)
    boots.saw("x", running=False, now=5.0)
    assert boots.remaining("x", now=5.0) == 0.0
    assert len(boots) == 0
