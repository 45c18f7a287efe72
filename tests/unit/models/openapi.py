"""Test helpers over the OpenAPI v3 subset our CRDs use: model schemas, schema diffs, a validator.

- :func:`model_openapi` turns a pydantic model's JSON schema into the structural form a CRD uses
  (references inlined, ``null`` branches dropped, titles and empty defaults removed).
- :func:`schema_differences` lists where a CRD schema and a model schema disagree, both ways.
- :func:`validation_errors` checks an object against a CRD schema as the API server would with
  strict field validation (unknown fields are errors), without CEL rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

__all__ = [
    "COMPARED_KEYWORDS",
    "CRD_ONLY_KEYWORDS",
    "KNOWN_KEYWORDS",
    "model_openapi",
    "schema_differences",
    "validation_errors",
]

Schema = dict[str, Any]

#: Keywords both sides must agree on.
COMPARED_KEYWORDS = frozenset(
    {
        "type",
        "description",
        "enum",
        "default",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "format",
        "anyOf",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
    }
)
#: Kubernetes extensions that only the CRD carries (list semantics, CEL rules).
CRD_ONLY_KEYWORDS = frozenset(
    {"x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys"}
)
#: Everything a CRD schema here may use; anything else is probably a typo.
KNOWN_KEYWORDS = (
    COMPARED_KEYWORDS
    | CRD_ONLY_KEYWORDS
    | {"properties", "required", "items", "additionalProperties"}
)
_PYDANTIC_ONLY = frozenset({"title"})
_PRESERVE = "x-kubernetes-preserve-unknown-fields"


def model_openapi(model: type[BaseModel]) -> Schema:
    """The structural OpenAPI schema that a CRD should declare for ``model``."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}))


def _structural(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Schema:
    node = dict(node)
    node.pop("$defs", None)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**_structural(target, defs), **node}  # the field's own keys win
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        branches = [branch for branch in node.pop("anyOf") if branch != {"type": "null"}]
        if len(branches) != 1:
            raise AssertionError(f"a union the CRD cannot express: {branches}")
        node = {**_structural(branches[0], defs), **node}
    for key in _PYDANTIC_ONLY:
        node.pop(key, None)
    if node.get("default", ...) in (None, [], {}):
        del node["default"]
    if node.get("additionalProperties") is True and node.get(_PRESERVE):
        del node["additionalProperties"]  # free-form objects: the CRD spells it preserve-unknown
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]  # structural schemas prune (and Strict rejects) unknowns
    if "properties" in node:
        node["properties"] = {k: _structural(v, defs) for k, v in node["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), Mapping):
            node[key] = _structural(node[key], defs)
    return node


def schema_differences(crd: Mapping[str, Any], model: Mapping[str, Any], path: str) -> list[str]:
    """Every disagreement between a CRD schema and a model schema below ``path``, both ways."""
    found: list[str] = []
    unknown = set(crd) - KNOWN_KEYWORDS
    if unknown:
        found.append(f"{path}: keywords no CRD here should use: {sorted(unknown)}")
    for key in sorted(COMPARED_KEYWORDS):
        if crd.get(key) != model.get(key):
            found.append(
                f"{path}: {key} is {crd.get(key)!r} in the CRD, {model.get(key)!r} in the model"
            )
    if sorted(crd.get("required", [])) != sorted(model.get("required", [])):
        found.append(
            f"{path}: required is {sorted(crd.get('required', []))} in the CRD, "
            f"{sorted(model.get('required', []))} in the model"
        )
    crd_properties = crd.get("properties", {})
    model_properties = model.get("properties", {})
    for name in sorted(set(crd_properties) ^ set(model_properties)):
        side = "CRD" if name in crd_properties else "model"
        found.append(f"{path}.{name}: only in the {side}")
    for name in sorted(set(crd_properties) & set(model_properties)):
        found += schema_differences(crd_properties[name], model_properties[name], f"{path}.{name}")
    for key, label in (("items", "[]"), ("additionalProperties", "{}")):
        if (key in crd) != (key in model):
            found.append(f"{path}{label}: {key} declared on one side only")
        elif key in crd:
            found += schema_differences(crd[key], model[key], f"{path}{label}")
    return found


def validation_errors(instance: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Why ``instance`` fails ``schema`` (empty when it passes); CEL rules are not evaluated."""
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(instance, bool) or not isinstance(instance, int | str):
            return [f"{path}: must be an integer or a string"]
        return _string_errors(instance, schema, path) if isinstance(instance, str) else []
    expected = schema.get("type")
    if expected is not None and not _TYPE_CHECKS[expected](instance):
        return [f"{path}: must be of type {expected}"]
    errors: list[str] = []
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: {instance!r} is not one of {schema['enum']}")
    if isinstance(instance, str):
        errors += _string_errors(instance, schema, path)
    if isinstance(instance, int) and "minimum" in schema and instance < schema["minimum"]:
        errors.append(f"{path}: must be at least {schema['minimum']}")
    if isinstance(instance, list) and "items" in schema:
        for index, item in enumerate(instance):
            errors += validation_errors(item, schema["items"], f"{path}[{index}]")
    if isinstance(instance, Mapping) and not schema.get(_PRESERVE):
        errors += _object_errors(instance, schema, path)
    return errors


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "object": lambda value: isinstance(value, Mapping),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
}


def _object_errors(instance: Mapping[str, Any], schema: Mapping[str, Any], path: str) -> list[str]:
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    required = schema.get("required", [])
    errors = [f"{path}.{name}: Required value" for name in required if name not in instance]
    for name, value in instance.items():
        if path == "" and name == "metadata":
            continue  # the API server validates object metadata itself
        if name in properties:
            errors += validation_errors(value, properties[name], f"{path}.{name}")
        elif isinstance(extra, Mapping):
            errors += validation_errors(value, extra, f"{path}.{name}")
        else:
            errors.append(f"{path}.{name}: field not declared in schema")
    return errors


def _string_errors(instance: str, schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    if len(instance) < schema.get("minLength", 0):
        errors.append(f"{path}: should be at least {schema['minLength']} chars long")
    if "maxLength" in schema and len(instance) > schema["maxLength"]:
        errors.append(f"{path}: may not be more than {schema['maxLength']} chars long")
    if "pattern" in schema and not re.search(schema["pattern"], instance):
        errors.append(f"{path}: should match {schema['pattern']!r}")
    return errors
