"""The operator's start-up check on the real API server (services/account_check.py,
docs/accounts.md "Start-up check"): a namespace it serves without the RoleBinding of its writes
stops it, naming the namespace; writes granted in every namespace to an operator restricted
with --namespace (the default install's ClusterRoleBinding left behind) are warned of; an
identity the API server does not let ask its SelfSubjectAccessReview stops it saying so.

The accounts' operators run as in test_accounts_side_by_side.py (own process, own simulator,
own namespace and ServiceAccount, the second account's overlay renamed).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from test_accounts_side_by_side import Account, accounts, bind, claim  # noqa: F401 - the fixture

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.processes import ProcessExited, free_port
from phonefleet_testbed.waiting import wait_for


def user_of(account: Account) -> str:
    """The user name of the account's operator (its overlay's ServiceAccount)."""
    return (
        f"system:serviceaccount:{account.env['PHONEFLEET_OPERATOR_NAMESPACE']}:phonefleet-operator"
    )


def tenant_grant(kind: str, name: str, account: Account, namespace: str | None = None) -> dict:
    """The ClusterRole phonefleet-operator-tenant bound to the account's operator: by a
    RoleBinding in ``namespace`` (tenants.yaml), or a ClusterRoleBinding (manifests/default's)."""
    metadata = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "phonefleet-operator-tenant",
        },
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": "phonefleet-operator",
                "namespace": account.env["PHONEFLEET_OPERATOR_NAMESPACE"],
            }
        ],
    }


def can_create_pods(kubectl: Kubectl, account: Account, *where: str) -> bool:
    """``kubectl auth can-i create pods`` as the account's operator (``-n x`` or ``-A``)."""
    answer = kubectl(
        "auth", "can-i", "create", "pods", *where, f"--as={user_of(account)}", check=False
    )
    return answer.stdout.strip() == "yes"


def exit_of(account: Account) -> ProcessExited:
    """Wait for the account's operator process to exit; returns how."""

    def exited() -> None:
        assert account.process is not None
        account.process.check_running()

    with pytest.raises(ProcessExited) as ended:
        wait_for(exited, 60, message=lambda: f"{account.name}'s operator to exit\n{account.log()}")
    account.process = None
    return ended.value


def warnings_in(kubectl: Kubectl, account: Account, reason: str) -> list[str]:
    """Messages of the Events ``reason`` in the operator's own namespace."""
    home = account.env["PHONEFLEET_OPERATOR_NAMESPACE"]
    return [e["message"] for e in kubectl.list("events", home) if e.get("reason") == reason]


