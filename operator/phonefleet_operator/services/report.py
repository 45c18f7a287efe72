"""What one reconcile pass found: the binding's next status and the Events worth posting.

Also what a fault that ended the pass says in the status (:meth:`Report.fault`), and kstatus's
``Reconciling`` / ``Stalled`` pair derived from the phase (docs/reconcile.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from phonefleet_operator.errors import (
    GeelarkAuthError,
    GeelarkUnavailable,
    KubernetesUnavailable,
    PermanentFault,
    TemporaryFault,
)
from phonefleet_operator.models import (
    ConditionStatus,
    ConditionType,
    Phase,
    PhoneBinding,
    PhoneBindingStatus,
    PhoneInfo,
    set_condition,
)
from phonefleet_operator.settings import OperatorSettings

__all__ = ["STALLED_REASONS", "Event", "Report", "merge_patch", "stalled"]

log = logging.getLogger(__name__)

#: Reasons (the Ready condition's) of a binding that cannot progress without a person: the
#: phone is missing, expired, or ambiguous; the pools refuse it; Geelark refuses the
#: credentials or the request; the spec is invalid; the worker finds another phone on the
#: other end of ADB or has no adb. Each is rechecked periodically, so the condition clears by
#: itself once the person has fixed the cause.
STALLED_REASONS = frozenset(
    {
        "PhoneNotFound",
        "PhoneExpired",
        "AmbiguousPhone",
        "InvalidSpec",
        "GeelarkAuthFailed",
        "GeelarkRejected",
        "IdentityMismatch",
        "AdbNotInstalled",
    }
)
#: Phases that need a person whatever their reason (tenancy refusals name several rules).
_STALLED_PHASES = frozenset({Phase.FORBIDDEN, Phase.PHONE_NOT_FOUND})
#: Phases where the binding is where its spec wants it: neither condition.
_SETTLED_PHASES = frozenset({Phase.RUNNING, Phase.SUSPENDED})


def stalled(phase: Phase, reason: str) -> bool:
    """Whether a binding in ``phase`` for ``reason`` waits for a person (Stalled=True)."""
    return phase in _STALLED_PHASES or reason in STALLED_REASONS


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the binding."""

    reason: str
    message: str
    warning: bool = False


