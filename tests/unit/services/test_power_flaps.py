"""A working worker is not cut off because Geelark answered oddly once (issue 10, defect 8).

The rule (docs/reconcile.md): once a binding's ADB Secret is written for the phone's current
power-on, the Secret is dropped and the phone treated as off only when two Geelark answers, at
least ``boot_poll_seconds`` apart, both say it does not run. One odd answer is looked at again
after ``boot_poll_seconds`` and changes nothing. Geelark answers here come from the fake phone
directory: the simulator cannot be made to report a state it is not in.
"""

from __future__ import annotations

import pytest
from clocks import Clock
from fakes import FakeKube, FakePhones

from conftest import bring_up, ready, step
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.settings import OperatorSettings

SECRET = ("ns", "alpha-adb")
SETTINGS = OperatorSettings()


async def running(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones
) -> PhoneBinding:
    binding = await bring_up(reconciler, phones)
    ready(kube.pods[("ns", "alpha-worker")])
    binding, _, _ = await step(reconciler, binding)
    assert binding.status.phase == "Running"
    assert SECRET in kube.secrets
    return binding


@pytest.mark.parametrize("odd", [PhoneStatus.STARTING, PhoneStatus.UNKNOWN, PhoneStatus.SHUT_DOWN])
async def test_one_odd_power_answer_keeps_the_secret_the_phase_and_posts_nothing(
    reconciler: BindingReconciler,
    kube: FakeKube,
    phones: FakePhones,
    clock: Clock,
    odd: PhoneStatus,
) -> None:
    """Running, then one answer that the phone does not run, then "running" again: the Secret
    stays, the binding stays Running, no Event and no status write; the odd answer is checked
    again after boot_poll_seconds, not at the next periodic check."""
    binding = await running(reconciler, kube, phones)
    clock.advance(SETTINGS.running_recheck_seconds)
    phones.power["100"] = odd

    binding, report, delay = await step(reconciler, binding)
    assert SECRET in kube.secrets
    assert binding.status.phase == "Running"
    assert report.events == []
    assert report.status_patch() is None
    assert delay == SETTINGS.boot_poll_seconds
    assert phones.count("start") == 0

    phones.power["100"] = PhoneStatus.RUNNING
    clock.advance(delay)
    binding, report, _ = await step(reconciler, binding)
    assert SECRET in kube.secrets
    assert binding.status.phase == "Running"
    assert report.events == []


async def test_a_phone_that_stays_off_on_a_second_answer_loses_its_secret_and_is_started(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """Two answers boot_poll_seconds apart that the phone is stopped: it is stopped. The ADB
    data goes (it does not survive a restart) and the phone is started again."""
    binding = await running(reconciler, kube, phones)
    clock.advance(SETTINGS.running_recheck_seconds)
    phones.power["100"] = PhoneStatus.SHUT_DOWN
    phones.adb_on.discard("100")
    binding, _, delay = await step(reconciler, binding)
    assert SECRET in kube.secrets

    clock.advance(delay)
    binding, report, _ = await step(reconciler, binding)
    assert SECRET not in kube.secrets
    assert binding.status.phase == "Bound"
    assert "StartedPhone" in [e.reason for e in report.events]
    assert phones.count("start") == 1


async def test_an_early_second_answer_does_not_confirm_the_first(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """A pass woken right after the odd answer (a pod event) asks again, but two answers a
    moment apart are one glitch, not a confirmation."""
    binding = await running(reconciler, kube, phones)
    clock.advance(SETTINGS.running_recheck_seconds)
    phones.power["100"] = PhoneStatus.UNKNOWN
    binding, _, _ = await step(reconciler, binding)
    clock.advance(SETTINGS.boot_poll_seconds / 10)
    binding, _, _ = await step(reconciler, binding)
    assert SECRET in kube.secrets
    assert binding.status.phase == "Running"


async def test_a_phone_stopped_behind_our_back_loses_its_adb_data_until_it_runs_again(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, clock: Clock
) -> None:
    """A confirmed stop clears status.phone.adbProvisionedAt on the stored object (a nested
    merge-patch removal) and deletes the Secret; once the phone runs again the data is fetched
    afresh."""
    binding = await bring_up(reconciler, phones)
    ready(kube.pods[("ns", "alpha-worker")])
    binding, _, _ = await step(reconciler, binding)
    assert binding.status.phase == "Running"
    assert binding.status.phone is not None
    assert binding.status.phone.adb_provisioned_at

    phones.power["100"] = PhoneStatus.SHUT_DOWN
    phones.adb_on.discard("100")
    binding, _, delay = await step(reconciler, binding)
    clock.advance(delay)
    binding, report, _ = await step(reconciler, binding)
    assert binding.status.phone is not None
    assert binding.status.phone.adb_provisioned_at is None
    assert ("ns", "alpha-adb") not in kube.secrets
    patch = report.status_patch()
    assert patch is not None
    assert "adbProvisionedAt" in patch["phone"]
    assert patch["phone"]["adbProvisionedAt"] is None  # sent as null, or the server keeps it

    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    for _ in range(3):  # each pass when the last one said (the restart's boot is timed)
        binding, _, delay = await step(reconciler, binding)
        clock.advance(delay)
    assert ("ns", "alpha-adb") in kube.secrets
    assert binding.status.phone is not None
    assert binding.status.phone.adb_provisioned_at
