"""Objects by phase per namespace, from the watch events the operator already receives.

The watch gives every change of every binding to the operator anyway; counting from it costs a
dictionary update per event and no API call. After a watch gap kopf relists without reporting
deletions, so a binding deleted during the gap is counted until the operator restarts (the same
limit as the claims and pods views, see services/observed.py).
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["TIME_TO_RUNNING", "BindingView", "PhaseView", "bindings", "job_phases"]

#: What a binding without a status yet is counted as (the CRD's first phase).
_NO_PHASE: Final = "Pending"
_RUNNING: Final = "Running"

TIME_TO_RUNNING: Final = Histogram(
    "phonefleet_binding_creation_to_running_seconds",
    "From a PhoneBinding's creation to its first Running phase (its Ready condition turning "
    "True), for bindings this operator process saw before they first ran.",
    buckets=(2.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1800.0),
)


def _timestamp(text: Any) -> float | None:
    """Unix seconds of a Kubernetes RFC 3339 timestamp, None when absent or malformed."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class PhaseView(Collector):
    """``<name>{namespace,phase}``: how many objects of one kind are in each phase."""

    def __init__(self, name: str, documentation: str) -> None:
        self._name = name
        self._documentation = documentation
        self._phases: dict[str, tuple[str, str]] = {}

    def saw(self, event: Mapping[str, Any]) -> None:
        """Record one raw watch event (``type`` and ``object``)."""
        body = event["object"]
        metadata = body.get("metadata") or {}
        uid = str(metadata.get("uid", ""))
        if event.get("type") == "DELETED":
            self.forget(uid)
            return
        phase = (body.get("status") or {}).get("phase") or _NO_PHASE
        self._phases[uid] = (str(metadata.get("namespace", "")), str(phase))

    def forget(self, uid: str) -> None:
        """The object is gone."""
        self._phases.pop(uid, None)

    def clear(self) -> None:
        """Forget everything (a new operator start in the same process)."""
        self._phases.clear()

    def counts(self) -> Mapping[tuple[str, str], int]:
        """How many objects per (namespace, phase)."""
        # A scrape runs in the metrics server's thread while the event loop records events:
        # iterate a copy (list() copies in one step under the GIL), never the live dict.
        return Tally(list(self._phases.values()))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauge, one sample per (namespace, phase) seen."""
        family = GaugeMetricFamily(self._name, self._documentation, labels=["namespace", "phase"])
        for (namespace, phase), count in sorted(self.counts().items()):
            family.add_metric([namespace, phase], count)
        yield family


@dataclass
class _Binding:
    namespace: str
    phase: str
    not_ready_since: float | None
    phone_id: str | None


class BindingView(PhaseView):
    """PhoneBindings by phase, how long they have been outside Running, and time to Running."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__(
            "phonefleet_bindings", "PhoneBindings by namespace and phase, as the watch last saw."
        )
        self._clock = clock
        self._seen: dict[str, _Binding] = {}
        self._never_ran: set[str] = set()

    def saw(self, event: Mapping[str, Any]) -> None:
        """Record one raw watch event of a PhoneBinding."""
        super().saw(event)
        body = event["object"]
        metadata = body.get("metadata") or {}
        uid = str(metadata.get("uid", ""))
        if event.get("type") == "DELETED":
            return
        status = body.get("status") or {}
        phase = str(status.get("phase") or _NO_PHASE)
        ready = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), None)
        created = _timestamp(metadata.get("creationTimestamp"))
        since = None
        if ready is None or ready.get("status") != "True":
            since = _timestamp((ready or {}).get("lastTransitionTime")) or created
        if uid not in self._seen and phase != _RUNNING:
            self._never_ran.add(uid)
        if phase == _RUNNING and uid in self._never_ran:
            self._never_ran.discard(uid)
            ran = _timestamp((ready or {}).get("lastTransitionTime")) or self._clock()
            if created is not None:
                TIME_TO_RUNNING.observe(max(0.0, ran - created))
        self._seen[uid] = _Binding(
            namespace=str(metadata.get("namespace", "")),
            phase=phase,
            not_ready_since=since,
            phone_id=(status.get("phone") or {}).get("id"),
        )

    def forget(self, uid: str) -> None:
        """The binding is gone."""
        super().forget(uid)
        self._seen.pop(uid, None)
        self._never_ran.discard(uid)

    def clear(self) -> None:
        """Forget everything (a new operator start in the same process)."""
        super().clear()
        self._seen.clear()
        self._never_ran.clear()

    def phone_ids(self, phases: Container[str]) -> set[str]:
        """Phone ids that live bindings in one of ``phases`` name in their status."""
        return {b.phone_id for b in self._seen.values() if b.phone_id and b.phase in phases}

    def uids(self, phases: Container[str | None]) -> set[str]:
        """uids of the live bindings in one of ``phases`` (no phase yet counts as Pending)."""
        return {uid for uid, b in list(self._seen.items()) if b.phase in phases}

    def longest_not_running(self) -> Mapping[tuple[str, str], float]:
        """Per (namespace, phase) but Running: seconds since the oldest one's Ready left True."""
        now = self._clock()
        longest: dict[tuple[str, str], float] = {}
        for b in list(self._seen.values()):  # a copy: see counts()
            if b.phase == _RUNNING or b.not_ready_since is None:
                continue
            key = (b.namespace, b.phase)
            longest[key] = max(longest.get(key, 0.0), now - b.not_ready_since)
        return longest

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The phase counts and the longest time outside Running."""
        yield from super().collect()
        family = GaugeMetricFamily(
            "phonefleet_bindings_not_running_longest_seconds",
            "Per namespace and phase other than Running: how long the binding that has been "
            "there longest has not been Ready.",
            labels=["namespace", "phase"],
        )
        for (namespace, phase), seconds in sorted(self.longest_not_running().items()):
            family.add_metric([namespace, phase], seconds)
        yield family


#: PhoneBindings, fed by the bindings watch (handlers/binding_watch.py).
bindings: Final = BindingView()
REGISTRY.register(bindings)

#: PhoneJobs, for the jobs' watch handler to feed (``job_phases.saw(event)``).
job_phases: Final = PhaseView(
    "phonefleet_jobs", "PhoneJobs by namespace and phase, as the watch last saw."
)
REGISTRY.register(job_phases)
