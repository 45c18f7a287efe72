"""The PhonePool watch reports a pool deleted during a watch gap, so tenancy forgets it.

kopf, which watched PhonePools before, reported only what its relist held: a pool deleted
while the watch was cut off stayed in the tenancy view, and its bindings stayed admitted by a
pool that is gone, until the operator restarted. The API server is played as in
``test_job_watch``.
"""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

from test_job_watch import Answer, eventually

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


class Pools:
    """The PhonePools of the API server: the first watch ends with 410 once the gap is over."""

    def __init__(self, pools: list[Obj]) -> None:
        self.pools = {p["metadata"]["name"]: p for p in pools}
        self.gap_over = threading.Event()
        self.watches = 0

    def __call__(self, *resource: str, **kwargs: Any) -> Answer:
        assert resource == ("phonefleet.dev", "v1alpha1", "phonepools")
        if not kwargs.get("watch"):
            page = {"metadata": {"resourceVersion": "50"}, "items": list(self.pools.values())}
            return Answer([page])
        self.watches += 1
        if self.watches == 1:
            expired = {"type": "ERROR", "object": {"code": 410, "message": "too old"}}
            return Answer([expired], before=self.gap_over)
        return Answer([])


async def test_a_pool_deleted_while_the_watch_was_down_is_reported_to_tenancy_on_relist() -> None:
    api = Pools([pool("kept", 10), pool("deleted", 11)])
    events: list[tuple[str, str]] = []
    tenancy = SimpleNamespace(pool_event=lambda t, o: events.append((t, o["metadata"]["name"])))
    runtime = SimpleNamespace(tenancy=tenancy, settings=OperatorSettings())
    client = SimpleNamespace(custom=SimpleNamespace(list_cluster_custom_object=api))
    watch = pool_watch(runtime, client)  # type: ignore[arg-type]
    watch.start(asyncio.get_running_loop())
    try:
        await eventually(lambda: len(events) == 2, "both pools")
        del api.pools["deleted"]  # kubectl delete phonepool, while the watch is cut off
        api.gap_over.set()  # the watch resumes: 410 Gone, a relist
        await eventually(lambda: len(events) == 3, "the deletion")
    finally:
        await stop_all([watch])
    assert events == [("ADDED", "kept"), ("ADDED", "deleted"), ("DELETED", "deleted")]
    assert watch.lists == 2
