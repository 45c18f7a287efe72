"""Kubernetes Events on our objects, posted in the background, in order per object.

kopf's ``kopf.event`` works only inside kopf's per-object handlers (its queue lives in their
context); PhoneBindings and their job loops run outside kopf (handlers/binding_watch.py), so the
operator posts its Events itself, as kopf did: the same fields (the "From" of ``kubectl describe``
is ``phonefleet-operator``, the instance is the pod), a message cut to 1,024 characters, a
failure logged and the Event dropped after a few tries (an Event is never worth holding a
binding back).

Normal Events also give way to the operator's own API calls (``yield_to``): while the passes'
pool has calls waiting for a thread, a Normal Event waits until it has none, at most
:data:`EVENT_DEFER_SECONDS` after it was queued. A fleet coming up spends the API server on its
Secrets, pods and statuses first; its Events follow when there is room (docs/scale.md, Round 6a).
Warnings never wait, not even behind a Normal Event of their lane: while a Warning is queued
in a lane, the Normal Events ahead of it are posted without waiting (in their order).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from phonefleet_operator.errors import KubernetesUnavailable
from phonefleet_operator.k8s.api import ApiCaller

__all__ = ["COMPONENT", "EVENT_DEFER_SECONDS", "EVENT_LANES", "EventPoster", "event_body"]

log = logging.getLogger(__name__)

COMPONENT = "phonefleet-operator"
_PREFIX = "phonefleet-"
_MAX_MESSAGE = 1024
#: Events posted at once (one object's always in the same lane, in order).
EVENT_LANES = 8
#: The longest a Normal Event waits for the passes' API calls to have no backlog.
EVENT_DEFER_SECONDS = 30.0
_BACKOFFS = (1.0, 2.0)


def event_body(
    obj: Mapping[str, Any], *, type_: str, reason: str, message: str, instance: str
) -> dict[str, Any]:
    """A core/v1 Event on ``obj`` (its apiVersion, kind and metadata name it)."""
    metadata = obj.get("metadata") or {}
    namespace = str(metadata.get("namespace") or "default")
    if len(message) > _MAX_MESSAGE:
        half = _MAX_MESSAGE // 2 - 2
        message = f"{message[:half]}...{message[-half:]}"
    now = datetime.now(UTC).isoformat()
    return {
        "metadata": {"namespace": namespace, "generateName": _PREFIX},
        "action": "Reconcile",
        "type": type_,
        "reason": reason,
        "message": message,
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "source": {"component": COMPONENT},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": metadata.get("name"),
            "uid": metadata.get("uid"),
            "namespace": namespace,
        },
        "firstTimestamp": now,
        "lastTimestamp": now,
        "eventTime": now,
    }


class EventPoster:
    """Queues Events and posts them from a few background lanes; one object's Events always go
    through the same lane, so they are posted in the order they were queued.

    With ``yield_to`` (the passes' caller), a Normal Event at the head of its lane waits while
    that caller has a backlog, at most ``defer_seconds`` after it was queued.
    """

    def __init__(
        self,
        caller: ApiCaller,
        instance: str | None = None,
        *,
        yield_to: ApiCaller | None = None,
        defer_seconds: float = EVENT_DEFER_SECONDS,
        owns_caller: bool = False,
    ) -> None:
        self._call = caller
        self._owns_caller = owns_caller
        self._instance = instance or socket.gethostname()
        self._yield_to = yield_to
        self._defer_seconds = defer_seconds
        # Each Event with the loop's time when it was queued.
        self._lanes: list[collections.deque[tuple[float, dict[str, Any]]]] = [
            collections.deque() for _ in range(EVENT_LANES)
        ]
        self._workers: list[asyncio.Task[None] | None] = [None] * EVENT_LANES
        # Warnings queued per lane, and an Event set while there is one: a Normal Event at the
        # head of the lane stops waiting for the backlog, so the Warning behind it is not held.
        self._warnings = [0] * EVENT_LANES
        self._urgent = [asyncio.Event() for _ in range(EVENT_LANES)]

    def post(self, obj: Mapping[str, Any], *, warning: bool, reason: str, message: str) -> None:
        """Queue an Event on ``obj``; it is posted in the background."""
        body = event_body(
            obj,
            type_="Warning" if warning else "Normal",
            reason=reason,
            message=message,
            instance=self._instance,
        )
        key = str(body["involvedObject"]["uid"] or body["involvedObject"]["name"])
        lane = zlib.crc32(key.encode()) % EVENT_LANES
        loop = asyncio.get_running_loop()
        self._lanes[lane].append((loop.time(), body))
        if warning:
            self._warnings[lane] += 1
            self._urgent[lane].set()
        worker = self._workers[lane]
        if worker is None or worker.done():
            self._workers[lane] = loop.create_task(self._drain(lane), name=f"events-{lane}")

    async def _drain(self, lane: int) -> None:
        queue = self._lanes[lane]
        loop = asyncio.get_running_loop()
        while queue:
            queued_at, body = queue.popleft()
            if body["type"] == "Warning":
                self._warnings[lane] -= 1
                if not self._warnings[lane]:
                    self._urgent[lane].clear()
            elif self._yield_to is not None:
                left = self._defer_seconds - (loop.time() - queued_at)
                if left > 0:
                    await self._defer(self._yield_to, self._urgent[lane], left)
            await self._post(body)

    @staticmethod
    async def _defer(yield_to: ApiCaller, urgent: asyncio.Event, left: float) -> None:
        """Wait for no backlog on ``yield_to``, a Warning queued behind, or ``left`` seconds."""
        if urgent.is_set():
            return
        waits = [
            asyncio.ensure_future(yield_to.quiet(within=left)),
            asyncio.ensure_future(urgent.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _post(self, body: dict[str, Any]) -> None:
        namespace = body["metadata"]["namespace"]
        for backoff in (*_BACKOFFS, None):
            try:
                await self._call(self._call.core.create_namespaced_event, namespace, body)
            except KubernetesUnavailable as error:
                if backoff is None:
                    log.warning("Posting Event %s failed, dropped: %s", body["reason"], error)
                    return
                await asyncio.sleep(backoff)
            except Exception as error:  # a 404 (namespace gone) or 409: nothing to retry
                log.warning("Posting Event %s failed, dropped: %s", body["reason"], error)
                return
            else:
                return

    async def close(self) -> None:
        """Stop posting (queued Events are dropped); close the caller if it is this poster's."""
        for worker in self._workers:
            if worker is not None:
                worker.cancel()
        await asyncio.gather(*(w for w in self._workers if w is not None), return_exceptions=True)
        if self._owns_caller:
            self._call.close()
