"""`phonefleet dev up` / `dev env`: the embedded default runs, is reachable, and cleans up; a
PhoneJob there waits for want of a worker's address and nothing is sent to any worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from phonefleet_testbed.binaries import repo_root
from phonefleet_testbed.processes import ManagedProcess, free_port
from phonefleet_testbed.waiting import wait_for

BIN = Path(sys.executable).parent


def _port_open(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parsed.hostname or "", parsed.port or 0)) == 0


def test_dev_up_serves_a_control_plane_and_simulator_until_interrupted(tmp_path: Path) -> None:
    """`dev up` prints its start-up time, `dev env` points kubectl at it (its KWOK node's
    InternalIP is loopback), the phones manifests/samples name exist there (validate resolves
    them, the samples apply), Ctrl+C stops it all."""
    env = {**os.environ, "PHONEFLEET_DEV_STATE_DIR": str(tmp_path / "dev")}
    up = subprocess.Popen(
        [str(BIN / "phonefleet"), "dev", "up", "--phones", "3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        env_file = tmp_path / "dev" / "env"
        wait_for(env_file.is_file, 60, message="dev up to write its env file")
        printed = subprocess.run(
            [str(BIN / "phonefleet"), "dev", "env"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in printed.splitlines()
            if line.startswith("export ") and "PATH" not in line
        )
        kubectl = exports["PHONEFLEET_KUBECTL"]
        nodes = subprocess.run(
            [kubectl, f"--kubeconfig={exports['KUBECONFIG']}", "get", "nodes"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "kwok-node-0" in nodes
        # Where the API server dials the KWOK node's "kubelet" (kubectl logs, exec): loopback
        addresses = subprocess.run(
            [
                kubectl,
                f"--kubeconfig={exports['KUBECONFIG']}",
                "get",
                "node",
                "kwok-node-0",
                "-o",
                "jsonpath={.status.addresses}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert json.loads(addresses) == [{"address": "127.0.0.1", "type": "InternalIP"}]
        phones = requests.post(
            f"{exports['PHONEFLEET_GEELARK_URL']}/open/v1/phone/list",
            json={"page": 1, "pageSize": 10},
            headers={
                "traceId": "t-1",
                "Authorization": f"Bearer {exports['PHONEFLEET_GEELARK_TOKEN']}",
            },
            timeout=5,
        ).json()
        # phone-001 ... phone-003, and the phones manifests/samples name: they resolve
        assert phones["data"]["total"] == 3 + 4
        validated = subprocess.run(
            [str(BIN / "phonefleet"), "bindings", "validate", "manifests/samples"],
            env={**env, **exports},
            capture_output=True,
            text=True,
            check=False,
            cwd=repo_root(),
        )
        assert validated.returncode == 0, validated.stdout + validated.stderr
        applied = subprocess.run(
            [kubectl, f"--kubeconfig={exports['KUBECONFIG']}", "apply", "-k", "manifests/samples"],
            capture_output=True,
            text=True,
            check=True,
            cwd=repo_root(),
        ).stdout
        assert applied.count("created") == 4
        server = subprocess.run(
            [
                kubectl,
                f"--kubeconfig={exports['KUBECONFIG']}",
                "config",
                "view",
                "--minify",
                "-o",
                "jsonpath={.clusters[0].cluster.server}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    assert "started in" in output
    assert not env_file.exists()
    assert not _port_open(server)
    assert not _port_open(exports["PHONEFLEET_GEELARK_URL"])


def _exports(env: dict[str, str]) -> dict[str, str]:
    """What `phonefleet dev env` prints, as a dict (PATH left out)."""
    printed = subprocess.run(
        [str(BIN / "phonefleet"), "dev", "env"], env=env, capture_output=True, text=True, check=True
    ).stdout
    return dict(
        line.removeprefix("export ").split("=", 1)
        for line in printed.splitlines()
        if line.startswith("export ") and "PATH" not in line
    )


def _get(exports: dict[str, str], *args: str) -> Any:
    """``kubectl get ... -o json`` against the dev environment; None when not found."""
    result = subprocess.run(
        [exports["PHONEFLEET_KUBECTL"], f"--kubeconfig={exports['KUBECONFIG']}", "get", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(result.stdout) if result.returncode == 0 else None


def _metric(url: str, name: str) -> float | None:
    lines = requests.get(url, timeout=5).text.splitlines()
    return next((float(x.split()[1]) for x in lines if x.split(" ")[0] == name), None)


def test_a_phonejob_on_dev_up_waits_without_a_worker_ip_and_nothing_is_sent(
    tmp_path: Path,
) -> None:
    """On `dev up` (KWOK), a Running binding's worker pod is Ready with no pod IP; a PhoneJob
    for it waits Pending with reason WorkerWithoutIP (status and a Warning Event naming the pod
    and `make demo`), the operator's phonefleet_worker_requests_total stays 0 (a request counts
    before its connection is tried), and `dev up` printed that advice."""
    env = {**os.environ, "PHONEFLEET_DEV_STATE_DIR": str(tmp_path / "dev")}
    up = subprocess.Popen(
        [str(BIN / "phonefleet"), "dev", "up", "--phones", "1", "--no-samples"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    metrics = f"http://127.0.0.1:{free_port()}/metrics"
    operator: ManagedProcess | None = None
    try:
        wait_for((tmp_path / "dev" / "env").is_file, 60, message="dev up to write its env file")
        exports = _exports(env)
        kubectl = [exports["PHONEFLEET_KUBECTL"], f"--kubeconfig={exports['KUBECONFIG']}"]
        operator = process = ManagedProcess(
            "phonefleet-operator",
            [
                str(BIN / "phonefleet-operator"),
                "--liveness",
                f"http://127.0.0.1:{free_port()}/healthz",
            ],
            tmp_path,
            env={
                **exports,
                "PHONEFLEET_METRICS_ADDR": "127.0.0.1",
                "PHONEFLEET_METRICS_PORT": metrics.rsplit(":", 1)[1].split("/", 1)[0],
                "PHONEFLEET_BOOT_POLL_SECONDS": "1",
                "PHONEFLEET_JOBS_POLL_SECONDS": "0.5",
            },
        )
        process.start()
        binding = {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhoneBinding",
            "metadata": {"name": "solo", "namespace": "default"},
            "spec": {"phoneId": "phone-001"},
        }
        job = {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhoneJob",
            "metadata": {"name": "post-1", "namespace": "default"},
            "spec": {"bindingName": "solo", "task": "probe-post", "params": {"caption": "hi"}},
        }
        subprocess.run(
            [*kubectl, "apply", "-f", "-"], input=json.dumps(binding), text=True, check=True
        )

        def ready_pod() -> dict[str, Any] | None:
            process.check_running()
            pod = _get(exports, "pod", "solo-worker", "-o", "json")
            conditions = ((pod or {}).get("status") or {}).get("conditions") or []
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            return pod if ready else None

        pod = wait_for(ready_pod, 120, message="binding solo's worker pod to be Ready")
        # Checked before the job exists: were there an address, the operator would connect to
        # it, and on KWOK that connection would leave the machine.
        assert "podIP" not in pod["status"], pod["status"]
        assert "podIPs" not in pod["status"], pod["status"]
        subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(job), text=True, check=True)

        def job_status() -> dict[str, Any] | None:
            process.check_running()
            status = (_get(exports, "phonejob", "post-1", "-o", "json") or {}).get("status")
            return status if (status or {}).get("reason") == "WorkerWithoutIP" else None

        status = wait_for(job_status, 120, message="PhoneJob post-1 to wait with WorkerWithoutIP")
        phase = _get(exports, "phonebinding", "solo", "-o", "json")["status"]["phase"]
        events = _get(
            exports, "events", "--field-selector", "involvedObject.name=post-1", "-o", "json"
        )
        requests_made = _metric(metrics, "phonefleet_worker_requests_total")
    finally:
        if operator is not None:
            operator.stop()
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=60)
    assert status["phase"] == "Pending"
    assert "worker pod solo-worker is Ready with no pod IP" in status["message"]
    assert "make demo" in status["message"]
    assert phase == "Running"
    warnings = [e for e in events["items"] if e["reason"] == "WorkerWithoutIP"]
    assert [e["type"] for e in warnings] == ["Warning"]
    assert requests_made == 0
    assert up.returncode == 0, output
    assert "WorkerWithoutIP" in output
    assert "make demo" in output
