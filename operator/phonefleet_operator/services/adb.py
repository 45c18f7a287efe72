"""The ADB step of a pass: switch ADB on, fetch its endpoint, write and drop the ADB Secret.

The Secret is written, never read: the operator needs no right to read Secrets outside its own
namespace. ``status.phone.adbProvisionedAt`` records that it was written for the phone's current
power-on. The step runs once the power step (``power.py``) found the phone running, and ends with
PhoneReady True; a pass that only switched ADB on writes no status (:func:`_hold_back`).

For a phone started here whose boot should be over, the power step asks for the ADB switch
instead of the phone's status (:meth:`AdbStep.switch_after_boot`): Geelark switches ADB on only
on a running phone and refuses a booting one (42002), so the switch answers the status poll's
question and saves its call. The first read after such a switch checks that reading of
Geelark's: a read that says 42002 shows a switch taken from a phone that did not run, and the
operator goes back to asking the status first (:attr:`AdbStep.switch_proves_running`).
"""

from __future__ import annotations

import logging

from phonefleet_operator.errors import PhoneNotReady
from phonefleet_operator.geelark import PHONE_NOT_RUNNING, Phone
from phonefleet_operator.models import AdbConnection, ConditionType, Phase, PhoneBinding, rfc3339
from phonefleet_operator.render import adb_secret_name, build_adb_secret
from phonefleet_operator.services.jobs.tokens import JobTokens
from phonefleet_operator.services.ports import Kube, PhonePower
from phonefleet_operator.services.report import Report
from phonefleet_operator.settings import OperatorSettings

__all__ = ["ADB_ENABLE_SECONDS", "AdbStep", "AdbSwitchedOn"]

log = logging.getLogger(__name__)

#: How long Geelark takes to make ADB usable after it was switched on ("about 3 s").
ADB_ENABLE_SECONDS = 3.0


class AdbSwitchedOn(PhoneNotReady):
    """ADB of a phone seen booting was just switched on: its data can be read in a few seconds."""


