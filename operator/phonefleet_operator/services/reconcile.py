"""The one idempotent reconcile of a PhoneBinding: the orchestration of its steps.

Each pass looks at the world as it is (the claim, the phone's status in Geelark, the pod), does at
most the next step towards the spec, writes the status if it changed and says when to look again.
Create, update, resume, operator restarts and periodic checks all run this same pass; nothing
depends on which event came first. The steps live in modules of their own, each with the state it
needs: ``power`` (is the phone running, boot polls), ``adb`` (the ADB Secret), ``worker_pod`` (the
pod and stuck detection), ``conflict`` (a binding that does not hold its phone) and
``status_memo`` (the statuses this operator wrote). Letting a phone go (the suspend step, a
deleted binding's release, a binding its pools refuse, every stop of a phone) is in ``release``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from phonefleet_operator.errors import (
    GeelarkAuthError,
    GeelarkUnavailable,
    InvalidSpec,
    KubernetesUnavailable,
    PermanentFault,
    PhoneNotFound,
    PhoneNotReady,
    TemporaryFault,
)
from phonefleet_operator.geelark import Phone
from phonefleet_operator.geelark import PhoneStatus as Power
from phonefleet_operator.models import (
    ConditionType,
    Phase,
    PhoneBinding,
    PhoneStatus,
)
from phonefleet_operator.render import build_claim
from phonefleet_operator.services.adb import AdbStep, AdbSwitchedOn
from phonefleet_operator.services.admission import spec_problems
from phonefleet_operator.services.claims import BindingRef, ClaimService, binding_ref
from phonefleet_operator.services.conflict import ConflictStep
from phonefleet_operator.services.jobs.tokens import JobTokens
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.ports import Kube, PhoneDirectory, PhonePower
from phonefleet_operator.services.power import POWER_TEXT, PowerStep
from phonefleet_operator.services.release import Release, last_ran, stops
from phonefleet_operator.services.report import Report
from phonefleet_operator.services.status_memo import WrittenStatuses
from phonefleet_operator.services.tenancy import NoTenancy, Tenancy
from phonefleet_operator.services.worker_pod import WorkerPodStep, pod_is_ready
from phonefleet_operator.settings import OperatorSettings

__all__ = ["BindingReconciler", "binding_ref", "pod_is_ready"]

log = logging.getLogger(__name__)


class BindingReconciler:
    """Drives one binding towards its spec; shared by every binding of the operator."""

    def __init__(
        self,
        *,
        directory: PhoneDirectory,
        power: PhonePower,
        kube: Kube,
        claims: ClaimService,
        settings: OperatorSettings,
        pods: ObservedPods | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tenancy: Tenancy | NoTenancy | None = None,
        job_tokens: JobTokens | None = None,
        unsettled: Callable[[str, str], str | None] = lambda namespace, name: None,
    ) -> None:
        self._tenancy = tenancy or NoTenancy()
        self._directory = directory
        self._power = power
        self._kube = kube
        self._claims = claims
        self._settings = settings
        self._clock = clock
        self._powers = PowerStep(power, settings)
        self._adb = AdbStep(power, kube, settings, job_tokens)
        self._worker_pods = WorkerPodStep(
            kube, pods if pods is not None else ObservedPods(), self._adb, settings, unsettled
        )
        self._written = WrittenStatuses()
        self._release = Release(
            directory=directory,
            power=power,
            kube=kube,
            claims=claims,
            settings=settings,
            remove_pod=self._remove_pod,
            drop_adb_secret=self._adb.drop_secret,
            forget_power=self._powers.stopped,
            unsettled=unsettled,
        )
        self._conflict = ConflictStep(
            release=self._release,
            tenancy=self._tenancy,
            settings=settings,
            remove_pod=self._remove_pod,
        )

    async def reconcile(
        self, binding: PhoneBinding, waiters: Mapping[str, Iterable[BindingRef]]
    ) -> tuple[Report, float]:
        """One pass: returns what it found (status, Events) and the seconds until the next pass.

        ``waiters`` are the bindings in Conflict by the phone they wait for (the waiters index):
        looked up only once the pass has resolved its phone, so that a new binding, or one
        whose spec now names another phone, waits behind the older waiters of that phone.
        """
        report = Report(binding, self._clock())
        body_status = binding.status.to_dict()
        binding = self._written.caught_up(binding, body_status, report)
        s = self._settings
        try:
            delay = await self._converge(binding, waiters, report)
        except GeelarkAuthError as error:
            report.condition(ConditionType.GEELARK_REACHABLE, "False", error.reason, str(error))
            report.phase(Phase.ERROR, error.reason, str(error), warning=True)
            delay = s.error_recheck_seconds
        except GeelarkUnavailable as error:
            # "Could not check" is not "not found": keep the phase, keep the pod, try again.
            report.condition(
                ConditionType.GEELARK_REACHABLE, "False", "GeelarkUnavailable", str(error)
            )
            delay = max(float(error.delay or 0), s.geelark_retry_seconds)
            log.warning("Geelark unavailable for %s: %s", binding.namespaced_name, error)
        except KubernetesUnavailable as error:
            delay = float(error.delay or s.geelark_retry_seconds)
            log.warning("Kubernetes API unavailable for %s: %s", binding.namespaced_name, error)
        except PermanentFault as error:
            report.phase(Phase.ERROR, error.reason, str(error), warning=True)
            delay = s.error_recheck_seconds
        except TemporaryFault as error:
            # Waiting (a busy phone, ADB coming up): keep what runs, say why, look again later.
            report.status.message = str(error)
            delay = float(error.delay or s.geelark_retry_seconds)
        self._written.remember(binding.uid, body_status, report)
        return report, delay

    def forget_written(self, uid: str) -> None:
        """The last status of ``uid`` could not be written: the next pass trusts the body again."""
        self._written.forget(uid)

    def forget(self, uid: str, phone_id: str | None) -> None:
        """The binding ``uid`` is gone (and drove ``phone_id``): drop all that is kept for it."""
        self._written.forget(uid)
        if phone_id:
            self._powers.forget(phone_id)
            self._adb.forget(phone_id)

    def tracked(self) -> dict[str, int]:
        """How many entries each step keeps in memory (for the health report)."""
        return {
            "writtenStatuses": len(self._written),
            "powerMemories": self._powers.tracked(),
            "adbSwitchedOn": self._adb.tracked(),
        }

    # ------------------------------------------------------------------ the steps

    async def _converge(
        self, binding: PhoneBinding, waiters: Mapping[str, Iterable[BindingRef]], report: Report
    ) -> float:
        s = self._settings
        me = binding_ref(binding)
        problems = spec_problems(binding.spec)
        if problems:  # the webhook refuses these; this holds when it was down or bypassed
            raise InvalidSpec("; ".join(problems))
        phone = await self._resolve(binding, report)
        if phone is None:
            return s.not_found_recheck_seconds
        report.geelark_answered()
        previous = binding.status.phone.id if binding.status.phone else None
        if previous == phone.id and last_ran(binding, phone.id):
            await self._claims.confirm(me, phone.id)  # the gate judges "holds" by the view
        gate = await self._tenancy.admit(binding, phone, report)  # PhonePools: docs/tenancy.md
        if gate is not None:  # Forbidden or Queued: no claim now, and a phone run is let go
            gone = await self._release.gated(binding, phone.id, report, held=gate.release)
            return gate.delay if gone else s.pod_poll_seconds

        if previous and previous != phone.id:
            if not await self._release.let_go(binding, previous, stop_phone=stops(binding)):
                self._bound(
                    report, "Rebinding", f"Releasing phone {previous} before taking {phone.id}"
                )
                return s.pod_poll_seconds
            report.event("Rebound", f"Released phone {previous}: spec.phoneId now names {phone.id}")
            report.phone(adb_provisioned_at=None, live_view_url=None, status=None)
        report.phone(id=phone.id, serial_name=phone.serial_name, reference=binding.spec.phone_id)

        claim = await self._claims.acquire(
            me,
            phone.id,
            build_claim(binding, phone.id, phone.serial_name, account=self._settings.account),
            waiters.get(phone.id, ()),
        )
        if not claim.held:
            return await self._conflict.not_held(binding, phone, claim, report)
        report.status.conflict_with = None
        if claim.created:
            report.event("Claimed", f"Created PhoneClaim {phone.id}")
        report.condition(
            ConditionType.CLAIMED, "True", "Claimed", f"This binding holds phone {phone.id}"
        )

        if binding.spec.suspend:
            return await self._release.suspend(binding, phone, report)
        return await self._run(binding, phone, report)

    async def _resolve(self, binding: PhoneBinding, report: Report) -> Phone | None:
        """The phone the spec names; a phone already bound stays bound by its id (renames)."""
        known = binding.status.phone
        if known and known.id and known.reference == binding.spec.phone_id:
            return Phone(id=known.id, serial_name=known.serial_name or "")
        try:
            return await self._directory.resolve(binding.spec.phone_id)
        except PhoneNotFound as error:
            previous = known.id if known else None
            if previous and not await self._release.let_go(
                binding, previous, stop_phone=stops(binding)
            ):
                return None  # the old pod is terminating: keep status.phone and come back
            report.status.phone = None
            report.status.pod_name = None
            report.geelark_answered()
            if await self._tenancy.conceals_missing(binding, report):  # told as "not yours"
                return None
            report.condition(ConditionType.CLAIMED, "False", "PhoneNotFound", str(error))
            report.phase(Phase.PHONE_NOT_FOUND, "PhoneNotFound", str(error), warning=True)
            return None

    async def _run(self, binding: PhoneBinding, phone: Phone, report: Report) -> float:
        s = self._settings
        power = await self._powers.status(binding, phone.id, report.now)
        if (
            power is not Power.RUNNING
            and power is not Power.EXPIRED
            and report.provisioned_at() is not None
            and not self._powers.confirmed_off(phone.id, report.now)
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
            await self._drop_adb_secret(binding, report)
            if power is Power.SHUT_DOWN or power is Power.STARTING:
                self._adb.booting(phone.id)
            if power is Power.SHUT_DOWN:
                started = await self._power.start(phone.id)
                self._powers.started(phone.id, self._clock())
                report.phone(status=PhoneStatus.STARTING, live_view_url=started.url)
                report.event("StartedPhone", f"Started phone {phone.id}")
            report.condition(
                ConditionType.PHONE_READY, "False", "PhoneStarting", f"Phone {phone.id} is starting"
            )
            self._bound(report, "PhoneStarting", f"Phone {phone.id} is starting")
            return self._powers.boot_poll_delay(phone.id, report.now)

        self._powers.booted(phone.id)
        if report.provisioned_at() is None:
            try:
                await self._adb.provision(binding, phone, report)
            except PhoneNotReady as error:
                report.condition(ConditionType.PHONE_READY, "False", "AdbStarting", str(error))
                self._bound(report, "AdbStarting", f"ADB of phone {phone.id} is starting")
                if isinstance(error, AdbSwitchedOn):
                    _hold_back(report)
                # Enabling ADB takes Geelark about 3 s (the fault's delay): polling sooner only
                # spends the account's budget on "not yet".
                return max(s.boot_poll_seconds, float(error.delay or 0))
        report.condition(
            ConditionType.PHONE_READY,
            "True",
            "PhoneRunning",
            f"Phone {phone.id} runs and its ADB endpoint is provisioned",
        )
        return await self._worker_pods.ensure(binding, phone, report, trust_view=True)

    async def _drop_adb_secret(self, binding: PhoneBinding, report: Report) -> None:
        await self._adb.drop_secret(binding, report)

    def _bound(self, report: Report, reason: str, message: str) -> None:
        report.phase(Phase.BOUND, reason, message)

    async def _remove_pod(self, binding: PhoneBinding, report: Report, *, why: str) -> None:
        await self._worker_pods.remove(binding, report, why=why)

    # ------------------------------------------------------------------ letting go

    async def finalize(
        self,
        binding: PhoneBinding,
        report: Report | None = None,
        *,
        abandon: bool = False,
    ) -> bool:
        """Release everything a deleted binding holds (see :meth:`Release.finalize`)."""
        self._written.forget(binding.uid)
        report = report if report is not None else Report(binding, self._clock())
        return await self._release.finalize(binding, report, abandon=abandon)


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
        report.status = base.model_copy(deep=True)
