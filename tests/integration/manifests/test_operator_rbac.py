"""Least privilege, asked of the real authorizer: what manifests/rbac lets the operator do, and
that a worker pod's ServiceAccount may do nothing at all.

The operator scenarios (tests/integration/operator) run under the same ServiceAccount, so every
"yes" below is also exercised there; this matrix pins the "no"s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.rbac import (
    OPERATOR_NAMESPACE,
    OPERATOR_USER,
    SCOPE_POLICY,
    install_operator_rbac,
    webhook_configuration,
)
from phonefleet_testbed.scenarios import make_claim
from phonefleet_testbed.waiting import wait_for

#: A namespace of some team using phonefleet (authorization does not need it to exist).
TEAM = "some-team"
#: Cluster-wide (``--all-namespaces``), or a cluster-scoped resource.
ALL = None


class Ask(NamedTuple):
    """One `kubectl auth can-i` question and the answer least privilege requires."""

    verb: str
    resource: str
    namespace: str | None
    allowed: bool
    subresource: str | None = None

    def args(self) -> list[str]:
        """The question as kubectl arguments."""
        args = ["auth", "can-i", self.verb, self.resource]
        args += ["-n", self.namespace] if self.namespace else ["--all-namespaces"]
        if self.subresource:
            args.append(f"--subresource={self.subresource}")
        return args

    def __str__(self) -> str:
        where = self.namespace or "cluster"
        sub = f"/{self.subresource}" if self.subresource else ""
        return f"{'can' if self.allowed else 'cannot'} {self.verb} {self.resource}{sub} in {where}"


PB = "phonebindings.phonefleet.dev"
PC = "phoneclaims.phonefleet.dev"
PJ = "phonejobs.phonefleet.dev"
PP = "phonepools.phonefleet.dev"
VWC = "validatingwebhookconfigurations.admissionregistration.k8s.io"
MWC = "mutatingwebhookconfigurations.admissionregistration.k8s.io"

MATRIX = [
    # What it does: bindings (watch, finalizer, status), claims (the lock), pods, ADB Secrets.
    Ask("list", PB, ALL, True),
    Ask("watch", PB, ALL, True),
    Ask("get", PB, TEAM, True),
    Ask("patch", PB, TEAM, True),
    Ask("patch", PB, TEAM, True, subresource="status"),
    Ask("create", PC, ALL, True),
    Ask("delete", PC, ALL, True),
    Ask("get", PC, ALL, True),
    Ask("list", PC, ALL, True),
    Ask("watch", PC, ALL, True),
    Ask("patch", PC, ALL, True),  # removes its finalizer phonefleet.dev/worker-gone
    # Tenancy: pools are read (and their status written), namespaces' labels read.
    Ask("get", PP, ALL, True),
    Ask("list", PP, ALL, True),
    Ask("watch", PP, ALL, True),
    Ask("patch", PP, ALL, True, subresource="status"),
    Ask("list", "namespaces", ALL, True),
    Ask("watch", "namespaces", ALL, True),
    Ask("create", "pods", TEAM, True),
    Ask("delete", "pods", TEAM, True),
    Ask("get", "pods", TEAM, True),
    Ask("list", "pods", ALL, True),  # the worker pods watch (label selector)
    Ask("watch", "pods", ALL, True),
    Ask("create", "pods", ALL, True),
    Ask("delete", "pods", ALL, True),
    Ask("create", "secrets", TEAM, True),
    Ask("update", "secrets", TEAM, True),
    Ask("delete", "secrets", TEAM, True),
    Ask("create", "events", TEAM, True),
    # PhoneJobs: watched, their status written (the ledger), their finalizer set and removed
    # (phonefleet.dev/attempt-fenced), deleted after their TTL.
    Ask("list", PJ, ALL, True),
    Ask("watch", PJ, ALL, True),
    Ask("get", PJ, TEAM, True),
    Ask("delete", PJ, TEAM, True),
    Ask("patch", PJ, TEAM, True, subresource="status"),
    Ask("patch", PJ, TEAM, True),
    Ask("create", PJ, TEAM, False),
    Ask("update", PJ, TEAM, False),
    Ask("get", "secrets/phonefleet-job-key", OPERATOR_NAMESPACE, True),
    Ask("get", "secrets/phonefleet-webhook-ca", OPERATOR_NAMESPACE, True),
    # The leader Lease, and no other.
    Ask("update", "leases.coordination.k8s.io/phonefleet-operator", OPERATOR_NAMESPACE, True),
    Ask("create", "leases.coordination.k8s.io", OPERATOR_NAMESPACE, True),
    Ask("update", "leases.coordination.k8s.io/kube-scheduler", OPERATOR_NAMESPACE, False),
    Ask("create", VWC, ALL, True),
    Ask("patch", f"{VWC}/phonefleet.dev", ALL, True),
    # The empty MutatingWebhookConfiguration of releases that ran kopf's webhook: read and
    # deleted at start-up (only while empty: the scope policy), never written.
    Ask("get", f"{MWC}/phonefleet.dev", ALL, True),
    Ask("delete", f"{MWC}/phonefleet.dev", ALL, True),
    Ask("create", MWC, ALL, False),
    Ask("patch", f"{MWC}/phonefleet.dev", ALL, False),
    Ask("delete", f"{MWC}/someone-else", ALL, False),
    Ask("list", MWC, ALL, False),
    # Bindings belong to their users; claims are created, deleted and patched (their finalizer),
    # never replaced.
    Ask("create", PB, TEAM, False),
    Ask("update", PB, TEAM, False),
    Ask("delete", PB, TEAM, False),
    Ask("update", PC, ALL, False),
    # Pools are the administrators' policy: the operator only writes their status.
    Ask("create", PP, ALL, False),
    Ask("update", PP, ALL, False),
    Ask("patch", PP, ALL, False),
    Ask("delete", PP, ALL, False),
    # No Secret can be read outside its own namespace, nor any there but the webhook CA.
    Ask("get", "secrets", TEAM, False),
    Ask("list", "secrets", TEAM, False),
    Ask("watch", "secrets", TEAM, False),
    Ask("list", "secrets", ALL, False),
    Ask("get", "secrets/some-binding-adb", TEAM, False),
    Ask("get", "secrets/geelark-credentials", OPERATOR_NAMESPACE, False),
    Ask("list", "secrets", OPERATOR_NAMESPACE, False),
    Ask("patch", "secrets", TEAM, False),
    Ask("get", "configmaps", TEAM, False),
    # Pods are created and deleted whole: no edits, no exec, no logs.
    Ask("update", "pods", TEAM, False),
    Ask("patch", "pods", TEAM, False),
    Ask("create", "pods", TEAM, False, subresource="exec"),
    Ask("create", "pods", TEAM, False, subresource="attach"),
    Ask("create", "pods", TEAM, False, subresource="portforward"),
    Ask("get", "pods", TEAM, False, subresource="log"),
    Ask("patch", "pods", TEAM, False, subresource="ephemeralcontainers"),
    Ask("create", "pods", TEAM, False, subresource="eviction"),
    # No workloads but its bare pods.
    Ask("create", "deployments.apps", TEAM, False),
    Ask("patch", "deployments.apps", OPERATOR_NAMESPACE, False),
    Ask("create", "statefulsets.apps", TEAM, False),
    Ask("create", "daemonsets.apps", TEAM, False),
    Ask("create", "replicasets.apps", TEAM, False),
    Ask("create", "jobs.batch", TEAM, False),
    Ask("create", "cronjobs.batch", TEAM, False),
    Ask("create", "replicationcontrollers", TEAM, False),
    # No way to more rights: RBAC objects, impersonation, tokens, certificates, admission.
    Ask("create", "clusterrolebindings.rbac.authorization.k8s.io", ALL, False),
    Ask("create", "rolebindings.rbac.authorization.k8s.io", TEAM, False),
    Ask("create", "clusterroles.rbac.authorization.k8s.io", ALL, False),
    Ask("create", "roles.rbac.authorization.k8s.io", TEAM, False),
    Ask("patch", "clusterroles.rbac.authorization.k8s.io/phonefleet-operator", ALL, False),
    Ask("bind", "clusterroles.rbac.authorization.k8s.io", ALL, False),
    Ask("escalate", "clusterroles.rbac.authorization.k8s.io", ALL, False),
    Ask("bind", "roles.rbac.authorization.k8s.io", TEAM, False),
    Ask("escalate", "roles.rbac.authorization.k8s.io", TEAM, False),
    Ask("impersonate", "users", ALL, False),
    Ask("impersonate", "groups", ALL, False),
    Ask("impersonate", "serviceaccounts", TEAM, False),
    Ask("create", "serviceaccounts", TEAM, False, subresource="token"),
    Ask("create", "serviceaccounts", TEAM, False),
    Ask("create", "certificatesigningrequests.certificates.k8s.io", ALL, False),
    Ask("patch", f"{VWC}/someone-else", ALL, False),
    Ask("delete", f"{VWC}/phonefleet.dev", ALL, False),
    Ask("list", VWC, ALL, False),
    Ask("create", "validatingadmissionpolicies.admissionregistration.k8s.io", ALL, False),
    Ask("create", "customresourcedefinitions.apiextensions.k8s.io", ALL, False),
    Ask("list", "customresourcedefinitions.apiextensions.k8s.io", ALL, False),
    Ask("create", "namespaces", ALL, False),
    Ask("patch", "namespaces", ALL, False),
    Ask("get", "nodes", ALL, False),
    Ask("get", "nodes", ALL, False, subresource="proxy"),
]


@pytest.fixture(scope="module")
def rbac(control_plane: ControlPlane) -> Path:
    """manifests/rbac on the session's control plane (idempotent); the operator's kubeconfig.

    The CRDs first: `kubectl auth can-i` answers "no" for a resource the server does not serve,
    so the file run alone waited in vain for the operator's rights."""
    install_crds(control_plane)
    return install_operator_rbac(control_plane)


