"""Specifications of the CRDs in crds/: they match the pydantic models, and the samples pass."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from phonefleet_operator import constants
from phonefleet_operator.models import (
    PhoneBindingSpec,
    PhoneBindingStatus,
    PhoneClaimSpec,
    PhoneJobSpec,
    PhoneJobStatus,
)

from .openapi import model_openapi, schema_differences, validation_errors

ROOT = Path(__file__).resolve().parents[3]
CRDS = ROOT / "crds"
SAMPLES = ROOT / "manifests" / "samples"
BINDING_CRD = CRDS / "phonefleet.dev_phonebindings.yaml"
CLAIM_CRD = CRDS / "phonefleet.dev_phoneclaims.yaml"
JOB_CRD = CRDS / "phonefleet.dev_phonejobs.yaml"
ALL_CRDS = [BINDING_CRD, CLAIM_CRD, JOB_CRD]
CRD_IDS = ["PhoneBinding", "PhoneClaim", "PhoneJob"]


def load(path: Path) -> dict[str, Any]:
    """The single YAML document in ``path``."""
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def version_of(crd: Mapping[str, Any]) -> dict[str, Any]:
    """The CRD's only version (v1alpha1)."""
    versions = crd["spec"]["versions"]
    assert len(versions) == 1
    version = versions[0]
    assert isinstance(version, dict)
    return version


def schema_of(crd: Mapping[str, Any]) -> dict[str, Any]:
    """The CRD's openAPIV3Schema."""
    schema = version_of(crd)["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def walk(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every (path, node) of a schema, depth first."""
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    for key, label in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(schema.get(key), Mapping):
            yield from walk(schema[key], f"{path}{label}")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            BINDING_CRD,
            {
                "kind": "PhoneBinding",
                "plural": "phonebindings",
                "singular": "phonebinding",
                "scope": "Namespaced",
                "shortNames": ["pb"],
            },
        ),
        (
            CLAIM_CRD,
            {
                "kind": "PhoneClaim",
                "plural": "phoneclaims",
                "singular": "phoneclaim",
                "scope": "Cluster",
                "shortNames": None,
            },
        ),
        (
            JOB_CRD,
            {
                "kind": "PhoneJob",
                "plural": "phonejobs",
                "singular": "phonejob",
                "scope": "Namespaced",
                "shortNames": ["pj"],
            },
        ),
    ],
    ids=CRD_IDS,
)
def test_crd_declares_its_names_and_scope(path: Path, expected: dict[str, Any]) -> None:
    """Each CRD serves v1alpha1 of phonefleet.dev under the kind, names and scope the code uses."""
    crd = load(path)
    names = crd["spec"]["names"]

    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{expected['plural']}.{constants.GROUP}"
    assert crd["spec"]["group"] == constants.GROUP
    assert crd["spec"]["scope"] == expected["scope"]
    assert names["kind"] == expected["kind"]
    assert names["plural"] == expected["plural"]
    assert names["singular"] == expected["singular"]
    assert names["listKind"] == f"{expected['kind']}List"
    assert names.get("shortNames") == expected["shortNames"]
    assert names["categories"] == [constants.CATEGORY]
    assert version_of(crd)["name"] == constants.VERSION
    assert version_of(crd)["served"] is True
    assert version_of(crd)["storage"] is True


def test_binding_names_match_constants() -> None:
    """The constants spell the PhoneBinding and PhoneClaim names the CRDs declare."""
    binding, claim = load(BINDING_CRD)["spec"]["names"], load(CLAIM_CRD)["spec"]["names"]

    assert binding["kind"] == constants.BINDING_KIND
    assert binding["plural"] == constants.BINDING_PLURAL
    assert list(constants.BINDING_SHORT_NAMES) == binding["shortNames"]
    assert (claim["kind"], claim["plural"]) == (constants.CLAIM_KIND, constants.CLAIM_PLURAL)


