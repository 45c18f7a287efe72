"""The pod step against the real API server when the pods view missed a watch event (defect 4).

A watch gap cannot be produced on demand, so the view is put in the state a missed event leaves
(a pod still terminating, an older pod) by hand; everything else is real: the API server's uid
preconditions (409), graceful deletion through the KWOK node, the pod the step creates.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from phonefleet_operator.constants import ANNOTATION_SPEC_HASH
from phonefleet_operator.geelark import AdbEndpoint, Phone, PhoneStatus, StartResult
from phonefleet_operator.k8s import ApiCaller, KubeGateway, load_api_client
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.services.adb import AdbStep
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.report import Report
from phonefleet_operator.services.worker_pod import WorkerPodStep
from phonefleet_operator.settings import OperatorSettings
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import make_binding

PHONE = Phone(id="600000000000000042", serial_name="stale-view")
SETTINGS = OperatorSettings(pod_poll_seconds=10)


class NoGeelark:
    """The pod step never calls Geelark unless a worker is stuck, which these tests avoid."""

    async def status(self, phone_id: str) -> PhoneStatus:
        raise AssertionError("no Geelark call expected")

    async def start(self, phone_id: str) -> StartResult:
        raise AssertionError("no Geelark call expected")

    async def stop(self, phone_id: str) -> None:
        raise AssertionError("no Geelark call expected")

    async def enable_adb(self, phone_id: str) -> None:
        raise AssertionError("no Geelark call expected")

    async def adb_endpoint(self, phone_id: str) -> AdbEndpoint:
        raise AssertionError("no Geelark call expected")

    def poll_interval(self, phones: int) -> float:
        return 0.0


class ViewClock:
    """The view's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def gateway(control_plane: ControlPlane, crds: None) -> AsyncIterator[KubeGateway]:
    caller = ApiCaller(load_api_client(2, str(control_plane.kubeconfig)), 2)
    yield KubeGateway(caller)
    caller.close()


def _binding(kubectl: Kubectl, namespace: str) -> PhoneBinding:
    """A PhoneBinding that exists (its pod's owner reference must name a live object)."""
    kubectl.apply(make_binding("stale", PHONE.id, namespace))
    body = kubectl.get("phonebinding", "stale", namespace)
    assert body is not None
    return PhoneBinding.from_body(body)


def _report(binding: PhoneBinding) -> Report:
    return Report(binding, datetime.now(UTC))


def _ready_reason(report: Report) -> str | None:
    return next((c.reason for c in report.status.conditions if c.type == "Ready"), None)


async def test_a_pod_whose_deleted_event_was_missed_is_recreated_after_a_poll_interval(
    kubectl: Kubectl, namespace: str, gateway: KubeGateway
) -> None:
    """The view still shows the old pod terminating, the API server has none: trusted within
    the poll interval (PodReplacing), read after it, and the new pod is created."""
    clock = ViewClock()
    pods = ObservedPods(clock=clock)
    step = WorkerPodStep(gateway, pods, AdbStep(NoGeelark(), gateway, SETTINGS), SETTINGS)
    binding = _binding(kubectl, namespace)
    report = _report(binding)
    await step.ensure(binding, PHONE, report, trust_view=True)
    assert [e.reason for e in report.events] == ["CreatedPod"]
    old = kubectl.get("pod", "stale-worker", namespace)
    assert old is not None

    terminating = {
        **old,
        "metadata": {**old["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"},
    }
    pods.saw(terminating)  # the MODIFIED event arrived ...
    kubectl("delete", "pod", "stale-worker", "-n", namespace, "--wait=true")  # ... DELETED not

    report = _report(binding)
    await step.ensure(binding, PHONE, report, trust_view=True)
    assert _ready_reason(report) == "PodReplacing"
    assert kubectl.get("pod", "stale-worker", namespace) is None

    clock.now += SETTINGS.pod_poll_seconds + 1
    report = _report(binding)
    await step.ensure(binding, PHONE, report, trust_view=True)
    assert [e.reason for e in report.events] == ["CreatedPod"]
    new = kubectl.get("pod", "stale-worker", namespace)
    assert new is not None
    assert new["metadata"]["uid"] != old["metadata"]["uid"]


async def test_a_delete_refused_by_the_uid_precondition_is_not_reported_as_a_deletion(
    kubectl: Kubectl, namespace: str, gateway: KubeGateway
) -> None:
    """The view shows an older pod with an outdated spec hash; the API server refuses the
    delete of that uid (409). No DeletedPod Event, the current pod keeps running untouched,
    and the view now holds the current pod."""
    pods = ObservedPods()
    step = WorkerPodStep(gateway, pods, AdbStep(NoGeelark(), gateway, SETTINGS), SETTINGS)
    binding = _binding(kubectl, namespace)
    await step.ensure(binding, PHONE, _report(binding), trust_view=True)
    current = kubectl.get("pod", "stale-worker", namespace)
    assert current is not None
    uid = current["metadata"]["uid"]
    assert not await gateway.delete_pod(namespace, "stale-worker", "0-not-this-pod")

    outdated = {**current, "metadata": {**current["metadata"], "uid": "0-long-gone"}}
    outdated["metadata"]["annotations"] = {ANNOTATION_SPEC_HASH: "outdated"}
    pods.saw(outdated)
    report = _report(binding)
    await step.ensure(binding, PHONE, report, trust_view=True)

    assert "DeletedPod" not in [e.reason for e in report.events]
    after = kubectl.get("pod", "stale-worker", namespace)
    assert after is not None
    assert after["metadata"]["uid"] == uid
    assert "deletionTimestamp" not in after["metadata"]
    seen = pods.get(namespace, "stale-worker")
    assert seen is not None
    assert seen["metadata"]["uid"] == uid
