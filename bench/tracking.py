"""Following bindings and pods through watches: when each was created, became Ready, ran."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.kube import KubeApi, WatchEvent

__all__ = ["ItemTrack", "Tracker", "percentiles", "pod_runs_on", "wait_done", "watch_into"]

Obj = dict[str, Any]


def pod_runs_on(pod: Obj, node: str) -> bool:
    """The pod is Running and Ready on ``node`` (and not being deleted)."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return (
        status.get("phase") == "Running" and pod.get("spec", {}).get("nodeName") == node and ready
    )


def binding_ready(binding: Obj) -> bool:
    """The binding's Ready condition is True."""
    conditions = (binding.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclass
class ItemTrack:
    """Monotonic times the bench saw one item's milestones (None: not yet)."""

    created: float | None = None
    pod_created: float | None = None
    ready: bool = False
    running: bool = False
    converged: float | None = None
    #: The phone the binding's status names (bench.pipeline finds its ADB read by it).
    phone_id: str | None = None
    #: First seen bound to a node (kube-scheduler), Running and Ready (KWOK), and the
    #: binding first Ready: the pod pipeline's milestones (bench.pipeline).
    pod_scheduled: float | None = None
    pod_running: float | None = None
    ready_at: float | None = None


@dataclass
class Tracker:
    """The state of N items, fed by watch events; ``done`` is set once all have converged.

    An item converges when its pod runs on the node and (if ``needs_ready``) its binding is Ready;
    it stays counted as converged even if it flaps later (the bench reports the first time).
    """

    names: list[str]
    pod_name: Callable[[str], str]
    node: str
    needs_ready: bool
    items: dict[str, ItemTrack] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    converged_count: int = 0
    last_converged: float | None = None

    def __post_init__(self) -> None:
        self.items = {name: ItemTrack() for name in self.names}
        self._by_pod = {self.pod_name(name): name for name in self.names}

    def on_binding(self, event: WatchEvent) -> None:
        """A PhoneBinding event."""
        item = self.items.get(event.object.get("metadata", {}).get("name", ""))
        if item is None:
            return
        if item.created is None and event.type in ("ADDED", "MODIFIED"):
            item.created = event.received
        item.ready = event.type != "DELETED" and binding_ready(event.object)
        if item.ready and item.ready_at is None:
            item.ready_at = event.received
        phone = ((event.object.get("status") or {}).get("phone") or {}).get("id")
        item.phone_id = phone or item.phone_id
        self._check(item, event.received)

    def on_pod(self, event: WatchEvent) -> None:
        """A Pod event."""
        name = self._by_pod.get(event.object.get("metadata", {}).get("name", ""))
        if name is None:
            return
        item = self.items[name]
        if item.pod_created is None and event.type in ("ADDED", "MODIFIED"):
            item.pod_created = event.received
        item.running = event.type != "DELETED" and pod_runs_on(event.object, self.node)
        if item.pod_scheduled is None and event.object.get("spec", {}).get("nodeName"):
            item.pod_scheduled = event.received
        if item.running and item.pod_running is None:
            item.pod_running = event.received
        self._check(item, event.received)

    def mark_created(self, name: str, when: float) -> None:
        """An item without a binding (the ceiling) started being created at ``when``."""
        self.items[name].created = when

    def _check(self, item: ItemTrack, now: float) -> None:
        if item.converged is not None or not item.running:
            return
        if self.needs_ready and not item.ready:
            return
        item.converged = now
        self.converged_count += 1
        self.last_converged = now
        if self.converged_count == len(self.items):
            self.done.set()

    def latencies(self) -> list[float]:
        """Seconds from each item's creation to its pod's creation."""
        return [
            i.pod_created - i.created
            for i in self.items.values()
            if i.created is not None and i.pod_created is not None
        ]

    def convergence_latencies(self) -> list[float]:
        """Seconds from each item's creation to its convergence."""
        return [
            i.converged - i.created
            for i in self.items.values()
            if i.created is not None and i.converged is not None
        ]

    def milestones(self, start: float) -> dict[str, float | None]:
        """Seconds after ``start`` by which 1 %, 50 %, 90 % and all items had converged."""
        times = sorted(i.converged - start for i in self.items.values() if i.converged is not None)
        total = len(self.items)
        result: dict[str, float | None] = {}
        for label, share in (("first", 0.0), ("p50", 0.5), ("p90", 0.9), ("all", 1.0)):
            needed = max(1, math.ceil(share * total))
            result[label] = round(times[needed - 1], 2) if len(times) >= needed else None
        return result


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p95, p99 and max (nearest rank), rounded to milliseconds."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(share: float) -> float:
        index = min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))
        return round(ordered[index], 3)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": round(ordered[-1], 3)}


@contextlib.asynccontextmanager
async def watch_into(api: KubeApi, path: str, handler: Callable[[WatchEvent], None]) -> Any:
    """Feed every object of ``path`` (listed, then watched) into ``handler`` while in the block."""
    listed = await api.list(path)
    now = time.monotonic()
    for obj in listed.get("items", []):
        handler(WatchEvent("ADDED", obj, now))
    version = listed.get("metadata", {}).get("resourceVersion", "0")

    async def follow() -> None:
        async for event in api.watch(path, version):
            handler(event)

    task = asyncio.create_task(follow(), name=f"watch {path}")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_done(
    tracker: Tracker, watches: list[asyncio.Task[None]], wait_seconds: float
) -> bool:
    """Wait until all items converged (True) or ``wait_seconds`` passed (False).

    A watch that died raises what stopped it.
    """
    done = asyncio.ensure_future(tracker.done.wait())
    try:
        finished, _ = await asyncio.wait(
            {done, *watches}, timeout=wait_seconds, return_when="FIRST_COMPLETED"
        )
    finally:
        done.cancel()
    for task in watches:
        if task in finished:
            task.result()  # raises what stopped the watch
            raise RuntimeError("a watch ended unexpectedly")
    return tracker.done.is_set()
