"""Clocks the simulator reads: the real monotonic clock, or a manual one that tests advance."""

from __future__ import annotations

import threading
from collections.abc import Callable

Clock = Callable[[], float]
"""Seconds on a monotonic scale; only differences between readings matter."""


class ManualClock:
    """A clock that moves only when told to, safe to advance from another thread.

    Pass it as `SimulatorConfig(clock=...)` to make boot delays, ADB delays and rate-limit
    windows deterministic: `clock.advance(60)` instead of waiting a minute.
    """

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds` (never backwards)."""
        if seconds < 0:
            raise ValueError("a clock never runs backwards")
        with self._lock:
            self._now += seconds
