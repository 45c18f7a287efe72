"""Specifications of a pass the API server refuses a write (403, 422): the binding says so in its
status, in the API server's words, instead of "Kubernetes unavailable" in the operator's log."""

from __future__ import annotations

from fakes import FakeKube, FakePhones

from conftest import make_binding, step
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.services.reconcile import BindingReconciler


async def test_a_refused_worker_pod_puts_the_binding_in_error_until_it_is_accepted(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones
) -> None:
    """The scope policy refuses the worker pod: phase Error, Ready False with reason
    KubernetesRefused and the policy's message, a Warning Event, and the pass looks again in
    30 s; once the API server takes the pod the binding goes on as usual."""
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    kube.refuse_pods = True

    binding, report, delay = await step(reconciler, make_binding())

    assert binding.status.phase == "Error"
    ready = next(c for c in binding.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "KubernetesRefused")
    assert "ValidatingAdmissionPolicy 'phonefleet-operator-scope'" in ready.message
    assert "unavailable" not in ready.message.lower()
    assert [(e.reason, e.warning) for e in report.events][-1] == ("KubernetesRefused", True)
    assert delay == 30
    assert kube.claims["100"]["spec"]["holder"]["uid"] == binding.uid  # it keeps its phone

    kube.refuse_pods = False
    binding, _, _ = await step(reconciler, binding)

    assert binding.status.phase == "Bound"
    assert kube.pods
