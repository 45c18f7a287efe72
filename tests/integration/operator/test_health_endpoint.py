"""The operator's /healthz on the real control plane and the Geelark simulator (issue 10).

Defect 10: the "geelark" probe says what the operator's Geelark calls met, and an outage never
fails /healthz (restarting the operator does not bring Geelark back). Defect 9: after bindings
are created and deleted in cycles, every in-memory entry the operator reports is back to zero.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.processes import free_port
from phonefleet_testbed.scenarios import (
    Fleet,
    in_process_operator,
    make_binding,
    operator_env,
    wait_phase,
)
from phonefleet_testbed.waiting import wait_for

CHURN_BINDINGS, CHURN_CYCLES = 10, 2


def health(url: str) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of /healthz."""
    response = requests.get(url, timeout=10)
    return response.status_code, response.json() if response.content else {}


@pytest.fixture
def liveness(
    control_plane: ControlPlane,
    operator_identity: Path,
    fleet: Fleet,
    kubectl: Kubectl,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """An operator in-process serving kopf's /healthz; its URL. Bindings left at the end are
    deleted through it."""
    for name, value in operator_env(control_plane, fleet.simulator).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KUBECONFIG", str(operator_identity))
    # One attempt per Geelark call: the outage reaches /healthz without the retries' back-off.
    monkeypatch.setenv("PHONEFLEET_GEELARK_MAX_ATTEMPTS", "1")
    url = f"http://127.0.0.1:{free_port()}/healthz"
    args = ["run", "--standalone", "--all-namespaces", "--liveness", url]
    with in_process_operator(*args, "-m", "phonefleet_operator.main") as runner:
        wait_for(lambda: health(url)[0] == 200, 60, message=f"{url} to answer 200")
        yield url
        for item in json.loads(kubectl("get", "pb", "-A", "-o", "json").stdout)["items"]:
            meta = item["metadata"]
            kubectl("delete", "pb", meta["name"], "-n", meta["namespace"], "--wait=false")
        wait_for(
            lambda: not json.loads(kubectl("get", "pb", "-A", "-o", "json").stdout)["items"],
            60,
            message="every PhoneBinding to be released",
        )
    assert runner.exception is None, runner.output


def test_healthz_reports_a_geelark_outage_without_failing(
    kubectl: Kubectl, namespace: str, fleet: Fleet, liveness: str
) -> None:
    """Geelark down: /healthz still answers 200 and its "geelark" entry says unreachable, with
    the error; Geelark back: it says ok again."""
    phone_id = fleet.add_phone()
    kubectl.apply(make_binding("watched", phone_id, namespace))
    wait_phase(kubectl, namespace, "watched", "Running")
    wait_for(
        lambda: health(liveness)[1].get("geelark", "").startswith("ok"),
        30,
        message=lambda: f"/healthz to say Geelark is ok: {health(liveness)}",
    )

    fleet.simulator.admin.set_faults(http_status=503)  # answers at once, unlike a network cut
    try:
        status, body = wait_for(
            lambda: (
                (found := health(liveness))[1].get("geelark", "").startswith("unreachable")
                and found
            ),
            60,
            message=lambda: f"/healthz to report the outage: {health(liveness)}",
        )
        assert status == 200
        assert "GeelarkUnavailable" in body["geelark"]
        assert body["background"]["sweeper"].startswith("running")
    finally:
        fleet.simulator.admin.clear_faults()
    wait_for(
        lambda: health(liveness)[1].get("geelark", "").startswith("ok"),
        60,
        message=lambda: f"/healthz to say Geelark is ok again: {health(liveness)}",
    )


def test_bindings_created_and_deleted_in_cycles_leave_no_entry_behind(
    kubectl: Kubectl, namespace: str, fleet: Fleet, liveness: str
) -> None:
    """Ten bindings, twice: Running, then deleted; each time /healthz's counts of what
    the operator keeps in memory go back to zero."""
    phones = [fleet.add_phone() for _ in range(CHURN_BINDINGS)]
    for cycle in range(CHURN_CYCLES):
        for n, phone_id in enumerate(phones):
            kubectl.apply(make_binding(f"churn-{n}", phone_id, namespace))
        for n in range(CHURN_BINDINGS):
            wait_phase(kubectl, namespace, f"churn-{n}", "Running")
        kubectl("delete", "pb", "--all", "-n", namespace, "--wait=true", "--timeout=60s")

        wait_untracked(liveness, f"cycle {cycle}")


def wait_untracked(url: str, when: str) -> None:
    """Wait until /healthz reports no in-memory entry at all."""

    def settled() -> dict[str, int] | None:
        tracked: dict[str, int] = health(url)[1]["background"]["tracked"]
        return None if any(tracked.values()) else tracked

    wait_for(settled, 60, message=lambda: f"no tracked entry after {when}: {health(url)}")
