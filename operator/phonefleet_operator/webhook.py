"""The admission webhook's HTTPS server: every replica serves it, from start-up to exit.

Why not kopf's webhook server: kopf runs only in the Lease holder, while the webhook Service
sends reviews to every Ready replica; a standby without a server made the API server fall back
to failurePolicy Ignore and admit what the holder would refuse. This server does not depend on
the Lease, so a takeover starts no second server on the port and leaves no gap.

It also answers ``GET /readyz`` on the same port and certificate, for the readiness probe:
a replica is Ready when it can answer admission as the holder would (its views of PhonePools
and namespaces have listed once, see ``Replica.admission_ready``).

Every replica registers the ValidatingWebhookConfiguration at start-up. In a cluster they write
the same object (the Service, and the caBundle of the CA they share through a Secret), so the
API server keeps it unchanged and the replicas never fight over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.handlers.admission import (
    answer_review,
    reviewers,
    validating_webhooks,
)
from phonefleet_operator.k8s.webhooks import WebhookConfigurations
from phonefleet_operator.services.certificates import ServingFiles
from phonefleet_operator.services.replica import Replica

__all__ = ["AdmissionServer", "serve_admission"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The largest review read, above aiohttp's default 1 MiB: a review the server does not read is
#: admitted unreviewed (failurePolicy Ignore). An UPDATE's review carries the object (the API
#: server takes request bodies up to 3 MiB) and the stored one (etcd keeps objects up to
#: 1.5 MiB): 8 MiB holds every review the API server can send. A larger body is answered 413.
MAX_REVIEW_BYTES = 8 << 20
#: The longest pause between two tries of a start-up call the API server did not answer.
_MAX_RETRY_SECONDS = 30.0
#: How often certificate files mounted from outside (PHONEFLEET_WEBHOOK_CERT_DIR, e.g. by
#: cert-manager) are checked for a renewal.
_RELOAD_SECONDS = 30.0


class AdmissionServer:
    """POST /validate-phonebinding and /validate-phonejob answer an AdmissionReview;
    GET /readyz tells readiness."""

    def __init__(self, replica: Replica, files: ServingFiles) -> None:
        self._replica = replica
        self._files = files
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(files.certfile, files.pkeyfile)
        self._runner: web.AppRunner | None = None
        self._reviewers = reviewers(replica)

    async def start(self) -> None:
        """Listen on the webhook address and port."""
        app = web.Application(client_max_size=MAX_REVIEW_BYTES)
        app.router.add_post("/{webhook}", self._review)
        app.router.add_get("/readyz", self._ready)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        s = self._replica.settings
        site = web.TCPSite(self._runner, s.webhook_addr, s.webhook_port, ssl_context=self._context)
        await site.start()
        log.info("Serving the admission webhook on %s:%s", s.webhook_addr, s.webhook_port)

    async def stop(self) -> None:
        """Stop listening; reviews in progress are answered first."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def reload(self) -> None:
        """Load the certificate files again (new connections get the renewed certificate)."""
        self._context.load_cert_chain(self._files.certfile, self._files.pkeyfile)

    async def _review(self, request: web.Request) -> web.Response:
        reviewer = self._reviewers.get(request.match_info["webhook"])
        if reviewer is None:
            return web.Response(status=404, text="no such webhook\n")
        try:
            review = json.loads(await request.text())
            answer = await answer_review(review, reviewer)
        except ValueError as error:  # JSONDecodeError included
            return web.Response(status=400, text=f"{error}\n")
        response = answer["response"]
        if not response["allowed"]:
            obj = (review["request"].get("object") or {}).get("metadata") or {}
            log.info(
                "Refused %s %s/%s: %s",
                review["request"].get("kind", {}).get("kind", "object"),
                obj.get("namespace") or review["request"].get("namespace"),
                obj.get("name") or review["request"].get("name"),
                response["status"]["message"],
            )
        return web.json_response(answer)

    async def _ready(self, _: web.Request) -> web.Response:
        reason = self._replica.admission_ready()
        if reason is not None:
            return web.Response(status=503, text=f"not ready: {reason}\n")
        return web.Response(text="ready\n")


async def register(replica: Replica, files: ServingFiles) -> None:
    """Create or patch the ValidatingWebhookConfiguration for this replica's server."""
    webhooks = validating_webhooks(
        replica.settings, replica.ca_bundle(files), replica.scope.namespaces
    )
    name = replica.settings.webhook_configuration_name  # per account (docs/accounts.md)
    await WebhookConfigurations(replica.caller).ensure_validating(name, webhooks)
    log.info("Registered ValidatingWebhookConfiguration %s", name)


async def _follow_mounted_files(server: AdmissionServer, replica: Replica, folder: Path) -> None:
    """Reload certificate files that changed and register their CA again (cert-manager)."""
    files = ServingFiles(folder / "tls.crt", folder / "tls.key", folder / "ca.crt")

    def stamp() -> tuple[float, ...]:
        return tuple(p.stat().st_mtime for p in (files.certfile, files.pkeyfile, files.cafile))

    seen = stamp()
    while True:
        await asyncio.sleep(_RELOAD_SECONDS)
        try:
            now = stamp()
            if now == seen:
                continue
            server.reload()
            await register(replica, files)
        except Exception:  # a half-written renewal: the next round reads it whole
            log.exception("Reloading the webhook certificate from %s failed", folder)
            continue
        seen = now
        log.info("Reloaded the webhook certificate from %s", folder)


async def _until_done(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, tried again while the API server does not answer (the startup probe bounds
    how long: a replica that never gets there is restarted by the kubelet)."""
    delay = 1.0
    while True:
        try:
            return await call()
        except PhonefleetError as error:
            log.warning("Could not %s (%s): trying again in %.0f s", what, error, delay)
        await asyncio.sleep(delay)
        delay = min(2 * delay, _MAX_RETRY_SECONDS)


@contextlib.asynccontextmanager
async def serve_admission(replica: Replica) -> AsyncIterator[AdmissionServer | None]:
    """Serve admission for as long as the block runs (nothing when the webhook is disabled)."""
    settings = replica.settings
    await replica.remove_kopf_leftover()  # webhook on or off: it is an older release's
    if not settings.webhook_enabled:
        yield None
        return
    replica.start_watches()
    await replica.jobs.prepare()  # the job key, to ask a binding's worker about a job's task
    directory = Path(tempfile.mkdtemp(prefix="phonefleet-tls-"))
    follower: asyncio.Task[None] | None = None
    server: AdmissionServer | None = None
    try:
        files = await _until_done(
            "read the webhook CA", lambda: replica.webhook_certificates(directory)
        )
        server = AdmissionServer(replica, files)
        await server.start()
        await _until_done("register the webhooks", lambda: register(replica, files))
        if settings.webhook_cert_dir:
            follower = asyncio.create_task(
                _follow_mounted_files(server, replica, Path(settings.webhook_cert_dir)),
                name="webhook-certificate-reload",
            )
        yield server
    finally:
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        if server is not None:
            await server.stop()
        shutil.rmtree(directory, ignore_errors=True)
