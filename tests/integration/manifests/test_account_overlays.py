"""manifests/accounts: a second Geelark account's operator beside the first in one cluster
(docs/accounts.md). Nothing it holds collides with manifests/default, the API server accepts
it, and the shared scope policy judges the second operator as it judges the first."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from phonefleet_testbed.binaries import repo_root
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.rbac import ACCOUNT_POLICY, SCOPE_POLICY, install_operator_rbac, serves
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
    ("ClusterRole", "phonefleet-operator-tenant"),
    ("ValidatingAdmissionPolicy", "phonefleet-operator-scope"),
    ("ValidatingAdmissionPolicyBinding", "phonefleet-operator-scope"),
    ("ValidatingAdmissionPolicy", "phonefleet-operator-account"),
    ("ValidatingAdmissionPolicyBinding", "phonefleet-operator-account"),
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
    assert {o["metadata"]["namespace"] for o in namespaced} == {HOME, "team-b"}
    assert [key(o) for o in namespaced if o["metadata"]["namespace"] == "team-b"] == [
        ("RoleBinding", "team-b", "phonefleet-operator-tenant")
    ]
    assert [o["metadata"]["name"] for o in second if o["kind"] == "Namespace"] == [HOME]
    for binding in (o for o in second if o["kind"] in ("ClusterRoleBinding", "RoleBinding")):
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


@pytest.mark.parametrize(
    ("folder", "served", "home"),
    [(FIRST, "team-a", "phonefleet-system"), (SECOND, "team-b", HOME)],
    ids=["first", "second"],
)
def test_each_account_writes_in_the_namespaces_it_serves_only(
    kubectl: Kubectl, folder: Path, served: str, home: str
) -> None:
    """An account overlay grants the operator's namespaced writes (ClusterRole
    phonefleet-operator-tenant) by one RoleBinding in its --namespace, and by no
    ClusterRoleBinding (the default install's, for every namespace, is removed)."""
    objects = rendered(kubectl, folder)
    tenant = [
        o for o in objects if o.get("roleRef", {}).get("name") == "phonefleet-operator-tenant"
    ]
    assert [(o["kind"], o["metadata"]["namespace"]) for o in tenant] == [("RoleBinding", served)]
    assert tenant[0]["subjects"] == [
        {"kind": "ServiceAccount", "name": "phonefleet-operator", "namespace": home}
    ]
    assert f"--namespace={served}" in operator_container(objects)["args"]


@pytest.fixture(scope="module")
def second_operator(control_plane: ControlPlane, kubectl: Kubectl) -> Iterator[Kubectl]:
    """The second account's namespace, ServiceAccount and cluster role bindings applied for real
    (beside manifests/rbac of the first); kubectl with a token of its ServiceAccount."""
    install_crds(control_plane)
    install_operator_rbac(control_plane)
    for namespace in ("team-a", "team-b"):  # the namespaces the overlays serve
        kubectl("create", "namespace", namespace, check=False)
    kinds = ("Namespace", "ServiceAccount", "ClusterRoleBinding", "ClusterRole", "Role")
    kinds += ("RoleBinding",)
    objects = [o for o in rendered(kubectl, SECOND) if o["kind"] in kinds]
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


@pytest.mark.parametrize(
    "write",
    [
        "create pods",
        "delete pods",
        "create secrets",
        "update secrets",
        "create events",
        "patch phonebindings.phonefleet.dev",
        "patch phonebindings.phonefleet.dev --subresource=status",
        "delete phonejobs.phonefleet.dev",
        "patch phonejobs.phonefleet.dev",
        "patch phonejobs.phonefleet.dev --subresource=status",
    ],
)
def test_the_second_operator_writes_in_its_namespaces_and_not_the_firsts(
    second_operator: Kubectl, write: str
) -> None:
    """With a real token of the second account's ServiceAccount: each namespaced write the
    operator makes is allowed in team-b (its RoleBinding) and refused in team-a, the first
    account's namespace (the default install's operator keeps it in every namespace)."""

    def can(namespace: str) -> str:
        answer = second_operator("auth", "can-i", *write.split(), "-n", namespace, check=False)
        return str(answer.stdout.strip())

    assert can("team-b") == "yes"
    assert can("team-a") == "no"
    assert can("some-other-team") == "no"


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
    """The second operator may label a claim an older version made; it may not move another
    account's claim to its own (the scope policy), nor change its releasePolicy (the account
    policy), nor write the first account's Secrets in phonefleet-system (RBAC)."""

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
    assert not accepted
    assert ACCOUNT_POLICY in stderr
    accepted, stderr = patch(claims["a"], adopt)
    assert not accepted
    assert SCOPE_POLICY in stderr
    accepted, stderr = patch(
        claims["a"], {"metadata": {"labels": {"phonefleet.dev/account": None}}}
    )
    assert not accepted
    # Both policies refuse it (the account policy judges the account it had, a's); the API
    # server names the one it evaluated first.
    assert SCOPE_POLICY in stderr or "is of account a" in stderr, stderr

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
    # RBAC refuses it first: its namespaced writes are granted in team-b only (tenants.yaml).
    assert 'cannot create resource "secrets"' in result.stderr


def refused_by_policy(result: Any) -> bool:
    """A kubectl call the account policy refused (stderr names it)."""
    return bool(result.returncode != 0 and ACCOUNT_POLICY in result.stderr)


@pytest.fixture
def account_objects(
    control_plane: ControlPlane, second_operator: Kubectl, kubectl: Kubectl
) -> Iterator[dict[str, Kubectl | str]]:
    """Both accounts' operator identities (the first: manifests/rbac's, account default), a pool
    and a claim of each account, made by the admin. Waits until the account policy is in force
    (the API server applies a new policy shortly after it is stored)."""
    first = kubectl.as_user(install_operator_rbac(control_plane))
    suffix = uuid.uuid4().hex[:6]
    names = {
        "pool-default": f"policy-pool-default-{suffix}",
        "pool-shop-b": f"policy-pool-shop-b-{suffix}",
        "claim-default": f"policy-claim-default-{suffix}",
        "claim-shop-b": f"policy-claim-shop-b-{suffix}",
        "claim-old": f"policy-claim-old-{suffix}",
    }
    for account in ("default", "shop-b"):
        spec: dict[str, Any] = {"phones": {"serialNames": ["policy-*"]}, "maxRunning": 1}
        if account != "default":
            spec["account"] = account
        pool = {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhonePool",
            "metadata": {"name": names[f"pool-{account}"]},
            "spec": spec,
        }
        kubectl("create", "-f", "-", input_text=json.dumps(pool))
    for account in ("default", "shop-b", "old"):
        name = names[f"claim-{account}"]
        labels = {} if account == "old" else {"phonefleet.dev/account": account}
        kubectl("create", "-f", "-", input_text=json.dumps(claim_manifest(name, labels)))

    def in_force() -> bool:
        if not serves(control_plane, second_operator.kubeconfig, "shop-b"):
            return False
        written, message = pool_status_write(second_operator, names["pool-default"])
        return not written and ACCOUNT_POLICY in message

    try:
        wait_for(in_force, 30, message=f"ValidatingAdmissionPolicy {ACCOUNT_POLICY} in force")
        yield {"first": first, "second": second_operator, **names}
    finally:
        for key_, name in names.items():
            kind = "phonepool" if key_.startswith("pool") else "phoneclaim"
            kubectl("delete", kind, name, "--ignore-not-found", "--wait=false")


def claim_manifest(name: str, labels: dict[str, str]) -> dict[str, Any]:
    """A PhoneClaim of a phone ``name`` with ``labels``, held by a binding in team-b."""
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneClaim",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "phoneId": name,
            "serialName": "x",
            "holder": {"namespace": "team-b", "name": "x", "uid": "uid-x"},
        },
    }