@pytest.fixture
def extra_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace of tenants with no RoleBinding of any operator in it."""
    name = f"account-extra-{free_port()}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_a_namespace_without_its_rolebinding_stops_the_operator_naming_it(
    kubectl: Kubectl,
    accounts: dict[str, Account],  # noqa: F811 - the fixture imported above
    extra_namespace: str,
) -> None:
    """Account b's operator serves its namespace and another one that has no RoleBinding of
    its writes (the --namespace list and tenants.yaml out of step): it exits with status 3
    before the Lease, the log line and a Warning Event NamespaceNotWritable name that
    namespace (and not its own); nothing was written. With the RoleBinding applied, the same
    operator starts and its binding runs."""
    b = accounts["b"]
    home = b.env["PHONEFLEET_OPERATOR_NAMESPACE"]
    lease = kubectl.get("lease", "phonefleet-operator", home)  # its Role's one Lease
    b.env.update(PHONEFLEET_LEADER_ELECTION="true")
    b.more_namespaces.append(extra_namespace)
    name = bind(kubectl, b, 0)
    b.start()

    ended = exit_of(b)
    assert ended.returncode == 3, ended.log_tail
    refusal = (
        f"Refused to serve namespace {extra_namespace}: {user_of(b)} may not write there "
        f"({extra_namespace}: no write at all)"
    )
    assert refusal in ended.log_tail
    assert f"--namespace={extra_namespace} (docs/accounts.md)" in ended.log_tail
    events = warnings_in(kubectl, b, "NamespaceNotWritable")
    assert any(refusal in message for message in events), events
    assert not any(f"namespace {b.namespace}" in message for message in events)
    assert kubectl.get("lease", "phonefleet-operator", home) == lease
    assert claim(kubectl, b.phones[0]) is None
    assert not b.running()
    assert not (kubectl.get("phonebinding", name, b.namespace) or {}).get("status")

    kubectl.apply(tenant_grant("RoleBinding", "phonefleet-operator-tenant", b, extra_namespace))
    wait_for(lambda: can_create_pods(kubectl, b, "-n", extra_namespace), 30)
    b.start()
    running(kubectl, b, name)


def running(kubectl: Kubectl, account: Account, name: str) -> None:
    """Wait until the account's binding ``name`` runs (the operator's log on a timeout)."""
    wait_for(
        lambda: (
            ((kubectl.get("phonebinding", name, account.namespace) or {}).get("status") or {}).get(
                "phase"
            )
            == "Running"
        ),
        90,
        message=lambda: f"{name} to run\n{account.log()}",
    )


def test_a_restricted_operator_with_writes_in_every_namespace_starts_and_warns(
    kubectl: Kubectl,
    accounts: dict[str, Account],  # noqa: F811 - the fixture imported above
) -> None:
    """Account b's operator (restricted to its namespace) is also granted its writes by a
    ClusterRoleBinding, as manifests/default's phonefleet-operator-tenant is left behind when
    an install moves to the account overlays: it starts and runs its binding, and warns once
    (log line and Event TenantWritesClusterWide) naming the ClusterRoleBinding to delete."""
    b = accounts["b"]
    leftover = f"phonefleet-operator-tenant-{b.namespace}"
    kubectl.apply(tenant_grant("ClusterRoleBinding", leftover, b))
    try:
        wait_for(lambda: can_create_pods(kubectl, b, "-A"), 30)
        name = bind(kubectl, b, 0)
        b.start()
        warning = f"{user_of(b)} may write in every namespace (patch phonebindings,"
        wait_for(lambda: warning in b.log(), 60, message=b.log)
        assert f"yet it serves only {b.namespace}" in b.log()
        assert "kubectl delete clusterrolebinding phonefleet-operator-tenant" in b.log()
        running(kubectl, b, name)
        events = warnings_in(kubectl, b, "TenantWritesClusterWide")
        assert any(warning in message for message in events), events
    finally:
        kubectl("delete", "clusterrolebinding", leftover, "--ignore-not-found")


def anonymous_kubeconfig(control_plane: ControlPlane, path: Path) -> Path:
    """A kubeconfig with no credentials: the API server takes its requests as
    system:anonymous, whom no role lets create a SelfSubjectAccessReview (system:basic-user is
    bound to system:authenticated only)."""
    ca = base64.b64encode(control_plane.ca.cert_pem).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "testbed",
                "cluster": {"server": control_plane.server, "certificate-authority-data": ca},
            }
        ],
        "users": [{"name": "nobody", "user": {}}],
        "contexts": [{"name": "nobody", "context": {"cluster": "testbed", "user": "nobody"}}],
        "current-context": "nobody",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_an_identity_that_may_not_ask_its_access_review_stops_the_operator_saying_so(
    control_plane: ControlPlane,
    kubectl: Kubectl,
    accounts: dict[str, Account],  # noqa: F811 - the fixture imported above
) -> None:
    """Account b's operator with an identity the API server refuses the SelfSubjectAccessReview
    itself (403): it exits with status 3 saying it could not check (not that it is not
    served), quoting the API server's refusal and naming the right to grant; no Lease, no claim,
    the binding untouched."""
    b = accounts["b"]
    lease = f"unchecked-{b.namespace}"
    own = dict(b.env)
    b.env.update(
        KUBECONFIG=str(anonymous_kubeconfig(control_plane, b.workdir / "anonymous.kubeconfig")),
        PHONEFLEET_LEADER_ELECTION="true",
        PHONEFLEET_LEASE_NAME=lease,
    )
    name = bind(kubectl, b, 0)
    b.start()

    ended = exit_of(b)
    assert ended.returncode == 3, ended.log_tail
    assert (
        "Could not check whether this operator's identity serves account b: the API server "
        "refused its SelfSubjectAccessReview"
    ) in ended.log_tail
    assert 'User \\"system:anonymous\\" cannot create resource' in ended.log_tail or (
        'User "system:anonymous" cannot create resource' in ended.log_tail
    )
    assert "Grant it create on selfsubjectaccessreviews.authorization.k8s.io" in ended.log_tail
    assert "Refused to serve" not in ended.log_tail
    assert kubectl.get("lease", lease, own["PHONEFLEET_OPERATOR_NAMESPACE"]) is None
    assert claim(kubectl, b.phones[0]) is None
    assert not (kubectl.get("phonebinding", name, b.namespace) or {}).get("status")
    b.env.clear()
    b.env.update(own)
