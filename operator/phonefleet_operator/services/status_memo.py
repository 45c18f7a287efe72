"""The statuses this operator wrote, per binding, so a pass on a stale body does not redo steps.

kopf hands the loop the body of the last watch event it has processed; under load (a thousand
bindings patching their status) that can be the body from before our last status patch. A pass
working from it would redo the last steps: fetch the ADB data again, rewrite the Secret, post the
same Events once more. Our last write succeeded (a failed one is forgotten), so the next patch is
computed against it: a stale body does not make the pass send the same status again.

The memo keeps each status as the dict ``to_dict`` made for it alone, and the last one written
also as a shallow copy of the model (its phone and conditions are frozen): nothing a later pass
changes reaches what is remembered.

Also the statuses held back (:class:`HeldStatuses`): a pass that wrote the ADB Secret and created
the pod, or finds that pod still starting, writes nothing while the pod starts; the pass that
finds it Running writes all of it at once (the Events are ``event_hold``'s: one for the way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from phonefleet_operator.models import ConditionType, Phase, PhoneBinding, PhoneBindingStatus
from phonefleet_operator.services.report import Report

__all__ = ["HELD_BEHIND", "HOLD_REASONS", "HeldStatuses", "WrittenStatuses"]

#: Reasons (the Ready condition's) of a status that is held back: the pod is created and starts.
HOLD_REASONS = frozenset({"PodStarting"})
#: Reasons of the written status it may be held behind: the phone or its ADB came up, no pod yet
#: (a pod being replaced, or one that was not ready, is reported as it goes).
HELD_BEHIND = frozenset({"PhoneStarting", "AdbStarting"})

# Statuses remembered as replaced by our own writes, per binding (see caught_up).
_SUPERSEDED_KEPT = 3


class WrittenStatuses:
    """Per binding uid: the statuses our later writes replaced, and the status last written."""

    def __init__(self) -> None:
        self._written: dict[
            str, tuple[list[dict[str, Any]], PhoneBindingStatus, dict[str, Any]]
        ] = {}

    def caught_up(
        self, binding: PhoneBinding, body_status: dict[str, Any], report: Report
    ) -> PhoneBinding:
        """The binding with the status this operator last wrote, if the body still predates it."""
        memo = self._written.get(binding.uid)
        if memo is None:
            return binding
        superseded, latest, _ = memo
        if body_status not in superseded:
            del self._written[binding.uid]  # the body has caught up (or moved on without us)
            return binding
        report.base = latest
        report.status = latest.model_copy()  # shallow: see Report.__post_init__
        report.status.observed_generation = binding.metadata.generation
        return binding.model_copy(update={"status": latest})

    def remember(self, uid: str, body_status: dict[str, Any], report: Report) -> None:
        """Note the status this pass writes, and which statuses it supersedes."""
        written = (report.base if report.held else report.status).to_dict()
        if written == body_status:
            self._written.pop(uid, None)
            return
        superseded, _, latest = self._written.get(uid, ([], None, None))
        older = [*superseded, body_status]
        if latest is not None and latest != written:
            older.append(latest)
        self._written[uid] = (older[-_SUPERSEDED_KEPT:], report.status.model_copy(), written)

    def forget(self, uid: str) -> None:
        """The last status of ``uid`` was not written, or the binding is gone."""
        self._written.pop(uid, None)

    def __len__(self) -> int:
        return len(self._written)


@dataclass(frozen=True)
class _Held:
    base: dict[str, Any]
    """The status the held one was to patch (the API server's, or our last write)."""
    status: PhoneBindingStatus
    since: float
    """When the first pass of this hold ended (epoch seconds)."""


class HeldStatuses:
    """Per binding uid: a status a pass held back, and since when.

    On the way to Running, the pass that writes the ADB Secret and creates the pod used to write
    "pod starting", and the pass that found the pod Running a second or two later wrote again:
    two status PATCHes, two watch events for every watcher of bindings and two Events, on the API
    server's busiest stretch (a fleet's pods being created). Now the first is held back for at
    most ``limit`` seconds: the next pass starts from the held status (so it knows the Secret is
    written) and writes it with its own changes.

    Held only while it says no more than "the pod is starting" (:data:`HOLD_REASONS`) of a
    binding the API server already shows Bound to the same phone at the same generation, with no
    warning: the written status is then behind by progress within Bound only, and kstatus's
    ``Reconciling`` is True in both. A hold that would outlast ``limit`` is written (the pod is
    slow to start: the reader should see why), unless the pod still waits in the cluster's
    queues (``Report.pod_queued``: created or bound to its node, which has not started it; a
    fleet's pods are created faster than they run): then it lasts up to ``queued_limit``, and
    ends at the pod's next change that is not a start (a node taking it, the scheduler
    refusing it), when the pass sees that the pod is no longer queued. Nothing is lost if the
    operator restarts during a hold: the written status does not say the Secret was written,
    so the next operator reads the ADB data again, writes the same Secret and finds the pod
    there.
    """

    def __init__(self, limit: float, queued_limit: float | None = None) -> None:
        self._limit = limit
        self._queued_limit = max(limit, queued_limit if queued_limit is not None else limit)
        self._held: dict[str, _Held] = {}

    def resume(self, binding: PhoneBinding, report: Report) -> PhoneBinding:
        """The binding with its held status, and the report starting from it, if the status
        it was to patch is still the one there (else the hold is dropped: the pass starts
        afresh from what is written)."""
        held = self._held.get(binding.uid)
        if held is None:
            return binding
        if report.base.to_dict() != held.base:
            del self._held[binding.uid]
            return binding
        report.status = held.status.model_copy()  # shallow: see Report.__post_init__
        report.status.observed_generation = binding.metadata.generation
        return binding.model_copy(update={"status": held.status})

    def settle(self, uid: str, report: Report, delay: float, now: float) -> float:
        """Hold the pass's status back if it may wait; the seconds until the next pass (no
        later than the end of the hold, when it is written). ``now`` is the pass's end: a pass
        that waited long for Geelark's answer starts its hold when it is done."""
        held = self._held.pop(uid, None)
        since = held.since if held is not None else now
        limit = self._queued_limit if report.pod_queued else self._limit
        left = limit - (now - since)
        if left <= 0 or not _may_wait(report):
            return delay
        report.held = True
        self._held[uid] = _Held(report.base.to_dict(), report.status.model_copy(), since)
        return min(delay, left)

    def forget(self, uid: str) -> None:
        """The binding ``uid`` is gone, or its status must be read afresh."""
        self._held.pop(uid, None)

    def __len__(self) -> int:
        return len(self._held)


def _may_wait(report: Report) -> bool:
    """The pass's status only says the pod starts, on a binding shown Bound to the same phone."""
    base, status = report.base, report.status
    return (
        status.phase == Phase.BOUND
        and _ready_reason(status) in HOLD_REASONS
        and base.phase == Phase.BOUND
        and _ready_reason(base) in HELD_BEHIND
        and base.phone is not None
        and status.phone is not None
        and base.phone.id == status.phone.id
        and base.observed_generation == status.observed_generation
        and not any(event.warning for event in report.events)
        and status.to_dict() != base.to_dict()
    )


def _ready_reason(status: PhoneBindingStatus) -> str | None:
    ready = next((c for c in status.conditions if c.type == ConditionType.READY), None)
    return ready.reason if ready is not None else None
