"""What an event of the PhoneClaims watch means: keep the claims view current; a deleted claim
wakes its phone's holder and waiters.

The events come from our own watch (:mod:`phonefleet_operator.handlers.watches`), not from kopf:
it reports the deletions a relist finds, which kopf's does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from phonefleet_operator.services.claims import BindingRef
from phonefleet_operator.services.runtime import Runtime

__all__ = ["claim_seen"]


def claim_seen(event: dict[str, Any], memo: Any, **kwargs: Any) -> None:
    """Record who holds each phone; when a claim goes (by hand or by release), its holder and
    waiters look again at once.

    ``phone_waiters`` holds the bindings waiting in Conflict, by phone (``Runtime.waiters``).
    A claim deleted by hand first only gets a deletionTimestamp (its finalizer waits for the
    holder's worker to go): that wakes the holder, which removes its pod, then the finalizer.
    """
    runtime: Runtime = memo.runtime
    claim = event["object"]
    holder_uid = (claim.get("spec") or {}).get("holder", {}).get("uid")
    if event["type"] != "DELETED":
        runtime.observed_claims.saw(claim)
        if holder_uid and claim["metadata"].get("deletionTimestamp"):
            runtime.wakeups.wake(holder_uid)
        return
    runtime.observed_claims.gone(claim["metadata"]["name"])
    waiting: Mapping[str, Iterable[BindingRef]] = kwargs["phone_waiters"]
    if holder_uid:
        runtime.wakeups.wake(holder_uid)
    for waiter in waiting.get(claim["metadata"]["name"], ()):
        runtime.wakeups.wake(waiter.uid)
