"""The operator's composition root: one Geelark client, inventory, gateways and reconciler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from phonefleet_operator.errors import PhonefleetError, TemporaryFault
from phonefleet_operator.geelark import GeelarkClient, PhoneGateway, PhoneInventory
from phonefleet_operator.k8s import ApiCaller, KubeGateway, load_api_client
from phonefleet_operator.models import Phase, PhoneBinding
from phonefleet_operator.services.admission import AdmissionService
from phonefleet_operator.services.certificates import CertificateAuthority, ServingFiles
from phonefleet_operator.services.claims import BindingRef, ClaimService
from phonefleet_operator.services.coordination import BindingLocks, Wakeups
from phonefleet_operator.services.jobs.service import JobService
from phonefleet_operator.services.jobs.tokens import JobTokens
from phonefleet_operator.services.observed import ObservedClaims, ObservedPods
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.settings import GeelarkSettings, JobSettings, OperatorSettings

__all__ = ["Runtime", "waiter_of"]

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
    jobs: JobService
    locks: BindingLocks = field(default_factory=BindingLocks)
    wakeups: Wakeups = field(default_factory=Wakeups)
    _sweeper: asyncio.Task[None] | None = None
    _last_geelark_error: str | None = None

    @classmethod
    def create(
        cls,
        settings: OperatorSettings,
        geelark: GeelarkSettings,
        job_settings: JobSettings | None = None,
    ) -> Runtime:
        """Build the runtime; no I/O happens until the first handler runs."""
        client = GeelarkClient(geelark)
        inventory = PhoneInventory(client, geelark)
        phones = PhoneGateway(client, geelark)
        caller = ApiCaller(
            load_api_client(settings.kube_api_workers, settings.kubeconfig),
            settings.kube_api_workers,
        )
        kube = KubeGateway(caller)
        observed_claims, observed_pods = ObservedClaims(), ObservedPods()
        claims = ClaimService(kube, observed_claims)
        tokens = JobTokens()
        jobs = JobService.create(
            kube=kube,
            caller=caller,
            tokens=tokens,
            pods=observed_pods,
            settings=job_settings,
            operator=settings,
        )
        reconciler = BindingReconciler(
            job_tokens=tokens,
            directory=inventory,
            power=phones,
            kube=kube,
            claims=claims,
            settings=settings,
            pods=observed_pods,
        )
        admission = AdmissionService(inventory, kube)
        return cls(
            settings,
            client,
            inventory,
            phones,
            caller,
            kube,
            claims,
            reconciler,
            admission,
            observed_claims,
            observed_pods,
            jobs,
        )

    # ------------------------------------------------------------ binding lifecycle

    async def reconcile(
        self, body: Mapping[str, Any], waiters: Iterable[BindingRef]
    ) -> float | None:
        """One reconcile pass of a binding; the seconds until the next, None once it is released."""
        binding = PhoneBinding.from_body(body)
        async with self.locks.hold(binding.uid) as active:
            if not active or binding.metadata.deletion_timestamp is not None:
                return None
            report, delay = await self.reconciler.reconcile(binding, waiters)
            patch = report.status_patch()
            if patch is not None:
                try:
                    await self.kube.patch_binding_status(binding.namespace, binding.name, patch)
                except BaseException:
                    self.reconciler.forget_written(binding.uid)
                    raise
            for event in report.events:
                log.info("%s %s: %s", event.reason, binding.namespaced_name, event.message)
            for event in report.postings():
                self.kube.post_event(
                    dict(body), warning=event.warning, reason=event.reason, message=event.message
                )
        return delay

    async def release(self, body: Mapping[str, Any]) -> str | None:
        """Release what a deleted binding holds; raises TemporaryFault until its pod is gone."""
        binding = PhoneBinding.from_body(body)
        async with self.locks.hold(binding.uid):
            if not await self.reconciler.finalize(binding):
                raise TemporaryFault(
                    f"Waiting for the worker pod of {binding.namespaced_name} "
                    "to terminate before stopping its phone",
                    delay=1,
                )
            self.locks.mark_released(binding.uid)
        self.wakeups.forget(binding.uid)
        return binding.status.phone.id if binding.status.phone else None

    # ------------------------------------------------------------ background work

    def start_background(self) -> None:
        """Start the periodic release of claims whose holder no longer exists."""
        self._sweeper = asyncio.create_task(self._sweep_orphans(), name="phoneclaim-sweeper")

    async def _sweep_orphans(self) -> None:
        while True:
            try:
                released = await self.claims.release_orphans()
                if released:
                    log.warning("Released %d orphaned PhoneClaims: %s", len(released), released)
            except PhonefleetError as error:
                log.warning("Could not sweep orphaned PhoneClaims: %s", error)
            await asyncio.sleep(self.settings.orphan_sweep_seconds)

    async def webhook_certificates(self, directory: Path) -> ServingFiles:
        """Serving files for the webhook, from the operator's CA (made once, kept in a Secret)."""
        s = self.settings
        if s.webhook_cert_dir:
            folder = Path(s.webhook_cert_dir)
            return ServingFiles(folder / "tls.crt", folder / "tls.key", folder / "ca.crt")
        now = datetime.now(UTC)
        data = await self.kube.read_secret_data(s.operator_namespace, s.webhook_ca_secret)
        if data is None:
            authority = CertificateAuthority.create(now)
            created = await self.kube.create_secret(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": s.webhook_ca_secret, "namespace": s.operator_namespace},
                    "type": "Opaque",
                    "stringData": authority.secret_string_data(),
                }
            )
            if created:
                log.info(
                    "Created Secret %s/%s with the webhook CA",
                    s.operator_namespace,
                    s.webhook_ca_secret,
                )
            else:  # another replica made it first: use theirs
                data = await self.kube.read_secret_data(s.operator_namespace, s.webhook_ca_secret)
        if data is not None:
            authority = CertificateAuthority.from_secret_data(data)
        hosts = [h for h in (s.webhook_host,) if h]
        if s.webhook_service:
            base = f"{s.webhook_service}.{s.operator_namespace}"
            hosts += [f"{base}.svc", f"{base}.svc.cluster.local", base]
        return authority.issue_serving(hosts or ["localhost"], directory, now)

    def health(self) -> str:
        """A one-word health summary for the liveness endpoint."""
        return "ok"

    async def close(self) -> None:
        """Stop background work and close every connection."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.jobs.close()
        await self.phones.aclose()
        await self.geelark.close()
        self.caller.close()
