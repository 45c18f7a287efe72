"""Two operator processes on the real control plane: the active one's Lease renewals are refused
while it keeps working, so it loses the Lease by its renew deadline; its kopf must have ended
before the standby acquires the Lease, and the standby then finishes the work.

The renewals are refused by a ValidatingAdmissionPolicy that lets through only the writes of the
leader Lease that change its holder (a takeover or a release): the old holder's own calls (its
passes, its admission) still work, as with a network that drops only some requests, so nothing
but the Lease tells it to stop.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.rbac import OPERATOR_NAMESPACE
from phonefleet_testbed.replicas import StartReplica
from phonefleet_testbed.scenarios import Fleet, make_binding
from phonefleet_testbed.waiting import wait_for

LEASE = "phonefleet-operator"
POLICY = "phonefleet-test-refuse-lease-renewals"
N = 4
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _refuse_renewals() -> dict[str, object]:
    group = "admissionregistration.k8s.io/v1"
    same_holder = (
        "has(object.spec.holderIdentity) && has(oldObject.spec.holderIdentity) && "
        "object.spec.holderIdentity == oldObject.spec.holderIdentity"
    )
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": group,
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": POLICY},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "resourceRules": [
                            {
                                "apiGroups": ["coordination.k8s.io"],
                                "apiVersions": ["*"],
                                "operations": ["UPDATE"],
                                "resources": ["leases"],
                            }
                        ]
                    },
                    "matchConditions": [
                        {
                            "name": "the-leader-lease",
                            "expression": f"object.metadata.name == '{LEASE}'",
                        }
                    ],
                    "validations": [
                        {"expression": f"!({same_holder})", "message": "renewals refused (test)"}
                    ],
                },
            },
            {
                "apiVersion": group,
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": POLICY},
                "spec": {
                    "policyName": POLICY,
                    "validationActions": ["Deny"],
                    "matchResources": {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": OPERATOR_NAMESPACE}
                        }
                    },
                },
            },
        ],
    }


@pytest.fixture
def renewals_refused(kubectl: Kubectl) -> Iterator[None]:
    """Applies the policy on demand (``kubectl.apply``), and deletes it after the test."""
    yield
    kubectl("delete", "validatingadmissionpolicybinding", POLICY, "--ignore-not-found")
    kubectl("delete", "validatingadmissionpolicy", POLICY, "--ignore-not-found")


def _first(log: Path, text: str) -> datetime:
    """When the first line of ``log`` holding ``text`` was logged."""
    for line in log.read_text(errors="replace").splitlines():
        stamp = _STAMP.match(line)
        if stamp and text in line:
            return datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f")  # both logs: one clock
    raise AssertionError(f"{log.name} has no line with {text!r}")


def _phase(body: dict[str, object]) -> str | None:
    status = body.get("status") or {}
    return status.get("phase") if isinstance(status, dict) else None


def test_a_holder_that_cannot_renew_has_stopped_before_the_standby_acquires(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_replicas: StartReplica,
    renewals_refused: None,
) -> None:
    """a leads and works; its renewals are refused from then on. a notices the loss at its
    renew deadline and fences itself; its kopf has ended (stopped, or cancelled) before b's
    "Acquired Lease" (both logs on one clock); a exits 1; b then brings every binding to
    Running with its own pod and claim, and no phone was stopped."""
    fleet.simulator.admin.update_settings(boot_seconds=2.0)
    a = operator_replicas("operator-a")
    wait_for(lambda: a.holds_lease(kubectl), 60, message="a to lead")
    b = operator_replicas("operator-b")
    wait_for(lambda: "Waiting as standby" in b.process.log_tail(), 60, message="b to wait")
    phones = {f"pf-{i}": fleet.add_phone() for i in range(N)}
    for name, phone in phones.items():
        kubectl.apply(make_binding(name, phone, namespace))
    wait_for(
        lambda: any(_phase(x) == "Running" for x in kubectl.list("phonebindings", namespace)),
        120,
        message="a binding Running under a",
    )

    kubectl.apply(_refuse_renewals())
    wait_for(lambda: not a.process.is_running(), 120, message="a to stop")
    with pytest.raises(RuntimeError, match="exited with code 1"):
        a.process.check_running()
    wait_for(lambda: b.holds_lease(kubectl), 60, message=b.process.log_tail)

    a_log, b_log = a.process.log_path, b.process.log_path
    refused = _first(a_log, "Could not renew Lease")
    fenced = _first(a_log, "Fenced this replica")
    try:
        ended = _first(a_log, "The operator stopped")
    except AssertionError:
        ended = _first(a_log, "cancelled it")
    acquired = _first(b_log, "Acquired Lease")
    print(
        f"\nFirst refused renewal -> fence {(fenced - refused).total_seconds():.1f} s; "
        f"kopf ended {(acquired - ended).total_seconds():.1f} s before the standby acquired; "
        f"fence -> standby acquired {(acquired - fenced).total_seconds():.1f} s"
    )
    assert fenced < ended <= acquired
    assert "did not end within" not in a.process.log_tail(200)

    wait_for(
        lambda: sum(_phase(x) == "Running" for x in kubectl.list("phonebindings", namespace)) == N,
        180,
        message=lambda: f"all Running under b\n{b.process.log_tail()}",
    )
    bindings = {x["metadata"]["name"]: x for x in kubectl.list("phonebindings", namespace)}
    pods = kubectl.list("pods", namespace)
    assert sorted(p["metadata"]["name"] for p in pods) == sorted(f"{n}-worker" for n in phones)
    for name, phone in phones.items():
        claim = kubectl.get("phoneclaim", phone)
        assert claim is not None, phone
        assert claim["spec"]["holder"]["uid"] == bindings[name]["metadata"]["uid"]
    assert fleet.simulator.admin.counters().calls("phone/stop") == 0
