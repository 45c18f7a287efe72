"""The Normal Events of a binding on its way to Running, held back and posted as one.

A binding used to post two Normal Events on its way up: the first pass's (Claimed; StartedPhone)
and the Running one (the ADB Secret, the pod, the worker running). Each Event is a write the API
server pays for, 5,000 of them when a fleet of 5,000 is applied at once, on the stretch where the
API server's write rate sets the fleet's convergence (docs/scale.md, "Round 8"). Now a pass's
Normal Events are kept in memory while the binding is on its way up, and the pass that finds it
Running posts one Event listing every step since the first.

Held only while the pass leaves the binding Bound (phone, ADB or pod starting), the status the
API server shows is not Running (a binding dropping out of Running says so at once) and no
Warning is due: a Warning is posted at once, with the Normal Events held so far (a reader
looking at a problem sees the whole story). A hold lasts at most ``limit`` seconds from the end
of the pass that took it: a binding that is not Running by then has its Events posted (the pass
returns no later than that), so a stuck binding always shows its story in ``kubectl describe``.
At most :data:`MOST_HELD` Events are held per binding (a binding whose phone flaps while it
comes up posts them then), so memory per binding is bounded; a binding deleted drops its entry.

An operator that restarts loses what it held: the Events of steps already taken are not posted
(their log lines were written when the steps were taken), and the next operator's Running Event
names only the steps it took itself. The status says everything they said (the claim's
condition, the phone, when the ADB data was written), so nothing a reader needs is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from phonefleet_operator.models import Phase
from phonefleet_operator.services.report import Event, Report

__all__ = ["MOST_HELD", "HeldEvents"]

#: The most Normal Events held for one binding: one per step on the way up is about five.
MOST_HELD = 8


@dataclass(frozen=True)
class _Held:
    events: tuple[Event, ...]
    since: float
    """When the pass that took the hold ended (epoch seconds)."""


class HeldEvents:
    """Per binding uid: the Normal Events held on its way to Running, and since when."""

    def __init__(self, limit: float) -> None:
        self._limit = limit
        self._held: dict[str, _Held] = {}

    def settle(self, uid: str, report: Report, delay: float, now: float) -> float:
        """Hold the pass's Normal Events, or post them with those held before (as one Event);
        the seconds until the next pass (no later than the hold's end). ``now`` is the pass's
        end."""
        held = self._held.pop(uid, None)
        earlier = held.events if held is not None else ()
        report.earlier = list(earlier)
        normal = tuple(event for event in report.events if not event.warning)
        if not (earlier or normal):
            return delay
        since = held.since if held is not None else now
        left = self._limit - (now - since)
        if left <= 0 or len(earlier) + len(normal) > MOST_HELD or not _may_hold(report):
            return delay
        report.events_held = True
        self._held[uid] = _Held((*earlier, *normal), since)
        return min(delay, left)

    def forget(self, uid: str) -> None:
        """The binding ``uid`` is gone: its held Events go with it."""
        self._held.pop(uid, None)

    def __len__(self) -> int:
        return len(self._held)


def _may_hold(report: Report) -> bool:
    """The pass leaves the binding on its way up (Bound, not shown Running) with no warning."""
    return (
        report.status.phase == Phase.BOUND
        and report.base.phase != Phase.RUNNING
        and not any(event.warning for event in report.events)
    )
