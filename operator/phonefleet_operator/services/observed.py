"""What the operator's watches last reported about claims and worker pods.

kopf already streams every PhoneClaim and every phonefleet pod to the operator; keeping the latest
of each saves the reconcile passes one GET per pass (a thousand bindings polling their pod made
two thousand pod reads and five thousand claim reads to converge, ``make bench``).

These views may lag the API server by a watch event, so they are used only where a stale answer
is harmless: "this binding holds its claim" (the claim was created by it; a deletion arrives as
an event that wakes the holder) and "the pod looks like this" (a newer state arrives as an event
that wakes the binding). Anything that decides to stop a phone or create a claim still asks the
API server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ObservedClaims", "ObservedPods"]

Obj = dict[str, Any]


class ObservedClaims:
    """The holder uid of each phone's claim, as the claims watch last reported it."""

    def __init__(self) -> None:
        self._holders: dict[str, str] = {}

    def saw(self, claim: Mapping[str, Any]) -> None:
        """A claim was added or changed (or created by us)."""
        holder = (claim.get("spec") or {}).get("holder") or {}
        self._holders[claim["metadata"]["name"]] = str(holder.get("uid", ""))

    def gone(self, phone_id: str) -> None:
        """The claim on ``phone_id`` was deleted."""
        self._holders.pop(phone_id, None)

    def holder_uid(self, phone_id: str) -> str | None:
        """The uid of the binding holding ``phone_id``, or None when no claim was seen."""
        return self._holders.get(phone_id)

    def __len__(self) -> int:
        return len(self._holders)


class ObservedPods:
    """The latest state of each worker pod, by namespace and name, as the pods watch reported."""

    def __init__(self) -> None:
        self._pods: dict[tuple[str, str], Obj] = {}

    def saw(self, pod: Obj) -> None:
        """A pod was added or changed."""
        metadata = pod["metadata"]
        self._pods[(metadata["namespace"], metadata["name"])] = pod

    def gone(self, namespace: str, name: str) -> None:
        """The pod was deleted."""
        self._pods.pop((namespace, name), None)

    def get(self, namespace: str, name: str) -> Obj | None:
        """The pod as last seen, or None when none was seen (ask the API server then)."""
        return self._pods.get((namespace, name))

    def __len__(self) -> int:
        return len(self._pods)
