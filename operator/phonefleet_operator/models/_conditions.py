"""Status conditions after the Kubernetes conventions (metav1.Condition), with pure helpers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field

from ._base import StatusModel

__all__ = [
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "condition",
    "rfc3339",
    "set_condition",
]

ConditionStatus = Literal["True", "False", "Unknown"]


class ConditionType(StrEnum):
    """The condition types a PhoneBinding reports; ``Ready`` summarises the others."""

    READY = "Ready"
    """The worker pod serves the phone: what ``kubectl wait --for=condition=Ready`` waits for."""
    CLAIMED = "Claimed"
    """This binding holds the PhoneClaim of its phone."""
    PHONE_READY = "PhoneReady"
    """The phone is running and its ADB endpoint is in the binding's Secret."""
    WORKER_READY = "WorkerReady"
    """The worker pod exists and all its containers are ready."""
    GEELARK_REACHABLE = "GeelarkReachable"
    """The last call to Geelark for this binding got an answer."""
    RELEASED = "Released"
    """Set False while a deleted binding cannot let its phone go (the stop failed), saying why."""
    ADMITTED = "Admitted"
    """The PhonePools let this binding run its phone now (tenancy on); the reason names the rule."""
    POOL_ACCESS_REVOKED = "PoolAccessRevoked"
    """The binding's namespace lost access to its running phone's pool; it runs on meanwhile."""
    ACCOUNT_HEALTHY = "AccountHealthy"
    """No job reported the account unusable (banned, suspended, logged out) since a person last
    cleared it; while False the binding's jobs are held."""
    RECONCILING = "Reconciling"
    """True while the binding is on its way (kstatus: InProgress); absent once it runs, is
    suspended or is stalled. The reason is the Ready condition's."""
    STALLED = "Stalled"
    """True while the binding cannot progress without a person (kstatus: Failed); absent
    otherwise. The reason is the Ready condition's."""


class Condition(StatusModel):
    """One aspect of a binding's state, as in metav1.Condition."""

    # Frozen: set_condition replaces a condition, never changes one in place, so a status copied
    # shallowly shares its conditions safely with the status it was copied from (report.py).
    model_config = ConfigDict(frozen=True)

    type: str = Field(
        min_length=1,
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Type of the condition in CamelCase, such as Ready or Claimed.",
    )
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Machine-readable CamelCase word saying why the condition has its status.",
    )
    message: str = Field(
        max_length=32768,
        description="Human-readable explanation of the status; may be empty.",
    )
    last_transition_time: str = Field(
        json_schema_extra={"format": "date-time"},
        description="When the status last changed (RFC 3339), not when it was last written.",
    )
    observed_generation: int | None = Field(
        None,
        ge=0,
        description="The binding's metadata.generation the condition was computed from.",
    )


def rfc3339(moment: datetime) -> str:
    """``moment`` in the Kubernetes time format: UTC, whole seconds, ``Z`` suffix."""
    if moment.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required (Kubernetes times are UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(conditions: Sequence[Condition], type: str) -> Condition | None:
    """The condition of the given type, or None when there is none."""
    return next((item for item in conditions if item.type == type), None)


def set_condition(
    conditions: Sequence[Condition],
    *,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """A new list with the condition ``type`` set; lastTransitionTime moves only when status does.

    The condition keeps its place in the list (a new type is appended) so repeated reconciles write
    an identical status and cause no update events.
    """
    old = condition(conditions, type)
    transition_time = (
        old.last_transition_time if old is not None and old.status == status else rfc3339(now)
    )
    new = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition_time,
        observed_generation=generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if item.type == type else item for item in conditions]
