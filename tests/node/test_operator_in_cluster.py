"""The operator as a user installs it: ``kubectl apply -k manifests/default`` on the real node.

The operator runs as a pod under its ServiceAccount in the ``restricted`` namespace, with a
read-only root filesystem; the API server reaches its webhook through the Service (kube-proxy in
the node's namespace), and it reaches the API server through the ``kubernetes`` Service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from phonefleet_testbed.binaries import repo_root
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import DEFAULT_TOKEN
from phonefleet_testbed.node import NodeBed
from phonefleet_testbed.node.images import NodeImages
from phonefleet_testbed.node.workload import fake_driver_worker
from phonefleet_testbed.scenarios import Fleet, make_binding, wait_phase
from phonefleet_testbed.waiting import wait_for

SYSTEM = "phonefleet-system"
REPLICAS = 2
#: Applies of a duplicate in a row, each routed by kube-proxy to either Ready replica: with a
#: replica that admitted unchecked, all of them refused would be a 1-in-64 chance.
REFUSALS = 6
DEPLOYMENT = "deployment/phonefleet-operator"
WEBHOOK_CONFIGURATION = "phonefleet.dev"


@pytest.fixture
def installed(
    node_kubectl: Kubectl, node_bed: NodeBed, node_images: NodeImages, node_fleet: Fleet
) -> Iterator[None]:
    """manifests/default applied, pointed at the simulator and the local images; removed after."""
    node_kubectl("apply", "-k", str(repo_root() / "manifests" / "default"))
    node_kubectl(
        "-n", SYSTEM, "create", "secret", "generic", "geelark-credentials",
        f"--from-literal=token={DEFAULT_TOKEN}",
    )  # fmt: skip
    # What an overlay of a real install would set: the image, Geelark's address, the sidecar.
    node_kubectl("-n", SYSTEM, "set", "image", DEPLOYMENT, f"operator={node_images.operator}")
    node_kubectl(
        "-n", SYSTEM, "set", "env", DEPLOYMENT,
        f"PHONEFLEET_GEELARK_URL={node_fleet.simulator.base_url}",
        f"PHONEFLEET_WORKER_IMAGE={node_images.worker}",
        "PHONEFLEET_WORKER_IMAGE_PULL_POLICY=Never",
        f"PHONEFLEET_APPIUM_IMAGE={node_images.appium}",
        "PHONEFLEET_APPIUM_IMAGE_PULL_POLICY=Never",
        "PHONEFLEET_RUNNING_RECHECK_SECONDS=5",
        "PHONEFLEET_BOOT_POLL_SECONDS=0.3",
    )  # fmt: skip
    # manifests/default's two replicas: both Ready, both endpoints of the webhook Service.
    node_kubectl("-n", SYSTEM, "rollout", "status", DEPLOYMENT, "--timeout=180s")
    try:
        yield
    finally:
        try:
            _release_bindings(node_kubectl)
        finally:
            node_kubectl("-n", SYSTEM, "delete", "deployment", "phonefleet-operator")
            node_kubectl("-n", SYSTEM, "delete", "secret", "geelark-credentials")
            # A webhook configuration outlives the operator that registered it.
            node_kubectl("delete", "validatingwebhookconfiguration", WEBHOOK_CONFIGURATION,
                         "--ignore-not-found")  # fmt: skip


def _release_bindings(kubectl: Kubectl) -> None:
    items = json.loads(kubectl("get", "pb", "-A", "-o", "json").stdout)["items"]
    for item in items:
        meta = item["metadata"]
        kubectl("delete", "pb", meta["name"], "-n", meta["namespace"], "--wait=false")
    wait_for(
        lambda: not json.loads(kubectl("get", "pb", "-A", "-o", "json").stdout)["items"],
        120,
        message="the in-cluster operator to release every binding",
    )


def _operator_pods(kubectl: Kubectl) -> dict[str, dict]:
    """The operator's ready pods (not being deleted), by name."""
    pods = kubectl.list("pods", SYSTEM, "-l", "app.kubernetes.io/component=operator")
    return {
        p["metadata"]["name"]: p
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
    }


