"""Results of the API and watch threads handed to the event loop in batches.

``loop.call_soon_threadsafe`` writes a byte to the loop's self-pipe on every call, and the thread
then waits to take the GIL back from the busy event loop. The operator's threads hand over one
result per API answer and one change per watch event: at N = 5,000 these hand-overs were about a
third of the threads' samples and 6 % of the event loop's busy time (docs/scale.md, round 4).
A :class:`Handoff` wakes the loop once for everything the threads post before the loop takes it.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable

__all__ = ["Handoff"]

#: Callbacks run in one turn of the event loop at most: a relist of thousands of objects leaves
#: the loop to its other callbacks between batches.
BATCH = 500


class Handoff:
    """Runs callbacks posted from any thread on ``loop``, in the order they were posted."""

    def __init__(self, loop: asyncio.AbstractEventLoop, batch: int = BATCH) -> None:
        self.loop = loop
        self._batch = batch
        self._pending: collections.deque[Callable[[], None]] = collections.deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def post(self, callback: Callable[[], None]) -> None:
        """Queue ``callback``; wake the loop only if no turn is scheduled yet. Raises
        RuntimeError when the loop is closed (as ``call_soon_threadsafe`` does)."""
        with self._lock:
            self._pending.append(callback)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            with self._lock:
                self._pending.clear()
                self._scheduled = False
            raise

    def post_first(self, callbacks: list[Callable[[], None]]) -> None:
        """Queue ``callbacks`` before everything pending (on the loop's thread: what an ended
        thread posted and the loop did not run yet comes after them)."""
        if not callbacks:
            return
        with self._lock:
            self._pending.extendleft(reversed(callbacks))
            if self._scheduled:
                return
            self._scheduled = True
        self.loop.call_soon(self._drain)

    def _drain(self) -> None:
        with self._lock:
            taken = [self._pending.popleft() for _ in range(min(self._batch, len(self._pending)))]
            more = bool(self._pending)
            self._scheduled = more
        for callback in taken:
            callback()
        if more:
            self.loop.call_soon(self._drain)