@pytest.mark.parametrize("ask", MATRIX, ids=str)
def test_operator_rights(rbac: Path, kubectl: Kubectl, ask: Ask) -> None:
    """`kubectl auth can-i --as=system:serviceaccount:phonefleet-system:phonefleet-operator`."""
    result = kubectl(*ask.args(), f"--as={OPERATOR_USER}", check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    assert answer == ("yes" if ask.allowed else "no"), f"{OPERATOR_USER} {ask}: {answer}"


def test_the_operators_own_token_is_as_narrow(rbac: Path, kubectl: Kubectl) -> None:
    """The same answers with a real token of the ServiceAccount, not impersonation."""
    operator = kubectl.as_user(rbac)
    assert OPERATOR_USER in operator("auth", "whoami").stdout
    assert operator("auth", "can-i", "create", "pods", "-n", TEAM).stdout.strip() == "yes"
    for ask in ("get", "list"):
        answer = operator("auth", "can-i", ask, "secrets", "-n", TEAM, check=False).stdout
        assert answer.strip() == "no"
    denied = operator("get", "secrets", "-n", TEAM, check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr


#: The defaults Kubernetes gives every ServiceAccount, and so all a worker pod's ServiceAccount
#: may do: ask about itself, and read ClusterTrustBundles (public CA certificates, readable by all
#: ServiceAccounts since Kubernetes 1.33). Besides these, only GETs of discovery, health, version
#: and OIDC URLs, which are no objects.
SERVICE_ACCOUNT_DEFAULTS = {
    "selfsubjectreviews.authentication.k8s.io": "[create]",
    "selfsubjectaccessreviews.authorization.k8s.io": "[create]",
    "selfsubjectrulesreviews.authorization.k8s.io": "[create]",
    "clustertrustbundles.certificates.k8s.io": "[get list watch]",
}


def test_a_worker_pods_service_account_has_no_rights(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str
) -> None:
    """Worker pods run as their namespace's "default" ServiceAccount (no token mounted): even
    with a token it could read or change nothing, since phonefleet binds no role to it."""
    worker = kubectl.as_user(control_plane.mint_service_account_kubeconfig(namespace, "default"))
    listing = worker("auth", "can-i", "--list", "-n", namespace).stdout.splitlines()
    header, rows = listing[0].split(), [line.split() for line in listing[1:] if line.strip()]
    assert header[:3] == ["Resources", "Non-Resource", "URLs"], listing
    # Columns: resource, URLs, names, verbs (verbs may hold spaces: "[get list watch]").
    resources = {row[0]: " ".join(row[3:]) for row in rows if not row[0].startswith("[")}
    assert resources == SERVICE_ACCOUNT_DEFAULTS, "\n".join(listing)
    non_resource_verbs = {" ".join(row[2:]) for row in rows if row[0].startswith("[")}
    assert non_resource_verbs == {"[get]"}, "\n".join(listing)
    for verb, resource in (
        ("get", "secrets"),
        ("get", "pods"),
        ("get", "configmaps"),
        ("create", "pods"),
        ("list", PB),
        ("get", PC),
    ):
        answer = worker("auth", "can-i", verb, resource, "-n", namespace, check=False).stdout
        assert answer.strip() == "no", f"the worker's ServiceAccount may {verb} {resource}"


# ------------------------------------------------------------------ the scope policy


def owned(kind: str, name: str, namespace: str, **fields: Any) -> dict[str, Any]:
    """A pod or Secret controlled by the PhoneBinding "shop" (as the operator renders them)."""
    owner = {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneBinding",
        "name": "shop",
        "uid": "00000000-0000-0000-0000-000000000001",
        "controller": True,
    }
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": [owner]},
        **fields,
    }


def worker_pod(namespace: str, **spec: Any) -> dict[str, Any]:
    """A worker pod as the operator renders it, in its essentials; ``spec`` overrides."""
    return owned(
        "Pod",
        "shop-worker",
        namespace,
        spec={
            "automountServiceAccountToken": False,
            "containers": [{"name": "worker", "image": "phonefleet/worker:dev"}],
            "volumes": [
                {"name": "adb", "secret": {"secretName": "shop-adb"}},
                {"name": "tmp", "emptyDir": {}},
            ],
            **spec,
        },
    )


def as_operator(
    kubectl: Kubectl, kubeconfig: Path, verb: str, manifest: dict[str, Any]
) -> tuple[bool, str]:
    """A server dry run of ``kubectl VERB -f -`` as the operator: (accepted, stderr)."""
    result = kubectl.as_user(kubeconfig)(
        verb, "--dry-run=server", "-f", "-", input_text=json.dumps(manifest), check=False
    )
    return result.returncode == 0, result.stderr


def test_the_operator_may_write_what_a_binding_controls(
    rbac: Path, kubectl: Kubectl, namespace: str
) -> None:
    """Its ADB Secret and its worker pod, as rendered, pass the scope policy."""
    secret = owned("Secret", "shop-adb", namespace, type="Opaque", stringData={"ip": "10.0.0.9"})
    for manifest in (secret, worker_pod(namespace)):
        accepted, stderr = as_operator(kubectl, rbac, "create", manifest)
        assert accepted, stderr


REFUSED = [
    pytest.param(
        lambda ns: {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db-password", "namespace": ns},
            "stringData": {"password": "x"},
        },
        id="a Secret no binding controls",
    ),
    pytest.param(
        lambda ns: owned(
            "Secret",
            "shop-adb",
            ns,
            type="kubernetes.io/service-account-token",
            metadata={
                "name": "shop-adb",
                "namespace": ns,
                "annotations": {"kubernetes.io/service-account.name": "default"},
                "ownerReferences": owned("Secret", "", ns)["metadata"]["ownerReferences"],
            },
        ),
        id="a service-account token Secret",
    ),
    pytest.param(
        lambda ns: worker_pod(ns, automountServiceAccountToken=True),
        id="a pod with a ServiceAccount token",
    ),
    pytest.param(
        lambda ns: worker_pod(ns, serviceAccountName="builder"),
        id="a pod of another ServiceAccount",
    ),
    pytest.param(lambda ns: worker_pod(ns, hostNetwork=True), id="a pod on the host network"),
    pytest.param(
        lambda ns: worker_pod(ns, volumes=[{"name": "x", "secret": {"secretName": "db-password"}}]),
        id="a pod mounting another Secret",
    ),
    pytest.param(
        lambda ns: worker_pod(ns, volumes=[{"name": "x", "hostPath": {"path": "/"}}]),
        id="a pod mounting a host path",
    ),
    pytest.param(
        lambda ns: {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "miner", "namespace": ns},
            "spec": {
                "automountServiceAccountToken": False,
                "containers": [{"name": "c", "image": "miner"}],
            },
        },
        id="a pod no binding controls",
    ),
    pytest.param(
        lambda _: webhook_configuration("ValidatingWebhookConfiguration", "someone-else"),
        id="a webhook configuration of another name",
    ),
    pytest.param(
        lambda _: webhook_configuration("ValidatingWebhookConfiguration", "phonefleet.dev", ""),
        id="a webhook sent every core object",
    ),
]


