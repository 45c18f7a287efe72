"""The one idempotent reconcile of a PhoneBinding: the orchestration of its steps.

Each pass looks at the world as it is (the claim, the phone's status in Geelark, the pod), does at
most the next step towards the spec, writes the status if it changed and says when to look again.
Create, update, resume, operator restarts and periodic checks all run this same pass; nothing
depends on which event came first. The steps live in modules of their own, each with the state it
needs: ``power`` (is the phone running, boot polls), ``adb`` (the ADB Secret), ``worker_pod`` (the
pod and stuck detection) and ``status_memo`` (the statuses this operator wrote).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
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
    rfc3339,
)
from phonefleet_operator.render import adb_secret_name, build_claim, pod_name
from phonefleet_operator.services.adb import AdbStep
from phonefleet_operator.services.admission import spec_problems
from phonefleet_operator.services.claims import BindingRef, ClaimService
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.ports import Kube, PhoneDirectory, PhonePower
from phonefleet_operator.services.power import POWER_TEXT, PowerStep
from phonefleet_operator.services.report import Report
from phonefleet_operator.services.status_memo import WrittenStatuses
from phonefleet_operator.services.worker_pod import WorkerPodStep, pod_is_ready
from phonefleet_operator.settings import OperatorSettings

__all__ = ["BindingReconciler", "binding_ref", "pod_is_ready"]

log = logging.getLogger(__name__)


def binding_ref(binding: PhoneBinding) -> BindingRef:
    """The binding's identity, ordered by age for the oldest-waiter rule."""
    created = binding.metadata.creation_timestamp
    return BindingRef(
        created=rfc3339(created) if created else "",  # the API server's own format, as in the index
        namespace=binding.namespace,
        name=binding.name,
        uid=binding.uid,
    )


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
    ) -> None:
        self._directory = directory
        self._power = power
        self._kube = kube
        self._claims = claims
        self._settings = settings
        self._clock = clock
        self._powers = PowerStep(power, settings)
        self._adb = AdbStep(power, kube, settings)
        self._worker_pods = WorkerPodStep(
            kube, pods if pods is not None else ObservedPods(), self._adb, settings
        )
        self._written = WrittenStatuses()

    async def reconcile(
        self, binding: PhoneBinding, waiters: Iterable[BindingRef]
    ) -> tuple[Report, float]:
        """One pass: returns what it found (status, Events) and the seconds until the next pass."""
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
        self, binding: PhoneBinding, waiters: Iterable[BindingRef], report: Report
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
        if previous and previous != phone.id:
            if not await self.let_go(binding, previous, stop_phone=self._stops(binding)):
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
            build_claim(binding, phone.id, phone.serial_name),
            waiters,
            trust_view=not self._periodic(binding),
        )
        if not claim.held:
            await self._remove_pod(binding, report, why="the phone is not held by this binding")
            holder = claim.holder or claim.waiting_behind or "another binding"
            report.status.conflict_with = claim.holder or claim.waiting_behind
            report.condition(
                ConditionType.CLAIMED,
                "False",
                "HeldByAnother",
                f"Phone {phone.id} is held by {holder}",
            )
            report.phase(
                Phase.CONFLICT,
                "Conflict",
                f"Phone {phone.id} ({phone.serial_name}) is held by {holder}; "
                "this binding takes it when that one goes",
                warning=True,
            )
            return s.conflict_recheck_seconds
        report.status.conflict_with = None
        if claim.created:
            report.event("Claimed", f"Created PhoneClaim {phone.id}")
        report.condition(
            ConditionType.CLAIMED, "True", "Claimed", f"This binding holds phone {phone.id}"
        )

        if binding.spec.suspend:
            return await self._suspend(binding, phone, report)
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
            if previous and not await self.let_go(
                binding, previous, stop_phone=self._stops(binding)
            ):
                return None  # the old pod is terminating: keep status.phone and come back
            report.status.phone = None
            report.status.pod_name = None
            report.geelark_answered()
            report.condition(ConditionType.CLAIMED, "False", "PhoneNotFound", str(error))
            report.phase(Phase.PHONE_NOT_FOUND, "PhoneNotFound", str(error), warning=True)
            return None

    async def _suspend(self, binding: PhoneBinding, phone: Phone, report: Report) -> float:
        await self._remove_pod(binding, report, why="the binding is suspended")
        await self._drop_adb_secret(binding, report)
        if (binding.status.phone and binding.status.phone.status) != PhoneStatus.STOPPED:
            await self._power.stop(phone.id)
            self._powers.stopped(phone.id)
            report.event("StoppedPhone", f"Stopped phone {phone.id}: the binding is suspended")
        report.phone(status=PhoneStatus.STOPPED, live_view_url=None)
        report.condition(
            ConditionType.PHONE_READY, "False", "Suspended", "The binding is suspended"
        )
        report.condition(
            ConditionType.WORKER_READY, "False", "Suspended", "The binding is suspended"
        )
        report.phase(
            Phase.SUSPENDED, "Suspended", f"Phone {phone.id} is stopped and still reserved"
        )
        return self._settings.running_recheck_seconds

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
            if power is Power.SHUT_DOWN:
                started = await self._power.start(phone.id)
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
                # Enabling ADB takes Geelark about 3 s (the fault's delay): polling sooner only
                # spends the account's budget on "not yet".
                return max(s.boot_poll_seconds, float(error.delay or 0))
        report.condition(
            ConditionType.PHONE_READY,
            "True",
            "PhoneRunning",
            f"Phone {phone.id} runs and its ADB endpoint is provisioned",
        )
        return await self._worker_pods.ensure(
            binding, phone, report, trust_view=not self._periodic(binding)
        )

    async def _drop_adb_secret(self, binding: PhoneBinding, report: Report) -> None:
        await self._adb.drop_secret(binding, report)

    @staticmethod
    def _periodic(binding: PhoneBinding) -> bool:
        """A Running binding's pass: it reads its claim and pod from the API server.

        The watch views can miss a deletion (kopf relists after a watch gap but reports no
        deletions), so the once-a-minute check of a Running binding does not rely on them.
        """
        return binding.status.phase == Phase.RUNNING

    @staticmethod
    def _stops(binding: PhoneBinding) -> bool:
        return binding.spec.release_policy == "Stop"

    def _bound(self, report: Report, reason: str, message: str) -> None:
        report.phase(Phase.BOUND, reason, message)

    async def _remove_pod(self, binding: PhoneBinding, report: Report, *, why: str) -> None:
        await self._worker_pods.remove(binding, report, why=why)

    # ------------------------------------------------------------------ letting go

    async def finalize(self, binding: PhoneBinding) -> bool:
        """Release everything a deleted binding holds; False while its pod is still terminating."""
        self._written.forget(binding.uid)
        phone_id = binding.status.phone.id if binding.status.phone else None
        if phone_id is None:
            # A crash between claiming and writing the status leaves no id behind: look it up,
            # so a phone this binding started is never left running.
            try:
                phone_id = (await self._directory.resolve(binding.spec.phone_id)).id
            except PermanentFault:
                phone_id = None
        if phone_id is None:
            await self._kube.delete_pod(binding.namespace, pod_name(binding.name))
            await self._kube.delete_secret(binding.namespace, adb_secret_name(binding.name))
            return True
        return await self.let_go(binding, phone_id, stop_phone=self._stops(binding))

    async def let_go(self, binding: PhoneBinding, phone_id: str, *, stop_phone: bool) -> bool:
        """Give up ``phone_id``: no pod, no Secret, the phone stopped (if asked), the claim gone.

        Returns False while the pod is still terminating (call again); the phone is stopped only
        after its worker is gone, and only if this binding holds its claim.
        """
        name = pod_name(binding.name)
        pod = await self._kube.get_pod(binding.namespace, name)
        if pod is not None:
            await self._kube.delete_pod(binding.namespace, name)
            return False
        await self._kube.delete_secret(binding.namespace, adb_secret_name(binding.name))
        me = binding_ref(binding)
        if not await self._claims.holds(me, phone_id):
            return True
        if stop_phone:
            try:
                await self._power.stop(phone_id)
                self._powers.stopped(phone_id)
            except PhoneNotFound:
                log.info(
                    "Phone %s of %s is gone from Geelark: nothing to stop",
                    phone_id,
                    binding.namespaced_name,
                )
            else:
                log.info("Stopped phone %s of %s", phone_id, binding.namespaced_name)
        await self._claims.release(me, phone_id)
        return True
