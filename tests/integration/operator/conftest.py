"""Fixtures of the operator scenarios: CRDs, a Geelark simulator and the operator in-process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from kopf.testing import KopfRunner

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import GeelarkSimulator, SimulatorConfig
from phonefleet_testbed.scenarios import Fleet, Operator, operator_env
from phonefleet_testbed.waiting import wait_for


@pytest.fixture(scope="session")
def crds(control_plane: ControlPlane) -> None:
    """phonefleet's CRDs, installed once per session."""
    install_crds(control_plane)


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
    crds: None,
    fleet: Fleet,
    kubectl: Kubectl,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Operator]]:
    """Start operators on demand; at teardown every binding is deleted through the operator."""
    for name, value in operator_env(control_plane, fleet.simulator).items():
        monkeypatch.setenv(name, value)
    runners: list[KopfRunner] = []

    def start(**env: str) -> Operator:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runner = KopfRunner(
            ["run", "--standalone", "--all-namespaces", "-m", "phonefleet_operator.main"],
            timeout=60,
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


@pytest.fixture
def operator(operator_factory: Callable[..., Operator]) -> Operator:
    """One operator, running for the whole test."""
    return operator_factory()
