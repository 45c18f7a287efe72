"""A real Prometheus scrapes a running operator and a worker; every dashboard query and alert
expression of manifests/monitoring is evaluated against what it scraped."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from phonefleet_testbed.binaries import repo_root
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.processes import ManagedProcess, free_port
from phonefleet_testbed.prometheus import MONITORING, PrometheusServer
from phonefleet_testbed.scenarios import Fleet, make_binding, operator_env, wait_phase
from phonefleet_testbed.waiting import wait_for

#: The scrape job of the operator: the metrics Service's name, which the alerts select on.
OPERATOR_JOB = "phonefleet-operator-metrics"

#: What each alert expression returns in this test's scene (label sets, alertname aside).
#: Every alert of prometheusrule.yaml must be here: a new alert needs its expectation.
EXPECTED_ALERTS: dict[str, list[dict[str, str]]] = {
    "PhonefleetGeelarkUnreachable": [],
    "PhonefleetGeelarkRateLimited": [{"code": "40007"}],
    "PhonefleetBindingsStuck": [],  # the Conflict and PhoneNotFound bindings are seconds old
    "PhonefleetPhonesBilledWithoutBinding": [{}],
    "PhonefleetOperatorNotReconciling": [],
    "PhonefleetNoActiveReplica": [],
    "PhonefleetOperatorDown": [],
}


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def dashboard_queries() -> list[str]:
    dashboard = json.loads(
        (repo_root() / MONITORING / "dashboards" / "phonefleet.json").read_text()
    )
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def alert_rules() -> dict[str, str]:
    rule = yaml.safe_load((repo_root() / MONITORING / "prometheusrule.yaml").read_text())
    return {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="phonefleet-metrics-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def operator_process(
    *,
    control_plane: ControlPlane,
    operator_credentials: Path,
    fleet: Fleet,
    kubectl: Kubectl,
    namespace: str,
    workdir: Path,
) -> Iterator[str]:
    """``phonefleet-operator`` (the console script, its own process and registry) with metrics
    on; yields host:port of /metrics. Its bindings are released through it afterwards."""
    port = free_port()
    env = {
        **operator_env(control_plane, fleet.simulator),
        "KUBECONFIG": str(operator_credentials),
        "PHONEFLEET_METRICS_PORT": str(port),
        "PHONEFLEET_METRICS_ADDR": "127.0.0.1",
        "PHONEFLEET_BILLING_CHECK_SECONDS": "1",
    }
    process = ManagedProcess(
        "operator",
        [
            _bin("phonefleet-operator"),
            "--namespace",
            namespace,
            f"--liveness=http://127.0.0.1:{free_port()}/healthz",
        ],
        workdir,
        env=env,
    )
    process.start()
    try:
        yield f"127.0.0.1:{port}"
        kubectl("delete", "phonebindings", "--all", "-n", namespace, "--wait=false")
        wait_for(
            lambda: not kubectl.list("phonebindings", namespace),
            60,
            message=lambda: f"bindings released by the operator\n{process.log_tail()}",
        )
        process.check_running()
    finally:
        process.stop()


@pytest.fixture
def worker_process(workdir: Path) -> Iterator[str]:
    """``phonefleet-worker`` for a phone whose connection data never comes: it waits and serves
    its probes and /metrics; yields host:port."""
    port = free_port()
    secrets = workdir / "adb"
    secrets.mkdir()
    process = ManagedProcess(
        "worker",
        [_bin("phonefleet-worker"), "--phone-id", "600000000000000001"],
        workdir,
        env={
            "PHONEFLEET_WORKER_PROBE_HOST": "127.0.0.1",
            "PHONEFLEET_WORKER_PROBE_PORT": str(port),
            "PHONEFLEET_WORKER_ADB_SECRET_DIR": str(secrets),
        },
    )
    process.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.stop()


def labels_of(result: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Label sets of a query result, without the name of the series."""
    return sorted(
        ({k: v for k, v in r["metric"].items() if k != "__name__"} for r in result),
        key=lambda labels: sorted(labels.items()),
    )


def test_every_dashboard_query_and_alert_expression_matches_what_the_operator_exports(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_process: str,
    worker_process: str,
) -> None:
    """With one Running, one Conflict and one PhoneNotFound binding, a phone billed with no
    binding and one 40007 answer: every dashboard query returns series, every series selector
    in the alerts matches, each alert expression returns exactly what the scene calls for, and
    cutting Geelark off makes the unreachable alert's expression fire."""
    assert set(alert_rules()) == set(EXPECTED_ALERTS)
    phone = fleet.add_phone()
    leaked = fleet.simulator.admin.create_phone("left-running", status=0).id
    fleet.keep_running.add(leaked)
    kubectl.apply(make_binding("runner", phone, namespace))
    wait_phase(kubectl, namespace, "runner", "Running")
    kubectl.apply(make_binding("duplicate", phone, namespace))
    kubectl.apply(make_binding("missing", "phone-that-is-not-there", namespace))
    wait_phase(kubectl, namespace, "duplicate", "Conflict")
    wait_phase(kubectl, namespace, "missing", "PhoneNotFound")

    targets = {OPERATOR_JOB: [operator_process], "phonefleet-worker": [worker_process]}
    with PrometheusServer(targets) as prometheus:
        wait_for(prometheus.targets_up, 60, message="both targets scraped")
        # A 40007 after the first scrape (the billing check lists the phones every second).
        fleet.simulator.admin.set_faults("phone/list", code=40007, times=1)
        by_phase = "sum by (phase) (phonefleet_bindings)"
        wanted = {"Running": "1", "Conflict": "1", "PhoneNotFound": "1"}
        wait_for(
            lambda: (
                {r["metric"]["phase"]: r["value"][1] for r in prometheus.query(by_phase)} == wanted
            ),
            60,
            message=lambda: f"{wanted} from {by_phase}: {prometheus.query(by_phase)}",
        )
        # Rates need two samples of each counter after it moved.
        wait_for(
            lambda: (
                prometheus.query("max(phonefleet_unbound_running_phones) == 1")
                and prometheus.query("count_over_time(phonefleet_reconcile_passes_total[1m]) > 2")
                and prometheus.query(
                    'phonefleet_geelark_rate_limit_answers_total{code="40007"} > 0'
                )
            ),
            60,
            message="the billing check, a 40007 and a few scrapes",
        )

        empty = {q: prometheus.query(q) for q in dashboard_queries()}
        assert [q for q, result in empty.items() if not result] == []

        for name, expr in alert_rules().items():
            unmatched = [s for s in prometheus.selectors(expr) if not prometheus.query(s)]
            assert unmatched == [], f"{name}: selectors that match nothing: {unmatched}"
            assert labels_of(prometheus.query(expr)) == EXPECTED_ALERTS[name], name

        fleet.simulator.admin.set_faults("*", outage=True)
        unreachable = alert_rules()["PhonefleetGeelarkUnreachable"]
        wait_for(lambda: prometheus.query(unreachable), 60, message=unreachable)
        fleet.simulator.admin.clear_faults()
