"""What every operator replica builds once and keeps for its whole life, holding the Lease or not.

Admission needs no Lease: a review reads the Geelark inventory, the PhoneClaim and the binding
it names, and the PhonePools and namespaces' labels. So each replica answers admission from
these parts, from start-up to exit, and the Lease holder's reconciler (``runtime.Runtime``)
uses the same Geelark client, inventory and API pool instead of opening its own: one Geelark
rate limiter and one inventory cache per process, whether it leads or waits. Admission's own
reads have a small API pool of their own, so no review waits behind the passes' calls.

The pools and namespaces come from watches of their own (not kopf's, which only the holder
runs): a standby that read them once would judge by pools that changed since.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from phonefleet_operator import constants as c
from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.fence import Fence
from phonefleet_operator.geelark import GeelarkClient, PhoneInventory
from phonefleet_operator.k8s import ApiCaller, KubeGateway, PoolGateway, load_api_client
from phonefleet_operator.k8s.watch import ObjectWatch, WatchClient, stop_all
from phonefleet_operator.k8s.webhooks import Leftover, WebhookConfigurations
from phonefleet_operator.services.accounts import AccountScope
from phonefleet_operator.services.admission import AdmissionService
from phonefleet_operator.services.certificates import CertificateAuthority, ServingFiles
from phonefleet_operator.services.geelark_health import GeelarkHealth, RecordedGeelarkClient
from phonefleet_operator.services.jobs.service import JobService
from phonefleet_operator.services.jobs.tokens import JobTokens
from phonefleet_operator.services.observed import ObservedClaims, ObservedPods
from phonefleet_operator.services.tenancy import Quota, Tenancy, TenancyView
from phonefleet_operator.settings import GeelarkSettings, JobSettings, OperatorSettings

__all__ = ["REVIEW_API_WORKERS", "Replica"]

log = logging.getLogger(__name__)

#: Threads of admission's API pool: a review reads a PhoneClaim and at most one binding, so
#: a review waits on the API server; 2 threads took 5,000 reviews of a mass apply 100 s.
REVIEW_API_WORKERS = 8


def _ignore_wake(uid: str) -> None:
    """Admission wakes nobody: waking bindings is the reconciler's business."""


