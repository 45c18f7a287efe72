"""The CLI's tenancy parts: each phone's pool for `phones list`, and `bindings validate` with
PhonePool manifests (offline by patterns, with resolved phones exactly as the operator)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from phonefleet_operator.geelark import Phone
from phonefleet_operator.models import PhoneBindingSpec
from phonefleet_operator.services.tenancy.listing import parse_pools, pool_of
from phonefleet_operator.services.tenancy.validation import check_pools, read_pool_documents

POOLS = """
apiVersion: phonefleet.dev/v1alpha1
kind: PhonePool
metadata: {name: client-acme}
spec:
  phones: {groups: [acme], serialNames: ["acme-*"]}
  namespaces: {selector: {matchLabels: {client: acme}}}
  images: {worker: ["registry.example/acme/*"]}
---
apiVersion: phonefleet.dev/v1alpha1
kind: PhonePool
metadata: {name: client-globex}
spec:
  phones: {tags: [globex-ig], serialNames: ["gx-*", "acme-9*"]}
  namespaces: {names: [globex]}
---
apiVersion: v1
kind: Namespace
metadata: {name: acme, labels: {client: acme}}
"""


@dataclass(frozen=True)
class Doc:
    """A binding as `bindings validate` read it."""

    source: str
    namespace: str | None
    spec: PhoneBindingSpec | None


def doc(namespace: str | None, phone: str, **spec: object) -> Doc:
    """A valid binding of ``phone`` in ``namespace``."""
    return Doc(
        f"{namespace}/{phone}",
        namespace,
        PhoneBindingSpec.model_validate({"phoneId": phone, **spec}),
    )


def test_pool_of_names_the_pool_none_or_both() -> None:
    """POOL: the pool's name, <none>, or both names for a phone in two pools."""
    pools = parse_pools(d for d in yaml.safe_load_all(POOLS) if d["kind"] == "PhonePool")
    pools = parse_pools(
        {**p, "metadata": {"name": p["metadata"]["name"], "uid": "u"}}
        for p in yaml.safe_load_all(POOLS)
        if p["kind"] == "PhonePool"
    )

    assert pool_of(Phone(id="1", serial_name="x", group_name="acme"), pools) == "client-acme"
    assert pool_of(Phone(id="2", serial_name="y"), pools) == "<none>"
    assert pool_of(Phone(id="3", serial_name="acme-90"), pools) == "client-acme+client-globex"


def test_offline_the_patterns_decide() -> None:
    """A name two pools' patterns match, a namespace the pool refuses, an image outside the
    patterns; a namespace without a manifest is not judged by a label selector."""
    documents = read_pool_documents([("pools.yaml", POOLS)])
    bindings = [
        doc("acme", "acme-01"),
        doc("globex", "acme-02"),
        doc("acme", "acme-90"),
        doc("acme", "acme-03", worker={"image": "evil/bot"}),
        doc("staging", "acme-04"),
        doc("globex", "p-unknown"),
    ]

    problems = {p.source: p.message for p in check_pools(bindings, documents)}

    assert set(problems) == {"acme/acme-90", "acme/acme-03"}
    assert "client-acme, client-globex" in problems["acme/acme-90"]
    assert "evil/bot" in problems["acme/acme-03"]
    assert documents.namespaces == {"acme": {"client": "acme"}}


def test_with_resolved_phones_groups_and_namespaces_decide() -> None:
    """Resolved phones are judged as the operator judges them (labels from the manifests)."""
    globex = "apiVersion: v1\nkind: Namespace\nmetadata: {name: globex, labels: {client: globex}}"
    documents = read_pool_documents([("pools.yaml", POOLS), ("ns.yaml", globex)])
    phones = {
        "p-1": Phone(id="1", serial_name="p-1", group_name="acme"),
        "p-2": Phone(id="2", serial_name="p-2", tags=("globex-ig",)),
    }
    bindings = [doc("acme", "p-1"), doc("globex", "p-1"), doc("globex", "p-2")]

    problems = {p.source: p.message for p in check_pools(bindings, documents, phones=phones)}

    assert set(problems) == {"globex/p-1"}
    assert "(PhonePool client-acme)" in problems["globex/p-1"]


def test_an_invalid_pool_is_a_problem_of_its_own() -> None:
    """A pool the CRD would refuse is reported where it was written."""
    bad = "kind: PhonePool\nmetadata: {name: bad}\nspec: {phones: {}}\n"

    documents = read_pool_documents([("bad.yaml", bad)])

    assert documents.pools == []
    (problem,) = documents.problems
    assert str(problem).startswith("bad.yaml:0 (PhonePool bad): spec.phones: ")


SHOP_B = """
apiVersion: phonefleet.dev/v1alpha1
kind: PhonePool
metadata: {name: shop-b-acme}
spec:
  account: shop-b
  phones: {serialNames: ["acme-*"]}
  namespaces: {names: [team-b]}
"""


def test_another_accounts_pools_neither_show_in_pool_nor_judge_bindings() -> None:
    """A pool of account shop-b matching the same serialNames is no overlap for the default
    account's phones and refuses none of its bindings; with --account shop-b, it alone judges."""
    bodies = [
        {**p, "metadata": {"name": p["metadata"]["name"], "uid": "u"}}
        for p in yaml.safe_load_all(POOLS + "---" + SHOP_B)
        if p["kind"] == "PhonePool"
    ]
    phone = Phone(id="1", serial_name="acme-01", group_name="acme")
    texts = [("pools.yaml", POOLS + "---" + SHOP_B)]
    default = read_pool_documents(texts)
    shop_b = read_pool_documents(texts, "shop-b")
    binding = doc("acme", "acme-01")

    assert pool_of(phone, parse_pools(bodies)) == "client-acme"
    assert pool_of(phone, parse_pools(bodies, "shop-b")) == "shop-b-acme"
    assert [p.name for p in default.pools] == ["client-acme", "client-globex"]
    assert check_pools([binding], default, phones={"acme-01": phone}) == []
    (refused,) = check_pools([binding], shop_b, phones={"acme-01": phone})
    assert "namespace acme" in refused.message
