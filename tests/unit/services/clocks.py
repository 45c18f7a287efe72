"""A clock the service tests move by hand, for the reconciler and the watch views alike."""

from __future__ import annotations

from datetime import datetime, timedelta

from conftest import NOW


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
