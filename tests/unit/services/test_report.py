"""The status merge patch: only what changed, and nested removals as null."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import NOW, make_binding
from phonefleet_operator.errors import (
    GeelarkAuthError,
    GeelarkRateLimited,
    GeelarkUnavailable,
    InvalidSpec,
    KubernetesRefused,
    KubernetesUnavailable,
    PermanentFault,
    PhoneBusy,
    TemporaryFault,
)
from phonefleet_operator.models import Phase
from phonefleet_operator.services.report import Report, merge_patch
from phonefleet_operator.settings import OperatorSettings

SETTINGS = OperatorSettings()
RETRY = SETTINGS.geelark_retry_seconds
RECHECK = SETTINGS.error_recheck_seconds


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        ({"phase": "Bound"}, {"phase": "Bound"}, {}),
        ({"phase": "Bound"}, {"phase": "Running"}, {"phase": "Running"}),
        ({"phase": "Bound", "message": "m"}, {"phase": "Bound"}, {"message": None}),
        (
            {"phone": {"id": "1", "adbProvisionedAt": "t"}},
            {"phone": {"id": "1"}},
            {"phone": {"adbProvisionedAt": None}},
        ),
        ({"phone": {"id": "1"}}, {}, {"phone": None}),
        ({}, {"phone": {"id": "1"}}, {"phone": {"id": "1"}}),
        (
            {"conditions": [{"a": 1}, {"b": 2}]},
            {"conditions": [{"a": 1}]},
            {"conditions": [{"a": 1}]},
        ),
        ({"phone": "text"}, {"phone": {"id": "1"}}, {"phone": {"id": "1"}}),
    ],
)
def test_merge_patch_sends_changes_only(
    old: dict[str, Any], new: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert merge_patch(old, new) == patch


def test_a_pass_posts_its_normal_steps_as_one_event_and_each_warning() -> None:

    report = Report(make_binding(), NOW)
    report.event("Claimed", "Created PhoneClaim 100")
    report.event("Odd", "Something to look at", warning=True)
    report.event("StartedPhone", "Started phone 100")
    posted = report.postings()
    assert [(e.reason, e.message, e.warning) for e in posted] == [
        ("Odd", "Something to look at", True),
        ("StartedPhone", "Created PhoneClaim 100; Started phone 100", False),
    ]
    assert Report(make_binding(), NOW).postings() == []


def progress(report: Report) -> dict[str, tuple[str, str]]:
    """The kstatus pair as the report has it: type -> (status, reason)."""
    return {
        c.type: (c.status, c.reason)
        for c in report.status.conditions
        if c.type in {"Reconciling", "Stalled"}
    }


@pytest.mark.parametrize(
    ("phase", "reason", "expected"),
    [
        (Phase.PENDING, "Resolving", {"Reconciling": ("True", "Resolving")}),
        (Phase.BOUND, "PodStarting", {"Reconciling": ("True", "PodStarting")}),
        (Phase.CONFLICT, "HeldByAnother", {"Reconciling": ("True", "HeldByAnother")}),
        (Phase.QUEUED, "MaxRunningReached", {"Reconciling": ("True", "MaxRunningReached")}),
        (Phase.ERROR, "PhoneNotStopped", {"Reconciling": ("True", "PhoneNotStopped")}),
        (Phase.PHONE_NOT_FOUND, "PhoneNotFound", {"Stalled": ("True", "PhoneNotFound")}),
        (Phase.FORBIDDEN, "PhoneNotAvailable", {"Stalled": ("True", "PhoneNotAvailable")}),
        (Phase.ERROR, "PhoneExpired", {"Stalled": ("True", "PhoneExpired")}),
        (Phase.ERROR, "GeelarkAuthFailed", {"Stalled": ("True", "GeelarkAuthFailed")}),
        (Phase.BOUND, "IdentityMismatch", {"Stalled": ("True", "IdentityMismatch")}),
        (Phase.RUNNING, "WorkerRunning", {}),
        (Phase.SUSPENDED, "Suspended", {}),
    ],
)
def test_the_phase_sets_reconciling_or_stalled_for_kstatus(
    phase: Phase, reason: str, expected: dict[str, tuple[str, str]]
) -> None:
    """Stalled while a person must act, Reconciling while on the way, neither when settled."""
    report = Report(make_binding(), NOW)
    report.phase(phase, reason, "why")
    assert progress(report) == expected


def test_settling_removes_the_condition_a_previous_pass_set() -> None:
    """From Stalled to Reconciling to Running: one condition at a time, none at the end, and
    status.observedGeneration is the binding's generation."""
    report = Report(make_binding(), NOW)
    report.phase(Phase.PHONE_NOT_FOUND, "PhoneNotFound", "no such phone")
    report.phase(Phase.BOUND, "PhoneStarting", "starting")
    assert progress(report) == {"Reconciling": ("True", "PhoneStarting")}
    report.phase(Phase.RUNNING, "WorkerRunning", "runs")
    assert progress(report) == {}
    assert report.status.observed_generation == 1


@pytest.mark.parametrize(
    ("error", "phase", "reachable", "message", "delay"),
    [
        (GeelarkAuthError("token refused", code=40003), "Error", "False", "token refused", RECHECK),
        (GeelarkUnavailable("timed out", delay=1), None, "False", None, RETRY),
        (GeelarkRateLimited("slow down", code=40007, delay=60), None, "False", None, 60.0),
        (KubernetesUnavailable("timed out", delay=7), None, None, None, 7.0),
        (InvalidSpec("two pods"), "Error", None, "two pods", RECHECK),
        (PhoneBusy("in use", delay=4), None, None, "in use", 4.0),
        (KubernetesRefused("forbidden", status=403, delay=10), None, None, "forbidden", 10.0),
    ],
)
def test_a_fault_that_ends_a_pass_says_what_it_means_and_when_to_look_again(
    error: TemporaryFault | PermanentFault,
    phase: str | None,
    reachable: str | None,
    message: str | None,
    delay: float,
) -> None:
    """Refused credentials and permanent faults put the binding in Error; Geelark unreachable
    sets GeelarkReachable False and keeps the phase and message, as does the API server
    unavailable; a Geelark retry waits at least geelark_retry_seconds; any other temporary
    fault keeps the phase, says why and waits its own delay."""
    report = Report(make_binding(), NOW)
    assert report.fault(error, SETTINGS) == delay
    assert report.status.phase == phase
    assert report.status.message == message
    conditions = {c.type: c.status for c in report.status.conditions}
    assert conditions.get("GeelarkReachable") == reachable
