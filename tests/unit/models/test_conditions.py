"""Specifications of status conditions: set_condition moves lastTransitionTime only on a change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from phonefleet_operator.models import (
    Condition,
    ConditionType,
    condition,
    rfc3339,
    set_condition,
)

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def set_ready_at_t1(
    existing: list[Condition], status: str, reason: str, message: str = "", generation: int = 1
) -> list[Condition]:
    """``set_condition`` of the Ready condition at T1."""
    return set_condition(
        existing,
        type=ConditionType.READY,
        status=status,
        reason=reason,
        message=message,
        now=T1,
        generation=generation,
    )


def make_condition(**overrides: Any) -> Condition:
    """A Ready=False condition set at T0, with ``overrides`` applied."""
    fields: dict[str, Any] = {
        "type": "Ready",
        "status": "False",
        "reason": "PodStarting",
        "message": "Waiting for the worker pod",
        "last_transition_time": rfc3339(T0),
        "observed_generation": 1,
        **overrides,
    }
    return Condition(**fields)


def test_condition_types_are_the_documented_ones() -> None:
    """The binding reports Ready, Claimed, PhoneReady, WorkerReady, GeelarkReachable, Released
    while a deletion cannot let its phone go, with PhonePools Admitted and PoolAccessRevoked,
    AccountHealthy once a job reported on its account, and kstatus's Reconciling and Stalled."""
    assert [str(kind) for kind in ConditionType] == [
        "Ready",
        "Claimed",
        "PhoneReady",
        "WorkerReady",
        "GeelarkReachable",
        "Released",
        "Admitted",
        "PoolAccessRevoked",
        "AccountHealthy",
        "Reconciling",
        "Stalled",
    ]


def test_setting_a_new_type_appends_it_stamped_now() -> None:
    """A condition type not yet present is appended with lastTransitionTime = now."""
    existing = [make_condition(type="Claimed", status="True", reason="Claimed")]

    result = set_ready_at_t1(existing, "False", "PodStarting", "Waiting", generation=2)

    assert [item.type for item in result] == ["Claimed", "Ready"]
    assert result[1].last_transition_time == "2024-05-01T10:05:00Z"
    assert result[1].observed_generation == 2


def test_same_status_keeps_the_transition_time_and_updates_the_rest() -> None:
    """Same status again: lastTransitionTime stays; reason, message and generation follow."""
    result = set_ready_at_t1(
        [make_condition()], "False", "PhoneStarting", "Phone is starting", generation=2
    )

    assert result == [
        make_condition(reason="PhoneStarting", message="Phone is starting", observed_generation=2)
    ]


def test_changed_status_moves_the_transition_time() -> None:
    """A status change stamps lastTransitionTime with now."""
    result = set_ready_at_t1([make_condition()], "True", "WorkerReady")

    assert result[0].status == "True"
    assert result[0].last_transition_time == "2024-05-01T10:05:00Z"


def test_setting_keeps_order_and_leaves_the_input_untouched() -> None:
    """The updated condition keeps its place; the list passed in is not modified."""
    original = [
        make_condition(type="Claimed", status="True", reason="Claimed"),
        make_condition(),
        make_condition(type="PhoneReady", status="True", reason="PhoneRunning"),
    ]
    before = [item.model_copy() for item in original]

    result = set_ready_at_t1(original, "True", "WorkerReady")

    assert [item.type for item in result] == ["Claimed", "Ready", "PhoneReady"]
    assert original == before


def test_setting_the_same_values_twice_gives_equal_lists() -> None:
    """Reconciling again with nothing new writes an identical list (no status churn)."""
    kwargs: dict[str, Any] = {
        "type": "Ready",
        "status": "True",
        "reason": "WorkerReady",
        "message": "",
        "generation": 1,
    }
    once = set_condition([], now=T0, **kwargs)

    assert set_condition(once, now=T1, **kwargs) == once


def test_condition_finds_by_type() -> None:
    """condition() returns the condition of a type, or None."""
    ready = make_condition()

    assert condition([ready], "Ready") is ready
    assert condition([ready], "Claimed") is None


def test_times_are_written_as_kubernetes_does() -> None:
    """rfc3339 writes UTC with whole seconds and Z; it refuses a naive datetime."""
    berlin = timezone(timedelta(hours=2))

    assert rfc3339(datetime(2024, 5, 1, 12, 0, 7, 999, tzinfo=berlin)) == "2024-05-01T10:00:07Z"
    with pytest.raises(ValueError, match="timezone"):
        rfc3339(datetime(2024, 5, 1))


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"status": "Maybe"}, id="status"),
        pytest.param({"reason": ""}, id="empty-reason"),
        pytest.param({"reason": "Not ready"}, id="reason-with-space"),
        pytest.param({"type": ""}, id="empty-type"),
    ],
)
def test_condition_rejects_values_kubernetes_rejects(overrides: dict[str, Any]) -> None:
    """Status must be True/False/Unknown, reason a CamelCase word, type non-empty."""
    with pytest.raises(ValidationError):
        make_condition(**overrides)
