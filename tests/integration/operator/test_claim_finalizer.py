"""Force-release hands a phone on only after the old worker is gone (the PhoneClaim's finalizer
``phonefleet.dev/worker-gone``; docs/safety.md)."""

from __future__ import annotations

import json
from typing import Any

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import (
    Fleet,
    Operator,
    binding,
    make_binding,
    run_binding,
    wait_phase,
)
from phonefleet_testbed.waiting import wait_for
from phonefleet_testbed.watching import Watch, WatchEvent

#: Keeps the old worker pod terminating, as a real worker that takes a while to stop would.
HOLD = "test.phonefleet.dev/slow-shutdown"


def _patch(kubectl: Kubectl, kind: str, name: str, namespace: str, patch: dict[str, Any]) -> None:
    kubectl("patch", kind, name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))


def _claim_reason(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    found = binding(kubectl, namespace, name) or {}
    for item in found.get("status", {}).get("conditions") or ():
        if item["type"] == "Claimed":
            return str(item["reason"])
    return None


def _first(events: list[WatchEvent], kind: str, name: str) -> int:
    return next(i for i, e in enumerate(events) if e.type == kind and e.name == name)


def test_a_claim_deleted_by_hand_frees_the_phone_only_after_the_old_worker_is_gone(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator: Operator,
    control_plane: ControlPlane,
) -> None:
    """A Running holder and an older waiter share a phone; the claim is deleted by hand while
    the holder's pod takes its time to terminate. A watch of the phone's pods (from before the
    deletion to the waiter Running) shows the waiter's pod created only after the holder's pod
    was gone from the API server, not merely terminating."""
    phone_id = fleet.add_phone()
    # The waiter ("elder") is the older binding, so that it (not the old holder, which competes
    # again) takes the phone: it is created first, naming a phone that does not exist. Its name
    # sorts first too: creationTimestamps have whole seconds, and a tie goes by name.
    kubectl.apply(make_binding("elder", "no-such-phone", namespace))
    wait_phase(kubectl, namespace, "elder", "PhoneNotFound")
    run_binding(kubectl, namespace, "holder", phone_id)
    _patch(kubectl, "pb", "elder", namespace, {"spec": {"phoneId": phone_id}})
    wait_phase(kubectl, namespace, "elder", "Conflict")
    old_pod = kubectl.get("pod", "holder-worker", namespace)
    assert old_pod is not None
    label = old_pod["metadata"]["labels"]["phonefleet.dev/phone-id"]
    _patch(kubectl, "pod", "holder-worker", namespace, {"metadata": {"finalizers": [HOLD]}})

    with Watch(
        control_plane, "pods", namespace, f"--selector=phonefleet.dev/phone-id={label}"
    ) as pods:
        pods.wait_for_event(lambda e: e.name == "holder-worker", 30, "the holder's pod")
        kubectl("delete", "phoneclaim", phone_id, "--wait=false")

        def settled() -> str | None:
            """The waiter started its worker, or the holder says its claim waits for its pod."""
            if any(e.name == "elder-worker" for e in pods.events()):
                return "the waiter's pod exists"
            if _claim_reason(kubectl, namespace, "holder") == "ClaimDeleted":
                pod = kubectl.get("pod", "holder-worker", namespace)
                claim = kubectl.get("phoneclaim", phone_id)
                if pod and pod["metadata"].get("deletionTimestamp") and claim:
                    return "the holder's pod terminates and the claim waits for it"
            return None

        wait_for(settled, 90, message="the waiter's pod, or the old claim waiting for the pod")
        _patch(kubectl, "pod", "holder-worker", namespace, {"metadata": {"finalizers": None}})
        wait_phase(kubectl, namespace, "elder", "Running", timeout=90)
        claim = kubectl.get("phoneclaim", phone_id)

    events = pods.events()
    assert claim is not None
    assert claim["spec"]["holder"]["name"] == "elder"
    assert _first(events, "DELETED", "holder-worker") < _first(events, "ADDED", "elder-worker"), [
        (e.type, e.name, bool(e.object["metadata"].get("deletionTimestamp"))) for e in events
    ]
    assert wait_phase(kubectl, namespace, "holder", "Conflict")["status"]["conflictWith"] == (
        f"{namespace}/elder"
    )
