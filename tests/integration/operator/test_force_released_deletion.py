"""A binding deleted after its PhoneClaim was force-released, before it took the phone again,
still stops the phone it ran; it leaves alone a phone another binding holds by then
(docs/safety.md, "A force-released binding that goes")."""

from __future__ import annotations

import json
from collections.abc import Callable

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
