"""Active and standby replicas: only the holder of the leader Lease runs the operator; every
replica answers admission.

Why a Lease and not kopf's peering: kopf freezes an operator only for a peer of *higher*
priority, so the identical replicas of one Deployment (same priority) would all keep working;
peering also needs two CRDs of its own and expires a dead peer only after its lifetime (60 s by
default). A coordination.k8s.io Lease is what kube-controller-manager and controller-runtime use:
one object, the API server's optimistic concurrency decides, ``kubectl get lease`` shows the
holder, and the takeover time is the lease duration (15 s) plus one retry (2 s).

The standby serves the liveness endpoint itself while it waits (kopf serves it only once it
runs), so the kubelet does not restart a healthy standby. The holder renews every
``lease_retry_seconds``; if no renewal succeeded for ``lease_renew_deadline_seconds`` it stops
kopf and exits non-zero (the kubelet restarts it as a standby): it must never work on after
another replica may have taken over. Even then invariant 1 holds (the claim's create and the
pod's fixed name decide), the Lease only keeps two replicas from doing every call twice.

Admission needs no Lease, so it is no part of kopf here: every replica builds its
:class:`~phonefleet_operator.services.replica.Replica` and serves the webhook before it asks for
the Lease, and keeps both until it exits; the holder's kopf works on the same Replica (one
Geelark client and inventory per process). A takeover thus starts no second webhook server, and
the standby, Ready behind the webhook Service, refuses what the holder would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import ValidationError

from phonefleet_operator import telemetry
from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.k8s import ApiCaller, load_api_client
from phonefleet_operator.k8s.lease import LeaseLock
from phonefleet_operator.services.account_check import EXIT_NOT_SERVED, verify_account
from phonefleet_operator.services.replica import Replica
from phonefleet_operator.settings import GeelarkSettings, JobSettings, OperatorSettings
from phonefleet_operator.waiting import within
from phonefleet_operator.webhook import serve_admission

__all__ = ["identity", "run_elected"]

log = logging.getLogger(__name__)

#: kopf's ``operator`` with everything but the stop flag and the process's Replica bound.
Operator = Callable[[asyncio.Event, Replica | None], Coroutine[Any, Any, None]]


def identity() -> str:
    """This replica's name in the Lease: the pod's host name and the process id."""
    return f"{socket.gethostname()}_{os.getpid()}"


async def run_elected(operator: Operator, liveness: str, namespaces: Iterable[str] = ()) -> int:
    """Serve admission (for ``namespaces``, empty: every one), and run ``operator`` now, or once
    this replica holds the Lease when leader election is on."""
    try:
        settings = OperatorSettings()
        geelark = GeelarkSettings()
        jobs = JobSettings()
    except ValidationError:
        # The operator's start-up handler reports it, naming the variables.
        telemetry.LEADER.set(1)
        await operator(asyncio.Event(), None)
        return 0
    # Before the Lease and before any work: an identity that may not serve its account would
    # have every claim refused (services/account_check.py). Exiting shows on the pod.
    if not await verify_account(settings, namespaces := tuple(namespaces)):
        return EXIT_NOT_SERVED
    replica = Replica.create(settings, geelark, jobs, namespaces=namespaces)
    try:
        async with serve_admission(replica):
            if not settings.leader_election:
                telemetry.LEADER.set(1)
                await operator(asyncio.Event(), replica)
                return 0
            return await _elect(settings, replica, operator, liveness)
    finally:
        await replica.close()


async def _elect(
    settings: OperatorSettings, replica: Replica, operator: Operator, liveness: str
) -> int:
    caller = ApiCaller(load_api_client(2, settings.kubeconfig), 2)
    lock = LeaseLock(
        caller,
        settings.operator_namespace,
        settings.lease_name,
        identity(),
        round(settings.lease_duration_seconds),
    )
    try:
        telemetry.LEADER.set(0)
        async with _standby_health(liveness), _standby_metrics(settings):
            await _acquire(lock, settings)
        telemetry.LEADER.set(1)
        return await _lead(lock, settings, lambda stop: operator(stop, replica))
    finally:
        caller.close()


async def _acquire(lock: LeaseLock, settings: OperatorSettings) -> None:
    announced = False
    while True:
        try:
            if await lock.try_acquire_or_renew():
                log.info(
                    "Acquired Lease %s/%s as %s: this replica is active",
                    lock.namespace,
                    lock.name,
                    lock.identity,
                )
                return
            if not announced:
                log.info(
                    "Waiting as standby: Lease %s/%s is held by %s",
                    lock.namespace,
                    lock.name,
                    await lock.holder(),
                )
                announced = True
        except PhonefleetError as error:
            log.warning("Could not read Lease %s/%s: %s", lock.namespace, lock.name, error)
        await asyncio.sleep(settings.lease_retry_seconds)


#: How long kopf gets to stop once the Lease is lost: its clean-up (the watches' 5 s, the
#: bindings' passes in flight) fits well within it, and the kubelet's grace period (30 s) is
#: left for a SIGTERM that comes meanwhile.
_STOP_SECONDS = 20.0


def _running_tasks() -> list[str]:
    """The names of the event loop's tasks that have not ended, but the caller's."""
    current = asyncio.current_task()
    return sorted(t.get_name() for t in asyncio.all_tasks() if t is not current and not t.done())


async def _lead(
    lock: LeaseLock,
    settings: OperatorSettings,
    operator: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
) -> int:
    loop = asyncio.get_running_loop()
    deadline = settings.lease_renew_deadline_seconds
    stop = asyncio.Event()
    work = asyncio.create_task(operator(stop), name="kopf-operator")
    renewed = loop.time()
    lost = False
    while not work.done():
        done, _ = await asyncio.wait({work}, timeout=settings.lease_retry_seconds)
        if done:
            break
        try:
            # A renewal that hangs (each call may take 30 s) must not outlast the deadline: a
            # standby takes the Lease over while this replica would still work (as client-go).
            if await within(lock.try_acquire_or_renew(), deadline - (loop.time() - renewed)):
                renewed = loop.time()
        except TimeoutError:
            log.warning("Renewing Lease %s/%s took too long", lock.namespace, lock.name)
        except PhonefleetError as error:
            log.warning("Could not renew Lease %s/%s: %s", lock.namespace, lock.name, error)
        if loop.time() - renewed >= deadline:
            log.error(
                "Lost Lease %s/%s (not renewed for %.0f s): stopping so another replica works",
                lock.namespace,
                lock.name,
                settings.lease_renew_deadline_seconds,
            )
            lost = True
            telemetry.LEADER.set(0)
            stop.set()
            break
    failed = False
    try:
        # Done already unless the Lease was lost: then kopf stops its handlers and runs its
        # clean-up, and one that hangs must not keep this replica working beside the new holder.
        await within(asyncio.shield(work), _STOP_SECONDS)
    except asyncio.CancelledError:
        work.cancel()  # as awaiting it unshielded would
        raise
    except Exception:
        failed = True
        if work.done():
            # Not a clean exit: say why, and exit non-zero (the kubelet restarts the container).
            log.exception("The operator ended with an error")
        else:
            log.error(
                "The operator did not stop within %.0f s of losing the Lease: cancelled it; "
                "still running: %s",
                _STOP_SECONDS,
                ", ".join(_running_tasks()) or "nothing else",
            )
            work.cancel()
            await asyncio.wait({work}, timeout=_STOP_SECONDS)
    if not lost:
        with contextlib.suppress(PhonefleetError):
            await lock.release()
            log.info("Released Lease %s/%s", lock.namespace, lock.name)
    return 1 if lost or failed else 0


@contextlib.asynccontextmanager
async def _standby_metrics(settings: OperatorSettings) -> AsyncIterator[None]:
    """Serve /metrics while waiting (``phonefleet_leader 0``): a standby that answered nothing
    would count as a target down; the active operator serves it again from start-up."""
    if settings.metrics_port is None:
        yield
        return
    server = telemetry.serve(settings.metrics_port, settings.metrics_addr)
    try:
        yield
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def _standby_health(liveness: str) -> AsyncIterator[None]:
    """Answer the liveness probe while waiting; kopf takes the port over once active."""
    url = urlsplit(liveness)

    async def alive(_: web.Request) -> web.Response:
        return web.Response(text="standby\n")

    app = web.Application()
    app.router.add_get(url.path or "/", alive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, url.hostname, url.port or 80)
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()
