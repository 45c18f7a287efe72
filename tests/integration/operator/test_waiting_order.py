"""The oldest binding waiting for a phone takes it first, whoever else turns up as it comes free."""

from __future__ import annotations

import json
from collections.abc import Callable

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import (
    Fleet,
    Operator,
    binding,
    make_binding,
    make_claim,
    wait_phase,
)
from phonefleet_testbed.waiting import wait_for
from phonefleet_testbed.watching import Watch


def test_a_new_binding_by_alias_does_not_overtake_the_oldest_waiter(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    control_plane: ControlPlane,
    operator_factory: Callable[..., Operator],
) -> None:
    """Two bindings wait in Conflict for a phone (named so that, created in the same second, the
    newcomer still counts as the youngest); its claim is left behind by a holder that is
    gone. A new binding naming the phone by serialName finds the phone free first (the waiters
    look again only every 300 s here, and nothing wakes them): it still queues behind them, and
    the oldest waiter gets the phone."""
    phone_id = fleet.add_phone("queue-phone")
    operator_factory(
        PHONEFLEET_CONFLICT_RECHECK_SECONDS="300", PHONEFLEET_ORPHAN_SWEEP_SECONDS="3600"
    )
    # A holder that holds the claim but never a pod: it names a phone that does not exist.
    kubectl.apply(make_binding("ghost-holder", "no-such-phone", namespace))
    ghost = wait_phase(kubectl, namespace, "ghost-holder", "PhoneNotFound")
    uid = ghost["metadata"]["uid"]
    claim = make_claim(phone_id, namespace, "ghost-holder", uid, serial_name="queue-phone")
    kubectl("apply", "-f", "-", input_text=json.dumps(claim))
    for name in ("a-oldest", "b-older"):
        kubectl.apply(make_binding(name, phone_id, namespace))
        body = wait_phase(kubectl, namespace, name, "Conflict")
        assert body["status"]["conflictWith"] == f"{namespace}/ghost-holder"

    with Watch(
        control_plane, "phoneclaims", None, f"--field-selector=metadata.name={phone_id}"
    ) as claims:
        # The holder goes; its claim stays behind, and no event wakes the waiters.
        kubectl("delete", "pb", "ghost-holder", "-n", namespace, "--timeout=60s")
        kubectl.apply(make_binding("c-newcomer", "queue-phone", namespace))

        def taken() -> dict[str, object] | None:
            found = kubectl.get("phoneclaim", phone_id)
            return found if found and found["spec"]["holder"]["name"] != "ghost-holder" else None

        held = wait_for(taken, 60, message="the phone to be claimed again")
        assert held["spec"]["holder"]["name"] == "a-oldest"  # type: ignore[index]
        wait_phase(kubectl, namespace, "a-oldest", "Running")
        seen = claims.stop()

    holders = [e.object["spec"]["holder"]["name"] for e in seen if e.type != "DELETED"]
    assert "c-newcomer" not in holders
    assert holders[-1] == "a-oldest"
    for name in ("b-older", "c-newcomer"):
        body = wait_phase(kubectl, namespace, name, "Conflict")
        assert body["status"]["conflictWith"] == f"{namespace}/a-oldest", name
    assert kubectl.get("pod", "c-newcomer-worker", namespace) is None
    assert binding(kubectl, namespace, "c-newcomer") is not None
