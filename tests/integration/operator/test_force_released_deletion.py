"""A binding deleted after its PhoneClaim was force-released, before it took the phone again,
still stops the phone it ran; it leaves alone a phone another binding holds by then
(docs/safety.md, "A force-released binding that goes").

"Before it took the phone again" is made to last in two ways: the operator is down while the
claim goes (its finalizer removed by hand) and the binding is deleted, or a ValidatingAdmission
Policy of the test refuses the binding's new claim while the operator lets the old one go.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.render import build_claim
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim.endpoints import PHONE_STOP
from phonefleet_testbed.scenarios import Fleet, Operator, binding, make_binding, wait_phase
from phonefleet_testbed.waiting import wait_for


def _force_release(kubectl: Kubectl, phone_id: str) -> None:
    """``kubectl delete phoneclaim`` and, the operator being down, the removal of the claim's
    finalizer by hand (docs/safety.md, "A claim stuck on its finalizer"): the claim is gone."""
    kubectl("delete", "phoneclaim", phone_id, "--wait=false")
    kubectl(
        "patch",
        "phoneclaim",
        phone_id,
        "--type=merge",
        "-p",
        json.dumps({"metadata": {"finalizers": None}}),
    )
    wait_for(
        lambda: kubectl.get("phoneclaim", phone_id) is None, 30, message="the claim to be gone"
    )


def _running_then_operator_down(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
) -> str:
    """Binding "first" runs a new phone; then the operator stops. Returns the phone id."""
    operator = operator_factory()
    phone_id = fleet.add_phone()
    kubectl.apply(make_binding("first", phone_id, namespace))
    wait_phase(kubectl, namespace, "first", "Running")
    operator_factory.stop(operator)  # type: ignore[attr-defined]
    assert phone_id in fleet.running()
    return phone_id


def _gone(kubectl: Kubectl, namespace: str, name: str) -> None:
    wait_for(
        lambda: binding(kubectl, namespace, name) is None,
        90,
        message=f"binding {name} to be released and gone",
    )


def test_a_binding_deleted_after_its_claim_was_force_released_stops_its_phone(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
) -> None:
    """The claim is gone and the binding deleted before the operator could take the phone
    again: once the operator runs, the binding goes and its phone is stopped. Before the fix
    the phone was left running with no claim and no binding."""
    phone_id = _running_then_operator_down(kubectl, namespace, fleet, operator_factory)
    _force_release(kubectl, phone_id)
    kubectl("delete", "pb", "first", "-n", namespace, "--wait=false")

    operator_factory()
    _gone(kubectl, namespace, "first")

    assert phone_id not in fleet.running()
    assert kubectl.get("phoneclaim", phone_id) is None


def test_a_binding_deleted_after_its_claim_was_force_released_spares_the_new_holders_phone(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
) -> None:
    """As above, but binding "second" holds the phone's claim by then: "first" goes without
    stopping the phone, and "second" runs it."""
    phone_id = _running_then_operator_down(kubectl, namespace, fleet, operator_factory)
    _force_release(kubectl, phone_id)
    kubectl.apply(make_binding("second", phone_id, namespace))
    second = binding(kubectl, namespace, "second")
    assert second is not None
    kubectl.apply(build_claim(PhoneBinding.from_body(second), phone_id, ""))
    kubectl("delete", "pb", "first", "-n", namespace, "--wait=false")
    stops = fleet.simulator.admin.counters().calls(PHONE_STOP)

    operator_factory()
    _gone(kubectl, namespace, "first")
    wait_phase(kubectl, namespace, "second", "Running", timeout=90)

    assert fleet.simulator.admin.counters().calls(PHONE_STOP) == stops
    assert phone_id in fleet.running()
    claim = kubectl.get("phoneclaim", phone_id)
    assert claim is not None
    assert claim["spec"]["holder"]["name"] == "second"


def _claim_reason(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    for item in (binding(kubectl, namespace, name) or {}).get("status", {}).get("conditions") or ():
        if item["type"] == "Claimed":
            return str(item["reason"])
    return None


@contextmanager
def _no_new_claims_for(kubectl: Kubectl, namespace: str, name: str) -> Iterator[None]:
    """The API server refuses every PhoneClaim naming binding ``namespace/name`` as holder (a
    ValidatingAdmissionPolicy), until the block ends; it is enforced once a server dry run of
    such a claim is refused."""
    policy = f"test-no-claims-{namespace}"
    kubectl.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": policy},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["phonefleet.dev"],
                            "apiVersions": ["*"],
                            "operations": ["CREATE"],
                            "resources": ["phoneclaims"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": (
                            f"!(object.spec.holder.namespace == '{namespace}'"
                            f" && object.spec.holder.name == '{name}')"
                        ),
                        "message": "the test keeps this binding from taking a phone",
                    }
                ],
            },
        }
    )
    kubectl.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy},
            "spec": {"policyName": policy, "validationActions": ["Deny"]},
        }
    )
    probe = {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneClaim",
        "metadata": {"name": "probe"},
        "spec": {
            "phoneId": "probe",
            "serialName": "",
            "holder": {"namespace": namespace, "name": name, "uid": "probe"},
        },
    }
    try:
        wait_for(
            lambda: (
                kubectl(
                    "create",
                    "--dry-run=server",
                    "-f",
                    "-",
                    input_text=json.dumps(probe),
                    check=False,
                ).returncode
                != 0
            ),
            30,
            message="the policy to be enforced",
        )
        yield
    finally:
        kubectl("delete", "validatingadmissionpolicybinding", policy, check=False)
        kubectl("delete", "validatingadmissionpolicy", policy, check=False)


def test_a_binding_deleted_while_it_waits_to_take_its_phone_again_stops_it(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator: Operator,
) -> None:
    """The operator runs throughout: ``kubectl delete phoneclaim``, the operator removes the
    worker and lets the claim go (Claimed=False, ClaimDeleted), the binding cannot take the
    phone again (the policy), and is deleted: its phone is stopped."""
    phone_id = fleet.add_phone()
    kubectl.apply(make_binding("first", phone_id, namespace))
    wait_phase(kubectl, namespace, "first", "Running")

    with _no_new_claims_for(kubectl, namespace, "first"):
        kubectl("delete", "phoneclaim", phone_id, "--wait=false")
        wait_for(
            lambda: (
                kubectl.get("phoneclaim", phone_id) is None
                and _claim_reason(kubectl, namespace, "first") == "ClaimDeleted"
            ),
            60,
            message="the operator to let the claim go after the worker",
        )
        assert kubectl.get("pod", "first-worker", namespace) is None
        assert phone_id in fleet.running()
        kubectl("delete", "pb", "first", "-n", namespace, "--wait=false")
        _gone(kubectl, namespace, "first")

    assert phone_id not in fleet.running()
    assert kubectl.get("phoneclaim", phone_id) is None
