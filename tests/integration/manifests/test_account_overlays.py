"""manifests/accounts: a second Geelark account's operator beside the first in one cluster
(docs/accounts.md). Nothing it holds collides with manifests/default, the API server accepts
it, and the shared scope policy judges the second operator as it judges the first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from phonefleet_testbed.binaries import repo_root
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.rbac import SCOPE_POLICY, install_operator_rbac
from phonefleet_testbed.scenarios import make_claim
from phonefleet_testbed.waiting import wait_for

MANIFESTS = repo_root() / "manifests"
SECOND = MANIFESTS / "accounts" / "second"
FIRST = MANIFESTS / "accounts" / "first"
HOME = "phonefleet-shop-b"
#: Cluster-wide objects every account shares, installed by manifests/default alone.
SHARED = {
    ("CustomResourceDefinition", None),
    ("ClusterRole", "phonefleet-operator"),
    ("ValidatingAdmissionPolicy", "phonefleet-operator-scope"),
    ("ValidatingAdmissionPolicyBinding", "phonefleet-operator-scope"),
}


def rendered(kubectl: Kubectl, folder: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize`` builds from a folder."""
    return [doc for doc in yaml.safe_load_all(kubectl("kustomize", str(folder)).stdout) if doc]


def key(obj: dict[str, Any]) -> tuple[str, str | None, str]:
    """Kind, namespace and name: what two objects must not share."""
    return obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The operator Deployment's container."""
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """The container's env by name (literal values, or their valueFrom)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_a_second_account_shares_no_object_with_the_first(kubectl: Kubectl) -> None:
    """Every object of the second account's overlay is its own (its namespace, or a cluster
    object named for it); the CRDs, the ClusterRole and the scope policy come from the first
    install only, so deleting the overlay cannot take them from the other accounts."""
    first = {key(o) for o in rendered(kubectl, MANIFESTS / "default")}
    second = rendered(kubectl, SECOND)

    assert not first & {key(o) for o in second}
    assert not [
        key(o)
        for o in second
        if (o["kind"], None) in SHARED or (o["kind"], o["metadata"]["name"]) in SHARED
    ]
    namespaced = [o for o in second if o["metadata"].get("namespace")]
    assert {o["metadata"]["namespace"] for o in namespaced} == {HOME}
    assert [o["metadata"]["name"] for o in second if o["kind"] == "Namespace"] == [HOME]
    for binding in (o for o in second if o["kind"] == "ClusterRoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "phonefleet-operator", "namespace": HOME}
        ]


def test_each_account_names_its_operator_and_keeps_to_its_namespaces(kubectl: Kubectl) -> None:
    """The second operator serves account shop-b in team-b with its own credentials; the first
    keeps the account name "default" (its claims carry it) and is restricted to team-a."""
    second = operator_container(rendered(kubectl, SECOND))
    env = env_of(second)
    assert env["PHONEFLEET_ACCOUNT"] == "shop-b"
    assert env["PHONEFLEET_GEELARK_CREDENTIALS_SECRET"] == f"{HOME}/geelark-credentials"
    assert env["PHONEFLEET_GEELARK_TOKEN"]["secretKeyRef"]["name"] == "geelark-credentials"
    assert "--namespace=team-b" in second["args"]

    first = operator_container(rendered(kubectl, FIRST))
    assert "PHONEFLEET_ACCOUNT" not in env_of(first)
    assert "--namespace=team-a" in first["args"]


@pytest.fixture(scope="module")
def second_operator(control_plane: ControlPlane, kubectl: Kubectl) -> Iterator[Kubectl]:
    """The second account's namespace, ServiceAccount and cluster role bindings applied for real
    (beside manifests/rbac of the first); kubectl with a token of its ServiceAccount."""
    install_crds(control_plane)
    install_operator_rbac(control_plane)
    objects = [
        o
        for o in rendered(kubectl, SECOND)
        if o["kind"] in ("Namespace", "ServiceAccount", "ClusterRoleBinding", "ClusterRole")
    ]
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    kubectl("apply", "-f", "-", input_text=manifest)
    operator = kubectl.as_user(
        control_plane.mint_service_account_kubeconfig(HOME, "phonefleet-operator")
    )
    wait_for(
        lambda: (
            operator("auth", "can-i", "list", "phoneclaims.phonefleet.dev").stdout.strip() == "yes"
        ),
        30,
        message="the second account's operator to get its rights",
    )
    yield operator
    kubectl("delete", "-f", "-", "--wait=false", input_text=manifest, check=False)


def test_the_second_accounts_server_dry_run_succeeds(
    second_operator: Kubectl, kubectl: Kubectl
) -> None:
    """The API server accepts every object of the overlay (its namespace exists by then)."""
    result = kubectl("apply", "-k", str(SECOND), "--dry-run=server")
    assert "deployment.apps/phonefleet-operator" in result.stdout
    assert "PodSecurity" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("resource", "allowed"),
    [
        (
            "validatingwebhookconfigurations.admissionregistration.k8s.io/shop-b.phonefleet.dev",
            True,
        ),
        ("validatingwebhookconfigurations.admissionregistration.k8s.io/phonefleet.dev", False),
    ],
)
def test_the_second_operator_patches_only_its_own_webhook_configuration(
    second_operator: Kubectl, resource: str, allowed: bool
) -> None:
    """Its ValidatingWebhookConfiguration is its own; the first account's is not."""
    answer = second_operator("auth", "can-i", "patch", resource, check=False).stdout.strip()
    assert answer == ("yes" if allowed else "no")


