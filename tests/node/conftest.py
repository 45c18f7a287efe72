"""Real-node tier: a control plane with a real kubelet, containerd and kube-proxy.

The node comes up once per session (``node_bed``) and every test here shares it, with the
operator, worker and Appium images imported once. Nothing skips: a machine that cannot run a node
fails the fixture with the reason, and a failed image build fails it with the script's output.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.fixtures import Kubectl, fresh_namespace
from phonefleet_testbed.node import NodeBed, real_node_bed, real_node_unavailable
from phonefleet_testbed.node.images import NodeImages, ensure_images
from phonefleet_testbed.node.workload import node_operator_env, node_simulator
from phonefleet_testbed.rbac import operator_kubeconfig
from phonefleet_testbed.scenarios import Fleet, Operator, in_process_operator
from phonefleet_testbed.waiting import wait_for


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The first test pays for the node and the images: give every test room for that.

    ``test_node_lifecycle`` brings a node of its own up and down and diffs the host around it:
    it runs before every other test of this folder, as only one node fits a machine and the
    others share the session's node until the end.
    """
    node = [item for item in items if "/tests/node/" in str(item.path)]
    for item in node:
        item.add_marker(pytest.mark.timeout(1800))
    if node:
        first = items.index(node[0])
        alone = [item for item in node if item.path.name == "test_node_lifecycle.py"]
        rest = [item for item in items if item not in alone]
        items[:] = [*rest[:first], *alone, *rest[first:]]


def require_real_node() -> None:
    """Fail (never skip) with what the machine lacks."""
    reason = real_node_unavailable()
    if reason:
        pytest.fail(f"A real node cannot run here: {reason}")


@pytest.fixture(scope="session")
def node_images() -> NodeImages:
    """The operator, worker and Appium images, built from the working tree."""
    require_real_node()
    return ensure_images()


@pytest.fixture(scope="session")
def node_bed(node_images: NodeImages) -> Iterator[NodeBed]:
    """One control plane with a real node (images imported, CRDs installed), for this folder."""
    with real_node_bed() as bed:
        bed.node.import_images(*node_images.all)
        install_crds(bed.plane)
        yield bed


@pytest.fixture(scope="session")
def node_kubectl(node_bed: NodeBed) -> Kubectl:
    """The real kubectl with admin rights on the real node's control plane."""
    return Kubectl(node_bed.plane)


@pytest.fixture(scope="session")
def node_operator_credentials(node_bed: NodeBed) -> Path:
    """A kubeconfig of the operator's own ServiceAccount on the real node's control plane."""
    return operator_kubeconfig(node_bed.plane)


@pytest.fixture
def node_namespace(node_kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test."""
    base = request.node.name[5:30].replace("_", "-").strip("-")
    with fresh_namespace(node_kubectl, f"node-{base}-{uuid.uuid4().hex[:4]}") as name:
        yield name


@pytest.fixture
def node_fleet(node_bed: NodeBed) -> Iterator[Fleet]:
    """A simulator whose phones' ADB endpoints live at the host end of the node's veth pair."""
    with node_simulator(node_bed) as simulator:
        fleet = Fleet(simulator)
        yield fleet
        left = fleet.running() - fleet.keep_running
        assert not left, f"phones left running after the test: {sorted(left)}"


@pytest.fixture
def node_operator(  # noqa: PLR0917 - fixtures arrive as arguments
    node_bed: NodeBed,
    node_images: NodeImages,
    node_fleet: Fleet,
    node_operator_credentials: Path,
    node_kubectl: Kubectl,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Operator]:
    """The operator in-process as its ServiceAccount; every binding is released afterwards."""
    for name, value in node_operator_env(node_bed, node_images, node_fleet.simulator).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KUBECONFIG", str(node_operator_credentials))
    runner = in_process_operator(
        "run", "--standalone", "--all-namespaces", "-m", "phonefleet_operator.main", timeout=120
    )
    runner.__enter__()
    try:
        yield Operator(runner)
        release_all_bindings(node_kubectl)
    finally:
        runner.__exit__(None, None, None)
    assert runner.exception is None, runner.output


def release_all_bindings(kubectl: Kubectl, timeout: float = 120) -> None:
    """Delete every binding and wait until the operator released them all."""

    def items() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(
            kubectl("get", "phonebindings", "-A", "-o", "json").stdout
        )["items"]
        return found

    for item in items():
        meta = item["metadata"]
        kubectl(
            "delete",
            "pb",
            meta["name"],
            "-n",
            meta["namespace"],
            "--wait=false",
            "--ignore-not-found",
        )
    wait_for(lambda: not items(), timeout, message="every PhoneBinding to be released")
