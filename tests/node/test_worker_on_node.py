"""Worker pods that really run: the rendered pod, the real worker, Appium, and a phone's adbd."""

from __future__ import annotations

import requests

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.node import NODE_NAME, NodeBed
from phonefleet_testbed.node.workload import fake_driver_worker
from phonefleet_testbed.scenarios import Fleet, Operator, condition, make_binding, wait_phase
from phonefleet_testbed.waiting import wait_for
from phonefleet_testbed.watching import Watch, WatchEvent

# The worker's log lines, in the order a worker that reached its phone prints them.
_SESSION_OPENED = (
    "from WAITING_FOR_PHONE to ADB_CONNECTING",
    "from ADB_CONNECTING to ADB_READY",
    "from ADB_READY to APPIUM_READY",
    "from APPIUM_READY to IDLE",
)


def worker_log(kubectl: Kubectl, namespace: str, pod: str, *extra: str) -> str:
    """``kubectl logs POD -c worker``: served by the real kubelet."""
    return kubectl("logs", pod, "-c", "worker", "-n", namespace, *extra).stdout


def test_a_binding_runs_once_its_worker_reached_its_phone_and_opened_a_session(
    node_kubectl: Kubectl, node_namespace: str, node_fleet: Fleet, node_operator: Operator
) -> None:
    """Running on the real node means: adb connected, identity checked, Appium session open."""
    phone_id = node_fleet.add_phone("node-alpha")
    node_kubectl.apply(make_binding("alpha", phone_id, node_namespace, worker=fake_driver_worker()))

    body = wait_phase(node_kubectl, node_namespace, "alpha", "Running", timeout=180)

    assert condition(body, "WorkerReady")["status"] == "True"  # type: ignore[index]
    pod = node_kubectl.get("pod", "alpha-worker", node_namespace)
    assert pod is not None
    assert pod["spec"]["nodeName"] == NODE_NAME
    statuses = {s["name"]: s for s in pod["status"]["containerStatuses"]}
    assert statuses["worker"]["ready"] is True
    assert statuses["worker"]["restartCount"] == 0
    log = worker_log(node_kubectl, node_namespace, "alpha-worker")
    positions = [log.find(line) for line in _SESSION_OPENED]
    assert -1 not in positions, log
    assert positions == sorted(positions), log
    assert phone_id in log
    adbd = node_fleet.simulator.adb.daemon(phone_id)
    assert "getprop ro.gl.serialno" in adbd.commands
    password = node_fleet.simulator.admin.phone(phone_id).adb_password
    assert password not in log


def _bind_and_run(kubectl: Kubectl, namespace: str, fleet: Fleet, name: str) -> tuple[str, dict]:
    """A phone and a binding for it, Running; returns (phone id, the worker pod)."""
    phone_id = fleet.add_phone(f"node-{name}")
    kubectl.apply(make_binding(name, phone_id, namespace, worker=fake_driver_worker()))
    wait_phase(kubectl, namespace, name, "Running", timeout=180)
    pod = kubectl.get("pod", f"{name}-worker", namespace)
    assert pod is not None
    return phone_id, pod


def _statuses(kubectl: Kubectl, namespace: str, pod: str) -> dict[str, dict]:
    return _container_statuses(kubectl.get("pod", pod, namespace) or {})


def _container_statuses(body: dict) -> dict[str, dict]:
    status = body.get("status", {})
    every = status.get("initContainerStatuses", []) + status.get("containerStatuses", [])
    return {s["name"]: s for s in every}


def test_a_phone_stopped_behind_the_operators_back_is_restored_and_the_same_pod_recovers(
    node_kubectl: Kubectl, node_namespace: str, node_fleet: Fleet, node_operator: Operator
) -> None:
    """Not ready while the phone is off; the operator restarts it and re-provisions ADB; the
    worker reads the new Secret content and reconnects, with no container restart."""
    phone_id, pod = _bind_and_run(node_kubectl, node_namespace, node_fleet, "bravo")
    starts = node_fleet.simulator.admin.phone(phone_id).start_count
    # Geelark refuses starts until the worker was seen not-ready: an operator that notices the
    # stop first could otherwise restart the phone before the worker's own check ran.
    node_fleet.simulator.admin.set_faults("phone/start", http_status=503)
    node_fleet.simulator.admin.update_phone(phone_id, status=2)  # stopped, out of band

    # The worker's own /readyz, from the host (routed to the pod network): the kubelet needs
    # three failed probes before it shows not-ready, and the operator may be quicker than that.
    readyz = f"http://{pod['status']['podIP']}:8080/readyz"

    def worker_report(ready: bool) -> dict | None:
        reply = requests.get(readyz, timeout=2)
        report = reply.json()
        return report if (reply.status_code == 200) is ready else None

    down = wait_for(lambda: worker_report(False), 120, message="the worker to turn not-ready")
    node_fleet.simulator.admin.clear_faults("phone/start")
    assert down["ready"] is False
    assert down["reason"]
    wait_for(lambda: worker_report(True), 240, message="the same worker to be ready again")
    wait_phase(node_kubectl, node_namespace, "bravo", "Running", timeout=60)

    after = node_kubectl.get("pod", "bravo-worker", node_namespace)
    assert after is not None
    assert after["metadata"]["uid"] == pod["metadata"]["uid"]
    assert _statuses(node_kubectl, node_namespace, "bravo-worker")["worker"]["restartCount"] == 0
    assert node_fleet.simulator.admin.phone(phone_id).start_count == starts + 1
    log = worker_log(node_kubectl, node_namespace, "bravo-worker")
    # At least one session after the first: the worker reconnected in place. Not exactly one:
    # under load an idle check may also time out and reopen the session, which is correct.
    assert log.count("from ADB_READY to APPIUM_READY") >= 2, log


