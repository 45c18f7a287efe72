"""The watches of tenancy: PhonePools and Namespaces keep the pools' view current and judge
bindings again when a pool changes. Binding events (which free running slots) come from the
bindings watch (handlers/binding_watch.py).

PhonePools are watched by the operator's own list-then-watch (``ObjectWatch``), which reports a
pool deleted during a watch gap on its relist; kopf's relist reports only what its list holds,
and a pool deleted meanwhile stayed in the view (its bindings admitted by a pool that is gone)
until the operator restarted. Namespaces stay with kopf: a relist reports each one's labels,
and a namespace deleted meanwhile took its bindings with it.
"""

from __future__ import annotations

import functools
from typing import Any

import kopf

from phonefleet_operator import constants as c
from phonefleet_operator.k8s.watch import ObjectWatch, WatchClient
from phonefleet_operator.services.runtime import Runtime

__all__ = ["HANDLER_IDS", "namespace_seen", "pool_watch"]

#: kopf's ids of the handlers below (their success lines are filtered out of the log).
NAMESPACE_SEEN_ID = "namespace_seen"
HANDLER_IDS = (NAMESPACE_SEEN_ID,)


def pool_watch(runtime: Runtime, api: WatchClient) -> ObjectWatch:
    """The watch of PhonePools (cluster-scoped): a pool added, changed or deleted, every
    binding is judged again at once (``Tenancy.pool_event``)."""
    pools = functools.partial(
        api.custom.list_cluster_custom_object, c.GROUP, c.VERSION, c.POOL_PLURAL
    )
    return ObjectWatch(
        "PhonePools",
        pools,
        runtime.tenancy.pool_event,
        server_timeout=runtime.settings.watch_server_timeout_seconds,
    )


@kopf.on.event("", "v1", "namespaces", id=NAMESPACE_SEEN_ID)
def namespace_seen(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A namespace's labels decide which pools it may use: new labels, new judgement."""
    runtime: Runtime = memo.runtime
    runtime.tenancy.namespace_event(event["type"], event["object"])
