"""Operator restarts never take a phone from its holder, however old the bindings waiting for it.

The winner of a race for a phone is often not the oldest binding (bindings created in the same
second are ordered by name). After a restart the operator's claims view is empty until the claims
watch has reported every claim, which takes a moment in a fleet of hundreds; a pass must then read
the claim before it yields to an older waiter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from phonefleet_testbed.controlplane import NEVER_READY_IMAGE, ControlPlane
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

RESTARTS = 4
FLEET_LABEL = "phonefleet.dev/test-fleet"
#: Claims of a fleet besides the contested ones: after a restart the claims watch takes a moment
#: to report them all, and the holders' first passes run meanwhile.
FLEET_CLAIMS = 300


def claim_for(phone_id: str, holder: dict[str, Any]) -> dict[str, Any]:
    """The PhoneClaim a race leaves behind when ``holder`` (a binding body) won it."""
    metadata = holder["metadata"]
    return make_claim(phone_id, metadata["namespace"], metadata["name"], metadata["uid"])


def fleet_claims(holder: dict[str, Any], count: int) -> dict[str, Any]:
    """``count`` claims held by ``holder``, named to be listed before the simulator's phone ids."""
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                **claim_for(f"0-fleet-{i:04d}", holder),
                "metadata": {"name": f"0-fleet-{i:04d}", "labels": {FLEET_LABEL: "true"}},
            }
            for i in range(count)
        ],
    }


def phases_of(watch: Watch, name: str) -> list[str | None]:
    """Every phase the binding reported while watched, in order."""
    return [(e.object.get("status") or {}).get("phase") for e in watch.events(name)]


@pytest.fixture
def fleet_claims_removed(kubectl: Kubectl) -> Iterator[None]:
    """The fleet's claims are deleted after the test (cluster-scoped, they outlive namespaces)."""
    yield
    kubectl("delete", "phoneclaims", "-l", FLEET_LABEL, "--wait=false")


@pytest.mark.usefixtures("fleet_claims_removed")
def test_a_younger_holder_keeps_its_pod_and_phase_across_operator_restarts(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    control_plane: ControlPlane,
    operator_factory: Callable[..., Operator],
) -> None:
    """Two phones, each held by the youngest of three bindings: one holder Running, one whose
    worker never gets ready (Bound: its passes trust the claims view, which a restart empties),
    among 300 other claims (which the claims watch needs a moment to report after a restart).
    Across four restarts, watched without a gap, neither holder leaves its phase, neither pod is
    deleted or replaced, and the older bindings stay in Conflict without a pod."""
    phones = {"run": fleet.add_phone(), "start": fleet.add_phone()}
    holder_spec: dict[str, dict[str, object]] = {
        "run": {},
        "start": {"worker": {"image": NEVER_READY_IMAGE}},
    }
    # Applied while no operator runs, oldest first; in one second, names order them the same.
    for key, phone_id in phones.items():
        kubectl.apply(make_binding(f"a-{key}-older", phone_id, namespace))
        kubectl.apply(make_binding(f"b-{key}-older", phone_id, namespace))
        kubectl.apply(make_binding(f"c-{key}-holder", phone_id, namespace, **holder_spec[key]))
        holder = binding(kubectl, namespace, f"c-{key}-holder")
        assert holder is not None
        kubectl("apply", "-f", "-", input_text=json.dumps(claim_for(phone_id, holder)))

    kubectl.apply(make_binding("fleet-holder", "no-such-phone", namespace))
    owner = binding(kubectl, namespace, "fleet-holder")
    assert owner is not None
    kubectl("apply", "-f", "-", input_text=json.dumps(fleet_claims(owner, FLEET_CLAIMS)))

    operator = operator_factory()
    wait_phase(kubectl, namespace, "c-run-holder", "Running")
    wait_for(
        lambda: kubectl.get("pod", "c-start-holder-worker", namespace),
        60,
        message="the pod of the holder whose worker never gets ready",
    )
    waiters = [f"{p}-{key}-older" for key in phones for p in ("a", "b")]
    for name in waiters:
        wait_phase(kubectl, namespace, name, "Conflict")
    pods = {
        key: kubectl.get("pod", f"c-{key}-holder-worker", namespace)["metadata"]["uid"]  # type: ignore[index]
        for key in phones
    }
    start_phase = binding(kubectl, namespace, "c-start-holder")["status"]["phase"]  # type: ignore[index]
    assert start_phase == "Bound"

    with (
        Watch(control_plane, "phonebindings", namespace) as bindings,
        Watch(control_plane, "pods", namespace) as pod_events,
    ):
        for restart in range(RESTARTS):
            operator_factory.stop(operator)  # type: ignore[attr-defined]
            # A spec change that leaves the pod alone (the policy is not part of it): the
            # restarted operator's first pass of each holder shows as observedGeneration.
            policy = "Keep" if restart % 2 == 0 else "Stop"
            for key, phone_id in phones.items():
                kubectl.apply(
                    make_binding(
                        f"c-{key}-holder",
                        phone_id,
                        namespace,
                        releasePolicy=policy,
                        **holder_spec[key],
                    )
                )
            operator = operator_factory()
            for key in phones:
                name = f"c-{key}-holder"

                def caught_up(name: str = name) -> bool:
                    body = binding(kubectl, namespace, name) or {}
                    observed = (body.get("status") or {}).get("observedGeneration")
                    return observed == body["metadata"]["generation"]

                wait_for(caught_up, 60, message=f"restart {restart + 1}: a pass of {name}")
        seen_bindings, seen_pods = bindings.stop(), pod_events.stop()

    assert RESTARTS % 2 == 0  # the holders end with releasePolicy Stop: teardown stops phones
    assert set(phases_of(bindings, "c-run-holder")) == {"Running"}
    assert set(phases_of(bindings, "c-start-holder")) == {start_phase}
    for name in waiters:
        assert set(phases_of(bindings, name)) == {"Conflict"}, name
    for event in seen_bindings:
        conflict_with = (event.object.get("status") or {}).get("conflictWith")
        if event.name.startswith("c-"):
            assert conflict_with is None, (event.name, conflict_with)
    for key, uid in pods.items():
        name = f"c-{key}-holder-worker"
        mine = [e for e in seen_pods if e.name == name]
        assert {e.object["metadata"]["uid"] for e in mine} == {uid}, name
        assert not [e for e in mine if e.type == "DELETED"], name
        assert not [e for e in mine if e.object["metadata"].get("deletionTimestamp")], name
    assert {e.name for e in seen_pods} == {f"c-{key}-holder-worker" for key in phones}
