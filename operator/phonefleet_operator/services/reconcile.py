"""The one idempotent reconcile of a PhoneBinding: the orchestration of its steps.

Each pass looks at the world as it is (the claim, the phone's status in Geelark, the pod), does at
most the next step towards the spec, writes the status if it changed and says when to look again.
Create, update, resume, operator restarts and periodic checks all run this same pass; nothing
depends on which event came first. This module only orders the steps; each lives in a module of
its own with the state it needs: ``resolution`` (the phone the spec names, or none), ``claims``
(the lock), ``conflict`` (a binding that does not hold its phone), ``power`` (the phone running,
boot polls), ``adb`` (the ADB Secret), ``worker_pod`` (the pod and stuck detection) and
``pass_memory`` (what a pass leaves to the next: the statuses written and held back). Letting a
phone go (the suspend step, a deleted binding's release, a binding its pools refuse, every stop
of a phone) is in ``release``; what a fault that ends the pass says in the status is
``report``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from phonefleet_operator.errors import InvalidSpec, PermanentFault, TemporaryFault
from phonefleet_operator.geelark import Phone
from phonefleet_operator.models import ConditionType, Phase, PhoneBinding
from phonefleet_operator.render import build_claim
from phonefleet_operator.services.adb import AdbStep
from phonefleet_operator.services.admission import spec_problems
from phonefleet_operator.services.claims import BindingRef, ClaimService, binding_ref
from phonefleet_operator.services.conflict import ConflictStep
from phonefleet_operator.services.jobs.tokens import JobTokens
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.pass_memory import PassMemory
from phonefleet_operator.services.ports import Kube, PhoneDirectory, PhonePower
from phonefleet_operator.services.power import PowerStep
from phonefleet_operator.services.release import Release, last_ran, stops
from phonefleet_operator.services.report import Report
from phonefleet_operator.services.resolution import ResolveStep
from phonefleet_operator.services.tenancy import NoTenancy, Tenancy
from phonefleet_operator.services.worker_pod import WorkerPodStep, pod_is_ready
from phonefleet_operator.settings import OperatorSettings

__all__ = ["BindingReconciler", "binding_ref", "pod_is_ready"]


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
        self._claims = claims
        self._settings = settings
        self._clock = clock
        self._adb = AdbStep(power, kube, settings, job_tokens)
        self._powers = PowerStep(power, settings, self._adb, clock)
        self._worker_pods = WorkerPodStep(
            kube, pods if pods is not None else ObservedPods(), self._adb, settings, unsettled
        )
        self._memory = PassMemory(settings)
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
        self._resolve = ResolveStep(directory, self._release, self._tenancy)

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
        binding = self._memory.begin(binding, body_status, report)
        try:
            delay = await self._converge(binding, waiters, report)
        except (PermanentFault, TemporaryFault) as error:
            delay = report.fault(error, self._settings)
        delay = self._memory.end(binding.uid, body_status, report, delay, self._clock().timestamp())
        return report, delay

    async def status_written(self, binding: PhoneBinding, report: Report) -> None:
        """The pass's status is written (or had nothing new): free a pool slot the binding no
        longer uses. Not before: freed before the status that says its phone is stopped was
        written, a crash or a failed write left a status saying the phone runs, and the binding
        resumed was counted above the limit as one that had been running."""
        await self._tenancy.free_if_idle(binding, report)

    def forget_written(self, uid: str) -> None:
        """The last status of ``uid`` could not be written: the next pass trusts the body again."""
        self._memory.unwritten(uid)

    def forget(self, uid: str, phone_id: str | None) -> None:
        """The binding ``uid`` is gone (and drove ``phone_id``): drop all that is kept for it."""
        self._memory.forget(uid)
        self._worker_pods.forget(uid)
        if phone_id:
            self._powers.forget(phone_id)
            self._adb.forget(phone_id)

    def tracked(self) -> dict[str, int]:
        """How many entries each step keeps in memory (for the health report)."""
        return {
            **self._memory.tracked(),
            "powerMemories": self._powers.tracked(),
            "adbSwitchedOn": self._adb.tracked(),
            "podSpecHashes": self._worker_pods.tracked(),
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
        phone = await self._resolve.phone(binding, report)
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
                message = f"Releasing phone {previous} before taking {phone.id}"
                report.phase(Phase.BOUND, "Rebinding", message)
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

    async def _run(self, binding: PhoneBinding, phone: Phone, report: Report) -> float:
        """The held phone running, its ADB Secret written, then its worker pod."""
        worker_ready = self._worker_pods.ready_in_view(binding, phone.id)
        delay = await self._powers.bring_up(binding, phone, report, worker_ready=worker_ready)
        if delay is None:
            delay = await self._adb.ready(binding, phone, report)
        if delay is None:
            delay = await self._worker_pods.ensure(binding, phone, report, trust_view=True)
        return delay

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
        self._memory.forget(binding.uid)
        self._worker_pods.forget(binding.uid)
        report = report if report is not None else Report(binding, self._clock())
        return await self._release.finalize(binding, report, abandon=abandon)