def test_only_the_binding_and_the_job_have_a_status_subresource() -> None:
    """Binding and job status are written through /status; a PhoneClaim has no status at all."""
    assert version_of(load(BINDING_CRD))["subresources"] == {"status": {}}
    assert version_of(load(JOB_CRD))["subresources"] == {"status": {}}
    assert "subresources" not in version_of(load(CLAIM_CRD))
    assert "status" not in schema_of(load(CLAIM_CRD))["properties"]


@pytest.mark.parametrize(
    ("path", "columns"),
    [
        (
            BINDING_CRD,
            [
                ("Phone", ".spec.phoneId", 0),
                ("Phase", ".status.phase", 0),
                ("Ready", '.status.conditions[?(@.type=="Ready")].status', 0),
                ("Pod", ".status.podName", 0),
                ("Age", ".metadata.creationTimestamp", 0),
                ("ID", ".status.phone.id", 1),
                ("Serial", ".status.phone.serialName", 1),
                ("Worker", '.status.conditions[?(@.type=="WorkerImageCurrent")].reason', 1),
            ],
        ),
        (
            CLAIM_CRD,
            [
                ("Phone", ".spec.phoneId", 0),
                ("Holder-Namespace", ".spec.holder.namespace", 0),
                ("Holder", ".spec.holder.name", 0),
                ("Age", ".metadata.creationTimestamp", 0),
                ("Serial", ".spec.serialName", 1),
            ],
        ),
        (
            JOB_CRD,
            [
                ("Binding", ".spec.bindingName", 0),
                ("Task", ".spec.task", 0),
                ("Phase", ".status.phase", 0),
                ("Attempts", ".status.attemptCount", 0),
                ("Age", ".metadata.creationTimestamp", 0),
                ("Reason", ".status.message", 0),
                ("Next", ".status.nextAttemptTime", 1),
            ],
        ),
    ],
    ids=CRD_IDS,
)
def test_printer_columns(path: Path, columns: list[tuple[str, str, int]]) -> None:
    """kubectl get shows the documented columns; priority 1 ones only with -o wide."""
    declared = version_of(load(path))["additionalPrinterColumns"]

    assert [(c["name"], c["jsonPath"], c.get("priority", 0)) for c in declared] == columns
    assert {c["name"]: c["type"] for c in declared}["Age"] == "date"


@pytest.mark.parametrize(
    ("path", "field", "model"),
    [
        (BINDING_CRD, "spec", PhoneBindingSpec),
        (BINDING_CRD, "status", PhoneBindingStatus),
        (CLAIM_CRD, "spec", PhoneClaimSpec),
        (JOB_CRD, "spec", PhoneJobSpec),
        (JOB_CRD, "status", PhoneJobStatus),
    ],
    ids=[
        "PhoneBinding.spec",
        "PhoneBinding.status",
        "PhoneClaim.spec",
        "PhoneJob.spec",
        "PhoneJob.status",
    ],
)
def test_crd_schema_matches_the_model(path: Path, field: str, model: type[BaseModel]) -> None:
    """Fields, required lists, types, enums, defaults, bounds and descriptions agree, both ways."""
    crd_schema = schema_of(load(path))["properties"][field]

    assert schema_differences(crd_schema, model_openapi(model), field) == []


@pytest.mark.parametrize("path", ALL_CRDS, ids=CRD_IDS)
def test_crd_root_requires_a_spec_and_declares_nothing_else(path: Path) -> None:
    """An object without spec is refused; only apiVersion, kind, metadata, spec (status) exist."""
    schema = schema_of(load(path))
    expected = {"apiVersion", "kind", "metadata", "spec"}
    if path != CLAIM_CRD:
        expected.add("status")

    assert schema["type"] == "object"
    assert schema["required"] == ["spec"]
    assert set(schema["properties"]) == expected


@pytest.mark.parametrize("path", ALL_CRDS, ids=CRD_IDS)
def test_crd_schema_is_structural_and_documented(path: Path) -> None:
    """Every node has a type (or is int-or-string), every property a description."""
    schema = schema_of(load(path))
    untyped = [p for p, node in walk(schema) if "type" not in node and "anyOf" not in node]
    undocumented = [
        f"{p}.{name}"
        for p, node in walk(schema)
        for name, child in node.get("properties", {}).items()
        if name != "metadata" and not child.get("description")
    ]

    assert untyped == []
    assert undocumented == []


