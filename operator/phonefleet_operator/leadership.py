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
``lease_retry_seconds``; if no renewal succeeded for ``lease_renew_deadline_seconds`` (or one
finds another holder) it must never work on after another replica may have taken over, that is
``lease_duration_seconds`` after its last renewal began. So, as client-go ends the process at
OnStoppedLeading: at once, the Replica's fence (``fence.py``) refuses every API write and
Geelark change of this process, and kopf is asked to stop; it gets half of what is left before
that moment, is then cancelled, and has ended by it; the process exits non-zero (the kubelet
restarts it as a standby). Even then invariant 1 holds (the claim's create and the pod's fixed
name decide), the Lease only keeps two replicas from doing every call twice.

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
from phonefleet_operator.fence import Fence
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
            asked = await _acquire(lock, settings)
        telemetry.LEADER.set(1)
        return await _lead(
            lock, settings, lambda stop: operator(stop, replica), replica.fence, asked
        )
    finally:
        caller.close()


async def _acquire(lock: LeaseLock, settings: OperatorSettings) -> float:
    """Wait until this replica holds the Lease; the loop time at which the winning attempt
    began (a standby's clock of the new term cannot have started earlier)."""
    loop = asyncio.get_running_loop()
    announced = False
    while True:
        asked = loop.time()
        try:
            if await lock.try_acquire_or_renew():
                log.info(
                    "Acquired Lease %s/%s as %s: this replica is active",
                    lock.namespace,
                    lock.name,
                    lock.identity,
                )
                return asked
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


def _running_tasks() -> list[str]:
    """The names of the event loop's tasks that have not ended, but the caller's."""
    current = asyncio.current_task()
    return sorted(t.get_name() for t in asyncio.all_tasks() if t is not current and not t.done())


async def _hold(
    lock: LeaseLock, settings: OperatorSettings, work: asyncio.Task[None], renewed: float
) -> float | None:
    """Renew the Lease until ``work`` ends (None) or the Lease is lost: then the loop time
    from which another replica may hold it (``renewed``: when the acquisition began).

    Lost means not renewed for the renew deadline (another may take it over the lease's
    duration after the last renewal began), or held by another replica now (it may work
    already). Each renewal is timed from when it was asked: the record it writes is older
    than its answer, and a standby's clock of it may start as early as that.
    """
    loop = asyncio.get_running_loop()
    deadline = settings.lease_renew_deadline_seconds
    while True:
        # Wake at the deadline itself, not at the first retry after it.
        pause = min(settings.lease_retry_seconds, renewed + deadline - loop.time())
        done, _ = await asyncio.wait({work}, timeout=max(pause, 0.0))
        if done:
            return None
        asked = loop.time()
        if asked - renewed >= deadline:
            log.error(
                "Lost Lease %s/%s: not renewed for %.1f s",
                lock.namespace,
                lock.name,
                asked - renewed,
            )
            return renewed + settings.lease_duration_seconds
        try:
            # A renewal that hangs (each call may take 30 s) must not outlast the deadline.
            if await within(lock.try_acquire_or_renew(), renewed + deadline - asked):
                renewed = asked
            elif (holder := lock.observed_holder) not in (None, lock.identity):
                log.error("Lost Lease %s/%s: %s holds it now", lock.namespace, lock.name, holder)
                return loop.time()
        except TimeoutError:
            log.warning("Renewing Lease %s/%s took too long", lock.namespace, lock.name)
        except PhonefleetError as error:
            log.warning("Could not renew Lease %s/%s: %s", lock.namespace, lock.name, error)


async def _lead(
    lock: LeaseLock,
    settings: OperatorSettings,
    operator: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
    fence: Fence,
    acquired: float,
) -> int:
    """Run ``operator`` while this replica holds the Lease won by the attempt begun at loop
    time ``acquired``; the process's exit code.

    Once the Lease is lost, a standby may take it ``lease_duration_seconds`` after the last
    renewal began, that is ``margin`` (duration minus renew deadline) after the loss is
    noticed. At once, the fence refuses this replica's writes and Geelark changes and kopf is
    asked to stop; kopf gets the first half of the margin to stop by itself, then is cancelled,
    and must have ended by the time a standby may take over.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    work = asyncio.create_task(operator(stop), name="kopf-operator")
    takeover = await _hold(lock, settings, work, acquired)
    if takeover is None:  # kopf ended by itself (SIGTERM, or an error)
        return await _ended(lock, work)
    noticed = loop.time()
    margin = settings.lease_duration_seconds - settings.lease_renew_deadline_seconds
    fence.close(
        f"this replica lost Lease {lock.namespace}/{lock.name} and is stopping (another "
        "replica may hold it)"
    )
    telemetry.LEADER.set(0)
    stop.set()
    budget = max(takeover - margin / 2 - noticed, 0.0)
    if takeover > noticed:
        log.error(
            "Fenced this replica: its API writes and Geelark changes are refused from now on; "
            "the operator has %.1f s to stop, another replica may take the Lease over in %.1f s",
            budget,
            takeover - noticed,
        )
    else:
        log.error(
            "Fenced this replica: its API writes and Geelark changes are refused from now on; "
            "another replica may hold the Lease already, so the operator is cancelled at once"
        )
    try:
        await within(asyncio.shield(work), budget)
    except asyncio.CancelledError:
        work.cancel()  # as awaiting it unshielded would
        raise
    except Exception:
        if work.done():
            log.exception("The operator ended with an error while it stopped")
        else:
            # By the takeover; when that has come already, a moment for the cancellation.
            await _cancel(work, budget, max(takeover, noticed + margin / 2))
    else:
        log.info("The operator stopped %.1f s after losing the Lease", loop.time() - noticed)
    _report_refused(fence)
    return 1  # lost, not given up: another replica may hold the Lease by now


async def _cancel(work: asyncio.Task[None], budget: float, until: float) -> None:
    """Cancel ``work``, which did not stop within ``budget``, and wait for it until loop time
    ``until``."""
    loop = asyncio.get_running_loop()
    log.error(
        "The operator did not stop within %.1f s of losing the Lease: cancelled it; still "
        "running: %s",
        budget,
        ", ".join(_running_tasks()) or "nothing else",
    )
    cancelled = loop.time()
    work.cancel()
    await asyncio.wait({work}, timeout=max(until - cancelled, 0.0))
    if not work.done():
        log.error(
            "The operator did not end within %.1f s of its cancellation; still running: %s",
            loop.time() - cancelled,
            ", ".join(_running_tasks()) or "nothing else",
        )


def _report_refused(fence: Fence) -> None:
    refused = fence.refused()
    if refused:
        log.warning(
            "Refused %d calls after losing the Lease: %s",
            sum(refused.values()),
            ", ".join(f"{call} x{count}" for call, count in sorted(refused.items())),
        )


async def _ended(lock: LeaseLock, work: asyncio.Task[None]) -> int:
    """kopf ended while this replica held the Lease: give the Lease up (the standby need not
    wait it out); 0 for a clean exit, 1 (said why) for an error."""
    failed = False
    try:
        await work
    except Exception:
        # Not a clean exit: say why, and exit non-zero (the kubelet restarts the container).
        log.exception("The operator ended with an error")
        failed = True
    with contextlib.suppress(PhonefleetError):
        await lock.release()
        log.info("Released Lease %s/%s", lock.namespace, lock.name)
    return 1 if failed else 0


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
