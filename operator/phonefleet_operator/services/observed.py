"""What the operator's watches last reported about claims and worker pods.

The operator's own watches (``k8s/watch.py``, started by ``handlers/watches.py``) stream every
PhoneClaim and every worker pod; keeping the latest of each saves the reconcile passes their
GETs (a thousand bindings polling their pod made two thousand pod reads and five thousand claim
reads to converge, and a fleet at rest read each claim and pod once a minute, ``make bench``).

These views may lag the API server by a watch event, but they miss no deletion: a watch that
lists again after a gap reports the objects gone from the list. So they are used where a
briefly stale answer is harmless: "this binding holds its claim" (the claim was created by it; a
deletion arrives as an event that wakes the holder) and "the pod looks like this" (a newer state
arrives as an event that wakes the binding). Anything that decides to stop a phone or create a
claim still asks the API server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from phonefleet_operator.constants import ANNOTATION_SPEC_HASH, CONTAINER_WORKER

__all__ = ["ObservedClaims", "ObservedPods"]

Obj = dict[str, Any]


class ObservedClaims:
    """The holder uid of each phone's claim, and the releasePolicy it records, as the claims
    watch last reported it."""

    def __init__(self) -> None:
        self._holders: dict[str, str] = {}
        # Phones whose claim records Keep; every other claim records Stop (a set, not a dict
        # of strings: most claims say Stop, and the view holds one entry per phone).
        self._keep: set[str] = set()

    def saw(self, claim: Mapping[str, Any]) -> None:
        """A claim was added or changed (or created by us)."""
        spec = claim.get("spec") or {}
        holder = spec.get("holder") or {}
        name = claim["metadata"]["name"]
        # A claim deleted by hand is nobody's any more: passes read it (services/claims.py).
        held = not claim["metadata"].get("deletionTimestamp")
        self._holders[name] = str(holder.get("uid", "")) if held else ""
        if spec.get("releasePolicy") == "Keep":
            self._keep.add(name)
        else:
            self._keep.discard(name)

    def gone(self, phone_id: str) -> None:
        """The claim on ``phone_id`` was deleted."""
        self._holders.pop(phone_id, None)
        self._keep.discard(phone_id)

    def release_policy(self, phone_id: str) -> str:
        """The releasePolicy the claim on ``phone_id`` records, as last seen (Stop if unseen)."""
        return "Keep" if phone_id in self._keep else "Stop"

    def refresh(self, phone_id: str, claim: Mapping[str, Any] | None) -> None:
        """What the API server just said about the claim on ``phone_id`` (None: there is none)."""
        if claim is None:
            self.gone(phone_id)
        else:
            self.saw(claim)

    def holder_uid(self, phone_id: str) -> str | None:
        """The uid of the binding holding ``phone_id``, or None when no claim was seen."""
        return self._holders.get(phone_id)

    def __len__(self) -> int:
        return len(self._holders)


class ObservedPods:
    """The latest state of each worker pod, by namespace and name, as the pods watch reported,
    and when the watch (or a read) last confirmed it."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._pods: dict[tuple[str, str], tuple[Obj, float]] = {}
        self._clock = clock

    def saw(self, pod: Mapping[str, Any]) -> None:
        """A pod was added or changed; only the fields a pass reads are kept (a whole pod as
        Python objects is tens of kilobytes, times the fleet)."""
        metadata = pod["metadata"]
        self._pods[(metadata["namespace"], metadata["name"])] = (_essentials(pod), self._clock())

    def gone(self, namespace: str, name: str) -> None:
        """The pod was deleted."""
        self._pods.pop((namespace, name), None)

    def refresh(self, namespace: str, name: str, pod: Mapping[str, Any] | None) -> None:
        """What the API server just said about the pod (None: there is none)."""
        if pod is None:
            self.gone(namespace, name)
        else:
            self.saw(pod)

    def get(self, namespace: str, name: str) -> Obj | None:
        """The pod as last seen, or None when none was seen (ask the API server then)."""
        entry = self._pods.get((namespace, name))
        return None if entry is None else entry[0]

    def uid_at(self, address: str) -> str | None:
        """The uid of a worker pod seen with ``address`` as its IP, else None (a scan: asked
        only while an attempt is fenced)."""
        for pod, _ in self._pods.values():
            if pod["status"].get("podIP") == address:
                return str(pod["metadata"].get("uid", ""))
        return None

    def age(self, namespace: str, name: str) -> float:
        """Seconds since the watch or a read last said anything about the pod (0: never seen).

        The watch reports changes only, so an old entry is either a pod that has not changed
        or one whose later events were lost in a watch gap; a pass that has waited on it that
        long asks the API server instead.
        """
        entry = self._pods.get((namespace, name))
        return 0.0 if entry is None else self._clock() - entry[1]

    def __len__(self) -> int:
        return len(self._pods)


#: What reconcile passes read from a pod: identity, spec hash, deletion, phase and conditions.
_METADATA_KEPT = ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp")


def _essentials(pod: Mapping[str, Any]) -> Obj:
    metadata = pod["metadata"]
    status = pod.get("status") or {}
    kept: Obj = {key: metadata[key] for key in _METADATA_KEPT if key in metadata}
    annotations = metadata.get("annotations") or {}
    if ANNOTATION_SPEC_HASH in annotations:
        kept["annotations"] = {ANNOTATION_SPEC_HASH: annotations[ANNOTATION_SPEC_HASH]}
    return {
        "metadata": kept,
        "status": {
            "phase": status.get("phase"),
            "podIP": status.get("podIP"),  # where the operator delivers PhoneJobs
            "conditions": [
                {k: item.get(k) for k in ("type", "status", "lastTransitionTime")}
                for item in status.get("conditions") or ()
            ],
            # The worker's own words on why it stopped (services.worker_failure reads them).
            "containerStatuses": [
                {key: item.get(key) or {} for key in ("name", "state", "lastState")}
                for item in status.get("containerStatuses") or ()
                if item.get("name") == CONTAINER_WORKER
            ],
        },
    }
