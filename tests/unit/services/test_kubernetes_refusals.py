"""Specifications of a pass whose write the API server refuses (403, 422): the binding's status
message carries the API server's words instead of "Kubernetes unavailable" in the operator's
log, and the phase stays (an API server answers 403 for a few seconds after its restart too)."""

from __future__ import annotations

from fakes import FakeKube, FakePhones

from conftest import make_binding, step
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.services.reconcile import BindingReconciler


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
