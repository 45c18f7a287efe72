"""Specifications of a pass whose write the API server refuses (403, 422): the binding's status
carries the API server's words instead of "Kubernetes unavailable" in the operator's log, and
the phase stays (an API server answers 403 for a few seconds after its restart too)."""

from __future__ import annotations

import pytest
from fakes import FakeKube, FakePhones

from conftest import NOW, bring_up, make_binding, step
from phonefleet_operator.errors import KubernetesRefused
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.services.report import Report


async def test_a_refused_worker_pod_is_named_in_the_status_until_it_is_accepted(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones
) -> None:
    """The scope policy refuses the worker pod: the binding keeps its phone and its phase, its
    status message quotes the policy, and the pass looks again in 10 s; once the API server
    takes the pod the binding goes on as usual."""
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    binding, _, _ = await step(reconciler, make_binding())
    kube.pods.clear()
    kube.refuse_pods = True

    binding, _, delay = await step(reconciler, binding)

    assert binding.status.phase == "Bound"
    assert binding.status.message is not None
    assert "ValidatingAdmissionPolicy 'phonefleet-operator-scope'" in binding.status.message
    assert "403" in binding.status.message
    assert delay == 10
    assert kube.claims["100"]["spec"]["holder"]["uid"] == binding.uid
    assert not kube.pods

    kube.refuse_pods = False
    binding, _, _ = await step(reconciler, binding)

    assert binding.status.phase == "Bound"
    assert kube.pods


@pytest.mark.parametrize("abandon", [False, True], ids=["stop", "abandon-annotation"])
async def test_a_deletion_whose_claim_release_is_refused_says_so_and_keeps_the_claim(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones, abandon: bool
) -> None:
    """RBAC without ``patch`` on PhoneClaims refuses the finalizer's removal: the release raises
    KubernetesRefused (kopf keeps the binding's finalizer and retries), condition Released is
    False with reason KubernetesRefused and the API server's words, and the refusal is not
    taken for a failed stop (no PhoneNotStopped, no AbandonedPhone). Once RBAC allows it the
    release completes."""
    binding = await bring_up(reconciler, phones)
    kube.pods.clear()
    kube.refuse_finalizer_drops = True
    report = Report(binding, NOW)

    with pytest.raises(KubernetesRefused):
        await reconciler.finalize(binding, report, abandon=abandon)

    released = next(c for c in report.status.conditions if c.type == "Released")
    assert (released.status, released.reason) == ("False", "KubernetesRefused")
    assert 'cannot patch resource "phoneclaims"' in released.message
    assert "could not be stopped" not in released.message
    assert report.status.phase != "Error"
    assert "AbandonedPhone" not in [e.reason for e in report.events]
    assert "100" in kube.claims

    kube.refuse_finalizer_drops = False
    assert await reconciler.finalize(binding)
    assert not kube.claims