@pytest.fixture
def claims(kubectl: Kubectl) -> Iterator[dict[str, str]]:
    """Two claims (names by account): one of account a, one made by an older version."""
    made = {"a": "account-test-claim-a", "unlabelled": "account-test-claim-old"}
    for account, name in made.items():
        labels = {"phonefleet.dev/account": account} if account == "a" else {}
        claim = make_claim(name, "team-b", "x", "uid-x", serial_name="x")
        claim["metadata"]["labels"] = labels
        kubectl("create", "-f", "-", input_text=json.dumps(claim))
    yield made
    for name in made.values():
        kubectl("delete", "phoneclaim", name, "--ignore-not-found")


def test_the_scope_policy_keeps_each_operator_to_its_own_account(
    second_operator: Kubectl, claims: dict[str, str]
) -> None:
    """The second operator may label a claim an older version made and set a claim's
    releasePolicy; it may not move another account's claim to its own, nor write the first
    account's Secrets in phonefleet-system."""

    def patch(name: str, body: dict[str, Any]) -> tuple[bool, str]:
        result = second_operator(
            "patch", "phoneclaim", name, "--type=merge", "--dry-run=server",
            "-p", json.dumps(body), check=False,
        )  # fmt: skip
        return result.returncode == 0, result.stderr

    adopt = {"metadata": {"labels": {"phonefleet.dev/account": "shop-b"}}}
    accepted, stderr = patch(claims["unlabelled"], adopt)
    assert accepted, stderr
    accepted, stderr = patch(claims["a"], {"spec": {"releasePolicy": "Keep"}})
    assert accepted, stderr
    accepted, stderr = patch(claims["a"], adopt)
    assert not accepted
    assert SCOPE_POLICY in stderr
    accepted, stderr = patch(
        claims["a"], {"metadata": {"labels": {"phonefleet.dev/account": None}}}
    )
    assert not accepted
    assert SCOPE_POLICY in stderr

    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "phonefleet-webhook-ca", "namespace": "phonefleet-system"},
        "type": "Opaque",
    }
    result = second_operator(
        "create", "--dry-run=server", "-f", "-", input_text=json.dumps(secret), check=False
    )
    assert result.returncode != 0
    assert SCOPE_POLICY in result.stderr
