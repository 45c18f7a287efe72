"""The operator's own identity on the test control plane: manifests/rbac and a token for it, and
the webhook configurations its scope policy judges."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from phonefleet_testbed.binaries import repo_root
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.waiting import wait_for

__all__ = [
    "ACCOUNT_POLICY",
    "OPERATOR_NAMESPACE",
    "OPERATOR_SERVICE_ACCOUNT",
    "OPERATOR_USER",
    "SCOPE_POLICY",
    "claim_policy",
    "install_account_identity",
    "install_operator_rbac",
    "operator_kubeconfig",
    "serves",
    "webhook_configuration",
]

OPERATOR_NAMESPACE = "phonefleet-system"
OPERATOR_SERVICE_ACCOUNT = "phonefleet-operator"
#: The user name the API server gives the operator's ServiceAccount token.
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
#: The ValidatingAdmissionPolicy in manifests/rbac that keeps the operator to its own objects.
SCOPE_POLICY = "phonefleet-operator-scope"
#: The ValidatingAdmissionPolicy in manifests/rbac that keeps each account's operator to the
#: PhonePools and PhoneClaims of its own account.
ACCOUNT_POLICY = "phonefleet-operator-account"
#: The account name and home namespace of manifests/accounts/second, replaced per account.
_SECOND_ACCOUNT = "shop-b"
#: The namespace manifests/accounts/second serves, replaced by the namespaces given.
_SECOND_TENANT = "team-b"

_PROBE = json.dumps(
    {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "phonefleet-scope-policy-probe"},
    }
)


def install_operator_rbac(plane: ControlPlane) -> Path:
    """Apply the operator's namespace and ``manifests/rbac`` (idempotent: apply twice is fine).

    Returns a kubeconfig holding a token of the operator's ServiceAccount (a TokenRequest, as in
    a pod), once its rights and the scope policy are in force: the API server applies RBAC
    objects and admission policies shortly after they are stored, not at once.
    """
    manifests = repo_root() / "manifests"
    plane.kubectl("apply", "-f", str(manifests / "manager" / "namespace.yaml"))
    plane.kubectl("apply", "-k", str(manifests / "rbac"))
    kubeconfig = plane.mint_service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT)

    def has_its_rights() -> bool:
        answer = plane.kubectl(
            "auth",
            "can-i",
            "list",
            "phonebindings.phonefleet.dev",
            "--all-namespaces",
            kubeconfig=kubeconfig,
            check=False,
        )
        return answer.stdout.strip() == "yes"

    def policy_enforced() -> bool:
        # RBAC lets the operator create any webhook configuration; only the policy refuses this.
        result = plane.kubectl(
            "create",
            "--dry-run=server",
            "-f",
            "-",
            input_text=_PROBE,
            kubeconfig=kubeconfig,
            check=False,
        )
        return SCOPE_POLICY in result.stderr

    wait_for(has_its_rights, 30, message=f"{OPERATOR_USER} to get its rights")
    wait_for(
        lambda: serves(plane, kubeconfig, "default"),
        30,
        message=f"{OPERATOR_USER} to serve the account default (manifests/rbac/account_role.yaml)",
    )
    wait_for(policy_enforced, 30, message=f"ValidatingAdmissionPolicy {SCOPE_POLICY} in force")
    return kubeconfig


def install_account_identity(
    plane: ControlPlane, account: str, namespaces: Sequence[str] = ()
) -> tuple[Path, str]:
    """The operator identity of another Geelark account: ``manifests/accounts/second`` with its
    account (``shop-b``) renamed ``account``, its namespace, ServiceAccount and roles applied
    (not its Deployment), and its writes granted in ``namespaces`` (which must exist: the
    overlay's RoleBinding in team-b, once per namespace). Needs ``install_operator_rbac`` first
    (the shared ClusterRoles and policies). Returns a kubeconfig of its ServiceAccount, once it
    has its rights and serves ``account``, and its home namespace (``phonefleet-<account>``:
    the operator's PHONEFLEET_OPERATOR_NAMESPACE)."""
    rendered = plane.kubectl("kustomize", str(repo_root() / "manifests" / "accounts" / "second"))
    text = rendered.stdout.replace(_SECOND_ACCOUNT, account)
    kinds = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role"}
    kinds.add("RoleBinding")
    objects = []
    for found in yaml.safe_load_all(text):
        if not found or found["kind"] not in kinds:
            continue
        if found["kind"] == "RoleBinding" and found["metadata"]["namespace"] == _SECOND_TENANT:
            for namespace in namespaces:
                objects.append({**found, "metadata": {**found["metadata"], "namespace": namespace}})
            continue
        objects.append(found)
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    plane.kubectl("apply", "-f", "-", input_text=manifest)
    home = f"phonefleet-{account}"
    kubeconfig = plane.mint_service_account_kubeconfig(home, OPERATOR_SERVICE_ACCOUNT)
    wait_for(
        lambda: serves(plane, kubeconfig, account),
        30,
        message=f"the operator of account {account} to serve it",
    )
    return kubeconfig, home


def serves(plane: ControlPlane, kubeconfig: Path, account: str) -> bool:
    """Whether the authorizer lets the identity of ``kubeconfig`` serve ``account`` (the right
    the account policy asks for; ``kubectl auth can-i`` cannot ask it, as no resource kind
    accounts.phonefleet.dev is served)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "group": "phonefleet.dev",
                "resource": "accounts",
                "name": account,
                "verb": "serve",
            }
        },
    }
    answer = plane.kubectl(
        "create", "--validate=false", "-o", "jsonpath={.status.allowed}", "-f", "-",
        input_text=json.dumps(review), kubeconfig=kubeconfig, check=False,
    )  # fmt: skip
    return answer.stdout.strip() == "true"


def operator_kubeconfig(plane: ControlPlane) -> Path:
    """A kubeconfig of the operator's ServiceAccount with manifests/rbac installed."""
    return install_operator_rbac(plane)


def webhook_configuration(kind: str, name: str, *groups: str) -> dict[str, Any]:
    """A Validating- or MutatingWebhookConfiguration ``name`` with one webhook on ``groups``
    (none: no webhook, as kopf kept its mutating one). The webhook fails open and nothing
    listens at its URL, so one really created disturbs no other request."""
    body: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
    }
    if groups:
        body["webhooks"] = [
            {
                "name": f"snoop.{name}",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Ignore",
                "clientConfig": {"url": "https://127.0.0.1:9/x"},
                "rules": [
                    {
                        "apiGroups": list(groups),
                        "apiVersions": ["*"],
                        "resources": ["*"],
                        "operations": ["CREATE"],
                    }
                ],
            }
        ]
    return body


def claim_policy(
    name: str,
    operation: str,
    validation: dict[str, str],
    *,
    match_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A List of a ValidatingAdmissionPolicy ``name`` refusing (Deny) each PhoneClaim
    ``operation`` (CREATE, UPDATE) that fails ``validation`` (expression, message, reason), and
    its binding, to the claims with ``match_labels`` or to all: a test's stand-in for a policy
    an administrator (or an older release) puts in the operator's way."""
    binding: dict[str, Any] = {"policyName": name, "validationActions": ["Deny"]}
    if match_labels:
        binding["matchResources"] = {"objectSelector": {"matchLabels": match_labels}}
    rule = {
        "apiGroups": ["phonefleet.dev"],
        "apiVersions": ["*"],
        "operations": [operation],
        "resources": ["phoneclaims"],
    }
    group = "admissionregistration.k8s.io/v1"
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": group,
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {"resourceRules": [rule]},
                    "validations": [validation],
                },
            },
            {
                "apiVersion": group,
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": name},
                "spec": binding,
            },
        ],
    }
