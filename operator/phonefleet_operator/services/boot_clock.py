"""How long Geelark takes to boot a phone, learned from the phones this operator starts.

The power step (``power.py``) asks it when a phone started here is first worth polling: when its
boot is expected to be over, not every ``boot_poll_seconds`` from its start. One estimate for the
whole account, and one timer per phone whose boot is being timed.
"""

from __future__ import annotations

__all__ = ["BootClock"]

#: A started phone not seen running within this long no longer teaches the boot time.
_BOOT_FORGOTTEN_SECONDS = 600.0


class BootClock:
    """How long a phone takes from its start to Geelark's first "running" answer, learned.

    Each phone this operator starts is timed from the moment its start call returned. Its first
    poll is due when the expected boot has passed: one status call per phone when the guess is
    right, where polling every ``boot_poll_seconds`` from the start costs one per interval.

    The expectation starts at ``floor`` (``boot_poll_seconds``: polls as often as before, so a
    quick boot waits for nothing) and moves with what the polls find, the way a quantile is
    tracked from a stream: a phone still starting when polled at or after the expected time
    raises it towards what that phone took (by half the gap: a guess that is too short costs a
    call per phone, so the first phones of a fleet teach the others), and a phone found running
    on a timely first poll lowers it by a hundredth (a guess that is too long costs only
    latency, and a hundred phones booted together must not halve it). A poll that came late (a
    busy budget stretches boot polls) says nothing about a shorter boot and leaves it alone.
    """

    def __init__(self, floor: float, guess: float | None = None) -> None:
        self._floor = floor
        self.expected = max(floor, guess if guess is not None else floor)
        # Per phone started here: when its start returned, and the latest elapsed time at
        # which a poll still found it starting (0 if none did yet).
        self._started: dict[str, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self._started)

    def started(self, phone_id: str, at: float) -> None:
        """A start of the phone returned at ``at``: time its boot."""
        self._started[phone_id] = (at, 0.0)

    def forget(self, phone_id: str) -> None:
        """The phone's boot is no longer timed (stopped, or let go)."""
        self._started.pop(phone_id, None)

    def remaining(self, phone_id: str, now: float) -> float:
        """Seconds until the phone's boot is expected to be over (0 if not timed here)."""
        timed = self._started.get(phone_id)
        if timed is None:
            return 0.0
        return max(0.0, self.expected - (now - timed[0]))

    def saw(self, phone_id: str, running: bool, now: float) -> None:
        """A status poll found the phone running (or still starting) at ``now``."""
        timed = self._started.get(phone_id)
        if timed is None:
            return
        began, still_starting_at = timed
        elapsed = now - began
        if elapsed > _BOOT_FORGOTTEN_SECONDS:
            del self._started[phone_id]
            return
        if not running:
            self._started[phone_id] = (began, elapsed)
            return
        del self._started[phone_id]
        if still_starting_at >= self.expected:
            # Polled too early: this boot took between still_starting_at and elapsed.
            self.expected += (min(elapsed, still_starting_at + self._floor) - self.expected) / 2
        elif still_starting_at == 0.0 and elapsed <= self.expected + self._floor:
            self.expected = max(self._floor, self.expected * 0.99)
