"""One binding holds a phone: duplicates, aliases, races, promotion and force-release."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import (
    Fleet,
    Operator,
    binding,
    make_binding,
    make_claim,
    posted,
    run_binding,
    wait_phase,
)
from phonefleet_testbed.waiting import wait_for
from phonefleet_testbed.watching import Watch


def phases(kubectl: Kubectl, namespace: str) -> dict[str, str | None]:
    """Phase of every binding in the namespace, by name."""
    return {
        item["metadata"]["name"]: item.get("status", {}).get("phase")
        for item in kubectl.list("phonebindings", namespace)
    }


def test_twenty_bindings_created_at_once_for_one_phone_give_exactly_one_holder(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """Twenty bindings naming one phone, created concurrently: one Running, nineteen Conflict."""
    phone_id = fleet.add_phone("contested")
    names = [f"racer-{i:02d}" for i in range(20)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda n: kubectl.apply(make_binding(n, "contested", namespace)), names))

    def settled() -> dict[str, str | None] | None:
        now = phases(kubectl, namespace)
        done = sorted(now.values()) == ["Conflict"] * 19 + ["Running"]
        return now if done else None

    result = wait_for(
        settled, 90, message=lambda: f"one Running, 19 Conflict: {phases(kubectl, namespace)}"
    )
    winner = next(name for name, phase in result.items() if phase == "Running")
    assert [p["metadata"]["name"] for p in kubectl.list("pods", namespace)] == [f"{winner}-worker"]
    claim = kubectl.get("phoneclaim", phone_id)
    assert claim is not None
    assert claim["spec"]["holder"]["name"] == winner
    for name in names:
        if name != winner:
            body = binding(kubectl, namespace, name)
            assert body is not None
            assert body["status"]["conflictWith"] == f"{namespace}/{winner}"


def test_an_alias_of_a_held_phone_is_a_conflict(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """A binding naming the held phone by id, when another names it by serialName, conflicts."""
    phone_id = fleet.add_phone("aliased")
    run_binding(kubectl, namespace, "by-name", "aliased")
    kubectl.apply(make_binding("by-id", phone_id, namespace))

    body = wait_phase(kubectl, namespace, "by-id", "Conflict")
    assert body["status"]["conflictWith"] == f"{namespace}/by-name"
    assert body["status"]["phone"]["id"] == phone_id
    posted(kubectl, namespace, "involvedObject.name=by-id,type=Warning,reason=Conflict")
    assert kubectl.get("pod", "by-id-worker", namespace) is None


def test_the_oldest_waiting_binding_takes_the_phone_when_the_holder_is_deleted(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """After the holder goes, the oldest of the waiting bindings is promoted within seconds."""
    fleet.add_phone("queued")
    run_binding(kubectl, namespace, "first", "queued")
    for name in ("second", "third"):
        kubectl.apply(make_binding(name, "queued", namespace))
        wait_phase(kubectl, namespace, name, "Conflict")

    kubectl("delete", "pb", "first", "-n", namespace, "--wait=false")

    wait_phase(kubectl, namespace, "second", "Running")
    third = wait_phase(kubectl, namespace, "third", "Conflict")
    assert third["status"]["conflictWith"] == f"{namespace}/second"


def test_deleting_a_claim_by_hand_makes_the_holder_compete_again(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator: Operator,
    control_plane: ControlPlane,
) -> None:
    """Force-release: the claim is gone, the holder competes again and takes a new claim, and
    (watched throughout) the phone never has more than one pod."""
    phone_id = fleet.add_phone()
    run_binding(kubectl, namespace, "forced", phone_id)
    old_claim = kubectl.get("phoneclaim", phone_id)
    assert old_claim is not None

    with Watch(control_plane, "pods", namespace) as pods:
        pods.wait_for_event(lambda e: e.name == "forced-worker", 30, "the pod as it is now")
        kubectl("delete", "phoneclaim", phone_id)

        def reclaimed() -> dict[str, Any] | None:
            claim = kubectl.get("phoneclaim", phone_id)
            return (
                claim
                if claim and claim["metadata"]["uid"] != old_claim["metadata"]["uid"]
                else None
            )

        claim = wait_for(reclaimed, 30, message="the claim to be taken again")
        wait_phase(kubectl, namespace, "forced", "Running")
        live = kubectl.list("pods", namespace)

    alive: set[str] = set()
    most_alive = 0
    for event in pods.events():
        if event.type == "DELETED":
            alive.discard(event.uid)
        else:
            alive.add(event.uid)
        most_alive = max(most_alive, len(alive))
    assert claim["spec"]["holder"]["name"] == "forced"
    assert len(live) == 1
    assert most_alive == 1


def test_a_claim_whose_holder_is_gone_is_released(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """A claim left by a binding that no longer exists does not block a new binding."""
    phone_id = fleet.add_phone()
    orphan = make_claim(phone_id, namespace, "ghost", "0000-gone", serial_name="ghost")
    kubectl("apply", "-f", "-", input_text=json.dumps(orphan))
    run_binding(kubectl, namespace, "heir", phone_id)
    claim = kubectl.get("phoneclaim", phone_id)
    assert claim is not None
    assert claim["spec"]["holder"]["name"] == "heir"
