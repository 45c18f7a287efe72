"""`phonefleet pools set-account`, the upgrade step of docs/tenancy.md ("Upgrade"): the real
console script against the real API server, with this version's CRDs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.tenants import make_pool
from phonefleet_testbed.waiting import wait_for

PHONEFLEET = Path(sys.executable).parent / "phonefleet"
#: The labels of every account's operator Deployment (manifests/manager).
OPERATORS = "app.kubernetes.io/name=phonefleet,app.kubernetes.io/component=operator"


def set_account(plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed console script as an administrator would (admin kubeconfig)."""
    return subprocess.run(
        [str(PHONEFLEET), "pools", "set-account", "--kubeconfig", str(plane.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")},
    )


def pool_manifest(name: str, account: str | None = None) -> dict[str, Any]:
    """A PhonePool, with ``spec.account`` when given."""
    spec: dict[str, Any] = {"phones": {"serialNames": ["upgrade-*"]}, "maxRunning": 2}
    if account:
        spec["account"] = account
    return make_pool(name, **spec)


@pytest.fixture
def upgrade(control_plane: ControlPlane, kubectl: Kubectl) -> Iterator[dict[str, str]]:
    """Two pools made before pools had an account, one of account default already set, and
    an operator Deployment of account shop-b with one replica (KWOK-less: it never runs, the
    command reads its spec)."""
    install_crds(control_plane)
    suffix = uuid.uuid4().hex[:6]
    names = {
        "old-1": f"upgrade-old-1-{suffix}",
        "old-2": f"upgrade-old-2-{suffix}",
        "set": f"upgrade-set-{suffix}",
        "namespace": f"upgrade-op-{suffix}",
    }
    kubectl.apply(pool_manifest(names["old-1"]))
    kubectl.apply(pool_manifest(names["old-2"]))
    kubectl.apply(pool_manifest(names["set"], "default"))
    kubectl("create", "namespace", names["namespace"])
    labels = {"app.kubernetes.io/name": "phonefleet", "app.kubernetes.io/component": "operator"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "phonefleet-operator",
            "namespace": names["namespace"],
            "labels": labels,
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "operator", "image": "phonefleet/operator:dev"}]},
            },
        },
    }
    kubectl("create", "-f", "-", input_text=json.dumps(deployment))
    # Operator Deployments of other tests (manifests/default installed for real): scaled to 0
    # with ours, given their replicas back afterwards.
    others = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d["spec"].get("replicas", 1)
        for d in kubectl.list("deployments", None, "-l", OPERATORS)
        if d["metadata"]["namespace"] != names["namespace"]
    }
    yield names
    for (namespace, name), replicas in others.items():
        kubectl("scale", "deployment", name, f"--replicas={replicas}", "-n", namespace)
    for key in ("old-1", "old-2", "set"):
        kubectl("delete", "phonepool", names[key], "--ignore-not-found")
    # Gone before the next test lists operator Deployments (a namespace is deleted slowly).
    kubectl("delete", "deployment", "phonefleet-operator", "-n", names["namespace"], "--wait")
    kubectl("delete", "namespace", names["namespace"], "--wait=false")


def account_of(kubectl: Kubectl, name: str) -> str | None:
    """The pool's spec.account as stored."""
    found = kubectl.get("phonepool", name)
    assert found is not None
    account: str | None = found["spec"].get("account")
    return account


def test_set_account_refuses_while_an_operator_runs_then_sets_each_pool_once(
    control_plane: ControlPlane, kubectl: Kubectl, upgrade: dict[str, str]
) -> None:
    """With an operator Deployment at one replica nothing is written (exit 1, the Deployment
    named); scaled to 0, both old pools get account shop-b (exit 0), a second run says so and
    changes nothing; a pool of another account is refused (exit 1) and keeps its account; an
    unknown pool is named (exit 1)."""
    old = [upgrade["old-1"], upgrade["old-2"]]
    refused = set_account(control_plane, *old, "--account", "shop-b")
    assert refused.returncode == 1, refused.stderr
    assert f"{upgrade['namespace']}/phonefleet-operator" in refused.stderr
    assert [account_of(kubectl, name) for name in old] == [None, None]

    for item in kubectl.list("deployments", None, "-l", OPERATORS):
        meta = item["metadata"]
        kubectl("scale", "deployment", meta["name"], "--replicas=0", "-n", meta["namespace"])
    wait_for(
        lambda: (
            not any(
                (d.get("status") or {}).get("replicas")
                for d in kubectl.list("deployments", None, "-l", OPERATORS)
            )
        ),
        60,
        message="the operator Deployments' pods to be gone",
    )
    done = set_account(control_plane, *old, "--account", "shop-b")
    assert done.returncode == 0, done.stderr
    assert [account_of(kubectl, name) for name in old] == ["shop-b", "shop-b"]
    assert f"PhonePool {old[0]}: account set to shop-b" in done.stdout

    again = set_account(control_plane, old[0], "--account", "shop-b")
    assert again.returncode == 0, again.stderr
    assert f"PhonePool {old[0]}: already of account shop-b" in again.stdout

    other = set_account(control_plane, upgrade["set"], "missing-pool", "--account", "shop-b")
    assert other.returncode == 1
    assert f"PhonePool {upgrade['set']}: of account default, which cannot change" in other.stderr
    assert "PhonePool missing-pool: not found" in other.stderr
    assert account_of(kubectl, upgrade["set"]) == "default"


def test_set_account_runs_beside_operators_it_is_told_run_elsewhere(
    control_plane: ControlPlane, kubectl: Kubectl, upgrade: dict[str, str]
) -> None:
    """--allow-running-operators skips the Deployment check (operators outside Deployments)."""
    done = set_account(
        control_plane, upgrade["old-1"], "--account", "shop-b", "--allow-running-operators"
    )
    assert done.returncode == 0, done.stderr
    assert account_of(kubectl, upgrade["old-1"]) == "shop-b"
