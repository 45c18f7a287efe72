"""The operator's own watch of PhoneBindings (not kopf's): one callback per event does what the
binding's handlers did, parsing nothing twice.

For each event: telemetry, the waiters index, a wake-up on a spec change no pass has seen, the
per-binding loop and finalizer (``services/binding_loops.py``), the job loops, and tenancy. kopf
handled each binding event with its per-object machinery (causes, handler kwargs, a logger per
event, progress and finalizer patches): at N = 5,000 that was half of the operator's event loop
(docs/scale.md, round 3). The watch reports the deletions a relist finds, so no periodic list of
bindings is needed to catch one that went unseen (docs/reconcile.md).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from phonefleet_operator import constants as c
from phonefleet_operator import telemetry
from phonefleet_operator.k8s.finalizers import BindingFinalizers
from phonefleet_operator.k8s.watch import ObjectWatch, WatchClient, custom_object_lists
from phonefleet_operator.services.binding_loops import BindingLoops
from phonefleet_operator.services.runtime import Runtime, waiter_of

__all__ = ["BindingEvents", "binding_kept", "binding_watches"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class BindingEvents:
    """Hands each binding event to everything that keeps state of bindings.

    The synchronous steps run at once; the steps that may await (tenancy, orphaned jobs) run in
    order in one task, as kopf ran one object's handlers one after the other.
    """

    def __init__(self, runtime: Runtime, loops: BindingLoops) -> None:
        self.runtime = runtime
        self.loops = loops
        self._later: collections.deque[Callable[[], Awaitable[None]]] = collections.deque()
        self._worker: asyncio.Task[None] | None = None

    def __call__(self, event_type: str, body: Obj) -> None:
        """One ADDED, MODIFIED or DELETED event of a binding."""
        runtime = self.runtime
        telemetry.bindings.saw({"type": event_type, "object": body})  # bindings by phase
        metadata = body["metadata"]
        uid = metadata["uid"]
        if event_type == "DELETED":  # the object is gone: so is all we kept for it
            runtime.forget(body)
        else:
            runtime.waiters.saw(uid, waiter_of(body))
            # A newer generation than the last pass recorded: a spec change no pass has seen.
            generation = metadata.get("generation")
            observed = (body.get("status") or {}).get("observedGeneration")
            if generation is not None and observed is not None and generation > observed:
                runtime.wakeups.wake(uid)
        self.loops.saw(event_type, body)
        runtime.jobs.saw_binding(event_type, body)
        self._then(functools.partial(runtime.tenancy.binding_event, event_type, body))
        if event_type == "DELETED":
            # Its jobs say so (a running attempt there is fenced: JobService.check_orphan).
            for job in runtime.jobs.jobs.of_binding(metadata["namespace"], metadata["name"]):
                self._then(functools.partial(runtime.jobs.check_orphan, job))

    def _then(self, step: Callable[[], Awaitable[None]]) -> None:
        self._later.append(step)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name="phonebinding-events")

    async def _work(self) -> None:
        while self._later:
            step = self._later.popleft()
            try:
                await step()
            except Exception:
                log.exception("Handling a PhoneBinding event failed")

    async def close(self) -> None:
        """Stop the loops, then the pending steps."""
        await self.loops.close()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)


def binding_watches(
    runtime: Runtime, api: WatchClient, namespaces: tuple[str, ...]
) -> tuple[BindingEvents, list[ObjectWatch]]:
    """The callback and the watches of PhoneBindings (one per namespace when restricted)."""
    finalizers = BindingFinalizers(runtime.caller)
    loops = BindingLoops(
        reconcile=lambda body: runtime.reconcile(body, runtime.waiters),
        release=runtime.release,
        finalizers=finalizers,
        get_binding=runtime.kube.get_binding,
        wakeups=runtime.wakeups,
        waiters=runtime.waiters,
    )
    events = BindingEvents(runtime, loops)
    timeout = runtime.settings.watch_server_timeout_seconds
    calls = custom_object_lists(
        api.custom,
        c.GROUP,
        c.VERSION,
        c.BINDING_PLURAL,
        kind="PhoneBindings",
        namespaces=namespaces,
    )
    watches = [
        ObjectWatch(name, call, events, keep=binding_kept, server_timeout=timeout)
        for name, call in calls
    ]
    return events, watches


def binding_kept(body: Obj) -> Obj:
    """A binding found deleted on relist is forgotten by uid, its phone's memories by the
    status's phone id, and its jobs by its namespace and name: keep just those."""
    metadata = body["metadata"]
    kept: Obj = {
        "metadata": {k: metadata[k] for k in ("name", "namespace", "uid") if k in metadata}
    }
    phone = (body.get("status") or {}).get("phone")
    if phone:
        kept["status"] = {"phone": {"id": phone.get("id")}}
    return kept
