"""Closing a replica ends what its Kubernetes gateway started on its own: the Events' lanes,
and the threads and connections they post through (k8s/gateway.py, k8s/events.py)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from loop_order import until

from phonefleet_operator.services.replica import Replica
from phonefleet_operator.settings import GeelarkSettings, OperatorSettings

BINDING = {
    "apiVersion": "phonefleet.dev/v1alpha1",
    "kind": "PhoneBinding",
    "metadata": {"name": "b", "namespace": "ns", "uid": "u-1"},
}


async def test_closing_the_replica_ends_its_event_lanes_and_their_threads(kubeconfig: Path) -> None:
    """An Event queued (the API server unreachable: its lane waits to try again) when the
    replica closes: the lane ends, and the threads it posted from end with it."""
    replica = Replica.create(
        OperatorSettings(kubeconfig=str(kubeconfig)),
        GeelarkSettings(url="http://127.0.0.1:9", token="t"),
    )
    before = set(threading.enumerate())

    def api_threads() -> set[threading.Thread]:
        return {t for t in set(threading.enumerate()) - before if t.name.startswith("k8s-api")}

    replica.kube.post_event(BINDING, warning=True, reason="PhoneNotFound", message="m")
    lanes = [t for t in asyncio.all_tasks() if t.get_name().startswith("events-")]
    assert lanes
    await until(api_threads, within=30)  # its call is made

    await replica.close()

    assert all(lane.done() for lane in lanes)
    await until(lambda: not api_threads(), within=30)