def pool_status_write(operator: Kubectl, pool: str) -> tuple[bool, str]:
    """The operator's own write of a pool's status (a merge patch of status.holders through the
    Kubernetes client, as k8s/pools.py makes it: kubectl would GET the status first, which the
    operator may not); True when stored, else False and the API server's message."""
    api = kubernetes.client.CustomObjectsApi(
        kubernetes.config.new_client_from_config(str(operator.kubeconfig))
    )
    try:
        api.patch_cluster_custom_object_status(
            "phonefleet.dev", "v1alpha1", "phonepools", pool,
            {"status": {"holders": [], "running": 0}},
        )  # fmt: skip
    except kubernetes.client.ApiException as error:
        if error.status != 403:
            raise
        return False, str(json.loads(error.body)["message"])
    finally:
        api.api_client.close()
    return True, ""


def test_each_operator_writes_the_status_of_its_own_accounts_pools_only(
    account_objects: dict[str, Any], kubectl: Kubectl, control_plane: ControlPlane
) -> None:
    """The account policy: the first operator (account default) writes the pool without an
    account and not shop-b's; the second (shop-b) the other way round. The admin, who is no
    operator, writes both."""
    first, second = account_objects["first"], account_objects["second"]
    mine, theirs = account_objects["pool-default"], account_objects["pool-shop-b"]
    assert serves(control_plane, first.kubeconfig, "default")
    assert not serves(control_plane, first.kubeconfig, "shop-b")
    assert serves(control_plane, second.kubeconfig, "shop-b")
    assert not serves(control_plane, second.kubeconfig, "default")

    assert pool_status_write(first, mine) == (True, "")
    written, message = pool_status_write(first, theirs)
    assert not written
    assert ACCOUNT_POLICY in message
    assert f"PhonePool {theirs} belongs to account shop-b" in message

    assert pool_status_write(second, theirs) == (True, "")
    written, message = pool_status_write(second, mine)
    assert not written
    assert ACCOUNT_POLICY in message
    assert f"PhonePool {mine} belongs to account default" in message

    for pool in (mine, theirs):
        assert pool_status_write(kubectl, pool) == (True, "")


