"""The pod lane: how many bindings may be between their ADB Secret's write and their pod's
creation at once.

The operator's API calls share one pool of threads, served first come first served. When a
large fleet's ADB reads come in (100 phones a call, a few calls a second), every binding read
queues its Secret at once: at N = 5,000 thousands of Secret POSTs stood in the pool's queue, each
binding's pod POST queued behind all of them once its Secret was written, and the status write
of a binding whose pod ran queued behind those (docs/scale.md, "Round 7b": a pod came a median
71 s after its ADB read, and a binding was Ready a median 71 s after its pod ran). The lane lets
a few bindings at a time write their Secret, and each goes on to create its pod in a short queue:
the pool stays busy (the lane is wider than the pool), pods are created in the order their data
was read, and what a binding further on awaits (its pod's creation, its Running status) waits
behind a lane's width of calls, not behind the whole fleet. The others wait in the event loop,
holding nothing but their ADB data.

Entered by the pass that writes the Secret (``adb.py``), left when that pass ends, whatever it
did (``reconcile.py``); a pass waiting to enter holds no slot, and a cancelled one leaves none.
"""

from __future__ import annotations

import asyncio

__all__ = ["PodLane"]


class PodLane:
    """At most ``width`` bindings at a time from their Secret's write to their pass's end."""

    def __init__(self, width: int) -> None:
        self._slots = asyncio.Semaphore(width)
        self._inside: set[str] = set()

    async def enter(self, uid: str) -> None:
        """Wait for a slot for the binding ``uid`` (at once if its pass already has one)."""
        if uid in self._inside:
            return
        await self._slots.acquire()
        self._inside.add(uid)

    def leave(self, uid: str) -> None:
        """The pass of ``uid`` ended: its slot, if it took one, goes to the next in line."""
        if uid in self._inside:
            self._inside.discard(uid)
            self._slots.release()

    def __len__(self) -> int:
        return len(self._inside)
