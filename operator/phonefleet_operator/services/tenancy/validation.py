"""``phonefleet bindings validate`` with PhonePool manifests: would the pools admit the bindings?

Offline (no Geelark) a phone is known only by what the binding wrote, so the check is what can be
decided from serialName patterns: a phone matching two pools' patterns, a namespace a matching
pool does not allow, an image outside its patterns. With Geelark, each phone is resolved (one
listing of the account) and judged exactly as the operator will judge it. Namespaces' labels come
from Namespace documents among the manifests; a pool choosing namespaces by labels is not
judged for a namespace whose manifest is not among them.
These messages are for the repository's owners and name pools freely.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Protocol

import yaml
from pydantic import ValidationError

from phonefleet_operator.constants import DEFAULT_ACCOUNT
from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.geelark import Phone
from phonefleet_operator.models import PhoneBindingSpec, PhonePool
from phonefleet_operator.services.assignments import Problem
from phonefleet_operator.services.ports import PhoneDirectory
from phonefleet_operator.services.tenancy.policy import (
    Forbidden,
    ImageOverrides,
    Misconfigured,
    Rule,
    evaluate,
    image_problems,
    matches_namespace,
)

__all__ = [
    "BindingDocument",
    "PoolDocuments",
    "check_pools",
    "read_pool_documents",
    "resolve_refs",
]


class BindingDocument(Protocol):
    """A PhoneBinding as ``bindings validate`` read it."""

    @property
    def source(self) -> str: ...
    @property
    def namespace(self) -> str | None: ...
    @property
    def spec(self) -> PhoneBindingSpec | None: ...


@dataclass
class PoolDocuments:
    """The PhonePools and Namespaces found among the manifests."""

    pools: list[PhonePool] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _kind(document: Any) -> str | None:
    return document.get("kind") if isinstance(document, dict) else None


def read_pool_documents(
    texts: Iterable[tuple[str, str]], account: str = DEFAULT_ACCOUNT
) -> PoolDocuments:
    """Pools of ``account`` and namespaces of every (path, text); an invalid pool (of any
    account) is a problem of its own. Another account's pools are its operator's: they judge
    none of this account's bindings."""
    found = PoolDocuments()
    for path, text in texts:
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            continue  # reported once already, by the bindings' reading
        for index, document in enumerate(documents):
            kind = _kind(document)
            if kind == "Namespace":
                metadata = document.get("metadata") or {}
                found.namespaces[str(metadata.get("name"))] = dict(metadata.get("labels") or {})
            elif kind == "PhonePool":
                name = (document.get("metadata") or {}).get("name")
                body = {**document, "metadata": {"name": name, "uid": "-"}}
                try:
                    pool = PhonePool.from_body(body)
                except ValidationError as error:
                    first = error.errors()[0]
                    where = ".".join(map(str, first["loc"]))
                    found.problems.append(
                        Problem(f"{path}:{index} (PhonePool {name})", f"{where}: {first['msg']}")
                    )
                else:
                    if pool.spec.account_name == account:
                        found.pools.append(pool)
    return found


def check_pools(
    bindings: Sequence[BindingDocument],
    documents: PoolDocuments,
    *,
    phones: Mapping[str, Phone] | None = None,
    require_pools: bool = False,
) -> list[Problem]:
    """What the pools would refuse; ``phones`` (by the ref each binding wrote) when resolved."""
    if not documents.pools:
        return []
    problems = []
    for binding in bindings:
        spec = binding.spec
        if spec is None:
            continue
        phone = (phones or {}).get(spec.phone_id)
        message = (
            _judge(binding, spec, phone, documents, require_pools)
            if phone is not None
            else _judge_offline(binding, spec, documents)
        )
        if message:
            problems.append(Problem(binding.source, message))
    return problems


def _images(spec: PhoneBindingSpec) -> ImageOverrides:
    return ImageOverrides(worker=spec.worker.image, appium=spec.appium.image)


def _judge(
    binding: BindingDocument,
    spec: PhoneBindingSpec,
    phone: Phone,
    documents: PoolDocuments,
    require_pools: bool,
) -> str | None:
    namespace = binding.namespace or ""
    verdict = evaluate(
        namespace=namespace,
        labels=documents.namespaces.get(namespace),
        reference=spec.phone_id,
        phone=phone,
        images=_images(spec),
        pools=documents.pools,
        require_pools=require_pools,
    )
    if isinstance(verdict, Misconfigured):
        return f"phone {spec.phone_id!r} is in more than one PhonePool: {', '.join(verdict.pools)}"
    if isinstance(verdict, Forbidden):
        pool = verdict.pool
        if (
            pool
            and _labels_unknown(pool, namespace, documents)
            and verdict.rule is Rule.NOT_AVAILABLE
        ):
            return None  # only the namespace's labels could tell, and no manifest gives them
        return f"{verdict.message}{f' (PhonePool {pool.name})' if pool else ''}"
    return None


def _labels_unknown(pool: PhonePool, namespace: str, documents: PoolDocuments) -> bool:
    return pool.spec.namespaces.selector is not None and namespace not in documents.namespaces


def _judge_offline(
    binding: BindingDocument, spec: PhoneBindingSpec, documents: PoolDocuments
) -> str | None:
    """Judged by serialName patterns only: the ref is taken as a serialName."""
    found = [
        pool
        for pool in documents.pools
        if any(fnmatchcase(spec.phone_id, p) for p in pool.spec.phones.serial_names)
    ]
    if len(found) > 1:
        names = ", ".join(sorted(pool.name for pool in found))
        return f"phone {spec.phone_id!r} matches the serialName patterns of PhonePools {names}"
    if not found:
        return None  # its group or tags (or its id) decide: only Geelark can say
    (pool,) = found
    namespace = binding.namespace
    if (
        namespace
        and not _labels_unknown(pool, namespace, documents)
        and not matches_namespace(
            pool.spec.namespaces, namespace, documents.namespaces.get(namespace)
        )
    ):
        return f"namespace {namespace} may not bind phones of PhonePool {pool.name}"
    return "; ".join(image_problems(pool, _images(spec))) or None


async def resolve_refs(refs: Iterable[str], directory: PhoneDirectory) -> dict[str, Phone]:
    """The phone of each ref Geelark resolves (not found and ambiguous ones are left out: the
    Geelark check reports them)."""
    phones = {}
    for ref in dict.fromkeys(refs):
        try:
            phones[ref] = await directory.resolve(ref)
        except PhonefleetError:
            continue
    return phones
