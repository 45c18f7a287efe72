"""The power step of a pass: whether the phone runs, and how often a booting phone is polled.

Geelark's answers cost budget (one shared rate limit for the whole account), so this step owns
the memories that spare it: the last "running" answer per phone, reused while a binding comes
up; the set of phones booting now, which stretches the boot polls of a large fleet; and how long
Geelark's boots take (:class:`BootClock`), so that a phone started here is first asked about when
it should be up, not every ``boot_poll_seconds`` from its start.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from phonefleet_operator.geelark import PhoneStatus as Power
from phonefleet_operator.models import Phase, PhoneBinding, PhoneStatus
from phonefleet_operator.services.ports import PhonePower
from phonefleet_operator.settings import OperatorSettings

__all__ = ["POWER_TEXT", "PowerStep"]

# A phone not polled for this long no longer counts as booting (see boot_poll_delay).
_BOOTING_FORGOTTEN_SECONDS = 30.0
#: A started phone not seen running within this long no longer teaches the boot time.
_BOOT_FORGOTTEN_SECONDS = 600.0

#: How each Geelark power state is written into status.phone.status.
POWER_TEXT = {
    Power.RUNNING: PhoneStatus.RUNNING,
    Power.STARTING: PhoneStatus.STARTING,
    Power.SHUT_DOWN: PhoneStatus.STOPPED,
    Power.EXPIRED: PhoneStatus.EXPIRED,
}


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


def _provisioned_at(binding: PhoneBinding) -> float:
    """When the binding's ADB data was last read from Geelark (0 if it was not)."""
    phone = binding.status.phone
    text = phone.adb_provisioned_at if phone is not None else None
    if not text:
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:  # not written by us: it vouches for nothing
        return 0.0


class PowerStep:
    """Asks Geelark whether phones run, sparingly; shared by every binding of the operator."""

    def __init__(self, power: PhonePower, settings: OperatorSettings) -> None:
        self._power = power
        self._settings = settings
        # When Geelark last said the phone runs, per phone (in memory: a restart asks again).
        self._running_seen_at: dict[str, float] = {}
        # When each booting phone was last polled, oldest poll first (see boot_poll_delay).
        self._booting: OrderedDict[str, float] = OrderedDict()
        # When Geelark first said a phone with a working worker does not run (see confirmed_off).
        self._off_since: dict[str, float] = {}
        self.boots = BootClock(settings.boot_poll_seconds)

    async def status(self, binding: PhoneBinding, phone_id: str, now: datetime) -> Power:
        """The phone's power state; a binding still coming up reuses a recent "running" answer.

        Until its pod is ready, a binding looks again every few seconds (ADB, then the pod).
        Asking Geelark each time whether the phone still runs would spend the account's budget on
        an answer known seconds ago: a "running" answer is trusted for ``running_recheck_seconds``,
        which is as long as a Running binding waits between two checks anyway. Once the ADB
        Secret is written, the binding waits only for its pod, and a pod that stays not ready
        for ``worker_unready_threshold_seconds`` sends it to Geelark anyway (its ADB data is
        fetched again): the answer is trusted that long, if longer (in a large fleet the pods
        come up at the API server's pace, and each re-ask while they do is a call). The ADB
        data read that the Secret was written from (``status.phone.adbProvisionedAt``) is
        Geelark's word that the phone ran then, as good as a status answer. A Running
        binding's periodic pass always asks.
        """
        moment = now.timestamp()
        seen = self._running_seen_at.get(phone_id)
        if (
            seen is not None
            and moment - max(seen, _provisioned_at(binding)) < self._running_trusted_for(binding)
            and binding.status.phase != Phase.RUNNING
        ):
            return Power.RUNNING
        power = await self._power.status(phone_id)
        self.boots.saw(phone_id, power is Power.RUNNING, moment)
        if power is Power.RUNNING:
            self._running_seen_at[phone_id] = moment
            self._off_since.pop(phone_id, None)
        else:
            self._running_seen_at.pop(phone_id, None)
        return power

    def _running_trusted_for(self, binding: PhoneBinding) -> float:
        """How long a "running" answer stands for a binding on its way (see :meth:`status`)."""
        s = self._settings
        phone = binding.status.phone
        if phone is not None and phone.adb_provisioned_at:
            return max(s.running_recheck_seconds, s.worker_unready_threshold_seconds)
        return s.running_recheck_seconds

    def _forget_boots_before(self, horizon: float) -> None:
        """Drop phones not polled since ``horizon``: from the oldest end, so a poll costs O(1)
        amortised instead of a pass over every booting phone (1,000 at a fleet's start)."""
        while self._booting:
            phone_id, polled = next(iter(self._booting.items()))
            if polled > horizon:
                return
            del self._booting[phone_id]

    def forget(self, phone_id: str) -> None:
        """No binding drives the phone any more: drop everything known about it."""
        self._running_seen_at.pop(phone_id, None)
        self._off_since.pop(phone_id, None)
        self._booting.pop(phone_id, None)
        self.boots.forget(phone_id)

    def tracked(self) -> int:
        """Entries kept about phones, all memories together (for the health report)."""
        return (
            len(self._running_seen_at) + len(self._off_since) + len(self._booting) + len(self.boots)
        )

    def stopped(self, phone_id: str) -> None:
        """The phone was stopped by us: its last "running" answer no longer holds."""
        self._running_seen_at.pop(phone_id, None)
        self._off_since.pop(phone_id, None)
        self.boots.forget(phone_id)

    def started(self, phone_id: str, at: datetime) -> None:
        """We started the phone; its start returned at ``at`` (its boot is timed from then)."""
        self.boots.started(phone_id, at.timestamp())

    def confirmed_off(self, phone_id: str, now: datetime) -> bool:
        """Whether "not running" is confirmed for a phone whose worker has its ADB data.

        Cutting a working worker off (its ADB Secret dropped, the binding back to Bound) on one
        odd answer would make a fleet flap with every glitch of Geelark's. So it takes two
        answers that the phone does not run (stopped, starting or a code we do not know), at
        least ``boot_poll_seconds`` apart with no "running" between them. The caller asks again
        after ``boot_poll_seconds``; a real stop or reboot costs that much more, no more.
        """
        moment = now.timestamp()
        first = self._off_since.setdefault(phone_id, moment)
        if moment - first < self._settings.boot_poll_seconds:
            return False
        del self._off_since[phone_id]
        return True

    def booted(self, phone_id: str) -> None:
        """The phone runs: it no longer counts as booting."""
        self._booting.pop(phone_id, None)

    def boot_poll_delay(self, phone_id: str, now: datetime) -> float:
        """Seconds until the next status poll of a booting phone: ``boot_poll_seconds``; longer
        while the boot of a phone started here is expected to go on (see :class:`BootClock`);
        longer still when so many phones boot at once that polling each that often would overrun
        the Geelark budget and hold back the ADB calls of the phones already up."""
        moment = now.timestamp()
        self._booting[phone_id] = moment
        self._booting.move_to_end(phone_id)
        self._forget_boots_before(moment - _BOOTING_FORGOTTEN_SECONDS)
        interval = self._power.poll_interval(len(self._booting))
        return max(
            self._settings.boot_poll_seconds, interval, self.boots.remaining(phone_id, moment)
        )