@dataclass
class Replica:
    """The Geelark client, inventory, API pool and admission of one operator process."""

    settings: OperatorSettings
    geelark_settings: GeelarkSettings
    health: GeelarkHealth
    geelark: GeelarkClient
    inventory: PhoneInventory
    caller: ApiCaller
    kube: KubeGateway
    admission: AdmissionService
    #: PhoneJobs' review only (the holder's job loops run in the Runtime's own JobService):
    #: its pods view stays empty, so it reads the worker pod it asks about the task.
    jobs: JobService
    #: The pools and namespaces' labels admission judges by (its own watches keep them).
    admission_view: TenancyView
    #: The account and namespaces this operator serves: its webhooks review only those
    #: namespaces (docs/accounts.md).
    scope: AccountScope = field(default_factory=AccountScope)
    #: The API pool of admission's reads (``REVIEW_API_WORKERS`` threads), apart from
    #: ``caller``'s, which the Lease holder's passes use.
    review_caller: ApiCaller | None = None
    _watches: list[ObjectWatch] = field(default_factory=list)
    _watch_client: WatchClient | None = None

    @classmethod
    def create(
        cls,
        settings: OperatorSettings,
        geelark: GeelarkSettings,
        job_settings: JobSettings | None = None,
        *,
        namespaces: Iterable[str] = (),
    ) -> Replica:
        """Build the parts for the operator serving ``namespaces`` (empty: every one); no I/O
        happens until they are used or the watches start."""
        health = GeelarkHealth()
        fence = Fence()  # one for both: closed when the Lease is lost (leadership.py)
        client = RecordedGeelarkClient(geelark, health, fence=fence)
        inventory = PhoneInventory(client, geelark)
        caller = ApiCaller(
            load_api_client(settings.kube_api_workers, settings.kubeconfig),
            settings.kube_api_workers,
            fence=fence,
        )
        kube = KubeGateway(caller)
        # Reviews read on threads of their own. The API server holds a write until its review
        # answers: queued behind the passes' calls (a thousand bindings applied at once), each
        # review held its apply, up to the webhook's timeout.
        reviews = ApiCaller(
            load_api_client(REVIEW_API_WORKERS, settings.kubeconfig), REVIEW_API_WORKERS
        )
        review_kube = KubeGateway(reviews)
        pools = PoolGateway(reviews)
        view = TenancyView()
        # Only Tenancy.refusal runs on this instance: its quota, claims and wake-ups (the
        # reconcile pass's part) stay unused, and it starts no pools' status reporter. It does
        # not log tenancy turning on or off: the pass's Tenancy says so, once.
        tenancy = Tenancy(
            view=view,
            quota=Quota(pools),
            store=pools,
            directory=inventory,
            claims=ObservedClaims(),
            settings=settings,
            wake=_ignore_wake,
            announce=False,
        )
        admission = AdmissionService(inventory, review_kube, tenancy=tenancy)
        jobs = JobService.create(
            kube=review_kube,
            caller=reviews,
            tokens=JobTokens(),
            pods=ObservedPods(),
            settings=job_settings,
            operator=settings,
        )
        scope = AccountScope.of(settings.account, namespaces)
        return cls(
            settings,
            geelark,
            health,
            client,
            inventory,
            caller,
            kube,
            admission,
            jobs,
            view,
            scope,
            review_caller=reviews,
        )

    @property
    def fence(self) -> Fence:
        """Closed once this replica lost the Lease: its API writes and Geelark changes are
        refused from then on (admission only reads, and goes on)."""
        return self.caller.fence

    # ------------------------------------------------------------ admission's views

    def start_watches(self) -> None:
        """Watch PhonePools and Namespaces into ``admission_view`` until ``close``."""
        if self._watches:
            return
        api = WatchClient(2, self.settings.kubeconfig)
        view = self.admission_view

        def on_pool(event_type: str, body: dict[str, Any]) -> None:
            if event_type == "DELETED":
                view.pool_gone(str(body["metadata"]["name"]))
            else:
                view.saw_pool(body)

        def on_namespace(event_type: str, body: dict[str, Any]) -> None:
            if event_type == "DELETED":
                view.namespace_gone(str(body["metadata"]["name"]))
            else:
                view.saw_namespace(body)

        pools = functools.partial(
            api.custom.list_cluster_custom_object, c.GROUP, c.VERSION, c.POOL_PLURAL
        )
        timeout = self.settings.watch_server_timeout_seconds
        self._watches = [
            ObjectWatch("PhonePools for admission", pools, on_pool, server_timeout=timeout),
            ObjectWatch(
                "namespaces for admission",
                api.core.list_namespace,
                on_namespace,
                server_timeout=timeout,
            ),
        ]
        loop = asyncio.get_running_loop()
        for watch in self._watches:
            watch.start(loop)
        self._watch_client = api

    def admission_ready(self) -> str | None:
        """Why admission cannot be answered as the holder would yet; None once it can.

        Ready means both watches have listed once (the view holds what the API server held)
        and still run. Geelark is no condition: with it away, every replica admits unchecked
        alike (the claim still decides), and an unready replica would only take that answer
        away from the API server.
        """
        if not self._watches:
            return "the watches of PhonePools and namespaces have not started"
        for watch in self._watches:
            if not watch.alive():
                return f"the watch of {watch.name} has ended"
            if watch.lists < 1:
                return f"the watch of {watch.name} has not listed yet"
        return None

    # ------------------------------------------------------------ the webhook's certificate

    async def webhook_certificates(self, directory: Path) -> ServingFiles:
        """Serving files for the webhook, from the operator's CA (made once, kept in a Secret).

        Every replica issues its own serving certificate from the one CA, so the caBundle it
        registers is the same whichever replica registers it.
        """
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

    async def remove_kopf_leftover(self) -> None:
        """Delete the empty MutatingWebhookConfiguration ``phonefleet.dev`` of an older release.

        Releases that served admission through kopf let it keep one, always empty (phonefleet
        has no mutating webhook). Only the default account's operator ran those releases, and
        only its RBAC may read and delete that one name. Harmless while it stays, so a failed
        call is logged and the next start tries again.
        """
        if self.settings.webhook_configuration_name != c.GROUP:
            return
        try:
            outcome = await WebhookConfigurations(self.caller).remove_empty_mutating(c.GROUP)
        except PhonefleetError as error:
            log.warning(
                "Could not remove the MutatingWebhookConfiguration %s an older release left "
                "(%s): it is harmless; `kubectl delete mutatingwebhookconfiguration %s` removes it",
                c.GROUP,
                error,
                c.GROUP,
            )
            return
        if outcome is Leftover.DELETED:
            log.info(
                "Deleted MutatingWebhookConfiguration %s, left empty by an older release", c.GROUP
            )
        elif outcome is Leftover.KEPT:
            log.info(
                "Kept MutatingWebhookConfiguration %s: it holds webhooks phonefleet did not make",
                c.GROUP,
            )

    @staticmethod
    def ca_bundle(files: ServingFiles) -> str:
        """The caBundle of the webhook configuration: the CA that issued ``files``, base64."""
        return base64.b64encode(files.cafile.read_bytes()).decode("ascii")

    async def close(self) -> None:
        """Stop the watches (waiting for them off the loop) and close every connection."""
        await stop_all(self._watches)
        self._watches = []
        if self._watch_client is not None:
            self._watch_client.close()
            self._watch_client = None
        await self.jobs.close()
        await self.geelark.close()
        await self.kube.close()  # its Events' own threads and connections
        self.caller.close()
        if self.review_caller is not None:
            self.review_caller.close()
