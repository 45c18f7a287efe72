"""Power, suspension and faults: what runs, what stops, and what never leaks."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest

from phonefleet_testbed.controlplane import NEVER_READY_IMAGE, ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import DEFAULT_TOKEN
from phonefleet_testbed.scenarios import (
    Fleet,
    Operator,
    binding,
    condition,
    make_binding,
    posted,
    run_binding,
    wait_condition,
    wait_phase,
)
from phonefleet_testbed.waiting import wait_for
from phonefleet_testbed.watching import Watch, Watched, WatchEvent


def test_suspend_stops_the_phone_and_removes_the_pod_and_resume_brings_both_back(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """suspend: true stops the phone, deletes the pod, keeps the claim; false starts it again."""
    phone_id = fleet.add_phone()
    run_binding(kubectl, namespace, "sleeper", phone_id)

    kubectl(
        "patch", "pb", "sleeper", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    wait_phase(kubectl, namespace, "sleeper", "Suspended")
    wait_for(
        lambda: kubectl.get("pod", "sleeper-worker", namespace) is None,
        30,
        message="the pod of the suspended binding to go",
    )
    assert phone_id not in fleet.running()
    assert kubectl.get("phoneclaim", phone_id) is not None

    kubectl(
        "patch",
        "pb",
        "sleeper",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"suspend":false}}',
    )
    wait_phase(kubectl, namespace, "sleeper", "Running")
    assert phone_id in fleet.running()


def test_a_missing_phone_is_reported_and_bound_once_it_appears(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """PhoneNotFound (with a Warning Event) until the phone exists, then Running."""
    kubectl.apply(make_binding("patient", "late-phone", namespace))
    body = wait_phase(kubectl, namespace, "patient", "PhoneNotFound")
    assert "late-phone" in body["status"]["message"]
    assert kubectl.get("pod", "patient-worker", namespace) is None
    warnings = posted(
        kubectl, namespace, "involvedObject.name=patient,type=Warning,reason=PhoneNotFound"
    )
    assert "late-phone" in warnings[0]["message"]
    # `kubectl describe` shows source.component in its "From" column.
    assert warnings[0]["source"]["component"] == "phonefleet-operator"
    assert warnings[0]["reportingComponent"] == "phonefleet-operator"

    phone_id = fleet.add_phone("late-phone")
    body = wait_phase(kubectl, namespace, "patient", "Running")
    assert body["status"]["phone"]["id"] == phone_id


def test_a_geelark_outage_never_tears_down_a_running_worker(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator: Operator,
    control_plane: ControlPlane,
) -> None:
    """While Geelark is unreachable GeelarkReachable turns False, and (watched from the outage's
    start until Geelark is back) the pod is never replaced or unready and the binding never
    leaves Running."""
    phone_id = fleet.add_phone()
    run_binding(kubectl, namespace, "steady", phone_id)
    pod = kubectl.get("pod", "steady-worker", namespace)
    assert pod is not None

    def reach(status: str) -> Callable[[WatchEvent], bool]:
        def matches(event: WatchEvent) -> bool:
            found = condition(event.object, "GeelarkReachable")
            return bool(found and found["status"] == status)

        return matches

    with (
        Watch(control_plane, "pods", namespace) as pods,
        Watch(control_plane, "phonebindings", namespace) as bindings,
    ):
        bindings.wait_for_event(lambda e: e.name == "steady", 30, "the binding as it is now")
        pods.wait_for_event(lambda e: e.name == "steady-worker", 30, "the pod as it is now")
        fleet.simulator.admin.set_faults(outage=True)
        down = bindings.wait_for_event(reach("False"), 90, "GeelarkReachable to turn False")
        fleet.simulator.admin.clear_faults()
        bindings.wait_for_event(reach("True"), 60, "GeelarkReachable to turn True again")

    assert condition(down.object, "GeelarkReachable")["reason"] == "GeelarkUnavailable"  # type: ignore[index]
    seen_pods = [(e.type, e.uid, is_ready(e.object)) for e in pods.events()]
    assert seen_pods, "the watch saw the pod"
    assert {(kind, uid) for kind, uid, _ in seen_pods} <= {
        ("ADDED", pod["metadata"]["uid"]),
        ("MODIFIED", pod["metadata"]["uid"]),
    }
    assert all(ready for _, _, ready in seen_pods)
    assert {e.object["status"]["phase"] for e in bindings.events()} == {"Running"}


def is_ready(pod: dict[str, Any]) -> bool:
    """Whether the pod's Ready condition is True."""
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def test_a_renamed_phone_stays_bound_by_its_id(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """Renaming the phone, even giving its old name to another phone, never moves the binding."""
    phone_id = fleet.add_phone("original-name")
    run_binding(kubectl, namespace, "loyal", "original-name")

    fleet.simulator.admin.rename_phone(phone_id, "new-name")
    impostor = fleet.add_phone("original-name")
    # A spec change forces a fresh reconcile pass; the binding must keep its phone.
    kubectl.apply(make_binding("loyal", "original-name", namespace, worker={"args": ["--again"]}))

    def reconciled() -> dict[str, object] | None:
        body = binding(kubectl, namespace, "loyal")
        if not body or body["status"].get("observedGeneration") != body["metadata"]["generation"]:
            return None
        return body if body["status"].get("phase") == "Running" else None

    body = wait_for(reconciled, 60, message="the binding to reconcile its new generation")
    assert body["status"]["phone"]["id"] == phone_id  # type: ignore[index]
    assert kubectl.get("phoneclaim", impostor) is None
    assert impostor not in fleet.running()


def test_an_operator_restart_mid_reconcile_loses_no_claim_and_duplicates_no_pod(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
    watched: Watched,
) -> None:
    """Stopping the operator while a phone boots and starting another one converges to one pod."""
    fleet.simulator.admin.update_settings(boot_seconds=4)
    phone_id = fleet.add_phone()
    first = operator_factory()
    kubectl.apply(make_binding("survivor", phone_id, namespace))
    watched.start("phonebindings")  # Bound lasts the 4 s boot, which a slow poll can miss
    watched.first(
        "phonebindings",
        "survivor",
        lambda body: (body.get("status") or {}).get("phase") == "Bound",
        "survivor to reach Bound",
    )
    claim = kubectl.get("phoneclaim", phone_id)
    assert claim is not None

    operator_factory.stop(first)  # type: ignore[attr-defined]
    operator_factory()

    body = wait_phase(kubectl, namespace, "survivor", "Running")
    assert len(kubectl.list("pods", namespace)) == 1
    after = kubectl.get("phoneclaim", phone_id)
    assert after is not None
    assert after["metadata"]["uid"] == claim["metadata"]["uid"]
    assert after["spec"]["holder"]["uid"] == body["metadata"]["uid"]


def test_bad_credentials_put_the_binding_in_error_naming_the_secret_to_fix(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
) -> None:
    """A token Geelark refuses gives phase Error, with a message naming the credentials Secret."""
    operator_factory(PHONEFLEET_GEELARK_TOKEN="not-the-token")
    phone_id = fleet.add_phone()
    kubectl.apply(make_binding("locked-out", phone_id, namespace))
    body = wait_phase(kubectl, namespace, "locked-out", "Error")
    assert "phonefleet-system/geelark-credentials" in body["status"]["message"]
    assert "not-the-token" not in json.dumps(body)
    assert phone_id not in fleet.running()


def test_secrets_never_reach_logs_events_status_or_the_pod_spec(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator: Operator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither the Geelark token nor the ADB password appears in logs, Events, status or pod."""
    caplog.set_level(logging.DEBUG)
    phone_id = fleet.add_phone()
    run_binding(kubectl, namespace, "discreet", phone_id)
    secret = kubectl.get("secret", "discreet-adb", namespace)
    assert secret is not None
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert password

    places = {
        "logs": "\n".join(r.getMessage() for r in caplog.records) + caplog.text,
        "events": kubectl("get", "events", "-n", namespace, "-o", "json").stdout,
        "binding": json.dumps(binding(kubectl, namespace, "discreet")),
        "pod": json.dumps(kubectl.get("pod", "discreet-worker", namespace)),
    }
    # Geelark's passwords are 6 hex characters: look for them as whole words, not inside uids.
    password_word = re.compile(rf"\b{re.escape(password)}\b")
    for where, text in places.items():
        assert DEFAULT_TOKEN not in text, f"the Geelark token leaked into {where}"
        assert not password_word.search(text), f"the ADB password leaked into {where}"


def test_a_worker_that_never_gets_ready_gets_fresh_adb_data_without_a_restart(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator_factory: Callable[..., Operator]
) -> None:
    """Past the not-ready threshold ADB is switched on again and the Secret rewritten, with a
    Warning Event; the pod is not restarted (the worker reloads the Secret's files)."""
    operator_factory(PHONEFLEET_WORKER_UNREADY_THRESHOLD_SECONDS="4")
    phone_id = fleet.add_phone()
    kubectl.apply(make_binding("stuck", phone_id, namespace, worker={"image": NEVER_READY_IMAGE}))

    body = wait_condition(kubectl, namespace, "stuck", type_="Ready", reason="PodNotReady")
    first = body["status"]["phone"]["adbProvisionedAt"]  # type: ignore[index]
    pod = kubectl.get("pod", "stuck-worker", namespace)
    assert pod is not None
    enables = fleet.simulator.admin.counters().calls("adb/setStatus")

    def provisioned_again() -> dict[str, object] | None:
        body = binding(kubectl, namespace, "stuck") or {}
        phone = (body.get("status") or {}).get("phone") or {}
        at = phone.get("adbProvisionedAt")
        return body if at and at != first else None

    body = wait_for(provisioned_again, 30, message="the ADB data to be provisioned again")
    assert fleet.simulator.admin.counters().calls("adb/setStatus") > enables
    again = kubectl.get("pod", "stuck-worker", namespace)
    assert again is not None
    assert again["metadata"]["uid"] == pod["metadata"]["uid"]
    assert body["status"]["phase"] == "Bound"  # type: ignore[index]
    reprovisioned = posted(kubectl, namespace, "reason=ReprovisioningAdb")
    assert {e["type"] for e in reprovisioned} == {"Warning"}


def test_a_spec_change_is_acted_on_at_once_not_at_the_next_periodic_check(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator_factory: Callable[..., Operator]
) -> None:
    """A Running binding looks again only every 300 s here: a spec change must wake it (a newer
    metadata.generation than status.observedGeneration)."""
    operator_factory(PHONEFLEET_RUNNING_RECHECK_SECONDS="300")
    phone_id = fleet.add_phone()
    run_binding(kubectl, namespace, "eager", phone_id)

    kubectl(
        "patch", "pb", "eager", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    # A deadline far below the 300 s periodic check: only the spec change can explain it.
    body = wait_phase(kubectl, namespace, "eager", "Suspended", timeout=120)
    assert body["status"]["observedGeneration"] == body["metadata"]["generation"]
    assert phone_id not in fleet.running()
