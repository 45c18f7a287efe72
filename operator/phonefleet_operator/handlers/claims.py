"""kopf handlers of PhoneClaim: a deleted claim (force-release) wakes whoever wants the phone."""

from __future__ import annotations

from typing import Any

import kopf

from phonefleet_operator import constants as c
from phonefleet_operator.services.claims import BindingRef
from phonefleet_operator.services.runtime import Runtime

__all__ = ["claim_deleted"]


@kopf.on.event(c.GROUP, c.VERSION, c.CLAIM_PLURAL)
def claim_deleted(event: kopf.RawEvent, memo: kopf.Memo, **kwargs: Any) -> None:
    """When a claim goes (by hand or by release), its holder and waiters look again at once.

    This handler never blocks a claim's deletion: it adds no finalizer, so ``kubectl delete
    phoneclaim`` works even while the operator is down.
    """
    if event["type"] != "DELETED":
        return
    runtime: Runtime = memo.runtime
    waiting: kopf.Index[str, BindingRef] = kwargs["phone_waiters"]
    claim = event["object"]
    holder_uid = (claim.get("spec") or {}).get("holder", {}).get("uid")
    if holder_uid:
        runtime.wakeups.wake(holder_uid)
    for waiter in waiting.get(claim["metadata"]["name"], ()):
        runtime.wakeups.wake(waiter.uid)
