"""No phone is left running and billed behind a binding's back: deletions wait for Geelark to
confirm the stop (unless a person gives up on purpose), and the orphan sweep applies the
releasePolicy recorded on the claim."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim.endpoints import PHONE_STOP
from phonefleet_testbed.scenarios import (
    Fleet,
    Operator,
    binding,
    condition,
    make_binding,
    make_claim,
    posted,
    wait_phase,
)
from phonefleet_testbed.waiting import wait_for

#: Geelark's "IP not allowed": what a token rotation or a new egress address looks like.
IP_NOT_ALLOWED = 40016


def warned(kubectl: Kubectl, namespace: str, name: str, reason: str) -> None:
    """Wait for a Warning Event ``reason`` on one object of the namespace."""
    posted(kubectl, namespace, f"involvedObject.name={name},type=Warning,reason={reason}")


def blocked(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    """The binding, once its deletion reports that its phone could not be stopped."""
    body = binding(kubectl, namespace, name)
    released = condition(body or {}, "Released")
    return body if released and released["status"] == "False" else None


def test_a_deletion_waits_for_geelark_to_confirm_the_stop_unless_the_phone_is_abandoned(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Geelark refuses every stop (IP not allowed): both deleted bindings keep their finalizer,
    claim and running phone, say why (condition Released, a Warning Event) and retry with back-
    off. The one annotated phonefleet.dev/abandon-phone goes (logged), its phone left running;
    the other goes once Geelark stops its phone."""
    operator_factory(PHONEFLEET_ERROR_RECHECK_SECONDS="4")
    phones = {name: fleet.add_phone() for name in ("patient", "abandoned")}
    for name, phone_id in phones.items():
        kubectl.apply(make_binding(name, phone_id, namespace))
    for name in phones:
        wait_phase(kubectl, namespace, name, "Running")

    fleet.simulator.admin.set_faults(PHONE_STOP, code=IP_NOT_ALLOWED)
    for name in phones:
        kubectl("delete", "pb", name, "-n", namespace, "--wait=false")
    for name, phone_id in phones.items():
        body = wait_for(
            lambda name=name: blocked(kubectl, namespace, name),
            60,
            message=f"{name} to report that its phone could not be stopped",
        )
        released = condition(body, "Released")
        assert released is not None
        assert released["reason"] == "GeelarkAuthFailed"
        assert "phonefleet.dev/abandon-phone" in released["message"]
        assert body["metadata"]["finalizers"] == ["phonefleet.dev/release-phone"]
        assert body["status"]["phase"] == "Error"
        assert kubectl.get("phoneclaim", phone_id) is not None
        assert phone_id in fleet.running()
        warned(kubectl, namespace, name, "PhoneNotStopped")
    refusals = fleet.simulator.admin.counters().calls(PHONE_STOP)
    wait_for(
        lambda: fleet.simulator.admin.counters().calls(PHONE_STOP) > refusals,
        30,
        message="the operator to try the stop again",
    )

    kubectl("annotate", "pb", "abandoned", "-n", namespace, "phonefleet.dev/abandon-phone=true")
    wait_for(
        lambda: binding(kubectl, namespace, "abandoned") is None,
        60,
        message="the abandoned binding to go",
    )
    fleet.keep_running.add(phones["abandoned"])
    assert phones["abandoned"] in fleet.running()
    assert kubectl.get("phoneclaim", phones["abandoned"]) is None
    warned(kubectl, namespace, "abandoned", "AbandonedPhone")
    assert f"Abandoned phone {phones['abandoned']} of {namespace}/abandoned" in caplog.text
    assert binding(kubectl, namespace, "patient") is not None

    fleet.simulator.admin.clear_faults()
    wait_for(
        lambda: binding(kubectl, namespace, "patient") is None,
        60,
        message="the patient binding to go once Geelark stops its phone",
    )
    assert phones["patient"] not in fleet.running()
    assert kubectl.get("phoneclaim", phones["patient"]) is None


def orphan_claim(phone_id: str, namespace: str, policy: str) -> dict[str, Any]:
    """A claim whose holder never existed (as if its binding went without the operator)."""
    return make_claim(phone_id, namespace, "gone", f"gone-{phone_id}", releasePolicy=policy)


def test_the_orphan_sweep_stops_the_phone_of_a_claim_recorded_with_stop(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
) -> None:
    """Two running phones whose claims' holders are gone: the sweep deletes both claims, stops
    the phone recorded with releasePolicy Stop and leaves the Keep one running."""
    phones = {policy: fleet.add_phone(status=0) for policy in ("Stop", "Keep")}
    assert set(phones.values()) <= fleet.running()
    for policy, phone_id in phones.items():
        kubectl(
            "apply", "-f", "-", input_text=json.dumps(orphan_claim(phone_id, namespace, policy))
        )
    fleet.keep_running.add(phones["Keep"])

    operator_factory(PHONEFLEET_ORPHAN_SWEEP_SECONDS="1")

    for phone_id in phones.values():
        wait_for(
            lambda phone_id=phone_id: kubectl.get("phoneclaim", phone_id) is None,
            60,
            message=f"the orphaned claim {phone_id} to be released",
        )
    running = fleet.running()
    assert phones["Stop"] not in running
    assert phones["Keep"] in running
