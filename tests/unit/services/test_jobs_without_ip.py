"""A worker pod that is Ready with no pod IP (a simulated node's: KWOK runs nothing) cannot take
a job: the job waits saying so, with one Event, and the operator calls no worker; once the pod
has an address the job starts there."""

from __future__ import annotations

from typing import Any

from fakes import FakeKube
from job_fakes import FakeJobApi, FakeWorkers
from pydantic import SecretStr

from conftest import NOW
from phonefleet_operator.services.jobs.service import JobService
from phonefleet_operator.services.jobs.tokens import JobTokens
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.settings import JobSettings, OperatorSettings
from phonefleet_worker.job_desk import JobDesk
from phonefleet_worker.job_server import JobApi
from phonefleet_worker.registry import TaskRegistry

Obj = dict[str, Any]


def ready_pod(ip: str | None) -> Obj:
    status: Obj = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    if ip is not None:
        status["podIP"] = ip
    return {
        "metadata": {"name": "alpha-worker", "namespace": "ns", "uid": "pod-1"},
        "status": status,
    }


async def test_a_ready_worker_pod_without_an_ip_holds_the_job_with_its_reason() -> None:
    """Two passes: Pending WorkerWithoutIP, the message names the pod and `make demo`, one
    Warning Event, no worker call; then the pod has an IP and attempt 1 goes there."""
    kube, api, workers, pods = FakeKube(), FakeJobApi(), FakeWorkers(), ObservedPods()
    tokens = JobTokens(b"k" * 32)
    binding: Obj = {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneBinding",
        "metadata": {
            "name": "alpha",
            "namespace": "ns",
            "uid": "uid-alpha",
            "resourceVersion": "7",
            "generation": 1,
        },
        "spec": {"phoneId": "phone-a"},
        "status": {"phase": "Running", "podName": "alpha-worker"},
    }
    kube.bindings["ns", "alpha"] = binding
    kube.pods["ns", "alpha-worker"] = ready_pod(None)
    pods.saw(ready_pod(None))
    job = api.add(
        {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhoneJob",
            "metadata": {
                "name": "post",
                "namespace": "ns",
                "uid": "uid-post",
                "generation": 1,
                "creationTimestamp": "2026-11-28T11:00:00Z",
            },
            "spec": {"bindingName": "alpha", "task": "heartbeat"},
            "status": {},
        }
    )
    service = JobService(
        kube=kube,
        api=api,  # type: ignore[arg-type]
        workers=workers,  # type: ignore[arg-type]
        tokens=tokens,
        pods=pods,
        settings=JobSettings(token_key=SecretStr("6b" * 32)),
        operator=OperatorSettings(),
        clock=lambda: NOW,
    )
    service.jobs.saw_all(api.jobs.values())
    service.saw("ADDED", job)

    for _ in range(2):
        await service.pass_once(binding)
    status = api.jobs["ns", "post"]["status"]
    assert (status["phase"], status["reason"]) == ("Pending", "WorkerWithoutIP")
    assert status["message"].startswith("worker pod alpha-worker is Ready with no pod IP")
    assert "make demo" in status["message"]
    assert kube.events["WorkerWithoutIP"] == 1  # on the job only, and not again on each pass
    assert workers.calls == []

    # The pod gets an address: the job starts on the worker there.
    base = f"http://10.0.0.1:{OperatorSettings().worker_job_port}"
    token = tokens.token_for("ns", "alpha", "uid-alpha")
    workers.at[base] = JobApi(JobDesk(TaskRegistry.from_entry_points()), lambda: token)
    pods.saw(ready_pod("10.0.0.1"))
    await service.pass_once(binding)
    started = api.jobs["ns", "post"]["status"]
    assert started["phase"] == "Running", started
    assert {b for _, b, _ in workers.calls} == {base}
