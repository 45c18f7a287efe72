"""Fixtures of the operator scenarios: CRDs, a Geelark simulator and the operator in-process."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kopf.testing import KopfRunner

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import GeelarkSimulator, SimulatorConfig
from phonefleet_testbed.jobs import JOB_ENV
from phonefleet_testbed.processes import free_port
from phonefleet_testbed.rbac import (
    OPERATOR_NAMESPACE,
    OPERATOR_USER,
    SCOPE_POLICY,
    operator_kubeconfig,
)
from phonefleet_testbed.replicas import StartReplica, replica_processes
from phonefleet_testbed.scenarios import (
    Fleet,
    Operator,
    in_process_operator,
    loopback_webhook_env,
    make_binding,
    operator_env,
    wait_job_token,
    wait_phase,
)
from phonefleet_testbed.tenants import Tenancy, Tenant
from phonefleet_testbed.waiting import wait_for
from phonefleet_testbed.watching import Watched

#: The ValidatingWebhookConfiguration of the account "default" (the tests' operators').
WEBHOOK_CONFIGURATION = "phonefleet.dev"


@pytest.fixture(scope="session")
def crds(control_plane: ControlPlane) -> None:
    """phonefleet's CRDs, installed once per session."""
    install_crds(control_plane)


@pytest.fixture(scope="session")
def operator_credentials(control_plane: ControlPlane, crds: None) -> Path:
    """A kubeconfig of the operator's own ServiceAccount (manifests/rbac, applied once)."""
    return operator_kubeconfig(control_plane)


@pytest.fixture
def operator_identity(
    operator_credentials: Path, caplog: pytest.LogCaptureFixture
) -> Iterator[Path]:
    """What the operators of one test run as: exactly the rights manifests/rbac grants.

    A call the RBAC refused fails the test even where the operator carries on (kopf only logs a
    refused Event, for one). Checked after the operators stopped (this fixture outlives them).
    """
    yield operator_credentials
    refused = _refused_calls(caplog)
    assert not refused, f"the operator lacked a permission (manifests/rbac): {refused}"


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    """A fresh Geelark simulator with fast boots; no phone may be left running after the test."""
    config = SimulatorConfig(phones=0, boot_seconds=0.3, adb_enable_seconds=0.1)
    with GeelarkSimulator(config) as simulator:
        state = Fleet(simulator)
        yield state
        left = state.running() - state.keep_running
        assert not left, f"phones left running (and billed) after the test: {sorted(left)}"


@pytest.fixture
def operator_factory(
    control_plane: ControlPlane,
    operator_identity: Path,
    fleet: Fleet,
    kubectl: Kubectl,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Operator]]:
    """Start operators on demand; at teardown every binding is deleted through the operator.

    The operator authenticates as its ServiceAccount; ``kubectl`` (the tests' view) stays admin.
    """
    for name, value in operator_env(control_plane, fleet.simulator).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KUBECONFIG", str(operator_identity))
    runners: list[KopfRunner] = []

    def start(**env: str) -> Operator:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runner = in_process_operator(
            "run", "--standalone", "--all-namespaces", "-m", "phonefleet_operator.main"
        )
        runner.__enter__()
        runners.append(runner)
        return Operator(runner)

    def stop(operator: Operator) -> None:
        operator.runner.__exit__(None, None, None)
        runners.remove(operator.runner)

    start.stop = stop  # type: ignore[attr-defined]
    yield start

    if not runners:
        runners.append(start().runner)
    bindings = json.loads(kubectl("get", "phonebindings", "-A", "-o", "json").stdout)["items"]
    for item in bindings:
        kubectl(
            "delete",
            "phonebinding",
            item["metadata"]["name"],
            "-n",
            item["metadata"]["namespace"],
            "--wait=false",
            check=False,
        )
    wait_for(
        lambda: not json.loads(kubectl("get", "phonebindings", "-A", "-o", "json").stdout)["items"],
        60,
        message="every PhoneBinding to be released by the operator",
    )
    for runner in runners:
        runner.__exit__(None, None, None)
        assert runner.exception is None, runner.output