class AdbStep:
    """Provisions each binding's ADB Secret; shared by every binding of the operator."""

    def __init__(
        self,
        power: PhonePower,
        kube: Kube,
        settings: OperatorSettings,
        job_tokens: JobTokens | None = None,
    ) -> None:
        self._power = power
        self._kube = kube
        self._settings = settings
        self._job_tokens = job_tokens or JobTokens()
        # When ADB was last switched on, per phone (in memory: a restart asks once more).
        self._enabled_at: dict[str, float] = {}
        # Phones seen booting whose ADB was not switched on since.
        self._off_after_boot: set[str] = set()
        # Phones whose ADB the power step just switched on in place of a status poll: the same
        # pass reads nothing yet (its data is usable about 3 s later).
        self._switched_unread: set[str] = set()
        # Phones switched on in place of a status poll and not read since: their first read
        # tells whether the switch proved that they ran.
        self._stood_in: set[str] = set()
        # Phones a read found not running: the power step asks Geelark about them again.
        self._not_running: set[str] = set()
        #: Whether Geelark takes an ADB switch only from a running phone (as its documentation
        #: and the simulator have it); cleared for good by the first read that shows otherwise.
        self.switch_proves_running = True

    async def ready(self, binding: PhoneBinding, phone: Phone, report: Report) -> float | None:
        """The running phone's ADB Secret written: None once it is (PhoneReady True), else the
        seconds until ADB is asked about again (the binding stays Bound meanwhile)."""
        if report.provisioned_at() is None:
            try:
                await self._provision(binding, phone, report)
            except PhoneNotReady as error:
                report.condition(ConditionType.PHONE_READY, "False", "AdbStarting", str(error))
                report.phase(Phase.BOUND, "AdbStarting", f"ADB of phone {phone.id} is starting")
                if isinstance(error, AdbSwitchedOn):
                    _hold_back(report)
                # Enabling ADB takes Geelark about 3 s (the fault's delay): polling sooner only
                # spends the account's budget on "not yet".
                return max(self._settings.boot_poll_seconds, float(error.delay or 0))
        report.condition(
            ConditionType.PHONE_READY,
            "True",
            "PhoneRunning",
            f"Phone {phone.id} runs and its ADB endpoint is provisioned",
        )
        return None

    async def _provision(self, binding: PhoneBinding, phone: Phone, report: Report) -> None:
        """Write the phone's ADB endpoint into the binding's Secret, enabling ADB when it is off.

        Enabling takes Geelark about 3 s and asking again restarts that delay, so ADB is switched
        on once and then only polled; it is switched on again only if it stayed off for long.
        A phone seen booting (:meth:`booting`) has it switched on without asking first.
        Raises PhoneNotReady while ADB comes up.
        """
        now = report.now.timestamp()
        if phone.id in self._switched_unread:
            # Switched on by the power step in this pass, in place of its status poll.
            self._switched_unread.discard(phone.id)
            raise AdbSwitchedOn(
                f"ADB of phone {phone.id} was switched on", delay=ADB_ENABLE_SECONDS
            )
        if phone.id in self._off_after_boot:
            # Seen booting: ADB starts off (or is switched on again for nothing but 3 s), so
            # asking for its data first would only spend a call on "not enabled".
            await self._power.enable_adb(phone.id)
            self._off_after_boot.discard(phone.id)
            self._enabled_at[phone.id] = now
            raise AdbSwitchedOn(
                f"ADB of phone {phone.id} was switched on", delay=ADB_ENABLE_SECONDS
            )
        stood_in = phone.id in self._stood_in
        self._stood_in.discard(phone.id)
        try:
            endpoint = await self._power.adb_endpoint(phone.id)
        except PhoneNotReady as error:
            if error.code == PHONE_NOT_RUNNING:
                self._found_not_running(phone.id, stood_in=stood_in)
                raise
            asked = self._enabled_at.get(phone.id)
            if (
                stood_in
                or asked is None
                or now - asked >= self._settings.adb_enable_timeout_seconds
            ):
                # After a switch made in place of a status poll, "not enabled" may be a switch
                # Geelark dropped while the boot ended: switched again at once, that one time.
                await self._power.enable_adb(phone.id)
                self._enabled_at[phone.id] = now
            raise
        self._enabled_at.pop(phone.id, None)
        connection = AdbConnection(
            ip=endpoint.ip, port=str(endpoint.port), password=endpoint.password, phone_id=phone.id
        )
        token = self._job_tokens.token_for(binding.namespace, binding.name, binding.uid)
        await self._kube.put_secret(build_adb_secret(binding, connection, token))
        report.phone(adb_provisioned_at=rfc3339(report.now))
        report.event(
            "ProvisionedAdb",
            f"Wrote ADB connection data of phone {phone.id} to Secret "
            f"{adb_secret_name(binding.name)}",
        )

    async def reprovision(self, phone_id: str, report: Report) -> None:
        """Switch ADB on again and fetch fresh data on the next passes (a stuck endpoint).

        Switching ADB on again clears a stuck endpoint (code 50000 in Geelark's words); the next
        passes poll for the new data and replace the Secret's content.
        """
        report.phone(adb_provisioned_at=None)
        await self._power.enable_adb(phone_id)
        self._enabled_at[phone_id] = report.now.timestamp()

    def booting(self, phone_id: str) -> None:
        """The phone was seen starting or stopped: once it runs, switch its ADB on at once."""
        self._off_after_boot.add(phone_id)

    def switches_after_boot(self, phone_id: str) -> bool:
        """Whether an ADB switch can stand in for the phone's next status poll (see
        :meth:`switch_after_boot`): it was seen booting, and Geelark has not shown that it takes
        switches from phones that do not run."""
        return self.switch_proves_running and phone_id in self._off_after_boot

    async def switch_after_boot(self, phone_id: str, now: float) -> bool:
        """Switch ADB on, in place of a status poll, for a phone whose boot should be over.

        True: Geelark took it, so the phone runs (the pass goes on to the ADB step, which reads
        the data about 3 s later). False: Geelark said the phone does not run (42002), booting
        still or stopped, and nothing was switched. Other faults are raised as a poll's are.
        """
        try:
            await self._power.enable_adb(phone_id)
        except PhoneNotReady as error:
            if error.code == PHONE_NOT_RUNNING:
                return False
            raise
        self._off_after_boot.discard(phone_id)
        self._enabled_at[phone_id] = now
        self._switched_unread.add(phone_id)
        self._stood_in.add(phone_id)
        return True

    def found_not_running(self, phone_id: str) -> bool:
        """Whether a read said the phone does not run since this was last asked (asked once).

        The power step then forgets its last "running" answer and asks Geelark again, rather
        than reusing it while reads keep answering "not running"."""
        if phone_id not in self._not_running:
            return False
        self._not_running.discard(phone_id)
        return True

    def _found_not_running(self, phone_id: str, *, stood_in: bool) -> None:
        """A read said 42002: the phone does not run (stopped, restarting, or booting still)."""
        self._not_running.add(phone_id)
        self._enabled_at.pop(phone_id, None)
        self._off_after_boot.add(phone_id)  # once it runs, switched on at once
        if stood_in and self.switch_proves_running:
            # Geelark took a switch from a phone that did not run: a switch proves nothing
            # on this account. Status polls come first again, for every phone from now on.
            self.switch_proves_running = False
            log.warning(
                "Geelark took an ADB switch of phone %s that did not run: asking each phone's "
                "status before switching its ADB on from now on",
                phone_id,
            )

    def forget(self, phone_id: str) -> None:
        """No binding drives the phone any more: drop what is known about its ADB."""
        self._enabled_at.pop(phone_id, None)
        self._off_after_boot.discard(phone_id)
        self._switched_unread.discard(phone_id)
        self._stood_in.discard(phone_id)
        self._not_running.discard(phone_id)

    def tracked(self) -> int:
        """Phones whose ADB was switched on and has not answered yet, or is to be switched on,
        and phones a read found not running."""
        return (
            len(self._enabled_at)
            + len(self._off_after_boot)
            + len(self._stood_in)
            + len(self._not_running)
        )

    async def drop_secret(self, binding: PhoneBinding, report: Report) -> None:
        """Delete the ADB Secret if this binding wrote one for the phone's current power-on."""
        if report.provisioned_at() is not None:
            await self._kube.delete_secret(binding.namespace, adb_secret_name(binding.name))
            report.phone(adb_provisioned_at=None)


def _hold_back(report: Report) -> None:
    """Write nothing for a pass that only moved a phone from booting to "ADB switched on".

    The next pass, a few seconds later, writes the ADB Secret, creates the pod and says so in
    one status write. Each write is a watch event that every watcher of bindings decodes (kopf's
    machinery, the job loops): a thousand bindings coming up at once pay for it a thousand times.
    Held back only when the written status already names this phone, says Bound, observes this
    generation and no Event is due; a pass that did anything else writes as usual.
    """
    base, status = report.base, report.status
    if (
        base.phase == Phase.BOUND
        and base.phone is not None
        and status.phone is not None
        and base.phone.id == status.phone.id
        and base.observed_generation == status.observed_generation
        and not report.events
    ):
        report.status = base.model_copy()  # shallow: see Report.__post_init__
