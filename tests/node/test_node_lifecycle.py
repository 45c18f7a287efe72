"""The real node itself: pods really run on it, and it leaves nothing behind on the host."""

from __future__ import annotations

from conftest import require_real_node
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.node import NODE_NAME, HostState, real_node_bed
from phonefleet_testbed.node.config import PAUSE_IMAGE
from phonefleet_testbed.waiting import wait_for

_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "sleeper", "namespace": "default"},
    "spec": {
        "containers": [
            {"name": "sleeper", "image": PAUSE_IMAGE, "imagePullPolicy": "Never"},
        ],
        "terminationGracePeriodSeconds": 5,
    },
}


def test_a_pod_runs_on_the_real_node_and_teardown_leaves_nothing_on_the_host() -> None:
    """Interfaces, routes, iptables rules, mounts and netns are the same before and after."""
    require_real_node()
    before = HostState.capture()
    with real_node_bed() as bed:
        kubectl = Kubectl(bed.plane)
        kubectl.apply(_POD)

        def running() -> dict[str, str] | None:
            pod = kubectl.get("pod", "sleeper", "default") or {}
            status = pod.get("status", {})
            return status if status.get("phase") == "Running" and status.get("podIP") else None

        status = wait_for(running, 60, message="the pod to run on the real node")
        pod = kubectl.get("pod", "sleeper", "default")
        assert pod is not None
        assert pod["spec"]["nodeName"] == NODE_NAME
        assert status["podIP"] in {str(ip) for ip in bed.network.pod_cidr}
        # The pod's sandbox and its container are containerd's, on this node.
        containers = bed.node.ctr("containers", "list", "--quiet").stdout.split()
        assert len(containers) >= 2
        during = HostState.capture()
        assert during.leftovers(before), "bring-up changed nothing on the host: diff cannot work"
    after = HostState.capture()
    assert after.leftovers(before) == {}
