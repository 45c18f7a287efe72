"""The kind overlays of hack/kind-e2e.sh, which cannot run here: the API server accepts them (a
server dry run), and the Geelark simulator's Deployment passes Pod Security "restricted"."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from phonefleet_testbed.binaries import repo_root
from phonefleet_testbed.fixtures import Kubectl

KIND = repo_root() / "hack" / "kind"


def container_env(objects: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
    """The env of a Deployment's first container, by name."""
    (found,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == deployment
    ]
    container = found["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_the_simulator_overlay_points_the_operator_at_the_simulator(kubectl: Kubectl) -> None:
    """The operator calls the in-cluster simulator and runs worker pods from the loaded image."""
    objects = [
        d for d in yaml.safe_load_all(kubectl("kustomize", str(KIND / "simulator")).stdout) if d
    ]
    env = container_env(objects, "phonefleet-operator")
    assert env["PHONEFLEET_GEELARK_URL"] == "http://geelark-sim.phonefleet-system.svc:8080"
    assert env["PHONEFLEET_WORKER_IMAGE"] == "phonefleet/worker:dev"
    assert env["PHONEFLEET_GEELARK_TOKEN"]["secretKeyRef"]["name"] == "geelark-credentials"
    sim = [o for o in objects if o["metadata"]["name"] == "geelark-sim"]
    assert sorted(o["kind"] for o in sim) == ["Deployment", "Service"]
    (deployment,) = [o for o in sim if o["kind"] == "Deployment"]
    # The simulator has its own image: the test bed is in neither production image.
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "phonefleet/geelark-sim:dev"
    )


@pytest.mark.parametrize("overlay", ["base", "simulator"])
def test_a_server_dry_run_of_the_kind_overlay_succeeds(kubectl: Kubectl, overlay: str) -> None:
    """Accepted by the API server, with no Pod Security warning for phonefleet-system."""
    kubectl("apply", "-f", str(repo_root() / "manifests" / "manager" / "namespace.yaml"))
    result = kubectl("apply", "-k", str(KIND / overlay), "--dry-run=server")
    assert "deployment.apps/phonefleet-operator" in result.stdout
    assert "PodSecurity" not in result.stderr, result.stderr
    if overlay == "simulator":
        assert "deployment.apps/geelark-sim" in result.stdout
