"""A binding waiting only for its pod trusts Geelark's "running" until the pod counts as stuck,
on the real parts: the simulator's log of served calls shows no status or ADB call about the
phone from the ADB read the Secret was written from until ``worker_unready_threshold_seconds``
after it, and the ADB data fetched again once that has passed.

The worker pod runs :data:`NEVER_READY_IMAGE` (a KWOK stage of the test bed keeps it Running and
not Ready). ``pod_poll_seconds`` is 1 s, so the binding looks at its pod every second of that
wait; before the Secret is written a "running" answer stands only ``running_recheck_seconds``
(3 s here), so every pass after that would have asked Geelark again.

Clocks: the simulator stamps its calls with the monotonic clock; the operator writes
``status.phone.adbProvisionedAt`` from its wall clock at the start of the pass that read the ADB
data, in whole seconds (so no later than that start). The test maps the text onto the monotonic
clock once: on one machine the two differ by one offset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from phonefleet_testbed.controlplane import NEVER_READY_IMAGE
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import ServedCall
from phonefleet_testbed.geelark_sim.endpoints import ADB_GET_DATA, ADB_SET_STATUS
from phonefleet_testbed.scenarios import Fleet, Operator, binding, make_binding, wait_condition
from phonefleet_testbed.waiting import wait_for

#: The not-ready threshold the operator runs with here (120 s by default).
THRESHOLD_SECONDS = 10.0
#: How long a "running" answer stands before the Secret is written (60 s by default).
RUNNING_RECHECK_SECONDS = 3.0


def wall_of(rfc3339: str) -> float:
    """A time the operator wrote, in Unix seconds."""
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def calls_about(calls: list[ServedCall], phone_id: str) -> list[ServedCall]:
    """The served calls that named the phone."""
    return [c for c in calls if phone_id in c.ids]


def test_a_binding_waiting_for_its_pod_asks_geelark_again_only_once_the_pod_counts_as_stuck(
    kubectl: Kubectl, namespace: str, fleet: Fleet, operator_factory: Callable[..., Operator]
) -> None:
    """While the pod stays not ready the binding says so (Bound, PodNotReady, the phone Running,
    its ADB data in place), and no status or ADB call about the phone is served after the ADB
    read until THRESHOLD_SECONDS after adbProvisionedAt; then ADB is switched on and its data
    read again, and adbProvisionedAt moves on by the threshold at least."""
    assert THRESHOLD_SECONDS > 2 * RUNNING_RECHECK_SECONDS  # two rechecks would fall inside
    operator_factory(
        PHONEFLEET_WORKER_UNREADY_THRESHOLD_SECONDS=str(THRESHOLD_SECONDS),
        PHONEFLEET_RUNNING_RECHECK_SECONDS=str(RUNNING_RECHECK_SECONDS),
        PHONEFLEET_POD_POLL_SECONDS="1",
    )
    admin = fleet.simulator.admin
    phone_id = fleet.add_phone()
    kubectl.apply(make_binding("stuck", phone_id, namespace, worker={"image": NEVER_READY_IMAGE}))

    body = wait_condition(kubectl, namespace, "stuck", type_="Ready", reason="PodNotReady")
    status = body["status"]
    first = status["phone"]["adbProvisionedAt"]
    assert status["phase"] == "Bound"
    assert status["phone"]["status"] == "Running"
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["PhoneReady"][0] == "True"
    assert conditions["WorkerReady"] == ("False", "PodNotReady")
    assert kubectl.get("secret", "stuck-adb", namespace) is not None

    def provisioned_again() -> str | None:
        phone = ((binding(kubectl, namespace, "stuck") or {}).get("status") or {}).get("phone")
        at = (phone or {}).get("adbProvisionedAt")
        return at if at and at != first else None

    again = wait_for(
        provisioned_again, THRESHOLD_SECONDS + 60, message="the ADB data to be provisioned again"
    )
    calls = calls_about(admin.served_calls(), phone_id)
    enables = [c for c in calls if c.endpoint == ADB_SET_STATUS]
    assert len(enables) >= 2, [(c.endpoint, c.at) for c in calls]
    read = [c for c in calls if c.endpoint == ADB_GET_DATA and c.seq < enables[1].seq][-1]
    # The simulator's clock: the operator's wall clock less one offset (measured once).
    provisioned = wall_of(first) - (time.time() - time.monotonic())
    trusted_until = provisioned + THRESHOLD_SECONDS
    assert read.at >= provisioned, "the ADB read before the pass that wrote it"
    after = [c for c in calls if c.seq > read.seq]
    early = [
        (c.endpoint, f"{trusted_until - c.at:.2f} s early") for c in after if c.at < trusted_until
    ]
    assert not early, f"asked about the phone before the threshold: {early}"
    assert [c for c in calls if c.endpoint == ADB_GET_DATA and c.seq > enables[1].seq]
    moved = wall_of(again) - wall_of(first)  # both whole seconds of the operator's clock
    assert moved >= THRESHOLD_SECONDS, f"adbProvisionedAt moved on by {moved} s"
