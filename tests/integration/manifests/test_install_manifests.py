"""manifests/default installs on a real API server: dry run, real apply, the operator's pod as
admitted under Pod Security "restricted", the webhook Service routed to it, and samples accepted.

Applying is idempotent, so nothing is deleted afterwards: the CRDs and the RBAC stay for the rest
of the session (the operator scenarios use both).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from phonefleet_testbed.binaries import repo_root
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.rbac import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT
from phonefleet_testbed.waiting import wait_for

MANIFESTS = repo_root() / "manifests"
DEFAULT = MANIFESTS / "default"
SAMPLES = MANIFESTS / "samples"
DEPLOYMENT = "phonefleet-operator"


def rendered(kubectl: Kubectl, folder: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize`` builds from a folder."""
    return [doc for doc in yaml.safe_load_all(kubectl("kustomize", str(folder)).stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of a kind and name."""
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


@pytest.fixture(scope="module")
def installed(control_plane: ControlPlane, kubectl: Kubectl) -> str:
    """manifests/default applied for real, as the install instructions say; apply's stderr."""
    result = kubectl("apply", "-k", str(DEFAULT))
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/phonebindings.phonefleet.dev",
        "crd/phoneclaims.phonefleet.dev",
    )
    return result.stderr


def test_default_holds_every_part_and_no_secret_value(kubectl: Kubectl) -> None:
    """Namespace, CRDs, RBAC (with its scope policy), Deployment and webhook Service; the
    credentials only by reference."""
    objects = rendered(kubectl, DEFAULT)
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    assert kinds == [
        "ClusterRole/phonefleet-operator",
        "ClusterRole/phonefleet-operator-account",
        "ClusterRole/phonefleet-operator-tenant",
        "ClusterRole/phonefleet-operator-webhook",
        "ClusterRoleBinding/phonefleet-operator",
        "ClusterRoleBinding/phonefleet-operator-account",
        "ClusterRoleBinding/phonefleet-operator-tenant",
        "ClusterRoleBinding/phonefleet-operator-webhook",
        "CustomResourceDefinition/phonebindings.phonefleet.dev",
        "CustomResourceDefinition/phoneclaims.phonefleet.dev",
        "CustomResourceDefinition/phonejobs.phonefleet.dev",
        "CustomResourceDefinition/phonepools.phonefleet.dev",
        "Deployment/phonefleet-operator",
        "Namespace/phonefleet-system",
        "PodDisruptionBudget/phonefleet-operator",
        "Role/phonefleet-operator",
        "RoleBinding/phonefleet-operator",
        "Service/phonefleet-webhook",
        "ServiceAccount/phonefleet-operator",
        "ValidatingAdmissionPolicy/phonefleet-operator-account",
        "ValidatingAdmissionPolicy/phonefleet-operator-scope",
        "ValidatingAdmissionPolicyBinding/phonefleet-operator-account",
        "ValidatingAdmissionPolicyBinding/phonefleet-operator-scope",
    ]
    assert not [o for o in objects if o["kind"] == "Secret"], "a Secret must never be in Git"

    namespace = find(objects, "Namespace", OPERATOR_NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    deployment = find(objects, "Deployment", DEPLOYMENT)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == OPERATOR_SERVICE_ACCOUNT
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == "phonefleet/operator:dev"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    # Ready = can answer admission: every Ready replica is an endpoint of the webhook Service.
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/readyz",
        "port": "webhook",
        "scheme": "HTTPS",
    }
    assert {"containerPort": 8081, "name": "healthz", "protocol": "TCP"} in container["ports"]
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    assert {"mountPath": "/tmp", "name": "tmp"} in container["volumeMounts"]  # noqa: S108

    env = {e["name"]: e for e in container["env"]}
    credentials = {
        "PHONEFLEET_GEELARK_TOKEN": "token",
        "PHONEFLEET_GEELARK_APP_ID": "appId",
        "PHONEFLEET_GEELARK_API_KEY": "apiKey",
    }
    for name, key in credentials.items():
        assert "value" not in env[name], f"{name} must come from the Secret, not a literal"
        assert env[name]["valueFrom"]["secretKeyRef"] == {
            "name": "geelark-credentials",
            "key": key,
            "optional": True,
        }


def test_a_server_dry_run_of_default_succeeds(kubectl: Kubectl) -> None:
    """`kubectl apply -k manifests/default --dry-run=server` is accepted by the API server.

    A dry run creates nothing, so its namespaced objects need the namespace to exist already; on
    a fresh cluster the real apply creates it first (kubectl applies Namespaces first).
    """
    kubectl("apply", "-f", str(MANIFESTS / "manager" / "namespace.yaml"))
    result = kubectl("apply", "-k", str(DEFAULT), "--dry-run=server")
    assert "(server dry run)" in result.stdout
    for line in (
        "deployment.apps/phonefleet-operator",
        "clusterrole.rbac.authorization.k8s.io/phonefleet-operator",
        "service/phonefleet-webhook",
        "customresourcedefinition.apiextensions.k8s.io/phonebindings.phonefleet.dev",
    ):
        assert line in result.stdout
    assert "PodSecurity" not in result.stderr, result.stderr


def test_the_operator_pod_is_admitted_under_pod_security_restricted(
    installed: str, kubectl: Kubectl
) -> None:
    """The Deployment's pod passes the enforced "restricted" profile and becomes available."""
    assert "PodSecurity" not in installed, installed
    kubectl(
        "rollout",
        "status",
        f"deployment/{DEPLOYMENT}",
        "-n",
        OPERATOR_NAMESPACE,
        "--timeout=60s",
    )
    events = kubectl("get", "events", "-n", OPERATOR_NAMESPACE, "-o", "json").stdout
    assert "FailedCreate" not in events


def test_the_webhook_service_routes_to_the_operator_on_9443(
    installed: str, kubectl: Kubectl
) -> None:
    """Service phonefleet-webhook (443) selects the operator's pod, port "webhook" (9443)."""

    def endpoint() -> tuple[int, list[str]] | None:
        slices = kubectl.list(
            "endpointslices",
            OPERATOR_NAMESPACE,
            "-l",
            "kubernetes.io/service-name=phonefleet-webhook",
        )
        for item in slices:
            ready = [
                address
                for e in item.get("endpoints") or []
                if (e.get("conditions") or {}).get("ready")
                for address in e["addresses"]
            ]
            ports = [p["port"] for p in item.get("ports") or []]
            if ready and ports:
                return ports[0], ready
        return None

    port, addresses = wait_for(endpoint, 60, message="a ready endpoint of phonefleet-webhook")
    assert port == 9443
    pods = kubectl.list("pods", OPERATOR_NAMESPACE, "-l", "app.kubernetes.io/component=operator")
    assert {p["status"]["podIP"] for p in pods} >= set(addresses)
    service = kubectl.get("service", "phonefleet-webhook", OPERATOR_NAMESPACE)
    assert service is not None
    assert [p["port"] for p in service["spec"]["ports"]] == [443]


def test_sample_bindings_are_accepted_after_the_install(
    installed: str, kubectl: Kubectl, namespace: str
) -> None:
    """Every sample in manifests/samples is a valid PhoneBinding for the installed CRD."""
    result = kubectl("apply", "-k", str(SAMPLES), "-n", namespace)
    samples = rendered(kubectl, SAMPLES)
    names = sorted(s["metadata"]["name"] for s in samples)
    assert [line.split()[0] for line in sorted(result.stdout.splitlines())] == [
        f"phonebinding.phonefleet.dev/{n}" for n in names
    ]
    stored = kubectl.list("phonebindings", namespace)
    assert sorted(b["metadata"]["name"] for b in stored) == names
    by_name = {b["metadata"]["name"]: b for b in stored}
    for sample in samples:
        assert by_name[sample["metadata"]["name"]]["spec"]["phoneId"] == sample["spec"]["phoneId"]
    # No operator watched them: nothing holds them back from going now.
    kubectl("delete", "-k", str(SAMPLES), "-n", namespace, "--wait=true", "--timeout=30s")
    assert not json.loads(kubectl("get", "phonebindings", "-n", namespace, "-o", "json").stdout)[
        "items"
    ]
