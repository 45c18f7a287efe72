"""The CRDs reject bad input at `kubectl apply` time, with the API server's own messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from phonefleet_testbed.binaries import repo_root
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import make_binding, make_claim


@pytest.fixture(scope="module", autouse=True)
def crds(control_plane: ControlPlane) -> None:
    """phonefleet's CRDs on the session's control plane."""
    install_crds(control_plane)


def apply(kubectl: Kubectl, manifest: dict[str, Any]) -> tuple[int, str]:
    """Apply with kubectl's defaults (server-side field validation Strict); code and stderr."""
    result = kubectl("apply", "-f", "-", input_text=json.dumps(manifest), check=False)
    return result.returncode, result.stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "spec.phoneId: Required value"),
        ({"phoneId": ""}, "spec.phoneId: Invalid value"),
        ({"phoneId": "two words"}, "spec.phoneId"),
        ({"phoneId": "x" * 129}, "spec.phoneId: Too long"),
        ({"phoneId": "ok", "releasePolicy": "Sometimes"}, 'supported values: "Stop", "Keep"'),
        ({"phoneId": "ok", "suspend": "yes"}, "spec.suspend: Invalid value"),
        ({"phoneId": "ok", "colour": "red"}, 'unknown field "spec.colour"'),
    ],
    ids=[
        "missing",
        "empty",
        "whitespace",
        "too-long",
        "bad-policy",
        "bad-suspend",
        "unknown-field",
    ],
)
def test_a_bad_phonebinding_is_rejected_with_a_clear_message(
    kubectl: Kubectl, namespace: str, spec: dict[str, Any], message: str
) -> None:
    """Each invalid spec is refused by the API server, which names the offending field."""
    manifest = make_binding("bad", "placeholder", namespace)
    manifest["spec"] = spec
    code, stderr = apply(kubectl, manifest)
    assert code != 0
    assert message in stderr


def test_a_phoneclaim_spec_cannot_be_changed_once_created(kubectl: Kubectl) -> None:
    """A claim's holder is immutable: re-pointing a claim is refused (delete it to release)."""
    claim = make_claim("700000000000000001", "a", "b", "c", serial_name="x")
    assert apply(kubectl, claim)[0] == 0
    claim["spec"]["holder"] = {"namespace": "a", "name": "thief", "uid": "d"}  # type: ignore[index]
    code, stderr = apply(kubectl, claim)
    kubectl("delete", "phoneclaim", "700000000000000001")
    assert code != 0
    assert "immutable" in stderr.lower() or "oldSelf" in stderr


@pytest.mark.parametrize(
    "sample",
    sorted((repo_root() / "manifests" / "samples").glob("phonebinding-*.yaml")),
    ids=lambda p: Path(p).stem,
)
def test_every_sample_is_accepted_by_the_api_server(
    kubectl: Kubectl, namespace: str, sample: Path
) -> None:
    """The shipped samples pass the real server's validation (dry run, nothing is created)."""
    manifest = yaml.safe_load(sample.read_text())
    manifest["metadata"]["namespace"] = namespace
    result = kubectl(
        "apply", "--dry-run=server", "-f", "-", input_text=json.dumps(manifest), check=False
    )
    assert result.returncode == 0, result.stderr


def test_a_jobs_spec_cannot_change_and_a_foreign_binding_name_is_refused(
    kubectl: Kubectl, namespace: str
) -> None:
    """A PhoneJob's spec is immutable (CEL self == oldSelf), and ``ns/name`` is no bindingName."""
    job = {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneJob",
        "metadata": {"name": "post", "namespace": namespace},
        "spec": {"bindingName": "insta-042", "task": "heartbeat"},
    }
    assert apply(kubectl, job) == (0, "")

    job["spec"] = {**job["spec"], "maxAttempts": 5}
    code, stderr = apply(kubectl, job)
    assert code != 0
    assert "a PhoneJob's spec cannot change" in stderr

    job["metadata"]["name"] = "elsewhere"
    job["spec"] = {"bindingName": "farm/insta-042", "task": "heartbeat"}
    code, stderr = apply(kubectl, job)
    assert code != 0
    assert "spec.bindingName" in stderr
