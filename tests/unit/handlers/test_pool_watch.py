"""The PhonePool watch reports a pool deleted during a watch gap, so tenancy forgets it.

kopf, which watched PhonePools before, reported only what its relist held: a pool deleted
while the watch was cut off stayed in the tenancy view, and its bindings stayed admitted by a
pool that is gone, until the operator restarted. The API server is played as in
``test_job_watch``.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from test_job_watch import Deliveries, Gapped

from phonefleet_operator.handlers.pools import pool_watch
from phonefleet_operator.k8s.watch import stop_all
from phonefleet_operator.settings import OperatorSettings

Obj = dict[str, Any]


def pool(name: str, version: int) -> Obj:
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhonePool",
        "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": str(version)},
        "spec": {"namespaces": {"names": ["farm"]}, "phones": {"serialNames": [f"{name}-*"]}},
    }


async def test_a_pool_deleted_while_the_watch_was_down_is_reported_to_tenancy_on_relist() -> None:
    api = Gapped("phonepools", [pool("kept", 10), pool("deleted", 11)])
    events: list[tuple[str, str]] = []
    delivered = Deliveries()

    def pool_event(event_type: str, obj: Obj) -> None:
        events.append((event_type, obj["metadata"]["name"]))
        delivered.mark()

    tenancy = SimpleNamespace(pool_event=pool_event)
    runtime = SimpleNamespace(tenancy=tenancy, settings=OperatorSettings())
    client = SimpleNamespace(custom=SimpleNamespace(list_cluster_custom_object=api))
    watch = pool_watch(runtime, client)  # type: ignore[arg-type]
    watch.start(asyncio.get_running_loop())
    try:
        await delivered.until(lambda: len(events) == 2, "both pools")
        del api.objects["deleted"]  # kubectl delete phonepool, while the watch is cut off
        api.gap_over.set()  # the watch resumes: 410 Gone, a relist
        await delivered.until(lambda: len(events) == 3, "the deletion")
    finally:
        await stop_all([watch])
    assert events == [("ADDED", "kept"), ("ADDED", "deleted"), ("DELETED", "deleted")]
    assert watch.lists == 2
