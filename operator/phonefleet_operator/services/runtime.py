"""The operator's composition root: one Geelark client, inventory, gateways and reconciler.

The Geelark client, the inventory, the API pool and admission come from the process's
:class:`~phonefleet_operator.services.replica.Replica`, which outlives a Lease holder's run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from phonefleet_operator import constants as c
from phonefleet_operator.errors import (
    PermanentFault,
    PhonefleetError,
    ReplicaStopping,
    TemporaryFault,
)
from phonefleet_operator.geelark import GeelarkClient, PhoneGateway, PhoneInventory
from phonefleet_operator.k8s import ApiCaller, KubeGateway
from phonefleet_operator.models import Phase, PhoneBinding
from phonefleet_operator.services.accounts import AccountScope
from phonefleet_operator.services.admission import AdmissionService
from phonefleet_operator.services.claims import BindingRef, ClaimService
from phonefleet_operator.services.coordination import BindingLocks, Waiters, Wakeups
from phonefleet_operator.services.geelark_health import GeelarkHealth
from phonefleet_operator.services.jobs.service import JobService
from phonefleet_operator.services.jobs.tokens import JobTokens
from phonefleet_operator.services.observed import ObservedClaims, ObservedPods
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.services.replica import Replica
from phonefleet_operator.services.report import Report
from phonefleet_operator.services.tenancy import Tenancy, build_tenancy
from phonefleet_operator.settings import GeelarkSettings, JobSettings, OperatorSettings
from phonefleet_operator.telemetry import reconcile_pass
from phonefleet_operator.waiting import each_step

__all__ = ["BackgroundTaskDied", "Runtime", "waiter_of"]

log = logging.getLogger(__name__)


def waiter_of(body: Mapping[str, Any]) -> tuple[str, BindingRef] | None:
    """(phone id, who) for a binding waiting in Conflict for a phone; None for every other."""
    status = body.get("status") or {}
    phone_id = (status.get("phone") or {}).get("id")
    metadata = body.get("metadata") or {}
    if not phone_id or status.get("phase") != Phase.CONFLICT or metadata.get("deletionTimestamp"):
        return None
    spec = body.get("spec") or {}
    if spec.get("suspend"):
        return None
    ref = BindingRef(
        created=str(metadata.get("creationTimestamp", "")),
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
    )
    return phone_id, ref


class BackgroundTaskDied(PermanentFault):
    """A background task of the operator ended: /healthz fails, so the kubelet restarts us.

    A permanent error, so that kopf's probe fails at once instead of retrying the probe.
    """


@dataclass
class Runtime:
    """Everything the handlers share, built once at start-up from the settings."""

    settings: OperatorSettings
    geelark: GeelarkClient
    inventory: PhoneInventory
    phones: PhoneGateway
    caller: ApiCaller
    kube: KubeGateway
    claims: ClaimService
    reconciler: BindingReconciler
    admission: AdmissionService
    observed_claims: ObservedClaims
    observed_pods: ObservedPods
    tenancy: Tenancy
    wakeups: Wakeups
    jobs: JobService
    scope: AccountScope = field(default_factory=AccountScope)
    geelark_calls: GeelarkHealth = field(default_factory=GeelarkHealth)
    #: Where the client, inventory, API pool and admission come from; closed with the runtime
    #: only when the runtime built it (``owns_replica``), else by whoever did (leadership).
    replica: Replica | None = None
    owns_replica: bool = True
    locks: BindingLocks = field(default_factory=BindingLocks)
    waiters: Waiters = field(default_factory=Waiters)
    _sweeper: asyncio.Task[None] | None = None
    _sweep_failures: int = 0

    @classmethod
    def create(
        cls,
        settings: OperatorSettings,
        geelark: GeelarkSettings,
        job_settings: JobSettings | None = None,
        replica: Replica | None = None,
        namespaces: Iterable[str] = (),
    ) -> Runtime:
        """Build the runtime for the operator serving ``namespaces`` (empty: every one), on
        ``replica``'s parts if given; no I/O happens until the first handler runs."""
        owns_replica = replica is None
        if replica is None:
            replica = Replica.create(settings, geelark, job_settings, namespaces=namespaces)
        health, client, inventory = replica.health, replica.geelark, replica.inventory
        caller, kube = replica.caller, replica.kube
        phones = PhoneGateway(client, geelark)
        observed_claims, observed_pods = ObservedClaims(), ObservedPods()
        tokens = JobTokens()
        jobs = JobService.create(
            kube=kube,
            caller=caller,
            tokens=tokens,
            pods=observed_pods,
            settings=job_settings,
            operator=settings,
            power=phones,
            namespaces=tuple(sorted(replica.scope.namespaces)),
        )
        wakeups = Wakeups()
        jobs.on_fenced = wakeups.wake  # the pod it held back may be created now
        # The namespaces it serves: the replica's, whose webhooks keep to them.
        scope = replica.scope
        claims = ClaimService(
            kube,
            observed_claims,
            power=phones,
            known_alive=wakeups.__contains__,
            scope=scope,
            unsettled=jobs.unsettled,  # an orphan's phone waits for its holder's attempt's fence
        )
        tenancy = build_tenancy(
            caller=caller,
            inventory=inventory,
            claims=observed_claims,
            kube=kube,
            settings=settings,
            wake=wakeups.wake,
            scope=scope,
        )
        reconciler = BindingReconciler(
            job_tokens=tokens,
            directory=inventory,
            power=phones,
            kube=kube,
            claims=claims,
            settings=settings,
            pods=observed_pods,
            tenancy=tenancy,
            unsettled=jobs.unsettled,
        )
        return cls(
            settings,
            client,
            inventory,
            phones,
            caller,
            kube,
            claims,
            reconciler,
            replica.admission,
            observed_claims,
            observed_pods,
            tenancy,
            wakeups,
            jobs,
            scope,
            health,
            replica,
            owns_replica,
        )

    # ------------------------------------------------------------ binding lifecycle

    @reconcile_pass
    async def reconcile(
        self, body: Mapping[str, Any], waiters: Mapping[str, Iterable[BindingRef]]
    ) -> float | None:
        """One reconcile pass of a binding; the seconds until the next, None once it is released."""
        binding = PhoneBinding.from_body(body)
        async with self.locks.hold(binding.uid) as active:
            # The body is live (services/binding_loops.py updates it in place): a deletion that
            # came while this pass waited for the lock is in it now, even when the lock's entry
            # (and its "released" mark) is gone already.
            deleted = (body.get("metadata") or {}).get("deletionTimestamp")
            if not active or deleted or binding.metadata.deletion_timestamp is not None:
                return None
            report, delay = await self.reconciler.reconcile(binding, waiters)
            await self._publish(binding, body, report)
            await self.reconciler.status_written(binding, report)
        return delay

    async def release(self, body: Mapping[str, Any]) -> str | None:
        """Release what a deleted binding holds; raises TemporaryFault until its pod is gone
        and (releasePolicy Stop) Geelark confirmed its phone stopped."""
        binding = PhoneBinding.from_body(body)
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        abandon = annotations.get(c.ANNOTATION_ABANDON_PHONE) == "true"
        async with self.locks.hold(binding.uid):
            report = Report(binding, datetime.now(UTC))
            # A release observes no generation: only what it found is written.
            report.status.observed_generation = binding.status.observed_generation
            try:
                done = await self.reconciler.finalize(binding, report, abandon=abandon)
            finally:
                await self._publish(binding, body, report)
            if not done:
                fencing = self.jobs.unsettled(binding.namespace, binding.name)
                raise TemporaryFault(
                    f"Waiting for the worker pod of {binding.namespaced_name} to terminate "
                    f"before stopping its phone{f': {fencing}' if fencing else ''}",
                    delay=1,
                )
            self.locks.mark_released(binding.uid)
        self.wakeups.forget(binding.uid)
        return binding.status.phone.id if binding.status.phone else None

    async def _publish(
        self, binding: PhoneBinding, body: Mapping[str, Any], report: Report
    ) -> None:
        """Write what a pass or a release found into the status and post its Events.

        A status that could not be written is not remembered as written: the next pass trusts
        the body again (a release remembers none).
        """
        patch = report.status_patch()
        if patch is not None:
            try:
                await self.kube.patch_binding_status(binding.namespace, binding.name, patch)
            except BaseException:
                self.reconciler.forget_written(binding.uid)
                raise
        for event in report.events:  # logged when taken, also when its Event is held
            # A Warning Event is a warning in the log too: a person must act (or wait on Geelark).
            level = logging.WARNING if event.warning else logging.INFO
            log.log(
                level,
                "%s PhoneBinding %s: %s",
                event.reason,
                binding.namespaced_name,
                event.message,
            )
        for event in report.postings():
            self.kube.post_event(
                dict(body), warning=event.warning, reason=event.reason, message=event.message
            )

    def forget(self, body: Mapping[str, Any]) -> None:
        """The binding no longer exists: drop every in-memory entry kept for it."""
        uid = str((body.get("metadata") or {}).get("uid", ""))
        phone_id = ((body.get("status") or {}).get("phone") or {}).get("id")
        self.wakeups.forget(uid)
        self.waiters.gone(uid)
        self.reconciler.forget(uid, phone_id)

    def tracked(self) -> dict[str, int]:
        """How many entries the operator keeps in memory per kind; with no bindings left, all
        are zero (a leak shows here first)."""
        return {
            "locks": len(self.locks),
            "wakeups": len(self.wakeups),
            "waiters": len(self.waiters),
            **self.reconciler.tracked(),
            "observedPods": len(self.observed_pods),
            "observedClaims": len(self.observed_claims),
        }

    # ------------------------------------------------------------ background work

    async def load_pools(self) -> None:
        """List the PhonePools and namespaces for the pools gate, before any binding is seen.

        Every binding's first pass asks the gate, which lists them once, on the passes' API
        threads: listed by the first pass, the list waited behind the finalizer writes of every
        binding applied with it (a thousand at once held every claim and phone start 2-3 s:
        docs/scale.md, Round 6a). Listed here, the threads are idle. A list that fails is left
        to the first pass, which lists them as before.
        """
        try:
            await self.tenancy.is_on()
        except PhonefleetError as error:
            log.warning("Could not list PhonePools at start-up (the first pass will): %s", error)

    def start_background(self) -> None:
        """Start the periodic release of claims whose holder no longer exists."""
        self._sweeper = asyncio.create_task(self._sweep_orphans(), name="phoneclaim-sweeper")

    async def _sweep_orphans(self) -> None:
        """Sweep every ``orphan_sweep_seconds``, whatever a sweep raised.

        Any exception of one sweep (an API fault, or a bug meeting an odd claim) is logged with
        its traceback and the next sweep runs on time: a sweeper that ended silently would leave
        orphaned claims blocking their phones for good. Only cancellation ends it.
        """
        while True:
            try:
                released = await self.claims.release_orphans()
            except ReplicaStopping:
                return  # lost the Lease: the next holder sweeps
            except Exception:
                self._sweep_failures += 1
                log.exception(
                    "Sweep of orphaned PhoneClaims failed (%d in a row); next in %.0f s",
                    self._sweep_failures,
                    self.settings.orphan_sweep_seconds,
                )
            else:
                self._sweep_failures = 0
                if released:
                    log.warning("Released %d orphaned PhoneClaims: %s", len(released), released)
            await asyncio.sleep(self.settings.orphan_sweep_seconds)

    def background_health(self) -> dict[str, Any]:
        """The background tasks and the in-memory bookkeeping, for /healthz.

        Raises BackgroundTaskDied if the sweeper ended. It survives every exception of a sweep
        (see _sweep_orphans), so a sweeper that is done is a bug or a cancellation by something
        other than close(): restarting the operator is the remedy, and a failing liveness probe
        is how the kubelet is told.
        """
        sweeper = self._sweeper
        if sweeper is None:
            state = "starting"
        elif sweeper.done():
            cause = "cancelled" if sweeper.cancelled() else repr(sweeper.exception())
            raise BackgroundTaskDied(f"The PhoneClaim sweeper has ended ({cause})")
        elif self._sweep_failures:
            state = f"running; its last {self._sweep_failures} sweeps failed"
        else:
            state = "running"
        return {"sweeper": state, "tracked": self.tracked()}

    def geelark_health(self) -> str:
        """Whether Geelark answered the operator's latest call, for /healthz (never fails it).

        An unreachable Geelark is reported, not fatal: restarting the operator does not bring
        Geelark back, and while it is away the operator keeps every worker as it is.
        """
        return self.geelark_calls.summary()

    async def close(self) -> None:
        """Stop background work and close every connection; a step that fails is logged and
        the others still run (never raises)."""
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("the PhoneClaim sweeper", self._stop_sweeper),
            ("the job loops", self.jobs.close),
            ("the PhonePools' reporter", self.tenancy.close),
            ("the Geelark session", self.phones.aclose),
        ]
        if self.owns_replica and self.replica is not None:
            steps.append(("the replica's watches and connections", self.replica.close))
        await each_step(steps)

    async def _stop_sweeper(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            (ended,) = await asyncio.gather(self._sweeper, return_exceptions=True)
            if isinstance(ended, Exception):
                log.error("The PhoneClaim sweeper had ended: %r", ended)
