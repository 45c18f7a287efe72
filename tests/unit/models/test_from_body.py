"""Parsing a body: no copy for typed models, and still nothing shared with the body."""

from __future__ import annotations

import copy
import types
import typing
from typing import Any

import kopf
import pytest
from pydantic import BaseModel

from phonefleet_operator import models
from phonefleet_operator.models import PhoneBinding, PhoneJob
from phonefleet_operator.models._base import Resource


def binding_body() -> dict[str, Any]:
    return {
        "metadata": {"name": "alpha", "namespace": "ns", "uid": "u-1", "generation": 2},
        "spec": {
            "phoneId": "phone-a",
            "worker": {
                "image": "registry.example/worker:1",
                "args": ["--verbose"],
                "env": [{"name": "TZ", "value": "UTC"}],
                "resources": {"limits": {"memory": "512Mi"}},
            },
        },
        "status": {
            "phase": "Running",
            "phone": {"id": "100"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "WorkerRunning",
                    "message": "m",
                    "lastTransitionTime": "2026-11-28T10:00:00Z",
                }
            ],
        },
    }


def frozen_views(value: Any) -> Any:
    """``value`` with every dict a read-only Mapping and every list a tuple (kopf-like bodies)."""
    if isinstance(value, dict):
        return types.MappingProxyType({k: frozen_views(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(frozen_views(v) for v in value)
    return value


def test_a_binding_shares_nothing_mutable_with_its_body() -> None:
    """Changing the body after parsing (a live body is updated in place) leaves the model as
    it was parsed: validation built the model's own lists and dicts."""
    body = binding_body()
    binding = PhoneBinding.from_body(body)
    parsed = binding.to_dict()
    body["spec"]["worker"]["args"].append("--more")
    body["spec"]["worker"]["env"][0]["value"] = "Europe/Berlin"
    body["spec"]["worker"]["resources"]["limits"]["memory"] = "1Gi"
    body["status"]["conditions"].clear()
    body["status"]["phone"]["id"] = "200"
    body["metadata"]["generation"] = 3
    assert binding.to_dict() == parsed


def test_any_nested_mapping_parses_as_the_plain_dict_does() -> None:
    """A kopf Body and read-only Mappings with tuples give the model a plain dict gives."""
    expected = PhoneBinding.from_body(binding_body())
    assert PhoneBinding.from_body(kopf.Body(binding_body())) == expected
    assert PhoneBinding.from_body(frozen_views(binding_body())) == expected


def test_a_job_copies_its_free_form_params_out_of_the_body() -> None:
    """spec.params holds any JSON: the job parses a copy, so the body's nested objects are
    not the model's."""
    body = {
        "metadata": {"name": "j", "namespace": "ns", "uid": "u-2"},
        "spec": {"bindingName": "alpha", "task": "t", "params": {"deep": {"list": [1]}}},
    }
    job = PhoneJob.from_body(body)
    body["spec"]["params"]["deep"]["list"].append(2)
    assert job.spec.params == {"deep": {"list": [1]}}
    assert PhoneJob.from_body(frozen_views(copy.deepcopy(body))).spec.params == {
        "deep": {"list": [1, 2]}
    }


def _holds_any(annotation: Any, seen: set[type]) -> bool:
    if annotation is Any:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return False
        seen.add(annotation)
        return any(_holds_any(f.annotation, seen) for f in annotation.model_fields.values())
    return any(_holds_any(arg, seen) for arg in typing.get_args(annotation))


RESOURCES = sorted(
    (
        kind
        for kind in vars(models).values()
        if isinstance(kind, type) and issubclass(kind, Resource) and "metadata" in kind.model_fields
    ),
    key=lambda kind: kind.__name__,
)


@pytest.mark.parametrize("kind", RESOURCES, ids=[kind.__name__ for kind in RESOURCES])
def test_every_resource_with_a_free_form_field_copies_its_body(kind: type[Resource]) -> None:
    """A field with Any values would keep the body's nested objects: such a model copies."""
    assert kind._copies_body == _holds_any(kind, set())
