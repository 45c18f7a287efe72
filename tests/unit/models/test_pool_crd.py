"""The PhonePool CRD: names, printer columns and schema agree with the code and the models."""

from __future__ import annotations

from typing import Any

import pytest

from phonefleet_operator import constants
from phonefleet_operator.models import PhonePool, PhonePoolSpec, PhonePoolStatus

from .openapi import model_openapi, schema_differences, validation_errors
from .test_crds import CRDS, load, schema_of, version_of, walk

POOL_CRD = CRDS / "phonefleet.dev_phonepools.yaml"


def make_pool(**spec: Any) -> dict[str, Any]:
    """A PhonePool manifest; ``spec`` in the CRD's camelCase."""
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.POOL_KIND,
        "metadata": {"name": "client-acme"},
        "spec": {"phones": {"groups": ["acme"]}, **spec},
    }


def test_pool_crd_is_cluster_scoped_with_short_name_pp() -> None:
    """PhonePool is cluster-scoped (admin-only), `kubectl get pp` works, status is a subresource."""
    crd = load(POOL_CRD)
    names = crd["spec"]["names"]

    assert crd["metadata"]["name"] == f"{constants.POOL_PLURAL}.{constants.GROUP}"
    assert crd["spec"]["scope"] == "Cluster"
    assert (names["kind"], names["plural"], names["singular"]) == (
        constants.POOL_KIND,
        constants.POOL_PLURAL,
        constants.POOL_SINGULAR,
    )
    assert names["shortNames"] == list(constants.POOL_SHORT_NAMES) == ["pp"]
    assert names["categories"] == [constants.CATEGORY]
    assert version_of(crd)["name"] == constants.VERSION
    assert version_of(crd)["subresources"] == {"status": {}}


def test_pool_printer_columns() -> None:
    """`kubectl get pp` shows PHONES, BOUND, RUNNING, MAX and NAMESPACES; `-o wide` the ACCOUNT
    too (priority 1: a single-account cluster's table is unchanged)."""
    declared = version_of(load(POOL_CRD))["additionalPrinterColumns"]

    assert [(c["name"], c["jsonPath"]) for c in declared] == [
        ("Phones", ".status.phones"),
        ("Bound", ".status.bound"),
        ("Running", ".status.running"),
        ("Max", ".spec.maxRunning"),
        ("Namespaces", ".status.namespaces"),
        ("Age", ".metadata.creationTimestamp"),
        ("Account", ".spec.account"),
    ]
    assert [c.get("priority", 0) for c in declared] == [0, 0, 0, 0, 0, 0, 1]


@pytest.mark.parametrize(
    ("field", "model"),
    [("spec", PhonePoolSpec), ("status", PhonePoolStatus)],
    ids=["PhonePool.spec", "PhonePool.status"],
)
def test_pool_crd_schema_matches_the_model(field: str, model: type[Any]) -> None:
    """Fields, required lists, types, enums, defaults, bounds and descriptions agree, both ways."""
    crd_schema = schema_of(load(POOL_CRD))["properties"][field]

    assert schema_differences(crd_schema, model_openapi(model), field) == []


def test_pool_crd_schema_is_documented() -> None:
    """Every property has a description; conditions are a list-map keyed by type."""
    schema = schema_of(load(POOL_CRD))
    undocumented = [
        f"{p}.{name}"
        for p, node in walk(schema)
        for name, child in node.get("properties", {}).items()
        if name != "metadata" and not child.get("description")
    ]
    conditions = schema["properties"]["status"]["properties"]["conditions"]

    assert undocumented == []
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_the_issue_example_passes_the_crd_and_the_model() -> None:
    """The pool of docs/tenancy.md (groups, tags, patterns, selector, images, maxRunning)."""
    pool = make_pool(
        phones={"groups": ["acme"], "tags": ["acme-ig"], "serialNames": ["acme-*"]},
        namespaces={"selector": {"matchLabels": {"phonefleet.dev/client": "acme"}}},
        images={"worker": ["registry.example/acme/*"], "appium": ["appium/appium:*"]},
        maxRunning=40,
        onRevoke="Stop",
    )

    assert validation_errors(pool, schema_of(load(POOL_CRD))) == []
    parsed = PhonePool.model_validate({**pool, "metadata": {"name": "client-acme", "uid": "u"}})
    assert parsed.spec.max_running == 40
    assert parsed.spec.on_revoke == "Stop"


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"maxRunning": -1}, id="negative-maxRunning"),
        pytest.param({"onRevoke": "Delete"}, id="onRevoke"),
        pytest.param({"replicas": 2}, id="unknown-field"),
        pytest.param({"account": "Shop_B"}, id="account-not-a-dns-label"),
        pytest.param({"account": "a" * 33}, id="account-too-long"),
        pytest.param(
            {"namespaces": {"selector": {"matchExpressions": [{"key": "a", "operator": "Is"}]}}},
            id="selector-operator",
        ),
    ],
)
def test_crd_and_model_reject_the_same_bad_pools(spec: dict[str, Any]) -> None:
    """A bad pool fails the CRD schema (as kubectl apply would) and the model alike."""
    pool = make_pool(**spec)

    assert validation_errors(pool, schema_of(load(POOL_CRD))) != []
    with pytest.raises(ValueError, match="validation error"):
        PhonePoolSpec.model_validate(pool["spec"])


def test_a_pool_without_phones_is_refused_by_the_model_and_a_cel_rule() -> None:
    """No group, tag or pattern selects nothing: a mistake, refused on both sides."""
    phones = schema_of(load(POOL_CRD))["properties"]["spec"]["properties"]["phones"]
    (rule,) = phones["x-kubernetes-validations"]

    assert "serialNames" in rule["rule"]
    with pytest.raises(ValueError, match="at least one group, tag or serialName"):
        PhonePoolSpec.model_validate({"phones": {}})


def test_a_pool_without_an_account_is_the_default_accounts_and_its_account_is_set_once() -> None:
    """Pools made before pools named their account stay valid and belong to ``default``; a CEL
    transition rule lets an unset account be set once and never changed or unset afterwards."""
    pool = make_pool()
    spec = schema_of(load(POOL_CRD))["properties"]["spec"]
    (rule,) = spec["x-kubernetes-validations"]

    assert validation_errors(pool, schema_of(load(POOL_CRD))) == []
    assert PhonePoolSpec.model_validate(pool["spec"]).account_name == "default"
    assert PhonePoolSpec.model_validate({**pool["spec"], "account": "shop-b"}).account_name == (
        "shop-b"
    )
    assert "default" not in spec["properties"]["account"]  # unset stays unset: set-once works
    assert rule["rule"] == (
        "!has(oldSelf.account) || (has(self.account) && self.account == oldSelf.account)"
    )