def _leader(kubectl: Kubectl) -> str | None:
    """The operator pod holding Lease phonefleet-operator (identity: host name_pid)."""
    lease = kubectl.get("lease", "phonefleet-operator", SYSTEM) or {}
    holder = str(lease.get("spec", {}).get("holderIdentity") or "")
    name = holder.rpartition("_")[0]
    return name if name in _operator_pods(kubectl) else None


def _refuses_duplicates(kubectl: Kubectl, namespace: str, phone_id: str) -> None:
    """With both replicas Ready, REFUSALS applies in a row of a binding for the phone ``in0``
    holds are all refused, naming the holder."""
    wait_for(
        lambda: len(_operator_pods(kubectl)) == REPLICAS,
        180,
        message=f"{REPLICAS} Ready operator pods",
    )
    duplicate = json.dumps(make_binding("intruder", phone_id, namespace))
    for attempt in range(REFUSALS):
        refused = kubectl("apply", "-f", "-", input_text=duplicate, check=False)
        assert refused.returncode != 0, f"apply {attempt + 1} of {REFUSALS} was admitted"
        assert f"already held by binding {namespace}/in0" in refused.stderr
    assert kubectl.get("phonebinding", "intruder", namespace) is None


def test_the_installed_operator_runs_bindings_refuses_duplicates_and_survives_its_pod(
    node_kubectl: Kubectl, node_namespace: str, node_fleet: Fleet, installed: None
) -> None:
    """Restricted, read-only, its own ServiceAccount; two Ready replicas, each refusing
    duplicates through the webhook Service; a killed operator pod replaced by one that takes
    the Lease and acts, with no worker pod disturbed."""
    leader = wait_for(lambda: _leader(node_kubectl), 120, message="an operator pod to lead")
    pod = _operator_pods(node_kubectl)[leader]
    container = pod["spec"]["containers"][0]
    assert pod["spec"]["serviceAccountName"] == "phonefleet-operator"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    namespace = node_kubectl.get("namespace", SYSTEM)
    assert namespace is not None
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    phones = [node_fleet.add_phone(f"incluster-{n}") for n in range(2)]
    for n, phone_id in enumerate(phones):
        node_kubectl.apply(
            make_binding(f"in{n}", phone_id, node_namespace, worker=fake_driver_worker())
        )
    for n in range(len(phones)):
        wait_phase(node_kubectl, node_namespace, f"in{n}", "Running", timeout=240)

    # The API server calls the webhook through Service phonefleet-webhook, whose endpoints are
    # both Ready replicas: holder and standby alike refuse the duplicate.
    _refuses_duplicates(node_kubectl, node_namespace, phones[0])

    # Kill the operator's pod: the Deployment replaces it, and the new pod takes the Lease.
    workers = {p["metadata"]["uid"] for p in node_kubectl.list("pods", node_namespace)}
    node_kubectl("-n", SYSTEM, "delete", "pod", leader, "--wait=false")

    def replaced() -> bool:
        pods = _operator_pods(node_kubectl)
        new_leader = _leader(node_kubectl)
        return bool(pods) and leader not in pods and new_leader not in (None, leader)

    wait_for(replaced, 180, message="the Deployment's replacement pod to lead")
    _refuses_duplicates(node_kubectl, node_namespace, phones[0])  # the new standby too
    phone_id = phones[1]
    node_fleet.simulator.admin.update_phone(phone_id, status=2)  # the new leader must act
    wait_for(
        lambda: phone_id in node_fleet.running(),
        120,
        message="the new leader to start the phone stopped behind its back",
    )
    for n in range(len(phones)):
        wait_phase(node_kubectl, node_namespace, f"in{n}", "Running", timeout=60)
    after = node_kubectl.list("pods", node_namespace)
    assert {p["metadata"]["uid"] for p in after} == workers
    restarts = [s["restartCount"] for p in after for s in p["status"]["containerStatuses"]]
    assert restarts == [0] * len(restarts)
