"""The account's request budget: 200 calls per rolling minute (40007) and 24,000 per hour (40014).

Geelark documents the limits "per API" but this project treats them as one budget for the whole
account, so every Open API call that passed authentication counts, whatever its endpoint. The
windows roll (the stricter reading of "200 per minute"): a call is refused when the previous
60 s already hold the allowance, so a client whose bursts plus refill exceed 200 in any 60 s gets
40007 here. Refused calls do not consume budget. Hitting the hourly limit locks the account for
`lock_seconds` (Geelark: 2 hours).
"""

from __future__ import annotations

from collections import deque

from .codes import Code

MINUTE = 60.0
HOUR = 3_600.0


class RollingWindow:
    """Timestamps of events in the last `length` seconds."""

    def __init__(self, length: float) -> None:
        self.length = length
        self._times: deque[float] = deque()

    def count(self, now: float) -> int:
        """Events in (now - length, now]."""
        horizon = now - self.length
        times = self._times
        while times and times[0] <= horizon:
            times.popleft()
        return len(times)

    def add(self, now: float) -> int:
        """Record an event at `now` and return the count in the window including it."""
        self._times.append(now)
        return self.count(now)

    def clear(self) -> None:
        """Forget every event."""
        self._times.clear()


class RateLimiter:
    """Decides whether the account may make one more call now."""

    def __init__(self, lock_seconds: float) -> None:
        self.lock_seconds = lock_seconds
        self._minute = RollingWindow(MINUTE)
        self._hour = RollingWindow(HOUR)
        self._locked_until: float | None = None

    def admit(self, now: float, per_minute: int | None, per_hour: int | None) -> Code:
        """Code.OK and one unit of budget spent, or the code that refuses the call."""
        if self._locked_until is not None:
            if now < self._locked_until:
                return Code.HOURLY_LIMIT
            self._locked_until = None
        if per_hour is not None and self._hour.count(now) >= per_hour:
            self._locked_until = now + self.lock_seconds
            return Code.HOURLY_LIMIT
        if per_minute is not None and self._minute.count(now) >= per_minute:
            return Code.RATE_LIMITED
        self._minute.add(now)
        self._hour.add(now)
        return Code.OK

    def reset(self) -> None:
        """Give the account a fresh budget and lift any lock."""
        self._minute.clear()
        self._hour.clear()
        self._locked_until = None
