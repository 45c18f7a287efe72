"""On a real control plane: a binding on its way to Running posts one Normal Event for the whole
way, listing every step, and a binding stuck on its way posts its steps once the hold's limit
is over (services/event_hold.py; docs/scale.md, "Round 8")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import (
    Fleet,
    Operator,
    events,
    make_binding,
    posted,
    run_binding,
    wait_phase,
)


def _normal(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, object]]:
    return events(kubectl, namespace, f"involvedObject.name={name},type=Normal")


def test_a_binding_reaching_running_posts_one_normal_event_listing_its_steps(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator: Operator
) -> None:
    """Claim, phone start, ADB Secret, pod, Running: the binding has exactly one Normal Event,
    WorkerRunning, whose message names each step in order. Events of one binding are posted in
    order, so once WorkerRunning is there, no earlier one is on its way."""
    phone_id = fleet.add_phone()
    run_binding(kubectl, namespace, "folded", phone_id)
    posted(kubectl, namespace, "involvedObject.name=folded,type=Normal,reason=WorkerRunning")

    (event,) = _normal(kubectl, namespace, "folded")
    assert event["reason"] == "WorkerRunning"
    steps = str(event["message"]).split("; ")
    assert steps[:2] == [f"Created PhoneClaim {phone_id}", f"Started phone {phone_id}"]
    assert any("Secret folded-adb" in step for step in steps), steps
    assert steps[-2:] == [
        "Created Pod folded-worker",
        f"Pod folded-worker drives phone {phone_id}",
    ]


def test_a_binding_stuck_on_its_way_posts_its_event_after_the_hold(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
) -> None:
    """A phone that does not finish booting (an hour's boot here): with a 3 s hold, the claim and
    the start are posted as one Normal Event while the binding is still Bound, no sooner than
    the hold's end after the claim (the claim's condition has whole seconds: 1 s off at most)."""
    fleet.simulator.admin.update_settings(boot_seconds=3600)
    operator_factory(PHONEFLEET_EVENT_HOLD_SECONDS="3")
    phone_id = fleet.add_phone()
    kubectl.apply(make_binding("stuck", phone_id, namespace))
    wait_phase(kubectl, namespace, "stuck", "Bound")

    (event,) = posted(kubectl, namespace, "involvedObject.name=stuck,type=Normal", timeout=120)
    assert event["reason"] == "StartedPhone"
    assert event["message"] == f"Created PhoneClaim {phone_id}; Started phone {phone_id}"
    body = kubectl.get("phonebinding", "stuck", namespace)
    assert body is not None
    assert body["status"]["phase"] == "Bound"
    claimed = next(c for c in body["status"]["conditions"] if c["type"] == "Claimed")
    held = _at(str(event["eventTime"])) - _at(claimed["lastTransitionTime"])
    assert held >= timedelta(seconds=2), held


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
