"""How the reconcile pass spares Geelark's budget: fewer status calls, shared periodic checks."""

from __future__ import annotations

import pytest
from clocks import Clock
from fakes import FakeKube, FakePhones

from conftest import bring_up, make_binding, ready, step
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.services.claims import ClaimService
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.settings import OperatorSettings


async def test_a_binding_coming_up_asks_once_whether_its_phone_runs(
    reconciler: BindingReconciler, phones: FakePhones, clock: Clock
) -> None:
    """While ADB and the pod come up, a recent "running" answer is reused, not asked again."""
    phones.power["100"] = PhoneStatus.RUNNING
    binding, _, delay = await step(reconciler, make_binding())
    for _ in range(3):  # ADB is still off: poll its data
        clock.advance(delay)
        binding, _, delay = await step(reconciler, binding)
    assert binding.status.phase == "Bound"
    assert phones.count("status") == 1
    assert phones.count("adb_endpoint") == 4


async def test_a_running_answer_is_trusted_no_longer_than_the_periodic_check(
    reconciler: BindingReconciler, phones: FakePhones, clock: Clock
) -> None:
    """After running_recheck_seconds a binding still coming up asks Geelark again."""
    phones.power["100"] = PhoneStatus.RUNNING
    binding, _, _ = await step(reconciler, make_binding())
    clock.advance(reconciler._settings.running_recheck_seconds)
    phones.power["100"] = PhoneStatus.SHUT_DOWN  # stopped behind our back
    binding, report, _ = await step(reconciler, binding)
    assert phones.count("status") == 2
    assert phones.count("start") == 1
    assert "StartedPhone" in [e.reason for e in report.events]


