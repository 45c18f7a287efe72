"""The local control plane is a real one: schema validation, RBAC, admission, GC, scheduling."""

from __future__ import annotations

import json

from phonefleet_testbed.controlplane import KWOK_NODE_NAME, ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.waiting import wait_for

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.testbed.phonefleet.dev"},
    "spec": {
        "group": "testbed.phonefleet.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1, "maximum": 10}
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


def make_pod(name: str, **spec_overrides: object) -> dict[str, object]:
    """A minimal pod that passes the restricted Pod Security profile unless overridden."""
    container = {
        "name": "main",
        "image": "registry.invalid/idle:1",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    container.update(spec_overrides.pop("container", {}))  # type: ignore[call-overload]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], **spec_overrides},
    }


def test_custom_resource_is_served_and_its_schema_enforced(
    kubectl: Kubectl, namespace: str
) -> None:
    """A CRD applied with kubectl is served, and an object breaking its schema is rejected."""
    kubectl.apply(WIDGET_CRD)
    wait_for(
        lambda: kubectl("get", "widgets", "-n", namespace, check=False).returncode == 0,
        30,
        message="the widgets resource to be served",
    )
    good = {
        "apiVersion": "testbed.phonefleet.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "ok", "namespace": namespace},
        "spec": {"size": 3},
    }
    kubectl.apply(good)
    bad = {**good, "metadata": {"name": "too-big", "namespace": namespace}, "spec": {"size": 99}}
    result = kubectl("apply", "-f", "-", input_text=json.dumps(bad), check=False)
    assert result.returncode != 0
    assert "spec.size" in result.stderr
    assert "should be less than or equal to 10" in result.stderr


def test_rbac_denies_a_service_account_what_it_was_not_granted(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str
) -> None:
    """A ServiceAccount granted only to read pods can list pods and cannot read Secrets."""
    kubectl("create", "serviceaccount", "reader", "-n", namespace)
    kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace)
    kubectl(
        "create",
        "rolebinding",
        "reader",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:reader",
        "-n",
        namespace,
    )
    as_reader = kubectl.as_user(control_plane.mint_service_account_kubeconfig(namespace, "reader"))

    assert as_reader("get", "pods", "-n", namespace, check=False).returncode == 0
    denied = as_reader("get", "secrets", "-n", namespace, check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert f"system:serviceaccount:{namespace}:reader" in denied.stderr


def test_pod_security_restricted_rejects_a_privileged_pod(kubectl: Kubectl, namespace: str) -> None:
    """A namespace enforcing the restricted profile refuses a privileged pod, admits a safe one."""
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    privileged = make_pod("privileged", container={"securityContext": {"privileged": True}})
    result = kubectl(
        "apply", "-n", namespace, "-f", "-", input_text=json.dumps(privileged), check=False
    )
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in result.stderr
    kubectl("apply", "-n", namespace, "-f", "-", input_text=json.dumps(make_pod("restricted-ok")))


def test_deleting_an_owner_garbage_collects_its_pod(kubectl: Kubectl, namespace: str) -> None:
    """The garbage collector deletes a pod whose owner was deleted."""
    kubectl("create", "configmap", "owner", "-n", namespace)
    owner = kubectl.get("configmap", "owner", namespace)
    assert owner is not None
    pod = make_pod("owned")
    pod["metadata"] = {
        "name": "owned",
        "ownerReferences": [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "owner",
                "uid": owner["metadata"]["uid"],
            }
        ],
    }
    kubectl("apply", "-n", namespace, "-f", "-", input_text=json.dumps(pod))
    kubectl("delete", "configmap", "owner", "-n", namespace)
    wait_for(
        lambda: kubectl.get("pod", "owned", namespace) is None,
        60,
        message="the owned pod to be garbage-collected",
    )


def test_deleting_a_namespace_completes(kubectl: Kubectl) -> None:
    """A namespace holding objects is deleted completely by the namespace controller."""
    kubectl("create", "namespace", "doomed-namespace")
    kubectl("create", "configmap", "leftover", "-n", "doomed-namespace")
    kubectl("delete", "namespace", "doomed-namespace", "--wait=false")
    wait_for(
        lambda: kubectl.get("namespace", "doomed-namespace") is None,
        60,
        message="namespace doomed-namespace to be gone",
    )


def test_a_pod_is_scheduled_and_reaches_running_on_the_kwok_node(
    kubectl: Kubectl, namespace: str
) -> None:
    """The scheduler places a plain pod on the KWOK node, which reports it Running and Ready."""
    kubectl("apply", "-n", namespace, "-f", "-", input_text=json.dumps(make_pod("runner")))

    def running() -> dict[str, object] | None:
        pod = kubectl.get("pod", "runner", namespace)
        return pod if pod and pod["status"].get("phase") == "Running" else None

    pod = wait_for(running, 60, message="pod runner to be Running")
    assert pod["spec"]["nodeName"] == KWOK_NODE_NAME  # type: ignore[index]
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}  # type: ignore[index]
    assert ready["Ready"] == "True"
