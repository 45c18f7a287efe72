"""What a binding's passes keep for the next one: the statuses written, and what is held back.

A pass starts from the status this operator last wrote (``status_memo.WrittenStatuses``: the
body kopf hands over may predate it) and from a status held back while the pod starts
(``status_memo.HeldStatuses``); it ends by deciding what it holds back (that status, and its
Normal Events on the way to Running: ``event_hold.HeldEvents``) and noting what it writes.
``reconcile`` orders the steps of a pass; this module owns the memory between passes, so that
each thing kept per binding is taken at the start of a pass, settled at its end and dropped
with the binding in one place.
"""

from __future__ import annotations

from typing import Any

from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.services.event_hold import HeldEvents
from phonefleet_operator.services.report import Report
from phonefleet_operator.services.status_memo import HeldStatuses, WrittenStatuses
from phonefleet_operator.settings import OperatorSettings

__all__ = ["PassMemory"]


class PassMemory:
    """Per binding uid, what one pass leaves to the next (see the module's docstring)."""

    def __init__(self, settings: OperatorSettings) -> None:
        self.written = WrittenStatuses()
        # A pod's start is at most its fallback poll away: a hold never delays a pass. A pod
        # still in the cluster's queues is held as long as a worker may stay not ready.
        self.held = HeldStatuses(
            limit=settings.pod_poll_seconds,
            queued_limit=settings.worker_unready_threshold_seconds,
        )
        self.events = HeldEvents(limit=settings.event_hold_seconds)

    def begin(
        self, binding: PhoneBinding, body_status: dict[str, Any], report: Report
    ) -> PhoneBinding:
        """The binding as the pass starts from it (our last write, then what is held), with
        ``report`` set to build on it; ``body_status`` is the status of the body handed over."""
        binding = self.written.caught_up(binding, body_status, report)
        return self.held.resume(binding, report)

    def end(
        self, uid: str, body_status: dict[str, Any], report: Report, delay: float, now: float
    ) -> float:
        """Settle what the pass holds back and note what it writes; the seconds until the next
        pass (no later than the end of a hold). ``now`` is the pass's end (epoch seconds)."""
        delay = self.held.settle(uid, report, delay, now)
        delay = self.events.settle(uid, report, delay, now)
        self.written.remember(uid, body_status, report)
        return delay

    def unwritten(self, uid: str) -> None:
        """The pass's status could not be written: the next pass trusts the body again (the
        Events held stay held: their steps were taken)."""
        self.written.forget(uid)
        self.held.forget(uid)

    def forget(self, uid: str) -> None:
        """The binding ``uid`` is gone: drop all that is kept for it."""
        self.written.forget(uid)
        self.held.forget(uid)
        self.events.forget(uid)

    def tracked(self) -> dict[str, int]:
        """How many bindings each memory keeps an entry for (for the health report)."""
        return {
            "writtenStatuses": len(self.written),
            "heldStatuses": len(self.held),
            "heldEvents": len(self.events),
        }