def _refused_calls(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records (with their tracebacks) of calls refused to the operator: by RBAC (the message
    names its ServiceAccount) or by the scope policy of manifests/rbac (the message names it)."""
    formatter = logging.Formatter()
    texts = (
        formatter.format(record)
        for when in ("setup", "call", "teardown")
        for record in caplog.get_records(when)
    )
    return [
        t for t in texts if "forbidden" in t.lower() and (OPERATOR_USER in t or SCOPE_POLICY in t)
    ]


@pytest.fixture
def webhook_env(kubectl: Kubectl) -> Iterator[dict[str, str]]:
    """Settings of an operator serving its webhook on loopback (``operator_factory(**env)``);
    the ValidatingWebhookConfiguration it registers outlives it, so it goes after the test."""
    kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    yield loopback_webhook_env(free_port())
    kubectl("delete", "validatingwebhookconfiguration", WEBHOOK_CONFIGURATION, "--ignore-not-found")


@pytest.fixture
def webhook_operator(
    kubectl: Kubectl, operator_factory: Callable[..., Operator], webhook_env: dict[str, str]
) -> Callable[[], Operator]:
    """Starts an operator serving its webhook on loopback and returns it once the API server
    has its ValidatingWebhookConfiguration with a CA bundle."""

    def start() -> Operator:
        operator = operator_factory(**webhook_env)

        def registered() -> bool:
            config = kubectl.get("validatingwebhookconfiguration", WEBHOOK_CONFIGURATION)
            return bool(config and config["webhooks"][0]["clientConfig"].get("caBundle"))

        wait_for(registered, 60, message="the ValidatingWebhookConfiguration with its CA bundle")
        return operator

    return start


@pytest.fixture
def operator(operator_factory: Callable[..., Operator]) -> Operator:
    """One operator, running for the whole test."""
    return operator_factory()


@pytest.fixture
def tenancy(
    tenants: tuple[Tenant, Tenant],
    pools: Callable[..., str],
    fleet: Fleet,
    operator: Operator,
) -> Tenancy:
    """Two tenants, pools on demand and the fleet, with one operator running (the pool tests)."""
    return Tenancy(tenants, pools, fleet)


@pytest.fixture
def job_binding(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
) -> Callable[..., str]:
    """``job_binding(name, url, **env)`` starts an operator (JOB_ENV and ``env``) that reaches
    the job endpoint of binding ``name`` in the test's namespace at ``url`` (the test-only
    endpoint override), binds it to a new phone, waits until it runs and returns the job token
    the operator wrote into its Secret."""

    def run(name: str, url: str, **env: str) -> str:
        operator_factory(
            PHONEFLEET_JOBS_ENDPOINT_OVERRIDES=json.dumps({f"{namespace}/{name}": url}),
            **{**JOB_ENV, **env},
        )
        kubectl.apply(make_binding(name, fleet.add_phone(), namespace))
        wait_phase(kubectl, namespace, name, "Running")
        return wait_job_token(kubectl, namespace, name)

    return run


@pytest.fixture
def operator_replicas(
    control_plane: ControlPlane,
    operator_credentials: Path,
    fleet: Fleet,
    kubectl: Kubectl,
    namespace: str,
) -> Iterator[StartReplica]:
    """Starts `phonefleet-operator` processes under leader election, watching the test's
    namespace as the operator's ServiceAccount (see phonefleet_testbed.replicas); bindings are
    released, the replicas stopped, and the Lease and webhook configuration deleted after."""
    with replica_processes(
        control_plane,
        fleet.simulator,
        operator_credentials,
        kubectl,
        namespace,
        log_prefix="phonefleet-replicas-",
        leftovers=[("validatingwebhookconfiguration", WEBHOOK_CONFIGURATION)],
    ) as start:
        yield start


@pytest.fixture
def watched(control_plane: ControlPlane, namespace: str) -> Iterator[Watched]:
    """Watches of the test's namespace, one per kind the test starts; ended afterwards."""
    with Watched(control_plane, namespace) as watches:
        yield watches
