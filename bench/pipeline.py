"""Where a binding's time goes after its ADB data is read: the pod pipeline, step by step.

From the bench's watches (``bench.tracking``) and the simulator's log of served calls, each
binding's way from its phone's ADB read to Ready is cut into the steps of the parts that take it:

* ``adbReadToPod``: the last ``adb/getData`` call naming its phone before its pod existed, to the
  pod's creation: the operator's ADB Secret and pod POSTs, and whatever they queued behind;
* ``podToScheduled``: kube-scheduler binding the pod to the node (``spec.nodeName`` set);
* ``scheduledToRunning``: KWOK (the kubelet's part) writing the pod Running and Ready;
* ``runningToReady``: the operator seeing the pod run and writing the binding's Ready status.

Every time is when the bench received the watch event (or when the simulator served the call),
on the same monotonic clock. Each step gives p50 / p95 / p99 / max over the bindings that made
it, and the timeline counts how many bindings were in each step at each sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from bench.tracking import percentiles

__all__ = ["STAGES", "STEPS", "adb_reads", "pipeline", "stage_counts"]

Obj = dict[str, Any]

#: The steps, in order: (JSON name, from which milestone, to which, who takes it).
STEPS: tuple[tuple[str, str, str, str], ...] = (
    ("adbReadToPod", "adbRead", "podCreated", "operator: ADB Secret, pod"),
    ("podToScheduled", "podCreated", "scheduled", "kube-scheduler"),
    ("scheduledToRunning", "scheduled", "running", "KWOK"),
    ("runningToReady", "running", "ready", "operator: status Ready"),
)
#: The milestones of a binding after its ADB read, in order.
MILESTONES: tuple[str, ...] = ("adbRead", "podCreated", "scheduled", "running", "ready")
#: A binding's stage at a moment: the last milestone it has passed (``ready``: done).
STAGES: tuple[str, ...] = MILESTONES


class Milestones(Protocol):
    """What the bench's tracker knows of one binding (``bench.tracking.ItemTrack``)."""

    phone_id: str | None
    pod_created: float | None
    pod_scheduled: float | None
    pod_running: float | None
    ready_at: float | None


def adb_reads(calls: Iterable[tuple[float, str, Sequence[str]]]) -> dict[str, list[float]]:
    """Per phone id, the times ``adb/getData`` calls named it, in order (simulator log entries
    as (time, endpoint, ids))."""
    reads: dict[str, list[float]] = {}
    for at, endpoint, ids in calls:
        if endpoint.endswith("adb/getData"):
            for phone in ids:
                reads.setdefault(phone, []).append(at)
    return reads


def _read_before(times: list[float] | None, pod_created: float | None) -> float | None:
    """The last read at or before the pod's creation (the one whose data the Secret holds)."""
    if not times:
        return None
    if pod_created is None:
        return times[-1]
    before = [t for t in times if t <= pod_created]
    return before[-1] if before else None


def _milestones(
    item: Milestones, reads: Mapping[str, list[float]], start: float
) -> list[float | None]:
    """The binding's milestones, in seconds after ``start`` (None: not reached or not known)."""
    read = _read_before(reads.get(item.phone_id or ""), item.pod_created)
    raw = (read, item.pod_created, item.pod_scheduled, item.pod_running, item.ready_at)
    return [None if t is None else t - start for t in raw]


def stage_counts(rows: Sequence[Sequence[float | None]], at: float) -> dict[str, int]:
    """How many bindings are in each stage at ``at`` (seconds after the start): the last
    milestone each has passed; bindings whose ADB data is not read yet are not counted."""
    counts = dict.fromkeys(STAGES, 0)
    for row in rows:
        passed = None
        for name, t in zip(MILESTONES, row, strict=True):
            if t is not None and t <= at:
                passed = name
        if passed is not None:
            counts[passed] += 1
    return counts


def pipeline(
    items: Iterable[Milestones],
    reads: Mapping[str, list[float]],
    start: float,
    sample_times: Sequence[float],
) -> Obj:
    """The steps' percentiles, the last time each milestone was reached, and the stage counts
    at each of ``sample_times`` (seconds after ``start``, the timeline's)."""
    rows = [_milestones(item, reads, start) for item in items]
    steps: Obj = {}
    for name, begin, end, who in STEPS:
        i, j = MILESTONES.index(begin), MILESTONES.index(end)
        spans = [
            max(0.0, to - since)
            for row in rows
            if (since := row[i]) is not None and (to := row[j]) is not None
        ]
        steps[name] = {"by": who, "bindings": len(spans), **percentiles(spans)}
    last: dict[str, float | None] = {}
    for k, name in enumerate(MILESTONES):
        reached = [t for row in rows if (t := row[k]) is not None]
        last[name] = round(max(reached), 2) if reached else None
    return {
        "steps": steps,
        "lastSeconds": last,
        "stages": [{"t": t, **stage_counts(rows, t)} for t in sample_times],
    }
