"""kopf handlers of PhoneBinding: a reconcile loop per binding, wake-ups, and the release."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from phonefleet_operator import constants as c
from phonefleet_operator import telemetry
from phonefleet_operator.services.runtime import Runtime, waiter_of

__all__ = ["WAKE_ID", "reconcile_binding", "release_binding", "wake_binding"]

_RESOURCE = (c.GROUP, c.VERSION, c.BINDING_PLURAL)

#: kopf's id of the handler below (its success lines are filtered out of the log).
WAKE_ID = "wake_binding"

log = logging.getLogger(__name__)


@kopf.daemon(*_RESOURCE, id="reconcile", cancellation_timeout=60, backoff=5)
async def reconcile_binding(
    body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, **kwargs: Any
) -> None:
    """Run the binding's reconcile pass again and again, as soon as it asks or is woken; end
    when the binding is released, or found gone without kopf having seen it go."""
    runtime: Runtime = memo.runtime
    uid = body.metadata.uid or ""
    runtime.wakeups.register(uid)
    while not stopped:
        # All waiters, not those of status.phone.id: the pass looks them up once it knows the
        # phone (a new binding has no id yet, a changed spec may name another phone).
        delay = await runtime.reconcile(body, runtime.waiters)
        if delay is None:
            return
        await runtime.wakeups.wait(uid, delay, stopped.wait)
        period = runtime.settings.orphan_sweep_seconds
        if not stopped and not await runtime.wakeups.listed(
            uid, runtime.kube.list_bindings, period
        ):
            log.warning(
                "Stopped the loop of PhoneBinding %s/%s: it no longer exists, and its deletion "
                "was never seen (its claim goes with the next orphan sweep)",
                body.metadata.namespace,
                body.metadata.name,
            )
            runtime.forget(body)
            return


@kopf.on.event(*_RESOURCE, id=WAKE_ID)
def wake_binding(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A spec change is handled now, not at the next periodic pass; a binding that is gone
    takes its in-memory bookkeeping with it.

    The API server bumps metadata.generation on every spec change and each pass records the
    generation it saw in status.observedGeneration, so a newer generation means a change no
    pass has seen yet. (A new binding has none recorded: its loop starts at once anyway.)
    """
    telemetry.bindings.saw(event)  # bindings by phase (docs/operations.md)
    runtime: Runtime = memo.runtime
    if event["type"] == "DELETED":  # the object is gone: so is all we kept for it
        runtime.forget(event["object"])
    if event["type"] not in ("ADDED", "MODIFIED"):
        return
    body = event["object"]
    runtime.waiters.saw(body["metadata"]["uid"], waiter_of(body))
    generation = body["metadata"].get("generation")
    observed = (body.get("status") or {}).get("observedGeneration")
    if generation is not None and observed is not None and generation > observed:
        runtime.wakeups.wake(body["metadata"]["uid"])


@kopf.on.delete(*_RESOURCE)
async def release_binding(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    """Remove the pod, stop the phone (unless Keep), delete the claim, then wake its waiters.

    The finalizer stays while the phone of a ``Stop`` binding cannot be stopped (kopf retries).
    """
    runtime: Runtime = memo.runtime
    phone_id = await runtime.release(body)
    if phone_id:
        for waiter in runtime.waiters.get(phone_id, ()):
            runtime.wakeups.wake(waiter.uid)
