"""A binding whose PhoneClaim was force-released, and which lets the phone go before it took it
again, still stops the phone it ran; it leaves alone a phone another binding holds by then
(docs/safety.md, "A force-released binding that goes").

It lets the phone go by being deleted, or because its PhonePool queues it (its slot is gone and
the pool is full) or forbids it (its namespace lost access). "Before it took the phone again" is
made to last in two ways: the operator is down while the claim goes (its finalizer removed by
hand) and the binding is deleted, or a ValidatingAdmissionPolicy of the test refuses the
binding's new claim while the operator lets the old one go.

"Runs for nobody" is what ``phonefleet phones list --billing`` reports: a phone the simulator
has on that no claim of a live binding and no Bound or Running binding accounts for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from phonefleet_operator.geelark import Phone, PhoneStatus
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.render import build_claim
from phonefleet_operator.services.billing import held_phone_ids, unbound_running
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim.endpoints import PHONE_STOP
from phonefleet_testbed.rbac import claim_policy
from phonefleet_testbed.scenarios import (
    Fleet,
    Operator,
    binding,
    make_binding,
    make_claim,
    wait_phase,
)
from phonefleet_testbed.tenants import CLIENT_LABEL, Tenancy
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
    holder = f"object.spec.holder.namespace == '{namespace}' && object.spec.holder.name == '{name}'"
    refusal = {
        "expression": f"!({holder})",
        "message": "the test keeps this binding from taking a phone",
    }
    kubectl.apply(claim_policy(policy, "CREATE", refusal))
    probe = make_claim("probe", namespace, name, "probe")
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


# ---------------------------------------------------------------------- queued or forbidden


def _runs_for_nobody(kubectl: Kubectl, namespace: str, fleet: Fleet) -> list[str]:
    """The phones ``phonefleet phones list --billing`` would report: on in the test's
    simulator, held by no claim of a live binding and by no Bound or Running binding (of the
    test's namespace: other tests' bindings may name phones of the same id)."""
    bindings = kubectl.list("phonebindings", namespace)
    claims = [
        claim
        for claim in kubectl.list("phoneclaims")
        if claim["spec"]["holder"].get("namespace") == namespace
    ]
    on = [Phone(id=i, serial_name=i, status=PhoneStatus.RUNNING) for i in fleet.running()]
    return [phone.id for phone in unbound_running(on, held_phone_ids(bindings, claims))]


def _power_changes(fleet: Fleet, phone_id: str) -> list[bool]:
    """The simulator's power journal of one phone: True for each switch on, False for off."""
    return [change.on for change in fleet.simulator.admin.power_log() if change.id == phone_id]


def _force_released_while_running(
    kubectl: Kubectl, namespace: str, name: str, phone_id: str
) -> None:
    """``kubectl delete phoneclaim`` of the running binding's phone; returns once the operator
    let the claim go after the worker (Claimed=False, ClaimDeleted). The caller keeps the
    binding from taking the phone again (``_no_new_claims_for``)."""
    kubectl("delete", "phoneclaim", phone_id, "--wait=false")
    wait_for(
        lambda: (
            kubectl.get("phoneclaim", phone_id) is None
            and _claim_reason(kubectl, namespace, name) == "ClaimDeleted"
        ),
        60,
        message="the operator to let the claim go after the worker",
    )
    assert kubectl.get("pod", f"{name}-worker", namespace) is None


def test_a_force_released_binding_its_pool_queues_stops_its_phone_in_that_pass(
    kubectl: Kubectl, tenancy: Tenancy
) -> None:
    """Pool of maxRunning 1: "first" runs phone A, the older "waiting" is queued for phone B.
    A's claim is deleted by hand and "first" cannot take A again (the policy); the pool's
    ledger is then reset (as a person, or a re-created pool, would), so "waiting" gets the slot
    and "first" is queued. By the time "first" reads Queued, A is off (the pass that queued it
    stopped it), nothing runs for nobody, and B runs for "waiting". Before the fix A ran on,
    held by nobody, until "first" was admitted again."""
    ns = tenancy.tenants[0].namespace
    phone_a = tenancy.fleet.add_phone(group_name="grp-gaps")
    phone_b = tenancy.fleet.add_phone(group_name="grp-gaps")
    pool = tenancy.pools(
        "gaps", phones={"groups": ["grp-gaps"]}, namespaces={"names": [ns]}, maxRunning=1
    )
    kubectl.apply(make_binding("waiting", phone_b, ns, suspend=True))
    wait_phase(kubectl, ns, "waiting", "Suspended")
    kubectl.apply(make_binding("first", phone_a, ns))
    wait_phase(kubectl, ns, "first", "Running")
    kubectl("patch", "pb", "waiting", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait_phase(kubectl, ns, "waiting", "Queued")

    with _no_new_claims_for(kubectl, ns, "first"):
        _force_released_while_running(kubectl, ns, "first", phone_a)
        assert phone_a in tenancy.fleet.running()
        kubectl(
            "patch",
            "phonepool",
            pool,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"holders": []}}),
        )
        wait_phase(kubectl, ns, "first", "Queued")
        assert phone_a not in tenancy.fleet.running()

        wait_phase(kubectl, ns, "waiting", "Running", timeout=90)
        assert _runs_for_nobody(kubectl, ns, tenancy.fleet) == []
        assert _power_changes(tenancy.fleet, phone_a)[-1] is False
        assert phone_b in tenancy.fleet.running()
        first = binding(kubectl, ns, "first")
        assert first is not None
        assert first["status"]["phone"]["status"] == "Stopped"


