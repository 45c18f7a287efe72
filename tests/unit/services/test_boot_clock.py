"""A phone started here is first asked about when its boot should be over, and then by its ADB
switch, not a status poll: Geelark takes the switch only from a running phone, so one ADB switch
and one ADB read per phone when the boot takes what was expected; the pass that switches ADB on
writes no status (docs/scale.md, "Geelark's floor" and "Round 6b")."""

from __future__ import annotations

import asyncio

import pytest
from clocks import Clock
from fakes import FakeKube, FakePhones
from loop_order import until

from conftest import make_binding, ready, step
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.services import power as power_module
from phonefleet_operator.services.adb import ADB_ENABLE_SECONDS
from phonefleet_operator.services.boot_clock import BootClock
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.settings import OperatorSettings

SETTINGS = OperatorSettings()
POLL = SETTINGS.boot_poll_seconds
LEARNED = 10.0  # what earlier boots taught (the simulator's boot in make bench)


async def test_a_phone_started_here_costs_one_adb_switch_and_one_adb_read_and_no_status_poll(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """Once boots are known to take 10 s: start, then, when the boot is expected to be over,
    ADB switched on in place of a status poll (Geelark took it: the phone runs; no status
    write), its data read once after Geelark's delay: the Secret, the pod and the phone's
    state written with the pod Running, in one write."""
    reconciler._powers.boots.expected = LEARNED
    binding, _, delay = await step(reconciler, make_binding())
    assert delay == LEARNED
    asked = phones.count("status")  # the first look (the gateway answers it from the listing)

    clock.advance(delay)
    phones.power["100"] = PhoneStatus.RUNNING
    binding, report, delay = await step(reconciler, binding)
    assert (phones.count("status") - asked, phones.count("enable_adb")) == (0, 1)
    assert phones.count("adb_endpoint") == 0
    assert delay == ADB_ENABLE_SECONDS
    assert report.status_patch() is None  # the next pass, 3 s later, says it all in one write
    assert binding.status.phase == "Bound"

    clock.advance(delay)
    phones.adb_on.add("100")
    binding, report, _ = await step(reconciler, binding)
    assert report.status_patch() is None  # held back while the pod starts (status_memo.py)
    assert phones.count("adb_endpoint") == 1
    assert phones.count("status") - asked == 0  # the switch's "running" is reused
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
    """No boot seen yet: asked every boot_poll_seconds (first by its ADB switch, refused while
    it boots, then by a status poll, which tells a booting phone from one stopped meanwhile);
    a boot that took longer than that makes the next phone started wait longer before its
    first question."""
    binding, _, delay = await step(reconciler, make_binding())
    assert delay == POLL
    asked = phones.count("status")
    clock.advance(delay)
    binding, _, delay = await step(reconciler, binding)  # still STARTING: the switch refused
    assert delay == POLL
    assert (phones.count("status") - asked, phones.count("enable_adb")) == (0, 1)
    clock.advance(delay)
    phones.power["100"] = PhoneStatus.RUNNING
    await step(reconciler, binding)
    assert (phones.count("status") - asked, phones.count("enable_adb")) == (1, 2)

    phones.add("200", "phone-b")
    _, _, delay = await step(reconciler, make_binding("beta", "phone-b"))
    assert POLL < delay <= 2 * POLL


def test_once_proven_the_expected_boot_follows_the_timely_first_polls() -> None:
    """With a boot proven: a timely first poll still starting raises the estimate to that
    poll's time plus one poll interval, at once; one running lowers it by a hundredth. Later
    polls of a slow phone, and a first poll that came late, teach nothing."""
    boots = BootClock(floor=POLL, guess=10.0)
    boots.started("proof", at=-20.0)
    boots.saw("proof", running=True, now=-9.0)  # on time: proven, lowered once
    assert boots.proven(now=0.0)
    assert boots.expected == pytest.approx(9.9)

    boots.started("a", at=0.0)
    assert boots.remaining("a", now=4.0) == pytest.approx(5.9)
    boots.saw("a", running=False, now=10.0)
    assert boots.expected == pytest.approx(12.0)
    boots.saw("a", running=False, now=30.0)  # a slow phone's later polls
    boots.saw("a", running=True, now=40.0)
    assert boots.expected == pytest.approx(12.0)

    boots.started("b", at=100.0)
    boots.saw("b", running=True, now=112.5)  # on time
    assert boots.expected == pytest.approx(12.0 * 0.99)

    before = boots.expected
    boots.started("c", at=200.0)
    boots.saw("c", running=True, now=260.0)  # a stretched poll: says nothing of a short boot
    boots.started("d", at=300.0)
    boots.saw("d", running=False, now=360.0)  # nor of a long one
    assert boots.expected == before
    assert len(boots) == 1


def test_while_the_clock_guesses_a_late_probe_still_teaches() -> None:
    """No boot proven: a probe made late (a busy event loop) that finds its phones starting
    raises the estimate past its own time all the same (round 5's first try left it, and the
    next probe went at once: ten probes in six seconds)."""
    boots = BootClock(floor=POLL)
    boots.started("a", at=0.0)
    boots.saw("a", running=False, now=4.5)  # due at 2, asked at 4.5
    assert boots.expected == pytest.approx(6.5)
    boots.saw("a", running=True, now=11.0)  # a late answer proves it too
    assert boots.proven(now=11.0)


def test_a_wave_answered_together_moves_the_expected_boot_once() -> None:
    """A thousand phones started together and answered by the same polls are one lesson: found
    starting, the estimate moves one poll interval past the poll (round 4's rule raised it phone
    by phone); found running, it is lowered by a hundredth, not to the floor."""
    boots = BootClock(floor=POLL)
    for n in range(1000):
        boots.started(str(n), at=n / 1000)
    for n in range(1000):
        boots.saw(str(n), running=False, now=2.5)
    assert boots.expected == pytest.approx(2.5 + POLL, abs=0.01)

    lowered = BootClock(floor=POLL, guess=10.0)
    for n in range(1000):
        lowered.started(str(n), at=n / 1000)
    for n in range(1000):
        lowered.saw(str(n), running=True, now=10.5)
    assert lowered.expected == pytest.approx(10.0 * 0.99)


def test_a_boot_seen_to_end_on_time_proves_the_clock_for_ten_minutes() -> None:
    """Until a timely first poll finds a phone running, the clock is a guess (first polls are
    probes); a proof is forgotten after 600 s without another."""
    boots = BootClock(floor=POLL, guess=10.0)
    assert not boots.proven(now=0.0)
    boots.started("a", at=0.0)
    boots.saw("a", running=False, now=10.0)
    assert not boots.proven(now=10.0)
    boots.started("b", at=20.0)
    boots.saw("b", running=True, now=32.0)
    assert boots.proven(now=32.0)
    assert boots.proven(now=631.0)
    assert not boots.proven(now=633.0)


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


async def test_phones_started_together_are_probed_one_batch_at_a_time_while_the_clock_guesses(
    reconciler: BindingReconciler, phones: FakePhones, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No boot proven yet: of three phones due together, the first ones due form a probe (a
    call's worth, made 1 phone here: an ADB switch in place of a status poll) and the others
    wait for its answer. "Still starting" (the switch refused) spares them their calls: one
    question, where each phone asked before, and all three come back one poll interval
    later."""
    monkeypatch.setattr(power_module, "MAX_IDS_PER_CALL", 1)
    phones.add("200", "phone-b")
    phones.add("300", "phone-c")
    bindings = []
    for name, phone in (("alpha", "phone-a"), ("beta", "phone-b"), ("gamma", "phone-c")):
        binding, _, delay = await step(reconciler, make_binding(name, phone))
        assert delay == POLL
        bindings.append(binding)
    clock.advance(POLL)
    asked_before = phones.count("status")
    answer = asyncio.Event()
    asked: list[str] = []
    plain_switch = phones.enable_adb

    async def switch_answered_later(phone_id: str) -> None:
        asked.append(phone_id)
        await answer.wait()
        await plain_switch(phone_id)

    monkeypatch.setattr(phones, "enable_adb", switch_answered_later)
    waiting_for_probe: list[asyncio.Event] = []
    plain_event_within = power_module.event_within

    async def probe_awaited(event: asyncio.Event, seconds: float) -> bool:
        waiting_for_probe.append(event)
        return await plain_event_within(event, seconds)

    monkeypatch.setattr(power_module, "event_within", probe_awaited)
    passes = [asyncio.ensure_future(step(reconciler, b)) for b in bindings]
    # Every pass has asked Geelark or waits for the probe's answer (no time passes).
    await until(lambda: len(asked) + len(waiting_for_probe) == 3, within=10)
    assert asked == ["100"]
    answer.set()
    results = await asyncio.gather(*passes)

    assert (phones.count("status") - asked_before, phones.count("enable_adb")) == (0, 1)
    assert [delay for _, _, delay in results] == [POLL, POLL, POLL]
    assert [b.status.phone.status for b, _, _ in results if b.status.phone] == ["Starting"] * 3


def test_while_the_clock_guesses_every_timely_poll_teaches_and_once_proven_only_first_ones() -> (
    None
):
    """The probe's members are asked round after round until a boot ends: each round raises
    the estimate (else they would fall back to slow polls and trail the fleet). Once a boot is
    proven, a phone's second poll teaches nothing (an outlier must not hold the fleet back)."""
    boots = BootClock(floor=POLL)
    boots.started("a", at=0.0)
    boots.saw("a", running=False, now=2.0)
    boots.saw("a", running=False, now=4.0)
    assert boots.expected == pytest.approx(6.0)
    boots.saw("a", running=True, now=6.0)
    assert boots.proven(now=6.0)

    boots.started("b", at=10.0)
    boots.saw("b", running=False, now=10.0 + boots.expected)
    raised = boots.expected
    boots.saw("b", running=False, now=10.0 + raised)
    assert boots.expected == raised
