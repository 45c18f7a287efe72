"""A pods view that missed a watch event never blocks a binding (issue 10, defect 4).

kopf relists after a watch gap but reports no deletions, so the view can keep a pod that is
gone, or an older pod than the one that runs. These tests put the view in that state by hand;
the fake API server refuses a delete whose uid precondition names another pod, as the real one
does (409), and tests/integration/operator/test_stale_pod_view.py checks the same against the
real API server.
"""

from __future__ import annotations

import pytest
from clocks import Clock
from fakes import FakeKube, FakePhones

from conftest import bring_up, make_reconciler, step
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.settings import OperatorSettings

POD = ("ns", "alpha-worker")


@pytest.fixture
def reconciler(
    kube: FakeKube, phones: FakePhones, pods: ObservedPods, clock: Clock
) -> BindingReconciler:
    return make_reconciler(
        kube, phones, clock, pods=pods, settings=OperatorSettings(pod_poll_seconds=10)
    )


async def test_a_terminating_pod_whose_deletion_the_watch_missed_is_replaced_after_a_poll(
    reconciler: BindingReconciler,
    kube: FakeKube,
    phones: FakePhones,
    pods: ObservedPods,
    clock: Clock,
) -> None:
    """The view shows the old pod terminating; it is gone. Within the poll interval the view is
    trusted (PodReplacing); a pass after it reads the API server and creates the new pod."""
    binding = await bring_up(reconciler, phones)
    old = kube.pods[POD]
    pods.saw({**old, "metadata": {**old["metadata"], "deletionTimestamp": "2026-11-28T12:00:00Z"}})
    del kube.pods[POD]  # the DELETED event never reached the view

    binding, _, delay = await step(reconciler, binding)
    assert _ready_reason(binding) == "PodReplacing"

    clock.advance(delay + 1)
    binding, report, _ = await step(reconciler, binding)
    assert "CreatedPod" in [e.reason for e in report.events]
    assert kube.pods[POD]["metadata"]["uid"] != old["metadata"]["uid"]
    assert binding.status.message == "Pod alpha-worker is starting"


async def test_a_delete_refused_by_its_uid_precondition_is_no_deletion(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, pods: ObservedPods
) -> None:
    """The view shows an older pod with an outdated spec; the current pod runs. The uid
    precondition refuses the delete: no DeletedPod Event, the current pod is kept, the view is
    corrected from a read, and the binding goes on with the pod that exists."""
    binding = await bring_up(reconciler, phones)
    current = kube.pods[POD]
    current["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    outdated = {
        "metadata": {
            "namespace": "ns",
            "name": "alpha-worker",
            "uid": "pod-long-gone",
            "annotations": {"phonefleet.dev/spec-hash": "outdated"},
        }
    }
    pods.saw(outdated)

    binding, report, _ = await step(reconciler, binding)
    assert "DeletedPod" not in [e.reason for e in report.events]
    assert kube.pods[POD]["metadata"]["uid"] == current["metadata"]["uid"]
    seen = pods.get(*POD)
    assert seen is not None
    assert seen["metadata"]["uid"] == current["metadata"]["uid"]
    assert binding.status.phase == "Running"


def _ready_reason(binding: PhoneBinding) -> str | None:
    return next((c.reason for c in binding.status.conditions if c.type == "Ready"), None)