def test_each_operator_creates_changes_and_releases_its_own_accounts_claims_only(
    account_objects: dict[str, Any], kubectl: Kubectl
) -> None:
    """The account policy on PhoneClaims, for the second operator (shop-b): it creates claims
    labelled shop-b only (not default's, not unlabelled ones); it may change and release its
    own but not default's; an unlabelled claim it may label with shop-b only. The admin may
    delete any claim."""
    second: Kubectl = account_objects["second"]
    theirs, old = account_objects["claim-default"], account_objects["claim-old"]

    def create(name: str, labels: dict[str, str]) -> Any:
        manifest = json.dumps(claim_manifest(name, labels))
        return second("create", "--dry-run=server", "-f", "-", input_text=manifest, check=False)

    def patch(name: str, body: dict[str, Any]) -> Any:
        return second(
            "patch", "phoneclaim", name, "--type=merge", "--dry-run=server",
            "-p", json.dumps(body), check=False,
        )  # fmt: skip

    def delete(name: str) -> Any:
        return second("delete", "phoneclaim", name, "--dry-run=server", check=False)

    created = create("policy-claim-new", {"phonefleet.dev/account": "shop-b"})
    assert created.returncode == 0, created.stderr
    refused = create("policy-claim-new", {"phonefleet.dev/account": "default"})
    assert refused_by_policy(refused), refused.stderr
    assert "is of account default" in refused.stderr
    refused = create("policy-claim-new", {})
    assert refused_by_policy(refused), refused.stderr

    own = account_objects["claim-shop-b"]
    for name, allowed in ((own, True), (theirs, False)):
        for result in (patch(name, {"spec": {"releasePolicy": "Keep"}}), delete(name)):
            assert (result.returncode == 0) == allowed, result.stderr
            assert allowed or refused_by_policy(result), result.stderr

    relabel = patch(old, {"metadata": {"labels": {"phonefleet.dev/account": "default"}}})
    assert refused_by_policy(relabel), relabel.stderr
    adopted = patch(old, {"metadata": {"labels": {"phonefleet.dev/account": "shop-b"}}})
    assert adopted.returncode == 0, adopted.stderr

    for name in (own, theirs):
        released = kubectl("delete", "phoneclaim", name, "--dry-run=server", check=False)
        assert released.returncode == 0, released.stderr


