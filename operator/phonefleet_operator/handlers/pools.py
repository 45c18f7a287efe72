"""kopf handlers of tenancy: the watches of PhonePools and Namespaces that keep the pools' view
current and judge bindings again when a pool changes. Binding events (which free running slots)
come from the bindings watch (handlers/binding_watch.py)."""

from __future__ import annotations

from typing import Any

import kopf

from phonefleet_operator import constants as c
from phonefleet_operator.services.runtime import Runtime

__all__ = ["HANDLER_IDS", "namespace_seen", "pool_seen"]

#: kopf's ids of the handlers below (their success lines are filtered out of the log).
POOL_SEEN_ID = "pool_seen"
NAMESPACE_SEEN_ID = "namespace_seen"
HANDLER_IDS = (POOL_SEEN_ID, NAMESPACE_SEEN_ID)


@kopf.on.event(c.GROUP, c.VERSION, c.POOL_PLURAL, id=POOL_SEEN_ID)
def pool_seen(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A pool was added, changed or deleted: every binding is judged again at once."""
    runtime: Runtime = memo.runtime
    runtime.tenancy.pool_event(event["type"], event["object"])


@kopf.on.event("", "v1", "namespaces", id=NAMESPACE_SEEN_ID)
def namespace_seen(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A namespace's labels decide which pools it may use: new labels, new judgement."""
    runtime: Runtime = memo.runtime
    runtime.tenancy.namespace_event(event["type"], event["object"])
