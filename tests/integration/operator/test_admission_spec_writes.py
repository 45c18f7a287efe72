"""The validating webhook is sent spec writes only: metadata writes pass without a review."""

from __future__ import annotations

import json
from collections.abc import Callable

from phonefleet_operator.constants import FINALIZER
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import Fleet, Operator, make_binding
from phonefleet_testbed.waiting import wait_for


def test_a_duplicate_admitted_while_the_webhook_was_down_can_be_labelled_and_deleted(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
    webhook_operator: Callable[[], Operator],
) -> None:
    """Two bindings for one phone, admitted while the webhook was down; with it up again one
    holds the phone and runs, the other is a Conflict. A review of the other's spec now refuses it
    (the phone is held), and a spec change is still refused; but a label, and the operator's
    removal of its finalizer when it is deleted, change no spec and reach no review: the
    binding is labelled and goes away. Sent every update, the webhook refused both, and the
    deleted binding stayed Terminating while the webhook ran."""
    operator_factory.stop(webhook_operator())  # type: ignore[attr-defined]
    phone_id = fleet.add_phone("twice")
    kubectl.apply(make_binding("one", phone_id, namespace))
    kubectl.apply(make_binding("two", "twice", namespace))

    webhook_operator()

    def settled() -> dict[str, str] | None:
        phases = {
            b["metadata"]["name"]: (b.get("status") or {}).get("phase")
            for b in kubectl.list("phonebindings", namespace)
        }
        if sorted(map(str, phases.values())) != ["Conflict", "Running"]:
            return None
        return {str(phase): name for name, phase in phases.items()}

    by_phase = wait_for(settled, 120, message="one binding Running and the other a Conflict")
    holder, duplicate = by_phase["Running"], by_phase["Conflict"]

    changed = kubectl(
        "patch",
        "pb",
        duplicate,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"worker": {"args": ["--verbose"]}}}),
        check=False,
    )
    assert changed.returncode != 0
    assert f"already held by binding {namespace}/{holder}" in changed.stderr

    kubectl("label", "pb", duplicate, "-n", namespace, "phonefleet.dev/note=duplicate")
    labelled = kubectl.get("phonebinding", duplicate, namespace)
    assert labelled is not None
    assert labelled["metadata"]["labels"]["phonefleet.dev/note"] == "duplicate"

    def finalized() -> bool:
        found = kubectl.get("phonebinding", duplicate, namespace) or {}
        return FINALIZER in (found.get("metadata", {}).get("finalizers") or ())

    wait_for(finalized, 60, message="the operator's finalizer on the duplicate")
    kubectl("delete", "pb", duplicate, "-n", namespace, "--wait=false")
    wait_for(
        lambda: kubectl.get("phonebinding", duplicate, namespace) is None,
        60,
        message="the deleted duplicate gone (its finalizer removed by the operator)",
    )
    assert kubectl.get("phonebinding", holder, namespace)["status"]["phase"] == "Running"  # type: ignore[index]
