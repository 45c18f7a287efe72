"""What Flux's health rule (kstatus, from sigs.k8s.io/cli-utils) makes of live PhoneBindings in
every phase: Current once Running, Failed while Stalled (a person must act), InProgress while
Reconciling, and InProgress for a spec no pass has seen (observedGeneration)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.kstatus import kstatus
from phonefleet_testbed.scenarios import Fleet, Operator, make_binding, wait_phase


def listed(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": kubectl.list("phonebindings", namespace)}


def test_kstatus_reads_running_as_current_stalled_as_failed_and_waiting_as_in_progress(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
) -> None:
    """Running is Current (no Reconciling, no Stalled); PhoneNotFound and an expired phone
    (Error) are Failed with the Stalled condition's message, so Flux fails at once instead of
    at its timeout; Conflict (waiting for the holder) is InProgress with the Reconciling
    condition's message; Suspended (neither condition, Ready=False) is InProgress by kstatus's
    Ready rule; a spec change no pass has seen is InProgress naming the generations; a binding
    no pass has written yet is Current (kstatus's rule for an object without conditions)."""
    operator = operator_factory()
    phone = fleet.add_phone()
    expired = fleet.simulator.admin.create_phone("expired-one", status=3).id
    kubectl.apply(make_binding("running", phone, namespace))
    wait_phase(kubectl, namespace, "running", "Running")
    kubectl.apply(make_binding("conflict", phone, namespace))
    kubectl.apply(make_binding("missing", "no-such-phone", namespace))
    kubectl.apply(make_binding("expired", expired, namespace))
    kubectl.apply(make_binding("suspended", fleet.add_phone(), namespace, suspend=True))
    for name, phase in (
        ("conflict", "Conflict"),
        ("missing", "PhoneNotFound"),
        ("expired", "Error"),
        ("suspended", "Suspended"),
    ):
        wait_phase(kubectl, namespace, name, phase)

    bindings = listed(kubectl, namespace)
    conditions = {
        b["metadata"]["name"]: {c["type"]: c for c in b["status"]["conditions"]}
        for b in bindings["items"]
    }
    assert kstatus(bindings) == {
        "running": ("Current", "Resource is Ready"),
        "conflict": ("InProgress", conditions["conflict"]["Reconciling"]["message"]),
        "missing": ("Failed", conditions["missing"]["Stalled"]["message"]),
        "expired": ("Failed", conditions["expired"]["Stalled"]["message"]),
        "suspended": ("InProgress", conditions["suspended"]["Ready"]["message"]),
    }
    assert "is held by" in conditions["conflict"]["Reconciling"]["message"]
    assert "has expired in Geelark" in conditions["expired"]["Stalled"]["message"]
    assert {"Reconciling", "Stalled"}.isdisjoint(conditions["running"])
    assert {"Reconciling", "Stalled"}.isdisjoint(conditions["suspended"])
    assert "Stalled" not in conditions["conflict"]
    assert "Reconciling" not in conditions["missing"]
    for binding in bindings["items"]:
        assert binding["status"]["observedGeneration"] == binding["metadata"]["generation"]

    operator_factory.stop(operator)  # type: ignore[attr-defined]
    kubectl(
        "patch",
        "phonebinding",
        "running",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"worker":{"env":[{"name":"MODE","value":"changed"}]}}}',
    )
    kubectl.apply(make_binding("brand-new", "phone-never-looked-at", namespace))
    after = kstatus(listed(kubectl, namespace))

    assert after["running"] == (
        "InProgress",
        "PhoneBinding generation is 2, but latest observed generation is 1",
    )
    assert after["brand-new"] == ("Current", "Resource is current")