@pytest.mark.parametrize("make", REFUSED)
def test_the_scope_policy_refuses_what_rbac_would_allow(
    rbac: Path, kubectl: Kubectl, namespace: str, make: Callable[[str], dict[str, Any]]
) -> None:
    """Each of these is allowed by the ClusterRole and refused by the admission policy."""
    kubectl("create", "serviceaccount", "builder", "-n", namespace)
    accepted, stderr = as_operator(kubectl, rbac, "create", make(namespace))
    assert not accepted, "accepted"
    assert SCOPE_POLICY in stderr, stderr


def test_the_operator_cannot_replace_or_delete_a_secret_it_does_not_own(
    rbac: Path, kubectl: Kubectl, namespace: str
) -> None:
    """A PUT with a PhoneBinding owner cannot take someone's Secret over; nor can a delete."""
    kubectl("create", "secret", "generic", "shop-adb", "-n", namespace, "--from-literal=a=b")
    takeover = owned("Secret", "shop-adb", namespace, type="Opaque", stringData={"ip": "x"})
    accepted, stderr = as_operator(kubectl, rbac, "replace", takeover)
    assert not accepted
    assert SCOPE_POLICY in stderr
    assert "take over" in stderr
    deleted = kubectl.as_user(rbac)(
        "delete", "secret", "shop-adb", "-n", namespace, "--dry-run=server", check=False
    )
    assert deleted.returncode != 0
    assert SCOPE_POLICY in deleted.stderr


