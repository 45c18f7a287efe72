"""A binding's life on a real control plane: bound, running, printed, released."""

from __future__ import annotations

import base64

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import (
    Fleet,
    Operator,
    condition,
    make_binding,
    run_binding,
    wait_phase,
)
from phonefleet_testbed.waiting import wait_for


def test_a_binding_by_serial_name_runs_exactly_one_pod_for_its_phone(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """A binding naming a phone by serialName ends Running with one pod started with its id."""
    phone_id = fleet.add_phone("alpha-phone")
    kubectl.apply(make_binding("alpha", "alpha-phone", namespace))

    body = wait_phase(kubectl, namespace, "alpha", "Running")
    status = body["status"]
    assert status["phone"]["id"] == phone_id
    assert status["phone"]["serialName"] == "alpha-phone"
    assert status["phone"]["status"] == "Running"
    assert "liveViewUrl" not in status["phone"]  # a capability link: kept out by default
    assert status["podName"] == "alpha-worker"
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert condition(body, "Ready")["status"] == "True"  # type: ignore[index]
    assert condition(body, "Claimed")["status"] == "True"  # type: ignore[index]

    pods = kubectl.list("pods", namespace)
    assert [p["metadata"]["name"] for p in pods] == ["alpha-worker"]
    pod = pods[0]
    worker = next(c for c in pod["spec"]["containers"] if c["name"] == "worker")
    assert worker["args"][:2] == ["--phone-id", phone_id]
    assert pod["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    assert pod["spec"]["initContainers"][0]["restartPolicy"] == "Always"

    claim = kubectl.get("phoneclaim", phone_id)
    assert claim is not None
    assert claim["spec"]["holder"] == {
        "namespace": namespace,
        "name": "alpha",
        "uid": body["metadata"]["uid"],
    }
    secret = kubectl.get("secret", "alpha-adb", namespace)
    assert secret is not None
    phone = fleet.simulator.admin.phone(phone_id)
    assert base64.b64decode(secret["data"]["password"]).decode() == phone.adb_password
    assert fleet.running() == {phone_id}


def test_kubectl_wait_and_get_show_the_binding_like_a_builtin(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """`kubectl wait --for=condition=Ready` returns and `kubectl get pb` prints the columns."""
    phone_id = fleet.add_phone("bravo-phone")
    kubectl.apply(make_binding("bravo", phone_id, namespace))
    kubectl("wait", "--for=condition=Ready", "pb/bravo", "-n", namespace, "--timeout=60s")

    table = kubectl("get", "pb", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHONE", "PHASE", "READY", "POD", "AGE"]
    assert table[1].split()[:5] == ["bravo", phone_id, "Running", "True", "bravo-worker"]
    wide = kubectl("get", "pb", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert "bravo-phone" in wide[1].split()
    claims = kubectl("get", "phoneclaims").stdout
    assert phone_id in claims
    assert namespace in claims


def test_deleting_a_binding_removes_its_pod_stops_its_phone_and_frees_the_claim(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """Deletion leaves no pod, no Secret, no claim and no running phone behind."""
    phone_id = fleet.add_phone()
    run_binding(kubectl, namespace, "charlie", phone_id)

    kubectl("delete", "pb", "charlie", "-n", namespace, "--timeout=60s")

    assert kubectl.get("pod", "charlie-worker", namespace) is None
    assert kubectl.get("secret", "charlie-adb", namespace) is None
    assert kubectl.get("phoneclaim", phone_id) is None
    assert phone_id not in fleet.running()


def test_release_policy_keep_leaves_the_phone_running_after_deletion(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """With releasePolicy Keep the phone keeps running when its binding goes; the claim goes."""
    phone_id = fleet.add_phone()
    run_binding(kubectl, namespace, "keeper", phone_id, releasePolicy="Keep")
    fleet.keep_running.add(phone_id)

    kubectl("delete", "pb", "keeper", "-n", namespace, "--timeout=60s")

    assert kubectl.get("phoneclaim", phone_id) is None
    assert phone_id in fleet.running()


def test_a_deleted_pod_is_recreated_and_a_spec_change_replaces_it(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """The operator recreates a deleted worker pod, and replaces it when the spec changes."""
    phone_id = fleet.add_phone()
    run_binding(kubectl, namespace, "delta", phone_id)
    first = kubectl.get("pod", "delta-worker", namespace)
    assert first is not None

    kubectl("delete", "pod", "delta-worker", "-n", namespace, "--wait=false")

    def replaced() -> dict[str, object] | None:
        pod = kubectl.get("pod", "delta-worker", namespace)
        return pod if pod and pod["metadata"]["uid"] != first["metadata"]["uid"] else None

    second = wait_for(replaced, 60, message="a new delta-worker pod")
    kubectl.apply(make_binding("delta", phone_id, namespace, worker={"args": ["--verbose"]}))

    def updated() -> dict[str, object] | None:
        pod = kubectl.get("pod", "delta-worker", namespace)
        if not pod or pod["metadata"]["uid"] == second["metadata"]["uid"]:  # type: ignore[index]
            return None
        worker = next(c for c in pod["spec"]["containers"] if c["name"] == "worker")
        return pod if worker["args"][-1] == "--verbose" else None

    wait_for(updated, 60, message="delta-worker to be replaced with the new args")
    wait_phase(kubectl, namespace, "delta", "Running")
    assert len(kubectl.list("pods", namespace)) == 1


def test_the_worker_pod_is_admitted_where_pod_security_restricted_is_enforced(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """The rendered pod passes the restricted Pod Security profile."""
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    phone_id = fleet.add_phone()
    run_binding(kubectl, namespace, "echo", phone_id)
    assert kubectl.get("pod", "echo-worker", namespace) is not None
