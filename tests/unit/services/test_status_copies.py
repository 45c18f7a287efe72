"""A pass copies the status shallowly: what it changes never reaches the body's status or the
statuses the memo remembers."""

from __future__ import annotations

import pydantic
import pytest
from fakes import FakeKube, FakePhones

from conftest import NOW, bring_up, make_binding, ready
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.models import Condition, PhoneInfo
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.services.report import Report


def test_the_objects_a_status_shares_with_its_copy_cannot_change_in_place() -> None:
    """The phone and the conditions are frozen: a shallow copy of a status is a safe copy."""
    info = PhoneInfo(id="100")
    condition = Condition(
        type="Ready",
        status="True",
        reason="R",
        message="m",
        last_transition_time="2026-11-28T10:00:00Z",
    )
    with pytest.raises(pydantic.ValidationError):
        info.id = "200"
    with pytest.raises(pydantic.ValidationError):
        condition.status = "False"


async def test_a_pass_leaves_the_status_it_started_from_as_it_was(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones
) -> None:
    """A pass that claims, starts ADB, writes the Secret and creates the pod changes the phone,
    the conditions, the phase and the pod name of its report, none of the binding it read."""
    binding = await bring_up(reconciler, phones)  # Bound, pod created, not ready
    ready(kube.pods[("ns", "alpha-worker")])
    before = binding.status.to_dict()
    report, _ = await reconciler.reconcile(binding, {})
    assert report.status.phase == "Running"
    assert binding.status.to_dict() == before
    assert report.base.to_dict() == before


async def test_the_memo_keeps_what_was_written_whatever_later_passes_change(
    reconciler: BindingReconciler, phones: FakePhones
) -> None:
    """The memo's last written status is not the report's object: changing the report after
    its pass, or a later pass on the same stale body changing its own report, leaves the
    status the memo computes the next patch against as it was written."""
    stale = make_binding()
    first, _ = await reconciler.reconcile(stale, {})  # Bound: claimed, phone starting
    written = first.status.to_dict()
    first.status.message = "changed after the pass"
    first.status.phone = PhoneInfo(id="elsewhere")

    phones.power["100"] = PhoneStatus.RUNNING  # the next pass moves on: ADB is switched on
    second, _ = await reconciler.reconcile(stale, {})  # kopf still hands the old body
    assert second.base.to_dict() == written  # the patch is computed against what was written
    assert first.status.message == "changed after the pass"  # the memo's copy was not touched
    second_written = second.status.to_dict()
    second.status.message = "changed by the second report"
    second.status.conditions = []

    third, _ = await reconciler.reconcile(stale, {})
    assert third.base.to_dict() == second_written
    superseded, latest, latest_dict = reconciler._memory.written._written[stale.uid]
    assert latest is not third.status
    assert latest_dict == latest.to_dict() == third.status.to_dict()
    assert stale.status.to_dict() in superseded


async def test_a_report_built_from_a_status_does_not_change_it() -> None:
    """Report copies the binding's status shallowly; its building blocks assign fields."""
    binding = make_binding()
    before = binding.status.to_dict()
    report = Report(binding, NOW)
    report.phone(id="100", serial_name="phone-a")
    report.geelark_answered()
    report.status.pod_name = "alpha-worker"
    report.status.message = "changed"
    assert binding.status.to_dict() == before
    assert report.status.to_dict() != before