def test_the_operator_may_delete_the_mutating_configuration_phonefleet_dev_only_while_empty(
    rbac: Path, kubectl: Kubectl
) -> None:
    """Its delete right on the MutatingWebhookConfiguration phonefleet.dev (an older release's
    empty leftover) cannot remove one someone filled with webhooks under that name."""
    operator = kubectl.as_user(rbac)

    def delete_as_operator() -> tuple[bool, str]:
        result = operator(
            "delete", "mutatingwebhookconfiguration", "phonefleet.dev", "--dry-run=server",
            check=False,
        )  # fmt: skip
        return result.returncode == 0, result.stderr

    # A webhook on a group nobody serves: it disturbs no other test meanwhile.
    filled = webhook_configuration("MutatingWebhookConfiguration", "phonefleet.dev", "example.com")
    try:
        kubectl("create", "-f", "-", input_text=json.dumps(filled))
        accepted, stderr = delete_as_operator()
        assert not accepted
        assert SCOPE_POLICY in stderr
        kubectl("delete", "mutatingwebhookconfiguration", "phonefleet.dev")
        empty = webhook_configuration("MutatingWebhookConfiguration", "phonefleet.dev")
        kubectl("create", "-f", "-", input_text=json.dumps(empty))
        accepted, stderr = delete_as_operator()
        assert accepted, stderr
    finally:
        kubectl("delete", "mutatingwebhookconfiguration", "phonefleet.dev", "--ignore-not-found")


