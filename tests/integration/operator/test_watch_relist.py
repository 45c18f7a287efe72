"""The operator's own watch against a real API server: deletions during a gap are reported.

The watch is stopped (the gap), a pod is deleted and another created through kubectl, etcd's
history is compacted (as the API server does every five minutes) and kube-apiserver is
restarted, so that neither its watch cache nor etcd still holds the resourceVersion the watch
resumes from. Started again, the watch gets 410 Gone from the real API server, lists again and
reports the deleted pod as DELETED (with the identity it kept), the new one as ADDED, and
nothing for the pod that did not change.

It runs on a control plane of its own: restarting the shared one would disturb other tests.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import requests

from phonefleet_operator.k8s import ApiCaller, load_api_client
from phonefleet_operator.k8s.watch import ObjectWatch
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.waiting import wait_until

LABEL = "phonefleet-test/relist"
NAMESPACE = "default"


def _pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {LABEL: "yes"}},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:1"}]},
    }


async def _eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60.0
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _compact_etcd(plane: ControlPlane) -> None:
    """Compact etcd's history up to now (its JSON gateway, on loopback)."""
    key = base64.b64encode(b"/").decode()
    reply = requests.post(f"{plane.etcd_url}/v3/kv/range", json={"key": key}, timeout=10)
    reply.raise_for_status()
    revision = int(reply.json()["header"]["revision"])
    requests.post(
        f"{plane.etcd_url}/v3/kv/compaction", json={"revision": revision}, timeout=30
    ).raise_for_status()


def _restart_apiserver(plane: ControlPlane, kubectl: Kubectl) -> None:
    """Stop and start kube-apiserver (same flags, port and certificates); wait until ready."""
    apiserver = plane.component("kube-apiserver")
    apiserver.stop()
    apiserver.start()

    def ready() -> bool:
        return kubectl("get", "--raw", "/readyz", check=False).returncode == 0

    wait_until(ready, timeout=120, what="kube-apiserver ready after its restart")


@pytest.fixture
def own_plane() -> Iterator[ControlPlane]:
    with ControlPlane() as plane:
        yield plane


@pytest.fixture
async def caller(own_plane: ControlPlane) -> AsyncIterator[ApiCaller]:
    api = ApiCaller(load_api_client(2, str(own_plane.kubeconfig)), 2)
    yield api
    api.close()


async def test_pods_deleted_while_the_watch_was_down_are_reported_on_relist(
    own_plane: ControlPlane, caller: ApiCaller
) -> None:
    kubectl = Kubectl(own_plane)
    for name in ("kept", "deleted"):
        kubectl.apply(_pod(name))
    seen: list[tuple[str, str]] = []
    gone_uids: list[str] = []

    def deliver(event_type: str, obj: dict[str, Any]) -> None:
        seen.append((event_type, obj["metadata"]["name"]))
        if event_type == "DELETED":
            gone_uids.append(obj["metadata"].get("uid", ""))

    pods = functools.partial(caller.core.list_namespaced_pod, NAMESPACE, label_selector=LABEL)
    watch = ObjectWatch("test pods", pods, deliver)
    watch.start(asyncio.get_running_loop())
    try:
        await _eventually(
            lambda: {n for t, n in seen if t == "ADDED"} >= {"kept", "deleted"}, "both pods"
        )
        deleted = kubectl.get("pod", "deleted", NAMESPACE)
        assert deleted is not None
        await asyncio.to_thread(watch.stop)
        assert not watch.alive()

        kubectl("delete", "pod", "deleted", "-n", NAMESPACE, "--grace-period=0", "--force")
        kubectl.apply(_pod("added"))
        await asyncio.to_thread(_compact_etcd, own_plane)
        await asyncio.to_thread(_restart_apiserver, own_plane, kubectl)
        seen.clear()
        watch.start(asyncio.get_running_loop())
        await _eventually(lambda: ("DELETED", "deleted") in seen, "the missed deletion")
        await _eventually(lambda: ("ADDED", "added") in seen, "the pod added in the gap")
    finally:
        await asyncio.to_thread(watch.stop)
    # The API server answered 410 for the old version: a relist. (A watch that then fails
    # three times in a row lists again too: more than one relist is no fault.)
    assert watch.lists >= 2
    assert gone_uids == [deleted["metadata"]["uid"]]
    assert ("DELETED", "kept") not in seen
    assert ("ADDED", "kept") not in seen  # unchanged since the last report: nothing to say
