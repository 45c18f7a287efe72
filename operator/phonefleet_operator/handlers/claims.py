"""kopf handlers of PhoneClaim: keep the claims view current; a deleted claim wakes its phone's
holder and waiters."""

from __future__ import annotations

from typing import Any

import kopf

from phonefleet_operator import constants as c
from phonefleet_operator.services.claims import BindingRef
from phonefleet_operator.services.runtime import Runtime

__all__ = ["CLAIM_SEEN_ID", "claim_seen"]

#: kopf's id of the handler below (its success lines are filtered out of the log).
CLAIM_SEEN_ID = "claim_seen"


@kopf.on.event(c.GROUP, c.VERSION, c.CLAIM_PLURAL, id=CLAIM_SEEN_ID)
def claim_seen(event: kopf.RawEvent, memo: kopf.Memo, **kwargs: Any) -> None:
    """Record who holds each phone; when a claim goes (by hand or by release), its holder and
    waiters look again at once.

    A claim deleted by hand first only gets a deletionTimestamp (its finalizer waits for the
    holder's worker to go): that wakes the holder, which removes its pod, then the finalizer.
    kopf adds no finalizer of its own here (this is an event handler).
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
    waiting: kopf.Index[str, BindingRef] = kwargs["phone_waiters"]
    if holder_uid:
        runtime.wakeups.wake(holder_uid)
    for waiter in waiting.get(claim["metadata"]["name"], ()):
        runtime.wakeups.wake(waiter.uid)