def test_the_operator_may_only_remove_a_claims_finalizers(
    rbac: Path, control_plane: ControlPlane, kubectl: Kubectl
) -> None:
    """Its patch right on PhoneClaims removes the finalizer phonefleet.dev/worker-gone; handing
    the claim to another binding (the CRD: spec is immutable) and adding a finalizer (the scope
    policy) are refused."""
    install_crds(control_plane)
    name = "policy-test-phone"
    claim = make_claim(name, TEAM, "shop", "uid-shop", serial_name="shop")
    claim["metadata"]["finalizers"] = ["phonefleet.dev/worker-gone"]
    # Of the operator's own account: the account policy refuses any write of an unlabelled
    # claim but its labelling (test_account_overlays.py).
    claim["metadata"]["labels"] = {"phonefleet.dev/account": "default"}
    kubectl("create", "-f", "-", input_text=json.dumps(claim))
    try:
        operator = kubectl.as_user(rbac)

        def patch(body: dict[str, Any]) -> tuple[bool, str]:
            result = operator(
                "patch", "phoneclaim", name, "--type=merge", "--dry-run=server",
                "-p", json.dumps(body), check=False,
            )  # fmt: skip
            return result.returncode == 0, result.stderr

        # The CRD itself keeps spec immutable (the holder cannot change hands)...
        taken = {"spec": {"holder": {"namespace": TEAM, "name": "thief", "uid": "uid-thief"}}}
        accepted, stderr = patch(taken)
        assert not accepted
        assert "immutable" in stderr
        # ... and the policy refuses a finalizer the operator would add.
        accepted, stderr = patch({"metadata": {"finalizers": ["a", "phonefleet.dev/worker-gone"]}})
        assert not accepted
        assert SCOPE_POLICY in stderr
        accepted, stderr = patch({"metadata": {"finalizers": None}})
        assert accepted, stderr
    finally:
        kubectl(
            "patch", "phoneclaim", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
        )
        kubectl("delete", "phoneclaim", name, "--ignore-not-found")


