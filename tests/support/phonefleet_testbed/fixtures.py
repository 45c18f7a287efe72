"""pytest fixtures of the test bed: a session-wide control plane, a namespace per test, kubectl."""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.waiting import wait_for

__all__ = ["Kubectl", "control_plane", "fresh_namespace", "kubectl", "namespace"]


class Kubectl:
    """The real kubectl bound to one control plane, with JSON helpers for assertions."""

    def __init__(self, plane: ControlPlane, kubeconfig: Path | None = None) -> None:
        self._plane = plane
        self.kubeconfig = kubeconfig or plane.kubeconfig

    def __call__(
        self, *args: str, input_text: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl; raise with its stderr when ``check`` and it fails."""
        try:
            return self._plane.kubectl(
                *args, input_text=input_text, check=check, kubeconfig=self.kubeconfig
            )
        except subprocess.CalledProcessError as error:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({error.returncode}): {error.stderr}"
            ) from None

    def apply(self, manifest: dict[str, Any] | str, *extra: str) -> None:
        """``kubectl apply -f -`` with a dict (as JSON) or YAML text."""
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        self("apply", "-f", "-", *extra, input_text=text)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object as a dict, or None when it does not exist."""
        args = ["get", kind, name, "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        result = self(*args, check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(f"kubectl get {kind} {name} failed: {result.stderr}")
        value: dict[str, Any] = json.loads(result.stdout)
        return value

    def list(self, kind: str, namespace: str | None = None, *selector: str) -> list[dict[str, Any]]:
        """Items of a kind, in one namespace or cluster-wide when ``namespace`` is None."""
        args = ["get", kind, "-o", "json", *selector]
        args += ["-n", namespace] if namespace else ["--all-namespaces"]
        items: list[dict[str, Any]] = json.loads(self(*args).stdout)["items"]
        return items

    def as_user(self, kubeconfig: Path) -> Kubectl:
        """The same kubectl acting with another kubeconfig."""
        return Kubectl(self._plane, kubeconfig)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """One real control plane for the whole test session (started once, about 10 s warm)."""
    with ControlPlane() as plane:
        yield plane


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Kubectl:
    """The real kubectl with admin rights on the session's control plane."""
    return Kubectl(control_plane)


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting for it to go)."""
    base = "".join(
        c for c in request.node.name.lower().replace("_", "-") if c.isalnum() or c == "-"
    )
    with fresh_namespace(kubectl, f"{base[:40].strip('-')}-{uuid.uuid4().hex[:6]}") as name:
        yield name


@contextlib.contextmanager
def fresh_namespace(kubectl: Kubectl, name: str) -> Iterator[str]:
    """Namespace ``name``, ready for pods; deleted afterwards (without waiting for it to go)."""
    kubectl("create", "namespace", name)
    # Pods are refused until the service-account controller has made "default".
    wait_for(
        lambda: kubectl.get("serviceaccount", "default", name),
        30,
        message=f"ServiceAccount default in {name}",
    )
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def wait() -> Callable[..., Any]:
    """The wait-for-condition helper, as a fixture for tests that prefer injection."""
    return wait_for
