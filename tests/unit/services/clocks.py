"""A clock the service tests move by hand, for the reconciler and the watch views alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: When every service test starts.
NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


class Clock:
    """Time starts at NOW and moves only when the test says so."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)

    def timestamp(self) -> float:
        """Now as seconds since the epoch (the views' clock)."""
        return self.now.timestamp()
