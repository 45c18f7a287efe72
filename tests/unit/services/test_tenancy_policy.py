"""The tenancy policy: which pool a phone is in, who may bind it, with which images."""

from __future__ import annotations

from typing import Any

import pytest

from phonefleet_operator.geelark import Phone
from phonefleet_operator.models import PhonePool
from phonefleet_operator.services.tenancy.policy import (
    ANOTHER_NAMESPACE,
    Allowed,
    Forbidden,
    ImageOverrides,
    Misconfigured,
    Rule,
    conflict_for_reader,
    evaluate,
    holder_for_reader,
    not_available,
)


def make_pool(name: str = "acme", **spec: Any) -> PhonePool:
    """A parsed pool; ``spec`` in camelCase overrides a pool of group acme for namespace acme."""
    body = {
        "metadata": {"name": name, "uid": f"uid-{name}"},
        "spec": {
            "phones": {"groups": ["acme"]},
            "namespaces": {"names": ["acme"]},
            **spec,
        },
    }
    return PhonePool.from_body(body)


def make_phone(**fields: Any) -> Phone:
    """A Geelark phone of group "other" unless told."""
    return Phone.model_validate({"id": "600000000000000001", "serialName": "p-1", **fields})


def judge(
    phone: Phone,
    pools: list[PhonePool],
    *,
    namespace: str = "acme",
    labels: dict[str, str] | None = None,
    images: ImageOverrides | None = None,
    require: bool = False,
) -> Any:
    """``evaluate`` with defaults: namespace acme, no labels, no overrides, pools optional."""
    return evaluate(
        namespace=namespace,
        labels=labels,
        reference="p-1",
        phone=phone,
        images=images or ImageOverrides(),
        pools=pools,
        require_pools=require,
    )


@pytest.mark.parametrize(
    ("phones", "fields"),
    [
        ({"groups": ["acme"]}, {"group": {"name": "acme"}}),
        ({"tags": ["acme-ig"]}, {"tags": [{"name": "x"}, {"name": "acme-ig"}]}),
        ({"serialNames": ["acme-*"]}, {"serialName": "acme-042"}),
        ({"serialNames": ["acme-0[0-4]?"]}, {"serialName": "acme-042"}),
    ],
    ids=["group", "tag", "serialName glob", "serialName class"],
)
def test_a_phone_belongs_to_a_pool_by_group_tag_or_pattern(
    phones: dict[str, Any], fields: dict[str, Any]
) -> None:
    """Any one of the pool's Geelark attributes is enough."""
    verdict = judge(make_phone(**fields), [make_pool(phones=phones)])

    assert isinstance(verdict, Allowed)
    assert verdict.pool is not None
    assert verdict.pool.name == "acme"


def test_a_phone_in_no_pool_is_free_unless_pools_are_required() -> None:
    """Without require_pools a phone of no pool is anyone's; with it, nobody's."""
    phone = make_phone(group={"name": "elsewhere"})

    assert judge(phone, [make_pool()]) == Allowed()
    assert judge(phone, [make_pool()], require=True) == not_available("p-1", "acme")


def test_another_tenants_phone_and_a_missing_phone_read_the_same() -> None:
    """Refusing a phone of another pool tells exactly what "no such phone" tells: nothing."""
    other = judge(make_phone(group={"name": "acme"}), [make_pool()], namespace="globex")

    assert isinstance(other, Forbidden)
    assert other.rule is Rule.NOT_AVAILABLE
    assert other.message == not_available("p-1", "globex").message
    assert "acme" not in other.message
    assert "600000000000000001" not in other.message


def test_the_refusal_of_an_unavailable_phone_says_what_to_do() -> None:
    """The namespace's user learns the two ways out: another phoneId, or a pool from an admin."""
    message = not_available("p-1", "globex").message

    assert message.endswith(
        ": correct spec.phoneId, or ask a cluster administrator for a PhonePool that offers it "
        "to this namespace"
    )


@pytest.mark.parametrize(
    ("selector", "labels", "allowed"),
    [
        ({"matchLabels": {"client": "acme"}}, {"client": "acme"}, True),
        ({"matchLabels": {"client": "acme"}}, {"client": "globex"}, False),
        (
            {"matchExpressions": [{"key": "client", "operator": "In", "values": ["a", "acme"]}]},
            {"client": "acme"},
            True,
        ),
        (
            {"matchExpressions": [{"key": "client", "operator": "NotIn", "values": ["acme"]}]},
            {"client": "acme"},
            False,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": "x"}, False),
        ({}, {}, True),
    ],
    ids=["labels", "other-labels", "In", "NotIn", "Exists", "DoesNotExist", "empty"],
)
def test_namespaces_are_chosen_by_label_selector(
    selector: dict[str, Any], labels: dict[str, str], allowed: bool
) -> None:
    """Kubernetes label-selector semantics, for namespaces not listed by name."""
    pool = make_pool(namespaces={"selector": selector})
    verdict = judge(make_phone(group={"name": "acme"}), [pool], namespace="ns", labels=labels)

    assert isinstance(verdict, Allowed) is allowed


def test_a_phone_in_two_pools_is_misconfigured() -> None:
    """No silent precedence: both pools are named (to the operator, not the tenant)."""
    pools = [make_pool("acme"), make_pool("acme-too", phones={"serialNames": ["p-*"]})]

    verdict = judge(make_phone(group={"name": "acme"}), pools)

    assert verdict == Misconfigured(("acme", "acme-too"))


@pytest.mark.parametrize(
    ("images", "allowed"),
    [
        (ImageOverrides(), True),
        (ImageOverrides(worker="registry.example/acme/bot:1"), True),
        (ImageOverrides(worker="registry.example/evil/bot:1"), False),
        (ImageOverrides(appium="appium/appium:v2"), True),
        (ImageOverrides(appium="evil/appium:v2"), False),
    ],
    ids=["defaults", "worker-ok", "worker-refused", "appium-ok", "appium-refused"],
)
def test_image_overrides_must_match_the_pools_patterns(
    images: ImageOverrides, allowed: bool
) -> None:
    """The operator's default images always pass; an override must match a pattern."""
    pool = make_pool(images={"worker": ["registry.example/acme/*"], "appium": ["appium/appium:*"]})

    verdict = judge(make_phone(group={"name": "acme"}), [pool], images=images)

    assert isinstance(verdict, Allowed) is allowed
    if not allowed:
        assert isinstance(verdict, Forbidden)
        assert verdict.rule is Rule.IMAGE_NOT_ALLOWED


def test_no_pattern_means_no_override() -> None:
    """A pool without image patterns allows only the operator's defaults."""
    verdict = judge(
        make_phone(group={"name": "acme"}), [make_pool()], images=ImageOverrides(worker="x")
    )

    assert isinstance(verdict, Forbidden)
    assert "only the operator's default" in verdict.message


def test_holders_are_named_only_to_their_own_namespace() -> None:
    """conflictWith and messages name a binding of the reader's namespace, no other."""
    assert conflict_for_reader("acme", "acme/first") == "acme/first"
    assert conflict_for_reader("acme", "globex/first") == ANOTHER_NAMESPACE
    assert holder_for_reader("acme", "acme/first") == "binding acme/first"
    assert holder_for_reader("acme", "globex/first") == ANOTHER_NAMESPACE
