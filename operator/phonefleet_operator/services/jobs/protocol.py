"""What a worker of a given release understands of the job protocol, and what it is sent.

A worker names the features it understands beyond the first protocol in its answer to
``POST /v1/validate``, which the operator asks before every attempt (no extra request). A worker
image of an earlier release names none: its delivery model refuses fields it does not know
(``400``), so it is sent none of a feature's fields, and its attempts fall back to what that
release had (no lease: an attempt whose pod vanished is fenced by its deadline alone). Workers
from this release on ignore unknown fields, and the operator reads every worker answer as a
plain mapping, ignoring what it does not know, so a later addition breaks neither side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "CURRENT_WORKER_REASON",
    "LEASE",
    "OLD_WORKER_REASON",
    "WORKER_IMAGE_CURRENT",
    "current_worker_message",
    "features",
    "old_worker_message",
]

LEASE = "lease"
"""The worker takes ``leaseSeconds`` with a delivery and stops an attempt nobody asks about."""

OLD_WORKER_REASON = "OldWorkerImage"
"""The reason of the Warning Event, and of ``WorkerImageCurrent=False``, for such a worker."""

CURRENT_WORKER_REASON = "TakesLeases"
"""The reason of ``WorkerImageCurrent=True``: the worker last asked takes attempt leases."""

WORKER_IMAGE_CURRENT = "WorkerImageCurrent"
"""A condition of the PhoneBinding, not of its PhoneJobs: the image is the binding's (its
``spec.worker.image``, where a person fixes it), outlives every job, and ``kubectl describe pb``
shows it beside the binding's other conditions. Absent until a worker took no lease; False
(``OldWorkerImage``) while the binding's worker takes none; True (``TakesLeases``) once the
worker asked before an attempt takes them (a rebuilt image)."""


def features(validated: Mapping[str, Any]) -> frozenset[str]:
    """The features a worker names in its answer to ``POST /v1/validate`` (none: an earlier
    release, or an answer that names them in a form this operator does not read)."""
    named = validated.get("features")
    if not isinstance(named, list):
        return frozenset()
    return frozenset(item for item in named if isinstance(item, str))


def old_worker_message(pod: str) -> str:
    """The Event's words for a worker that takes no lease."""
    return (
        f"The worker of pod {pod} runs an image older than this operator (it takes no attempt "
        "lease): its attempts run without one, so when the pod goes away mid-attempt and its "
        "worker cannot be told, the retry waits for the attempt's deadline; rebuild the worker "
        "image (and task images FROM it) on the current release"
    )


def current_worker_message(pod: str) -> str:
    """The condition's words once the worker takes leases again."""
    return f"The worker of pod {pod} takes attempt leases (its image is of this release or later)"