@pytest.mark.parametrize("path", ALL_CRDS, ids=CRD_IDS)
def test_list_map_keys_are_required(path: Path) -> None:
    """Lists declared as maps (env by name, conditions by type) require their key, as they must."""
    for where, node in walk(schema_of(load(path))):
        if node.get("x-kubernetes-list-type") == "map":
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in node["items"]["required"], where


@pytest.mark.parametrize("path", [BINDING_CRD, CLAIM_CRD], ids=["PhoneBinding", "PhoneClaim"])
def test_phone_id_whitespace_has_a_clear_cel_message(path: Path) -> None:
    """Besides the pattern, a CEL rule rejects any Unicode whitespace in phoneId, plainly worded."""
    phone_id = schema_of(load(path))["properties"]["spec"]["properties"]["phoneId"]
    (rule,) = phone_id["x-kubernetes-validations"]

    assert rule["rule"] == r"!self.matches(r'[\s\v\x{85}\p{Z}]')"
    assert rule["message"].startswith("phoneId must not contain whitespace")


def test_claim_spec_is_immutable_but_for_its_release_policy() -> None:
    """Who holds which phone cannot change after creation (a transition rule on every field
    but releasePolicy, which the holder keeps current)."""
    spec = schema_of(load(CLAIM_CRD))["properties"]["spec"]
    (rule,) = spec["x-kubernetes-validations"]

    compared = {f for f in spec["properties"] if f"self.{f} == oldSelf.{f}" in rule["rule"]}
    assert compared == set(spec["properties"]) - {"releasePolicy"}


def test_crd_kustomization_lists_every_crd() -> None:
    """crds/kustomization.yaml lets overlays include the CRDs as one folder."""
    assert load(CRDS / "kustomization.yaml")["resources"] == [
        BINDING_CRD.name,
        CLAIM_CRD.name,
        "phonefleet.dev_phonepools.yaml",
        JOB_CRD.name,
    ]


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"task": "heartbeat"}, id="bindingName-missing"),
        pytest.param({"bindingName": "farm/insta-042", "task": "heartbeat"}, id="other-namespace"),
        pytest.param({"bindingName": "insta-042", "task": "Post Video"}, id="task-name"),
        pytest.param({"bindingName": "b", "task": "t", "maxAttempts": 0}, id="maxAttempts"),
        pytest.param({"bindingName": "b", "task": "t", "retries": 2}, id="unknown-field"),
    ],
)
def test_crd_and_model_reject_the_same_bad_jobs(spec: dict[str, Any]) -> None:
    """A job naming a binding of another namespace, a bad task name or bound fails both."""
    job = {"apiVersion": constants.API_VERSION, "kind": "PhoneJob", "spec": spec}

    assert validation_errors(job, schema_of(load(JOB_CRD))) != []
    with pytest.raises(ValueError, match="validation error"):
        PhoneJobSpec.model_validate(spec)


def test_a_job_with_free_form_params_passes_the_crd_and_the_model() -> None:
    """Params are the task's business: any object passes the CRD; the task's schema checks it."""
    spec = {"bindingName": "insta-042", "task": "ui-steps", "params": {"steps": [{"back": {}}]}}
    job = {"apiVersion": constants.API_VERSION, "kind": "PhoneJob", "spec": spec}

    assert validation_errors(job, schema_of(load(JOB_CRD))) == []
    assert PhoneJobSpec.model_validate(spec).params == spec["params"]


SAMPLE_FILES = sorted(p for p in SAMPLES.glob("*.yaml") if p.name != "kustomization.yaml")


def test_sample_kustomization_lists_every_sample() -> None:
    """manifests/samples/kustomization.yaml names exactly the sample files in the folder."""
    listed = load(SAMPLES / "kustomization.yaml")["resources"]

    assert sorted(listed) == [p.name for p in SAMPLE_FILES]