def test_the_first_operator_cannot_release_the_second_accounts_claims(
    account_objects: dict[str, Any],
) -> None:
    """The same policy the other way round: account default's operator may release its own
    claim, and may neither release nor change shop-b's."""
    first: Kubectl = account_objects["first"]
    mine, theirs = account_objects["claim-default"], account_objects["claim-shop-b"]
    assert first("delete", "phoneclaim", mine, "--dry-run=server").returncode == 0
    refused = first("delete", "phoneclaim", theirs, "--dry-run=server", check=False)
    assert refused_by_policy(refused), refused.stderr
    assert "releases the claims of its own account only" in refused.stderr
    refused = first(
        "patch", "phoneclaim", theirs, "--type=merge", "--dry-run=server",
        "-p", '{"spec":{"releasePolicy":"Keep"}}', check=False,
    )  # fmt: skip
    assert refused_by_policy(refused), refused.stderr


def test_an_unlabelled_claim_is_written_only_by_labelling_it_with_the_writers_account(
    account_objects: dict[str, Any], kubectl: Kubectl
) -> None:
    """A claim made before claims carried their account, under the account policy, with both
    operators' real tokens: neither may change its releasePolicy or delete it while it has no
    account, nor label it with the other's account, nor label it and change anything else in
    the same write; each may label it with its own account, alone. The admin may delete it.
    On the previous policy every operator could change and delete it unlabelled."""
    first: Kubectl = account_objects["first"]
    second: Kubectl = account_objects["second"]
    old = account_objects["claim-old"]

    def patch(operator: Kubectl, body: dict[str, Any]) -> Any:
        return operator(
            "patch", "phoneclaim", old, "--type=merge", "--dry-run=server",
            "-p", json.dumps(body), check=False,
        )  # fmt: skip

    def label(account: str) -> dict[str, Any]:
        return {"metadata": {"labels": {"phonefleet.dev/account": account}}}

    for operator, mine, theirs in ((first, "default", "shop-b"), (second, "shop-b", "default")):
        refused = patch(operator, {"spec": {"releasePolicy": "Keep"}})
        assert refused_by_policy(refused), refused.stderr
        assert f"PhoneClaim {old} has no account" in refused.stderr
        refused = operator("delete", "phoneclaim", old, "--dry-run=server", check=False)
        assert refused_by_policy(refused), refused.stderr
        assert "releases it only after a write that labels it" in refused.stderr
        refused = patch(operator, label(theirs))
        assert refused_by_policy(refused), refused.stderr
        refused = patch(operator, {**label(mine), "spec": {"releasePolicy": "Keep"}})
        assert refused_by_policy(refused), refused.stderr
        assert "changes nothing else" in refused.stderr
        adopted = patch(operator, label(mine))
        assert adopted.returncode == 0, adopted.stderr

    released = kubectl("delete", "phoneclaim", old, "--dry-run=server", check=False)
    assert released.returncode == 0, released.stderr


def test_an_unlabelled_claim_of_another_accounts_namespace_cannot_be_labelled(
    account_objects: dict[str, Any], kubectl: Kubectl
) -> None:
    """An older claim whose holder lives in team-a: the second operator (whose writes are
    granted in team-b only) may not label it with its own account; the first (the default
    install, serving every namespace) may. On the previous policy the second could."""
    second: Kubectl = account_objects["second"]
    first: Kubectl = account_objects["first"]
    name = f"{account_objects['claim-old']}-team-a"
    manifest = claim_manifest(name, {})
    manifest["spec"]["holder"]["namespace"] = "team-a"
    kubectl("create", "-f", "-", input_text=json.dumps(manifest))
    try:

        def label(operator: Kubectl, account: str) -> Any:
            body = json.dumps({"metadata": {"labels": {"phonefleet.dev/account": account}}})
            return operator(
                "patch", "phoneclaim", name, "--type=merge", "--dry-run=server", "-p", body,
                check=False,
            )  # fmt: skip

        refused = label(second, "shop-b")
        assert refused_by_policy(refused), refused.stderr
        assert f"PhoneClaim {name} is held by a binding in team-a" in refused.stderr
        adopted = label(first, "default")
        assert adopted.returncode == 0, adopted.stderr
    finally:
        kubectl("delete", "phoneclaim", name, "--ignore-not-found", "--wait=false")
