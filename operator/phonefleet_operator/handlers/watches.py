"""The operator's own watches of PhoneBindings, PhoneClaims and worker pods (not kopf's).

kopf's per-object machinery is for objects with handlers to run and progress to store; claims and
pods only update two in-memory views and wake bindings. A plain list-then-watch per collection
(:class:`~phonefleet_operator.k8s.watch.ObjectWatch`) costs the event loop one small call per
event, and it reports the deletions a relist finds, so the views can be trusted without reading
the API server now and then (docs/scale.md).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import kopf

from phonefleet_operator import constants as c
from phonefleet_operator.handlers.binding_watch import BindingEvents, binding_watches
from phonefleet_operator.handlers.claims import claim_seen
from phonefleet_operator.handlers.jobs import job_watches
from phonefleet_operator.handlers.pods import WORKER_PODS, worker_pod_seen
from phonefleet_operator.handlers.pools import pool_watch
from phonefleet_operator.k8s.watch import ObjectWatch, WatchClient, metadata_only, stop_all
from phonefleet_operator.services.accounts import UNLABELLED, account_of
from phonefleet_operator.services.runtime import BackgroundTaskDied, Runtime
from phonefleet_operator.waiting import each_step

__all__ = ["end_watches", "start_watches"]

_SELECTOR = ",".join(f"{key}={value}" for key, value in sorted(WORKER_PODS.items()))


def _claim_kept(claim: dict[str, Any]) -> dict[str, Any]:
    """A deleted claim's holder is woken, so its spec is kept (claims are small)."""
    return {**metadata_only(claim), "spec": claim.get("spec") or {}}


def start_watches(memo: kopf.Memo, waiters: Any, namespaces: tuple[str, ...] = ()) -> None:
    """Start the watches of bindings, claims, worker pods, PhoneJobs and PhonePools (bindings,
    pods and jobs: one per namespace when restricted)."""
    runtime: Runtime = memo.runtime
    api = WatchClient(3 * len(namespaces) + 6, runtime.settings.kubeconfig)
    core, custom = api.core, api.custom
    loop = asyncio.get_running_loop()

    def on_claim(event_type: str, obj: dict[str, Any]) -> None:
        claim_seen({"type": event_type, "object": obj}, memo, phone_waiters=waiters)

    def on_unlabelled_claim(event_type: str, obj: dict[str, Any]) -> None:
        # Made by an older version: ours if its holder's namespace is (services/accounts.py).
        # Labelling one makes it leave this watch (a DELETED event) for the other (ADDED), in
        # either order: at worst its holder reads its claim once more, once per upgrade.
        if account_of(obj) is None and runtime.scope.owns(obj):
            on_claim(event_type, obj)

    def on_pod(event_type: str, obj: dict[str, Any]) -> None:
        worker_pod_seen({"type": event_type, "object": obj}, memo)

    # Only this account's claims (docs/accounts.md): another account's operator owns the rest.
    # Claims of older versions carry no account until the sweep labels them; a watch of their
    # own (empty once they are labelled) keeps them in the view and wakes their waiters.
    claims, unlabelled = (
        functools.partial(
            custom.list_cluster_custom_object,
            c.GROUP,
            c.VERSION,
            c.CLAIM_PLURAL,
            label_selector=selector,
        )
        for selector in (runtime.scope.selector, UNLABELLED)
    )
    timeout = runtime.settings.watch_server_timeout_seconds
    watches = [
        ObjectWatch("PhoneClaims", claims, on_claim, keep=_claim_kept, server_timeout=timeout),
        ObjectWatch(
            "unlabelled PhoneClaims",
            unlabelled,
            on_unlabelled_claim,
            keep=_claim_kept,
            server_timeout=timeout,
        ),
    ]
    if namespaces:
        for namespace in namespaces:
            pods = functools.partial(core.list_namespaced_pod, namespace, label_selector=_SELECTOR)
            watches.append(
                ObjectWatch(f"worker pods in {namespace}", pods, on_pod, server_timeout=timeout)
            )
    else:
        pods = functools.partial(core.list_pod_for_all_namespaces, label_selector=_SELECTOR)
        watches.append(ObjectWatch("worker pods", pods, on_pod, server_timeout=timeout))
    memo.binding_events, bound = binding_watches(runtime, api, namespaces)
    watches.extend(bound)
    watches.extend(job_watches(runtime, api, namespaces))
    watches.append(pool_watch(runtime, api))
    for watch in watches:
        watch.start(loop)
    memo.watches = watches
    memo.watch_client = api


@kopf.on.cleanup()
async def stop_watches(memo: kopf.Memo, **_: Any) -> None:
    """End the watch threads (waiting for them off the loop), then the bindings' loops (each
    after its pass in flight)."""
    await end_watches(memo)


async def end_watches(memo: kopf.Memo) -> None:
    """What ``stop_watches`` does; also called by a start-up that failed (kopf then runs no
    clean-up handler)."""
    await stop_all(getattr(memo, "watches", ()))
    events: BindingEvents | None = getattr(memo, "binding_events", None)
    if events is not None:
        await each_step([("the PhoneBindings' loops", events.close)])  # never raises
    api: WatchClient | None = getattr(memo, "watch_client", None)
    if api is not None:
        api.close()


@kopf.on.probe(id="watches")
def watches_probe(memo: kopf.Memo, **_: Any) -> dict[str, Any] | str:
    """Objects and lists per watch for /healthz; fails it if a watch thread has ended."""
    watches: list[ObjectWatch] = getattr(memo, "watches", [])
    if not watches:
        return "starting"
    for watch in watches:
        if not watch.alive():
            raise BackgroundTaskDied(f"The watch of {watch.name} has ended")
    return {watch.name: {"objects": len(watch), "lists": watch.lists} for watch in watches}