#: What a namespace's users get from the built-in "edit" role: pools are not theirs to touch.
TENANT_ASKS = [
    ("create", PP),
    ("update", PP),
    ("patch", PP),
    ("delete", PP),
]


def test_edit_in_a_namespace_cannot_create_or_change_a_phone_pool(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str
) -> None:
    """A user bound to `edit` in their namespace cannot create, change or delete a PhonePool, nor
    its status; a real create is refused by the API server."""
    kubectl("create", "serviceaccount", "tenant", "-n", namespace)
    kubectl(
        "create",
        "rolebinding",
        "tenant-edit",
        "--clusterrole=edit",
        f"--serviceaccount={namespace}:tenant",
        "-n",
        namespace,
    )
    tenant = kubectl.as_user(control_plane.mint_service_account_kubeconfig(namespace, "tenant"))
    wait_for(
        lambda: tenant("auth", "can-i", "create", "pods", "-n", namespace).stdout.strip() == "yes",
        30,
        message="the tenant's edit rights to take effect",
    )
    for verb, resource in TENANT_ASKS:
        answer = tenant("auth", "can-i", verb, resource, check=False).stdout.strip()
        assert answer == "no", f"edit in {namespace} may {verb} {resource}: {answer}"
    status = tenant("auth", "can-i", "patch", PP, "--subresource=status", check=False)
    assert status.stdout.strip() == "no"
    pool = {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhonePool",
        "metadata": {"name": f"{namespace}-grab"},
        "spec": {"phones": {"serialNames": ["*"]}, "namespaces": {"names": [namespace]}},
    }
    refused = tenant("create", "-f", "-", input_text=json.dumps(pool), check=False)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower()