async def test_a_binding_waiting_only_for_its_pod_trusts_running_until_the_pod_is_stuck(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """ADB Secret written, pod not ready: no re-ask after running_recheck_seconds, but once
    worker_unready_threshold_seconds have passed since the "running" answer."""
    settings = reconciler._settings
    assert settings.worker_unready_threshold_seconds > settings.running_recheck_seconds
    binding = await bring_up(reconciler, phones)
    assert binding.status.phone is not None
    assert binding.status.phone.adb_provisioned_at
    asked = phones.count("status")

    clock.advance(settings.running_recheck_seconds + 1)
    binding, _, _ = await step(reconciler, binding)
    assert phones.count("status") == asked

    clock.advance(settings.worker_unready_threshold_seconds - settings.running_recheck_seconds)
    await step(reconciler, binding)
    assert phones.count("status") == asked + 1


async def test_the_adb_read_behind_the_secret_counts_as_a_running_answer(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """ADB came up 50 s after Geelark said "running": the trust runs from the ADB read."""
    settings = reconciler._settings
    phones.power["100"] = PhoneStatus.RUNNING
    binding, _, _ = await step(reconciler, make_binding())  # running; ADB not up yet
    clock.advance(50)
    phones.adb_on.add("100")
    binding, report, _ = await step(reconciler, binding)
    assert report.status.phone is not None  # written once the pod runs (status_memo.py)
    assert report.status.phone.adb_provisioned_at
    asked = phones.count("status")
    assert asked == 1

    clock.advance(settings.worker_unready_threshold_seconds - 1)  # 169 s after the answer
    binding, _, _ = await step(reconciler, binding)
    assert phones.count("status") == asked

    clock.advance(2)
    await step(reconciler, binding)
    assert phones.count("status") == asked + 1


async def test_the_periodic_check_of_a_running_binding_always_asks(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """A Running binding's pass asks Geelark even when it heard "running" moments ago."""
    binding = await bring_up(reconciler, phones)
    ready(kube.pods[("ns", "alpha-worker")])
    binding, _, _ = await step(reconciler, binding)
    assert binding.status.phase == "Running"
    asked = phones.count("status")
    clock.advance(1)
    await step(reconciler, binding)
    assert phones.count("status") == asked + 1


@pytest.mark.parametrize(
    "offset_and_delay", [(0, 60.0), (20, 40.0), (29, 31.0), (31, 89.0), (59.5, 60.5)]
)
async def test_periodic_checks_of_running_bindings_fall_on_one_grid(
    reconciler: BindingReconciler,
    kube: FakeKube,
    phones: FakePhones,
    clock: Clock,
    offset_and_delay: tuple[float, float],
) -> None:
    """The next check is at a whole multiple of the period, half a period away at least."""
    offset, expected = offset_and_delay
    binding = await bring_up(reconciler, phones)
    ready(kube.pods[("ns", "alpha-worker")])
    clock.advance(offset)
    binding, _, delay = await step(reconciler, binding)
    assert binding.status.phase == "Running"
    assert delay == pytest.approx(expected)


async def test_a_pass_on_a_body_older_than_our_last_write_does_not_redo_the_steps(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """kopf may hand over the body from before our last patch: no second Secret, no Event again."""
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    stale = make_binding()
    fresh, first, _ = await step(reconciler, stale)
    assert "ProvisionedAdb" in [e.reason for e in first.events]

    clock.advance(2)
    _, again, _ = await step(reconciler, stale)  # the watch has not delivered our write yet

    done_before = {"Claimed", "ProvisionedAdb", "CreatedPod", "PodStarting"}
    assert phones.count("adb_endpoint") == 1
    assert len(kube.pods) == len(kube.secrets) == 1
    assert not {e.reason for e in again.events} & done_before
    assert again.status_patch() is None  # our write succeeded: nothing is sent twice
    clock.advance(2)
    _, later, _ = await step(reconciler, fresh)  # our first write arrives, the second not yet
    assert later.events == []


async def test_booting_phones_are_polled_less_often_when_many_boot_at_once(
    reconciler: BindingReconciler, phones: FakePhones, clock: Clock
) -> None:
    """Polls of many booting phones stay within the budget: the interval grows with them.
    (Phones started elsewhere: no boot of theirs is timed here, see test_boot_clock.)"""
    phones.polls_per_second = 2.0  # the budget affords two phones' polls a second
    for n in range(1, 11):
        phones.add(str(100 + n), f"phone-{n}", PhoneStatus.STARTING)
    delays = []
    for n in range(1, 11):
        _, _, delay = await step(reconciler, make_binding(f"b{n}", f"phone-{n}"))
        delays.append(delay)
    boot_poll = reconciler._settings.boot_poll_seconds
    assert delays[0] == boot_poll  # a few phones: the usual interval
    assert delays[-1] == pytest.approx(10 / 2.0)  # ten phones at two a second: 5 s each

    clock.advance(31)  # phones not polled for a while no longer count
    phones.add("999", "late", PhoneStatus.STARTING)
    _, _, delay = await step(reconciler, make_binding("late", "late"))
    assert delay == boot_poll


async def test_a_pod_not_ready_is_looked_at_again_exactly_when_it_counts_as_stuck(
    kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """Readiness changes wake a binding, the threshold passing does not: the pass comes back
    then (not after a long pod poll), switches ADB on again and polls for the new data."""
    settings = OperatorSettings(pod_poll_seconds=300, worker_unready_threshold_seconds=120)
    reconciler = BindingReconciler(
        directory=phones,
        power=phones,
        kube=kube,
        claims=ClaimService(kube),
        settings=settings,
        clock=clock,
    )
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    binding, _, _ = await step(reconciler, make_binding())  # ADB data written, pod created
    kube.pods[("ns", "alpha-worker")]["status"] = {
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-28T12:00:00Z"}
        ],
    }
    clock.advance(30)
    binding, _, delay = await step(reconciler, binding)
    assert delay == pytest.approx(90)
    assert phones.count("enable_adb") == 0

    clock.advance(90)
    binding, report, delay = await step(reconciler, binding)
    assert phones.count("enable_adb") == 1
    assert [e.reason for e in report.events if e.warning] == ["ReprovisioningAdb"]
    assert delay == settings.boot_poll_seconds
    assert binding.status.phone is not None
    assert binding.status.phone.adb_provisioned_at is None
