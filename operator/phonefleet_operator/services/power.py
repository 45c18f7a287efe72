"""The power step of a pass: whether the phone runs, and how often a booting phone is polled.

Geelark's answers cost budget (one shared rate limit for the whole account), so this step owns
the two memories that spare it: the last "running" answer per phone, reused while a binding
comes up, and the set of phones booting now, which stretches the boot polls of a large fleet.
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

#: How each Geelark power state is written into status.phone.status.
POWER_TEXT = {
    Power.RUNNING: PhoneStatus.RUNNING,
    Power.STARTING: PhoneStatus.STARTING,
    Power.SHUT_DOWN: PhoneStatus.STOPPED,
    Power.EXPIRED: PhoneStatus.EXPIRED,
}


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

    async def status(self, binding: PhoneBinding, phone_id: str, now: datetime) -> Power:
        """The phone's power state; a binding still coming up reuses a recent "running" answer.

        Until its pod is ready, a binding looks again every few seconds (ADB, then the pod).
        Asking Geelark each time whether the phone still runs would spend the account's budget on
        an answer known seconds ago: a "running" answer is trusted for ``running_recheck_seconds``,
        which is as long as a Running binding waits between two checks anyway. A Running
        binding's periodic pass always asks.
        """
        moment = now.timestamp()
        seen = self._running_seen_at.get(phone_id)
        if (
            seen is not None
            and moment - seen < self._settings.running_recheck_seconds
            and binding.status.phase != Phase.RUNNING
        ):
            return Power.RUNNING
        power = await self._power.status(phone_id)
        if power is Power.RUNNING:
            self._running_seen_at[phone_id] = moment
            self._off_since.pop(phone_id, None)
        else:
            self._running_seen_at.pop(phone_id, None)
        return power

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

    def tracked(self) -> int:
        """Entries kept about phones, all memories together (for the health report)."""
        return len(self._running_seen_at) + len(self._off_since) + len(self._booting)

    def stopped(self, phone_id: str) -> None:
        """The phone was stopped by us: its last "running" answer no longer holds."""
        self._running_seen_at.pop(phone_id, None)
        self._off_since.pop(phone_id, None)

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
        """Seconds until the next status poll of a booting phone: ``boot_poll_seconds``, or
        longer when so many phones boot at once that polling each that often would overrun the
        Geelark budget and hold back the ADB calls of the phones already up."""
        moment = now.timestamp()
        self._booting[phone_id] = moment
        self._booting.move_to_end(phone_id)
        self._forget_boots_before(moment - _BOOTING_FORGOTTEN_SECONDS)
        interval = self._power.poll_interval(len(self._booting))
        return max(self._settings.boot_poll_seconds, interval)
