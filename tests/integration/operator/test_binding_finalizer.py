"""The operator's own watch of PhoneBindings owns their finalizer (handlers/binding_watch.py):
added beside another controller's without dropping it, never twice, and removed alone after
the release; a binding made by the previous version (kopf's finalizer of the same name and its
progress annotation) is adopted as it is and released once."""

from __future__ import annotations

from typing import Any

from phonefleet_operator.constants import FINALIZER
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim.endpoints import PHONE_STOP
from phonefleet_testbed.scenarios import Fleet, Operator, binding, make_binding, wait_phase
from phonefleet_testbed.waiting import wait_for

OTHER = "example.com/keep-me"
#: What kopf left on a binding whose deletion handler was retrying (AnnotationsProgressStorage).
KOPF_PROGRESS = {
    "phonefleet.dev/release_binding": (
        '{"started":"2026-11-28T10:00:00.000000+00:00","stopped":null,"delayed":null,'
        '"purpose":"delete","retries":1,"success":false,"failure":false,"message":null,'
        '"subrefs":null}'
    )
}


def _finalizers(kubectl: Kubectl, namespace: str, name: str) -> list[str]:
    body = binding(kubectl, namespace, name) or {}
    return list((body.get("metadata") or {}).get("finalizers") or ())


def _with_metadata(body: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {**body, "metadata": {**body["metadata"], **metadata}}


def _delete_and_wait_for_our_finalizer_to_go(kubectl: Kubectl, namespace: str, name: str) -> None:
    kubectl("delete", "pb", name, "-n", namespace, "--wait=false")
    wait_for(
        lambda: _finalizers(kubectl, namespace, name) == [OTHER],
        90,
        message=f"the release of {name} to remove our finalizer, and only ours",
    )


def _remove_other_finalizer(kubectl: Kubectl, namespace: str, name: str) -> None:
    kubectl("patch", "pb", name, "-n", namespace, "--type=json", "-p",
            '[{"op": "remove", "path": "/metadata/finalizers"}]')  # fmt: skip
    wait_for(lambda: binding(kubectl, namespace, name) is None, 30, message=f"{name} to go")


def test_a_new_binding_gets_our_finalizer_beside_another_and_loses_only_ours(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """Another controller's finalizer is there first: ours is added after it, the binding runs,
    and its deletion stops the phone and removes our finalizer only."""
    phone_id = fleet.add_phone()
    kubectl.apply(_with_metadata(make_binding("b", phone_id, namespace), finalizers=[OTHER]))
    wait_phase(kubectl, namespace, "b", "Running")
    assert _finalizers(kubectl, namespace, "b") == [OTHER, FINALIZER]

    _delete_and_wait_for_our_finalizer_to_go(kubectl, namespace, "b")
    assert phone_id not in fleet.running()
    assert kubectl.get("phoneclaim", phone_id) is None
    _remove_other_finalizer(kubectl, namespace, "b")


def test_a_binding_made_by_the_previous_version_is_adopted_and_released_once(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """Our finalizer (kopf's, same name) and kopf's progress annotation are on it already: no
    second finalizer is added, the binding runs, and its deletion stops its phone with one
    Geelark stop call and removes our finalizer only."""
    phone_id = fleet.add_phone()
    kubectl.apply(
        _with_metadata(
            make_binding("old", phone_id, namespace),
            finalizers=[FINALIZER, OTHER],
            annotations=KOPF_PROGRESS,
        )
    )
    wait_phase(kubectl, namespace, "old", "Running")
    assert _finalizers(kubectl, namespace, "old") == [FINALIZER, OTHER]
    stops = fleet.simulator.admin.counters().calls(PHONE_STOP)

    _delete_and_wait_for_our_finalizer_to_go(kubectl, namespace, "old")
    assert phone_id not in fleet.running()
    assert fleet.simulator.admin.counters().calls(PHONE_STOP) == stops + 1
    assert kubectl.get("phoneclaim", phone_id) is None
    _remove_other_finalizer(kubectl, namespace, "old")