def test_samples_cover_the_documented_cases() -> None:
    """The samples bind by serialName, by id, suspended, and with Keep plus overrides."""
    specs = [PhoneBindingSpec.model_validate(load(p)["spec"]) for p in SAMPLE_FILES]

    assert any(s.phone_id.isdigit() for s in specs)
    assert any(not s.phone_id.isdigit() for s in specs)
    assert any(s.suspend for s in specs)
    assert any(s.release_policy == "Keep" and s.worker.resources and s.appium.args for s in specs)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_sample_passes_the_crd_and_the_model(path: Path) -> None:
    """Each sample is a named PhoneBinding whose spec both the CRD schema and the model accept."""
    sample = load(path)

    assert sample["apiVersion"] == constants.API_VERSION
    assert sample["kind"] == constants.BINDING_KIND
    assert sample["metadata"]["name"]
    assert validation_errors(sample, schema_of(load(BINDING_CRD))) == []
    PhoneBindingSpec.model_validate(sample["spec"])


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({}, id="phoneId-missing"),
        pytest.param({"phoneId": ""}, id="phoneId-empty"),
        pytest.param({"phoneId": "x" * 129}, id="phoneId-too-long"),
        pytest.param({"phoneId": "two words"}, id="phoneId-space"),
        pytest.param({"phoneId": 526209711930868736}, id="phoneId-unquoted-number"),
        pytest.param({"phoneId": "x", "releasePolicy": "Delete"}, id="releasePolicy"),
        pytest.param({"phoneId": "x", "replicas": 2}, id="unknown-field"),
        pytest.param({"phoneId": "x", "worker": {"command": ["sh"]}}, id="unknown-override"),
        pytest.param({"phoneId": "x", "worker": {"image": ""}}, id="empty-image"),
        pytest.param(
            {"phoneId": "x", "appium": {"resources": {"limits": {"memory": "lots"}}}},
            id="bad-quantity",
        ),
        pytest.param({"phoneId": "x", "worker": {"env": [{"value": "1"}]}}, id="env-nameless"),
    ],
)
def test_crd_and_model_reject_the_same_bad_specs(spec: dict[str, Any]) -> None:
    """A bad spec fails the CRD schema (as kubectl apply would) and the model alike."""
    binding = {"apiVersion": constants.API_VERSION, "kind": "PhoneBinding", "spec": spec}

    assert validation_errors(binding, schema_of(load(BINDING_CRD))) != []
    with pytest.raises(ValueError, match="validation error"):
        PhoneBindingSpec.model_validate(spec)


def test_integer_quantities_pass_the_crd_and_the_model() -> None:
    """``cpu: 1`` without quotes is accepted by both, as in a pod's resources."""
    spec = {"phoneId": "x", "worker": {"resources": {"requests": {"cpu": 1}}}}
    binding = {"apiVersion": constants.API_VERSION, "kind": "PhoneBinding", "spec": spec}

    assert validation_errors(binding, schema_of(load(BINDING_CRD))) == []
    PhoneBindingSpec.model_validate(spec)


def test_the_schema_check_notices_drift() -> None:
    """A property missing on either side, a changed enum or a typo'd keyword are all reported."""
    crd_spec = copy.deepcopy(schema_of(load(BINDING_CRD))["properties"]["spec"])
    del crd_spec["properties"]["suspend"]
    crd_spec["properties"]["replicas"] = {"type": "integer", "description": "How many."}
    crd_spec["properties"]["releasePolicy"]["enum"] = ["Stop", "Keep", "Delete"]
    crd_spec["properties"]["worker"]["requried"] = ["image"]

    found = "\n".join(schema_differences(crd_spec, model_openapi(PhoneBindingSpec), "spec"))

    assert "spec.suspend: only in the model" in found
    assert "spec.replicas: only in the CRD" in found
    assert "spec.releasePolicy: enum" in found
    assert "spec.worker: keywords no CRD here should use: ['requried']" in found
