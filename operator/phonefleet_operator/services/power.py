"""The power step of a pass: the held phone running, started if it is stopped, boots polled.

Geelark's answers cost budget (one shared rate limit for the whole account), so this step owns
the memories that spare it: the last "running" answer per phone, reused while a binding comes
up; the set of phones booting now, which stretches the boot polls of a large fleet; how long
Geelark's boots take (``boot_clock.py``), so that a phone started here is first asked about when
it should be up, not every ``boot_poll_seconds`` from its start, and while that is still a
guess, one batch of such polls at a time (a probe: "still starting" spares the others their
call); which phones' polls an ADB switch stands in for (a phone started here whose boot is due
is asked for its ADB switch directly: Geelark refuses it while the phone does not run, so the
switch answers the poll's question, see ``adb.py``); and the first "not running" answer about
a phone whose worker has its ADB data, which a second one must confirm before anything is cut
off (docs/reconcile.md, "A power state Geelark reports oddly").
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from phonefleet_operator.geelark import MAX_IDS_PER_CALL, Phone
from phonefleet_operator.geelark import PhoneStatus as Power
from phonefleet_operator.models import ConditionType, Phase, PhoneBinding, PhoneStatus
from phonefleet_operator.services.adb import AdbStep
from phonefleet_operator.services.boot_clock import BootClock
from phonefleet_operator.services.ports import PhonePower
from phonefleet_operator.services.report import Report
from phonefleet_operator.settings import OperatorSettings
from phonefleet_operator.waiting import event_within

__all__ = ["POWER_TEXT", "PowerStep"]

log = logging.getLogger(__name__)

# A phone not polled for this long no longer counts as booting (see _boot_poll_delay).
_BOOTING_FORGOTTEN_SECONDS = 30.0
# Longest a first poll waits for the probe in flight before it asks Geelark itself (a probe's
# call is bounded by the client's deadline and retries; this only keeps a stuck one from
# holding the others).
_PROBE_WAIT_SECONDS = 60.0

#: How each Geelark power state is written into status.phone.status.
POWER_TEXT = {
    Power.RUNNING: PhoneStatus.RUNNING,
    Power.STARTING: PhoneStatus.STARTING,
    Power.SHUT_DOWN: PhoneStatus.STOPPED,
    Power.EXPIRED: PhoneStatus.EXPIRED,
}


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


@dataclass
class _Probe:
    """First polls of phones started here, sent together while the boot clock is a guess."""

    answered: asyncio.Event = field(default_factory=asyncio.Event)
    members: int = 0


class PowerStep:
    """Brings held phones up, asking Geelark sparingly; shared by every binding of the operator."""

    def __init__(
        self,
        power: PhonePower,
        settings: OperatorSettings,
        adb: AdbStep,
        clock: Callable[[], datetime],
    ) -> None:
        self._power = power
        self._settings = settings
        # A phone that does not run has no ADB data worth keeping, and needs ADB switched on.
        self._adb = adb
        self._clock = clock
        # When Geelark last said the phone runs, per phone (in memory: a restart asks again).
        self._running_seen_at: dict[str, float] = {}
        # When each booting phone was last polled, oldest poll first (see _boot_poll_delay).
        self._booting: OrderedDict[str, float] = OrderedDict()
        # When Geelark first said a phone with a working worker does not run (see _confirmed_off).
        self._off_since: dict[str, float] = {}
        self.boots = BootClock(settings.boot_poll_seconds)
        # The probe in flight (see _ask), if any.
        self._probe: _Probe | None = None
        # Phones whose last ADB switch made in place of a status poll was refused (42002): their
        # next question is a status poll, which tells a phone booting from one stopped.
        self._switch_refused: set[str] = set()

    async def bring_up(
        self, binding: PhoneBinding, phone: Phone, report: Report, *, worker_ready: bool = False
    ) -> float | None:
        """The held phone running: None when it runs, else the seconds until the next pass.

        A phone that does not run loses its binding's ADB Secret (the data does not survive a
        restart for sure) and is started if it is stopped; the binding is Bound until it runs.
        While the worker has its ADB data, one answer that the phone does not run changes
        nothing (:meth:`_confirmed_off`). An expired phone puts the binding in Error.
        """
        s = self._settings
        power = await self._status(binding, phone.id, report.now, worker_ready=worker_ready)
        if (
            power is not Power.RUNNING
            and power is not Power.EXPIRED
            and report.provisioned_at() is not None
            and not self._confirmed_off(phone.id, report.now)
        ):
            # The worker has its ADB data and may be working: one odd answer changes nothing.
            log.info(
                "Geelark said phone %s of %s is %s: asking again before acting",
                phone.id,
                binding.namespaced_name,
                power.name,
            )
            return s.boot_poll_seconds
        report.phone(status=POWER_TEXT.get(power, PhoneStatus.UNKNOWN))
        if power is Power.EXPIRED:
            message = f"Phone {phone.id} has expired in Geelark: renew it, or bind another phone"
            report.condition(ConditionType.PHONE_READY, "False", "PhoneExpired", message)
            report.phase(Phase.ERROR, "PhoneExpired", message, warning=True)
            return s.error_recheck_seconds
        if power is not Power.RUNNING:
            # ADB data does not survive a restart for sure: fetch it afresh once the phone runs.
            await self._adb.drop_secret(binding, report)
            if power is Power.SHUT_DOWN or power is Power.STARTING:
                self._adb.booting(phone.id)
            if power is Power.SHUT_DOWN:
                started = await self._power.start(phone.id)
                self._started(phone.id, self._clock())
                report.phone(status=PhoneStatus.STARTING, live_view_url=started.url)
                report.event("StartedPhone", f"Started phone {phone.id}")
            message = f"Phone {phone.id} is starting"
            report.condition(ConditionType.PHONE_READY, "False", "PhoneStarting", message)
            report.phase(Phase.BOUND, "PhoneStarting", message)
            return self._boot_poll_delay(phone.id, report.now)
        self._booted(phone.id)
        return None

    def stopped(self, phone_id: str) -> None:
        """The phone was stopped by us: its last "running" answer no longer holds."""
        self._running_seen_at.pop(phone_id, None)
        self._off_since.pop(phone_id, None)
        self._switch_refused.discard(phone_id)
        self.boots.forget(phone_id)

    def forget(self, phone_id: str) -> None:
        """No binding drives the phone any more: drop everything known about it."""
        self._running_seen_at.pop(phone_id, None)
        self._off_since.pop(phone_id, None)
        self._booting.pop(phone_id, None)
        self._switch_refused.discard(phone_id)
        self.boots.forget(phone_id)

    def tracked(self) -> int:
        """Entries kept about phones, all memories together (for the health report)."""
        return (
            len(self._running_seen_at)
            + len(self._off_since)
            + len(self._booting)
            + len(self._switch_refused)
            + len(self.boots)
        )

    async def _status(
        self, binding: PhoneBinding, phone_id: str, now: datetime, *, worker_ready: bool = False
    ) -> Power:
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
        Geelark's word that the phone ran then, as good as a status answer. So is the
        binding's worker pod being ready (``worker_ready``): the worker is ready only while its
        Appium session on this very phone is open, and the pod changes, waking the binding, when
        that ends (in a large fleet, pods that ran long after their ADB read had their pass
        ask Geelark first, behind the account's pace: docs/scale.md, "Round 7b"). A Running
        binding's periodic pass always asks.

        A phone started here is "starting" without a call while the boot clock says its boot
        goes on (a pass woken early asks nothing); its answers teach the clock (see :meth:`_ask`).
        """
        moment = now.timestamp()
        if self._adb.found_not_running(phone_id):
            self._running_seen_at.pop(phone_id, None)  # an ADB read since said it does not run
            worker_ready = False
        seen = self._running_seen_at.get(phone_id)
        coming_up = binding.status.phase != Phase.RUNNING
        if coming_up and worker_ready:
            return Power.RUNNING
        if (
            seen is not None
            and moment - max(seen, _provisioned_at(binding)) < self._running_trusted_for(binding)
            and coming_up
        ):
            return Power.RUNNING
        if self.boots.remaining(phone_id, self._now()) > 0:
            return Power.STARTING  # started here, and its boot is not over by the clock yet
        power = await self._ask(phone_id)
        if power is None:
            return Power.STARTING  # a probe of phones started with it found them booting
        self.boots.saw(phone_id, power is Power.RUNNING, self._now())
        if power is Power.RUNNING:
            self._running_seen_at[phone_id] = moment
            self._off_since.pop(phone_id, None)
        else:
            self._running_seen_at.pop(phone_id, None)
        return power

    async def _ask(self, phone_id: str) -> Power | None:
        """Geelark's answer about the phone; None when a probe answered for it meanwhile.

        While the boot clock is a guess (:meth:`BootClock.proven`), the first polls of phones
        started here go one batch at a time: the first phones due form a probe (up to a full
        status call), the others wait for its answer, and then ask only if their boot is still
        due by the clock. A thousand phones started together cost one call per round of
        "still starting", not ten (round 4: 18 status calls for 1,000 phones, where 10 do).
        """
        probe = None
        while self.boots.timed(phone_id) and not self.boots.proven(self._now()):
            if self.boots.remaining(phone_id, self._now()) > 0:
                return None
            current = self._probe
            if current is None or current.answered.is_set():
                probe = self._probe = _Probe()
            elif current.members < MAX_IDS_PER_CALL:
                probe = current
            elif await event_within(current.answered, _PROBE_WAIT_SECONDS):
                continue  # answered: ask the clock again
            if probe is not None:
                probe.members += 1
            break
        try:
            return await self._question(phone_id)
        finally:
            if probe is not None:
                probe.answered.set()

    async def _question(self, phone_id: str) -> Power:
        """A status poll; for a phone started here whose boot is due, its ADB switch instead.

        Geelark switches ADB on only on a running phone: a switch it takes answers "running"
        (and its ADB is on its way: the status call is saved), a switch it refuses with 42002
        answers "starting". The question after a refused switch is a status poll: it tells a
        phone still booting from one that was stopped meanwhile (which is started again).
        """
        if (
            phone_id not in self._switch_refused
            and self.boots.timed(phone_id)
            and self._adb.switches_after_boot(phone_id)
        ):
            if await self._adb.switch_after_boot(phone_id, self._now()):
                return Power.RUNNING
            self._switch_refused.add(phone_id)
            return Power.STARTING
        self._switch_refused.discard(phone_id)
        return await self._power.status(phone_id)

    def _now(self) -> float:
        return self._clock().timestamp()

    def _running_trusted_for(self, binding: PhoneBinding) -> float:
        """How long a "running" answer stands for a binding on its way (see :meth:`_status`)."""
        s = self._settings
        phone = binding.status.phone
        if phone is not None and phone.adb_provisioned_at:
            return max(s.running_recheck_seconds, s.worker_unready_threshold_seconds)
        return s.running_recheck_seconds

    def _confirmed_off(self, phone_id: str, now: datetime) -> bool:
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

    def _started(self, phone_id: str, at: datetime) -> None:
        """We started the phone; its start returned at ``at`` (its boot is timed from then)."""
        self.boots.started(phone_id, at.timestamp())

    def _booted(self, phone_id: str) -> None:
        """The phone runs: it no longer counts as booting."""
        self._booting.pop(phone_id, None)

    def _boot_poll_delay(self, phone_id: str, now: datetime) -> float:
        """Seconds until the next status poll of a booting phone.

        A phone started here whose boot is expected to go on: until the boot clock says it is
        over (see :class:`BootClock`; its polls are spread by the starts, and while the clock is
        a guess they go one batch at a time). Any other: ``boot_poll_seconds``, longer when so
        many phones boot at once that polling each that often would overrun the Geelark budget
        and hold back the ADB calls of the phones already up."""
        moment = now.timestamp()
        self._booting[phone_id] = moment
        self._booting.move_to_end(phone_id)
        self._forget_boots_before(moment - _BOOTING_FORGOTTEN_SECONDS)
        remaining = self.boots.remaining(phone_id, self._now())
        if remaining > 0:
            return remaining
        interval = self._power.poll_interval(len(self._booting))
        return max(self._settings.boot_poll_seconds, interval)

    def _forget_boots_before(self, horizon: float) -> None:
        """Drop phones not polled since ``horizon``: from the oldest end, so a poll costs O(1)
        amortised instead of a pass over every booting phone (1,000 at a fleet's start)."""
        while self._booting:
            phone_id, polled = next(iter(self._booting.items()))
            if polled > horizon:
                return
            del self._booting[phone_id]