def test_a_force_released_binding_its_pool_forbids_stops_its_phone_once_geelark_lets_it(
    kubectl: Kubectl, tenancy: Tenancy
) -> None:
    """ "first" runs phone A in a pool of its client's namespaces; A's claim is deleted by hand,
    "first" cannot take A again (the policy), Geelark fails every stop (503), and the namespace
    loses its client label: "first" is Forbidden and A still runs, yet its status keeps the
    phone. "first" is then deleted: it stays (finalizer) until Geelark accepts the stop, then
    goes, and A is off with nothing left running for nobody. Before the fix the Forbidden status
    dropped status.phone: the deletion stopped nothing and A ran on with no binding."""
    acme = tenancy.tenants[0]
    ns = acme.namespace
    phone_a = tenancy.fleet.add_phone(group_name="grp-gaps")
    tenancy.pools(
        "gaps",
        phones={"groups": ["grp-gaps"]},
        namespaces={"selector": {"matchLabels": {CLIENT_LABEL: acme.client}}},
    )
    kubectl.apply(make_binding("first", phone_a, ns))
    wait_phase(kubectl, ns, "first", "Running")

    with _no_new_claims_for(kubectl, ns, "first"):
        _force_released_while_running(kubectl, ns, "first", phone_a)
        tenancy.fleet.simulator.admin.set_faults(PHONE_STOP, http_status=503)
        refusals = tenancy.fleet.simulator.admin.counters().calls(PHONE_STOP)
        kubectl("label", "namespace", ns, f"{CLIENT_LABEL}=nobody", "--overwrite")
        wait_phase(kubectl, ns, "first", "Forbidden")
        wait_for(
            lambda: tenancy.fleet.simulator.admin.counters().calls(PHONE_STOP) > refusals,
            60,
            message="the forbidden binding to try to stop its phone",
        )
        first = binding(kubectl, ns, "first")
        assert first is not None
        assert first["status"]["phone"]["id"] == phone_a
        assert phone_a in tenancy.fleet.running()

        kubectl("delete", "pb", "first", "-n", ns, "--wait=false")
        wait_for(
            lambda: _released_reason(kubectl, ns, "first") is not None,
            60,
            message="the deletion to report the refused stop",
        )
        assert phone_a in tenancy.fleet.running()
        tenancy.fleet.simulator.admin.clear_faults(PHONE_STOP)
        _gone(kubectl, ns, "first")

    assert phone_a not in tenancy.fleet.running()
    assert _runs_for_nobody(kubectl, ns, tenancy.fleet) == []


def _released_reason(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    for item in (binding(kubectl, namespace, name) or {}).get("status", {}).get("conditions") or ():
        if item["type"] == "Released":
            return str(item["reason"])
    return None


def test_a_force_released_binding_moved_to_another_phone_stops_the_old_one_in_that_pass(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator: Operator,
) -> None:
    """The claim of phone A is deleted by hand and the binding cannot take a phone again (the
    policy); its spec.phoneId then names phone B: by the time its status names B, A is off
    (the pass that moved it stopped A), and nothing runs for nobody."""
    phone_a = fleet.add_phone()
    phone_b = fleet.add_phone()
    kubectl.apply(make_binding("first", phone_a, namespace))
    wait_phase(kubectl, namespace, "first", "Running")

    with _no_new_claims_for(kubectl, namespace, "first"):
        _force_released_while_running(kubectl, namespace, "first", phone_a)
        assert phone_a in fleet.running()
        kubectl.apply(make_binding("first", phone_b, namespace))
        wait_for(
            lambda: (
                (
                    ((binding(kubectl, namespace, "first") or {}).get("status") or {}).get("phone")
                    or {}
                ).get("id")
                == phone_b
            ),
            60,
            message="the binding's status to name phone B",
        )
        assert phone_a not in fleet.running()
        assert _power_changes(fleet, phone_a)[-1] is False
        assert _runs_for_nobody(kubectl, namespace, fleet) == []


def test_a_holder_moved_to_a_phone_its_pool_refuses_lets_its_old_phone_go(
    kubectl: Kubectl, tenancy: Tenancy
) -> None:
    """acme's binding runs phone A of acme's pool; its spec.phoneId then names phone C of
    globex's pool: Forbidden, and A is let go as on any move (the worker pod, then the stop and
    the claim), with nothing left running for nobody. Before the fix the Forbidden status
    dropped phone A while its pod, its claim and the phone ran on."""
    acme, globex = tenancy.tenants
    ns = acme.namespace
    phone_a = tenancy.fleet.add_phone(group_name="grp-acme")
    phone_c = tenancy.fleet.add_phone(group_name="grp-globex")
    tenancy.pools("acme", phones={"groups": ["grp-acme"]}, namespaces={"names": [ns]})
    tenancy.pools(
        "globex", phones={"groups": ["grp-globex"]}, namespaces={"names": [globex.namespace]}
    )
    kubectl.apply(make_binding("first", phone_a, ns))
    wait_phase(kubectl, ns, "first", "Running")

    kubectl.apply(make_binding("first", phone_c, ns))
    wait_phase(kubectl, ns, "first", "Forbidden")
    wait_for(
        lambda: kubectl.get("phoneclaim", phone_a) is None,
        90,
        message="the old phone's claim to be let go",
    )

    assert kubectl.get("pod", "first-worker", ns) is None
    assert phone_a not in tenancy.fleet.running()
    assert _power_changes(tenancy.fleet, phone_a)[-1] is False
    assert _runs_for_nobody(kubectl, ns, tenancy.fleet) == []