def test_an_endpoint_answering_another_phones_id_is_refused_with_a_specific_reason(
    node_kubectl: Kubectl, node_namespace: str, node_fleet: Fleet, node_operator: Operator
) -> None:
    """The worker never drives the wrong phone, and the binding says why in its own words."""
    phone_id = node_fleet.add_phone("node-charlie")
    impostor = node_fleet.add_phone("node-impostor")
    node_fleet.simulator.adb.impersonate(phone_id, impostor)
    node_kubectl.apply(
        make_binding("charlie", phone_id, node_namespace, worker=fake_driver_worker())
    )

    def refused() -> dict | None:
        body = node_kubectl.get("phonebinding", "charlie", node_namespace) or {}
        ready = condition(body, "WorkerReady") or {}
        return ready if ready.get("reason") == "IdentityMismatch" else None

    def describe() -> str:
        body = node_kubectl.get("phonebinding", "charlie", node_namespace) or {}
        pod = node_kubectl.get("pod", "charlie-worker", node_namespace) or {}
        statuses = pod.get("status", {}).get("containerStatuses")
        return f"WorkerReady to say IdentityMismatch; binding {body.get('status')}; pod {statuses}"

    ready = wait_for(refused, 180, message=describe)
    assert ready["status"] == "False"
    assert impostor in ready["message"]
    assert phone_id in ready["message"]
    adbd = node_fleet.simulator.adb.daemon(phone_id)
    assert all(not c.startswith(("input", "am ", "pm ")) for c in adbd.commands)
    node_fleet.simulator.adb.heal(phone_id)


def test_deleting_a_binding_stops_the_worker_cleanly_before_the_phone(
    node_kubectl: Kubectl, node_bed: NodeBed, node_namespace: str, node_fleet: Fleet,
    node_operator: Operator,
) -> None:  # fmt: skip
    """SIGTERM: the worker ends its session and exits 0 within the grace period; the phone
    is still running at that moment, and stopped only afterwards."""
    phone_id, _ = _bind_and_run(node_kubectl, node_namespace, node_fleet, "delta")
    seen: list[tuple[int, bool]] = []  # (worker exit code, phone still running) when it exited

    def look(event: WatchEvent) -> None:
        status = _container_statuses(event.object).get("worker", {})
        terminated = status.get("state", {}).get("terminated")
        if terminated is not None and not seen:
            seen.append((terminated["exitCode"], phone_id in node_fleet.running()))

    # A watch, not polling: the pod shows its terminated worker only between the kubelet's
    # last status write and its removal, a window a poll under load can miss.
    selector = "--field-selector=metadata.name=delta-worker"
    with Watch(node_bed.plane, "pods", node_namespace, selector, on_event=look):
        node_kubectl("delete", "pb", "delta", "-n", node_namespace, "--wait=false")
        wait_for(lambda: phone_id not in node_fleet.running(), 120, message="the phone to stop")

    assert seen, "the worker container's termination was never seen in the pod's status"
    exit_code, phone_was_running = seen[0]
    assert exit_code == 0
    assert phone_was_running


def test_killed_worker_and_appium_containers_restart_and_the_binding_recovers(
    node_kubectl: Kubectl, node_bed: NodeBed, node_namespace: str, node_fleet: Fleet,
    node_operator: Operator,
) -> None:  # fmt: skip
    """SIGKILL the worker, then the Appium sidecar: each restarts in place, the binding is
    Running again, and the phone is never restarted for it."""
    phone_id, _ = _bind_and_run(node_kubectl, node_namespace, node_fleet, "echo")
    starts = node_fleet.simulator.admin.phone(phone_id).start_count
    for container in ("worker", "appium"):
        status = _statuses(node_kubectl, node_namespace, "echo-worker")[container]
        container_id = status["containerID"].removeprefix("containerd://")
        node_bed.node.ctr("tasks", "kill", "--signal", "SIGKILL", container_id)

        def recovered(container: str = container) -> bool:
            now = _statuses(node_kubectl, node_namespace, "echo-worker")
            return now[container]["restartCount"] >= 1 and now["worker"]["ready"] is True

        wait_for(recovered, 180, message=f"the {container} container to restart and recover")
    wait_phase(node_kubectl, node_namespace, "echo", "Running", timeout=60)
    assert node_fleet.simulator.admin.phone(phone_id).start_count == starts
