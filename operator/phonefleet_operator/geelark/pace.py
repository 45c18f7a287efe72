"""The account's call pace: at most so many Geelark calls in any rolling 60 s, in short bursts.

Geelark documents its limit as "200 requests a minute" (40007 when it is passed) and names a
40017 "too many requests" without defining it. The pace keeps both as one log of call times:

* **The minute.** No call starts while the last 60 s already hold ``per_minute`` calls (the
  operator's ``requests_per_minute``, never more than ``account_requests_per_minute``). A call
  counts from the moment it is sent until 60 s after its answer came back (or it failed): Geelark
  counts it when the request arrives, some time between the two, so a window that began at the
  send could let the next minute's call arrive less than 60 s after it, by one call's latency.
  In flight, a call holds its place in every window.
* **The instant.** No more than :data:`BURST_CALLS` calls start in any :data:`BURST_SECONDS`.
  What 40017 counts is not documented; the assumption here is a short-term rate (or the
  concurrency it implies), which a fleet's convergence, a few tens of batched calls, would
  otherwise send in the same moment. The client retries a 40017 with back-off in any case.

A pace is therefore exactly what it says and what Geelark counts: a 45-call convergence goes at
the speed of its batches, ten calls a second at most, instead of a leaky bucket's steady trickle,
and no 60 s ever sees more than ``per_minute`` calls (the bucket allowed 7/6 of it).

Calls wait in the order they came (one asyncio lock: the call at its head waits for the window,
the others for the lock), so a retry or a listing page never jumps ahead of an older call.
:meth:`CallPace.has_room` and :meth:`CallPace.is_quiet` answer without waiting, for the batcher
(``gateway.py``) to decide whether a partial batch goes now or keeps gathering.

``aiolimiter`` (the leaky bucket it replaces) has no window; ``limits``' moving window answers
"may I, now?" without waiting or counting calls in flight, on the wall clock; ``pyrate-limiter``
waits by polling and has no call in flight either. This small log does all of it on the event
loop's clock (virtual in the unit tests).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from typing import Final

from phonefleet_operator.waiting import event_within

__all__ = ["BURST_CALLS", "BURST_SECONDS", "RESERVE_FRACTION", "WINDOW_SECONDS", "CallPace"]

#: Geelark's window: its limit is a number of calls a minute.
WINDOW_SECONDS: Final = 60.0
#: At most this many calls start in any :data:`BURST_SECONDS` (the undefined 40017's guard).
BURST_CALLS: Final = 10
BURST_SECONDS: Final = 1.0
#: A quiet account keeps at least this fraction of the minute's calls free (see ``is_quiet``).
RESERVE_FRACTION: Final = 6
#: The shortest wait: a slot due "now" by float rounding is surely free a millisecond later.
_MIN_WAIT_SECONDS: Final = 0.001


class CallPace:
    """At most ``per_minute`` calls in any 60 s and ``burst`` in any :data:`BURST_SECONDS`.

    Use it as ``await pace.acquire()`` before a call is sent and ``pace.release()`` once it is
    over, whatever the outcome (in a ``finally``). One instance is the account's budget.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        burst: int = BURST_CALLS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` is the event loop's by default (virtual under looptime in the tests)."""
        if per_minute < 1 or burst < 1:
            raise ValueError("a pace allows at least one call a minute, one at a time")
        self.per_minute = per_minute
        self.burst = min(burst, per_minute)
        #: Calls of the last 60 s a quiet account still has free (its own call included).
        self.reserve = max(1, math.ceil(per_minute / RESERVE_FRACTION))
        self._clock = clock
        self._in_flight = 0
        self._ended: deque[float] = deque()  # end times of the calls of the last 60 s, in order
        self._started: deque[float] = deque()  # start times of the last BURST_SECONDS, in order
        self._queue = asyncio.Lock()  # FIFO: the call at its head is the one that waits
        self._changed = asyncio.Event()  # a call ended: the head may look again

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def _forget(self, now: float) -> None:
        while self._ended and self._ended[0] <= now - WINDOW_SECONDS:
            self._ended.popleft()
        while self._started and self._started[0] <= now - BURST_SECONDS:
            self._started.popleft()

    def in_window(self) -> int:
        """Calls that count in the 60 s ending now: those in flight and those ended in it."""
        self._forget(self._now())
        return self._in_flight + len(self._ended)

    def _free(self, now: float) -> tuple[int, int]:
        """Calls the minute and the instant still take now."""
        self._forget(now)
        return (
            self.per_minute - self._in_flight - len(self._ended),
            self.burst - len(self._started),
        )

    def has_room(self, calls: int = 1) -> bool:
        """Whether ``calls`` calls could start now without waiting (as many as an instant takes,
        if more are asked for), with no call queued ahead of them."""
        if self._queue.locked():
            return False
        minute, instant = self._free(self._now())
        return minute >= calls and instant >= min(calls, self.burst)

    def is_quiet(self) -> bool:
        """Whether the account is quiet: no call queued and :attr:`reserve` calls of the minute
        free. A partial batch that would fill if it waited goes only then (``gateway.py``).

        The instant is not asked: while the minute has room, a status poll that waited for a
        quiet second would only be late (make bench, N = 1,000: polls 6 s apart instead of 3,
        the boot learnt later, every ADB switch after it too)."""
        if self._queue.locked():
            return False
        minute, _ = self._free(self._now())
        return minute >= self.reserve

    def _wait_seconds(self, now: float) -> float | None:
        """How long until the next call may start: 0 now, None once a call in flight ends."""
        minute, instant = self._free(now)
        waits = [0.0]
        if minute < 1:
            # The ended calls that must leave the window: the oldest ones. If the calls in
            # flight fill it alone, nothing leaves before one of them ends.
            expiring = 1 - minute
            if expiring > len(self._ended):
                return None
            waits.append(self._ended[expiring - 1] + WINDOW_SECONDS - now)
        if instant < 1:
            waits.append(self._started[-self.burst] + BURST_SECONDS - now)
        return max(waits)

    async def acquire(self) -> None:
        """Wait for the call's turn and its room in the window, then count it as sent."""
        async with self._queue:
            while (wait := self._wait_seconds(self._now())) is None or wait > 0:
                self._changed.clear()
                if wait is None:
                    await self._changed.wait()
                else:
                    await event_within(self._changed, max(wait, _MIN_WAIT_SECONDS))
            now = self._now()
            self._in_flight += 1
            self._started.append(now)

    def release(self) -> None:
        """The call is over (answered, failed or never sent): it counts 60 s more from now."""
        now = self._now()
        self._in_flight -= 1
        self._ended.append(now)
        self._forget(now)
        self._changed.set()