@dataclass
class Report:
    """Builds the next status from the current one; only real changes reach the API server."""

    binding: PhoneBinding
    now: datetime
    status: PhoneBindingStatus = field(init=False)
    events: list[Event] = field(default_factory=list)
    #: The status the API server holds, which the patch is computed against.
    base: PhoneBindingStatus = field(init=False)
    #: The status is held back for a later pass to write (``status_memo``'s ``HeldStatuses``):
    #: nothing is written for this pass.
    held: bool = field(default=False, init=False)
    #: Normal Events earlier passes held (``event_hold``), posted with this pass's.
    earlier: list[Event] = field(default_factory=list, init=False)
    #: This pass's Normal Events are held for a later pass to post (``event_hold``): only its
    #: warnings are posted now.
    events_held: bool = field(default=False, init=False)
    #: The binding's pod waits in the cluster's queues: created, at most bound to its node,
    #: no node has started it (``worker_pod``): its "pod starting" may be held longer.
    pod_queued: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.base = self.binding.status
        # A shallow copy: a pass changes the status by assigning its fields, and the objects in
        # them (the phone, the conditions) are frozen, so ``base`` never sees the pass's changes.
        self.status = self.binding.status.model_copy()
        self.status.observed_generation = self.binding.metadata.generation

    # ------------------------------------------------------------ building blocks

    def condition(
        self, type: ConditionType, status: ConditionStatus, reason: str, message: str
    ) -> None:
        """Set one condition (lastTransitionTime moves only when its status changes)."""
        self.status.conditions = set_condition(
            self.status.conditions,
            type=type,
            status=status,
            reason=reason,
            message=message,
            now=self.now,
            generation=self.binding.metadata.generation,
        )

    def phase(self, phase: Phase, reason: str, message: str, *, warning: bool = False) -> None:
        """Set the phase and the Ready summary, posting an Event when the story moves on.

        A new phase posts one, and so does a new reason of a warning. Progress within Bound
        (phone starting, ADB starting, pod starting) posts none: the steps that make it post
        their own (Claimed, StartedPhone, ProvisionedAdb, CreatedPod), and every Event is a
        write the API server pays for, a thousand times over in a large fleet. Falling back
        from Running to Bound does post one.
        """
        old_ready = next((c for c in self.status.conditions if c.type == ConditionType.READY), None)
        new_reason = old_ready is None or old_ready.reason != reason
        if self.status.phase != phase:
            changed = phase is not Phase.BOUND or self.status.phase == Phase.RUNNING
        else:
            changed = warning and new_reason
        self.status.phase = phase
        self.status.message = message
        ready: ConditionStatus = "True" if phase is Phase.RUNNING else "False"
        self.condition(ConditionType.READY, ready, reason, message)
        self._progress(phase, reason, message)
        if changed:
            self.events.append(Event(reason, message, warning))

    def _progress(self, phase: Phase, reason: str, message: str) -> None:
        """kstatus's abnormal-true pair: ``Stalled`` while a person must act, ``Reconciling``
        while the binding is on its way (waiting for its phone, a pool slot or its pod
        included), neither once it runs or is suspended (docs/reconcile.md)."""
        if phase in _SETTLED_PHASES:
            now = None
        elif stalled(phase, reason):
            now = ConditionType.STALLED
        else:
            now = ConditionType.RECONCILING
        for kind in (ConditionType.STALLED, ConditionType.RECONCILING):
            if kind is now:
                self.condition(kind, "True", reason, message)
            elif any(c.type == kind for c in self.status.conditions):
                self.status.conditions = [c for c in self.status.conditions if c.type != kind]

    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        """Post an Event for an action taken (Created Pod, Started phone, ...)."""
        self.events.append(Event(reason, message, warning))

    def phone(self, **fields: Any) -> None:
        """Update status.phone with the given fields."""
        current = self.status.phone or PhoneInfo()
        self.status.phone = current.model_copy(update=fields)

    def provisioned_at(self) -> datetime | None:
        """When the ADB Secret was last written for the phone's current power-on, if it was."""
        text = self.status.phone.adb_provisioned_at if self.status.phone else None
        if not text:
            return None
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    def geelark_answered(self) -> None:
        """Geelark answered this pass: GeelarkReachable True."""
        self.condition(ConditionType.GEELARK_REACHABLE, "True", "Answered", "Geelark answered.")

    def fault(self, error: TemporaryFault | PermanentFault, settings: OperatorSettings) -> float:
        """Say what a fault that ended the pass means; returns the seconds until the next pass.

        Geelark refusing the credentials: GeelarkReachable False and phase Error. Geelark not
        reachable: GeelarkReachable False, nothing else ("could not check" is not "not found":
        the phase and the pod stay). The API server unavailable: logged only. Any other
        permanent fault (the spec, the phone): phase Error, checked again periodically. Any
        other temporary one (a busy phone, ADB coming up, a refused write): its message, the
        phase stays.
        """
        if isinstance(error, GeelarkAuthError):
            self.condition(ConditionType.GEELARK_REACHABLE, "False", error.reason, str(error))
            self.phase(Phase.ERROR, error.reason, str(error), warning=True)
            return settings.error_recheck_seconds
        if isinstance(error, GeelarkUnavailable):
            self.condition(
                ConditionType.GEELARK_REACHABLE, "False", "GeelarkUnavailable", str(error)
            )
            log.warning("Geelark unavailable for %s: %s", self.binding.namespaced_name, error)
            return max(float(error.delay or 0), settings.geelark_retry_seconds)
        if isinstance(error, KubernetesUnavailable):
            log.warning(
                "Kubernetes API unavailable for %s: %s", self.binding.namespaced_name, error
            )
            return float(error.delay or settings.geelark_retry_seconds)
        if isinstance(error, PermanentFault):
            self.phase(Phase.ERROR, error.reason, str(error), warning=True)
            return settings.error_recheck_seconds
        # Waiting (a busy phone, ADB coming up): keep what runs, say why, look again later.
        self.status.message = str(error)
        return float(error.delay or settings.geelark_retry_seconds)

    # ------------------------------------------------------------ output

    def postings(self) -> list[Event]:
        """The Events to post: each warning, and the Normal steps as one Event.

        A pass often takes two steps (claim and start a phone; write the ADB Secret and create
        the pod), and the steps of earlier passes may have been held (``event_hold``). One Event
        names the last step and lists them all: every Event is a write the API server pays for,
        a thousand times over when a fleet is applied at once.
        """
        warnings = [e for e in self.events if e.warning]
        if self.events_held:
            return warnings
        normal = [*self.earlier, *(e for e in self.events if not e.warning)]
        merged = [Event(normal[-1].reason, "; ".join(e.message for e in normal))] if normal else []
        return warnings + merged

    def status_patch(self) -> dict[str, Any] | None:
        """The status to write, or None when nothing changed since the last write (or the
        pass's status is held back)."""
        if self.held:
            return None
        patch = merge_patch(self.base.to_dict(), self.status.to_dict())
        return patch or None


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns ``old`` into ``new``; empty when they are equal.

    Only changed fields are sent; a field cleared at any depth is sent as null, since a merge
    patch leaves out what it does not mention. Lists are replaced whole, as merge patch does.
    """
    patch: dict[str, Any] = dict.fromkeys(old.keys() - new.keys())
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif key not in old or before != value:
            patch[key] = value
    return patch
