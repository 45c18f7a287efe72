"""How long Geelark takes to boot a phone, learned from the phones this operator starts.

The power step (``power.py``) asks it when a phone started here is first worth polling: when its
boot is expected to be over, not every ``boot_poll_seconds`` from its start; and, while no boot
was seen to end lately, whether a poll is a *probe* (a guess whose answer tells the phones
started with it whether their boots are over too). One estimate for the whole account, and one
timer per phone whose boot is being timed.
"""

from __future__ import annotations

__all__ = ["BootClock"]

#: A started phone not seen running within this long no longer teaches the boot time, and a
#: boot seen to end this long ago no longer proves the estimate.
_BOOT_FORGOTTEN_SECONDS = 600.0
#: How much one timely "running" answer lowers the estimate; at most once per ``floor`` seconds.
_LOWER_FACTOR = 0.99


class BootClock:
    """How long a phone takes from its start to Geelark's first "running" answer, learned.

    Each phone this operator starts is timed from the moment its start call returned. Its first
    poll is due when the expected boot has passed: one status call per batch of phones started
    together when the guess is right, where polling every ``boot_poll_seconds`` from the start
    costs one per interval.

    The expectation starts at ``floor`` (``boot_poll_seconds``) and moves with what the first
    polls find, and while no boot was proven, with every poll of a timed phone (once proven,
    later polls of a slow phone teach nothing: one outlier must not hold back the fleet):

    - a phone still starting on a timely first poll, made at ``elapsed`` into its boot, raises it
      to ``elapsed + floor`` at once, so the phones started with it (not yet polled) wait that long
      without a call; a whole wave found starting raises it once, not once per phone;
    - a phone running on a timely first poll *proves* the boot (:meth:`proven`) and lowers the
      estimate by a hundredth, at most once per ``floor`` seconds (a wave answered together is
      one lesson, not a thousand: round 4 lowered it per phone, and a thousand phones dragged
      it to the floor for the next wave); a poll that came late (a busy budget stretches polls)
      says nothing about a shorter boot and leaves it alone.
    """

    def __init__(self, floor: float, guess: float | None = None) -> None:
        self._floor = floor
        self.expected = max(floor, guess if guess is not None else floor)
        # Per phone started here: when its start returned, and the latest elapsed time at
        # which a poll still found it starting (0 if none did yet).
        self._started: dict[str, tuple[float, float]] = {}
        # When a timely first poll last found a phone started here running (None: never).
        self._proven_at: float | None = None
        # When the estimate was last lowered.
        self._lowered_at: float | None = None

    def __len__(self) -> int:
        return len(self._started)

    def started(self, phone_id: str, at: float) -> None:
        """A start of the phone returned at ``at``: time its boot."""
        self._started[phone_id] = (at, 0.0)

    def forget(self, phone_id: str) -> None:
        """The phone's boot is no longer timed (stopped, or let go)."""
        self._started.pop(phone_id, None)

    def timed(self, phone_id: str) -> bool:
        """Whether the phone's boot is timed here (started here, not seen running since)."""
        return phone_id in self._started

    def remaining(self, phone_id: str, now: float) -> float:
        """Seconds until the phone's boot is expected to be over (0 if not timed here)."""
        timed = self._started.get(phone_id)
        if timed is None:
            return 0.0
        return max(0.0, self.expected - (now - timed[0]))

    def proven(self, now: float) -> bool:
        """Whether a boot was seen to end on time lately: the estimate is no longer a guess.

        Until then a first poll is a probe: the power step sends one batch of them at a time,
        and the answer (still starting: the estimate is raised) spares the polls of the phones
        started with it.
        """
        return self._proven_at is not None and now - self._proven_at < _BOOT_FORGOTTEN_SECONDS

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
        # While the clock guesses, every answer teaches: "starting" at any time is a boot longer
        # than that (the probes' members are asked round after round; a busy event loop makes
        # them late, and a late probe that taught nothing would be followed by another at once).
        # Once a boot is proven, only a timely first poll does: an outlier, or a poll the budget
        # stretched, must not move the estimate for the whole fleet.
        guessing = not self.proven(now)
        timely = still_starting_at == 0.0 and elapsed <= self.expected + self._floor
        if not running:
            self._started[phone_id] = (began, elapsed)
            if guessing or timely:
                # Polled when expected and still booting: so are the phones started with it.
                self.expected = max(self.expected, elapsed + self._floor)
            return
        del self._started[phone_id]
        if guessing or timely:
            self._proven_at = now
        if timely and (self._lowered_at is None or now - self._lowered_at >= self._floor):
            self._lowered_at = now
            self.expected = max(self._floor, self.expected * _LOWER_FACTOR)
