"""The pure tenancy policy: which pool a phone is in, who may bind it, with which images.

Nothing here does I/O. ``evaluate`` takes a binding's namespace and labels, the phone, the image
overrides and every pool, and answers Allowed, Forbidden (naming the rule) or Misconfigured (a
phone in two pools). Messages meant for the binding's namespace never say whether a phone it may
not use exists, nor which pool or namespace has it: every such refusal reads the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase

from phonefleet_operator.geelark import Phone
from phonefleet_operator.models import LabelSelector, NamespaceSelector, PhonePool, PhoneSelector

__all__ = [
    "ANOTHER_NAMESPACE",
    "Allowed",
    "Forbidden",
    "ImageOverrides",
    "Misconfigured",
    "Rule",
    "Verdict",
    "conflict_for_reader",
    "evaluate",
    "holder_for_reader",
    "image_problems",
    "matches_namespace",
    "matches_phone",
    "not_available",
    "pools_of",
]

#: What a reader is told about a binding in a namespace other than its own.
ANOTHER_NAMESPACE = "a binding in another namespace"


class Rule(StrEnum):
    """Why the policy refused a binding: the reason of its Admitted condition."""

    NOT_AVAILABLE = "PhoneNotAvailable"
    """The phone is in no pool this namespace may use, or does not exist (one answer for both)."""
    IMAGE_NOT_ALLOWED = "ImageNotAllowed"
    """An image override is outside the pool's patterns."""
    POOLS_OVERLAP = "PoolsOverlap"
    """The phone matches more than one pool: an administrator must fix the pools."""
    ANOTHER_ACCOUNT = "PoolOfAnotherAccount"
    """Not available here, and a pool of another Geelark account offers this namespace phones:
    its operator, not this namespace's, would bind them."""


@dataclass(frozen=True)
class ImageOverrides:
    """The images a binding asks for instead of the operator's defaults (None: the default)."""

    worker: str | None = None
    appium: str | None = None


@dataclass(frozen=True)
class Allowed:
    """The binding may hold the phone; ``pool`` is None for a phone in no pool (pools optional)."""

    pool: PhonePool | None = None


@dataclass(frozen=True)
class Forbidden:
    """The binding may not hold the phone; ``message`` is safe to show its namespace."""

    rule: Rule
    message: str
    #: The pool the phone is in, when there is exactly one (for onRevoke; never shown).
    pool: PhonePool | None = None


@dataclass(frozen=True)
class Misconfigured:
    """The phone matches several pools: it is bound by nobody until an administrator fixes them."""

    pools: tuple[str, ...]


Verdict = Allowed | Forbidden | Misconfigured


def matches_phone(selector: PhoneSelector, phone: Phone) -> bool:
    """The phone is in the selector's groups, carries one of its tags, or matches a pattern."""
    if phone.group_name and phone.group_name in selector.groups:
        return True
    if any(tag in selector.tags for tag in phone.tags):
        return True
    return any(fnmatchcase(phone.serial_name, pattern) for pattern in selector.serial_names)


def matches_labels(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector semantics: every matchLabels pair and expression holds."""
    if any(labels.get(key) != value for key, value in selector.match_labels.items()):
        return False
    for requirement in selector.match_expressions:
        present = requirement.key in labels
        value = labels.get(requirement.key)
        holds = {
            "In": present and value in requirement.values,
            "NotIn": not present or value not in requirement.values,
            "Exists": present,
            "DoesNotExist": not present,
        }[requirement.operator]
        if not holds:
            return False
    return True


def matches_namespace(
    selector: NamespaceSelector, namespace: str, labels: Mapping[str, str] | None
) -> bool:
    """The namespace is listed, or its labels (None: unknown) satisfy the selector."""
    if namespace in selector.names:
        return True
    return selector.selector is not None and matches_labels(selector.selector, labels or {})


def pools_of(phone: Phone, pools: Iterable[PhonePool]) -> list[PhonePool]:
    """Every pool the phone belongs to (more than one is a configuration error)."""
    return [pool for pool in pools if matches_phone(pool.spec.phones, phone)]


def not_available(reference: str, namespace: str) -> Forbidden:
    """The one refusal for "not yours" and "does not exist": it tells the reader nothing more."""
    return Forbidden(
        Rule.NOT_AVAILABLE,
        f"No phone {reference!r} is available to namespace {namespace}: it is in no PhonePool "
        "this namespace may use, or it does not exist: correct spec.phoneId, or ask a cluster "
        "administrator for a PhonePool that offers it to this namespace",
    )


def image_problems(pool: PhonePool, images: ImageOverrides) -> list[str]:
    """What is wrong with the image overrides under ``pool``'s patterns (empty: nothing)."""
    allowed = pool.spec.images
    problems = []
    for field, image, patterns in (
        ("spec.worker.image", images.worker, allowed.worker),
        ("spec.appium.image", images.appium, allowed.appium),
    ):
        if image is not None and not any(fnmatchcase(image, p) for p in patterns):
            shown = ", ".join(patterns) if patterns else "none: only the operator's default"
            problems.append(f"{field} {image!r} is not allowed by PhonePool {pool.name} ({shown})")
    return problems


def evaluate(
    *,
    namespace: str,
    labels: Mapping[str, str] | None,
    reference: str,
    phone: Phone,
    images: ImageOverrides,
    pools: Sequence[PhonePool],
    require_pools: bool,
) -> Verdict:
    """May the binding in ``namespace`` (with ``labels``) hold ``phone`` with these images?

    ``reference`` is what the binding wrote (spec.phoneId): refusals name the phone that way
    only, so they reveal no id or serialName the binding did not already know.
    """
    found = pools_of(phone, pools)
    if len(found) > 1:
        return Misconfigured(tuple(sorted(pool.name for pool in found)))
    if not found:
        return not_available(reference, namespace) if require_pools else Allowed()
    (pool,) = found
    if not matches_namespace(pool.spec.namespaces, namespace, labels):
        refusal = not_available(reference, namespace)
        return Forbidden(refusal.rule, refusal.message, pool)
    problems = image_problems(pool, images)
    if problems:
        return Forbidden(Rule.IMAGE_NOT_ALLOWED, "; ".join(problems), pool)
    return Allowed(pool)


def conflict_for_reader(reader_namespace: str, holder: str) -> str:
    """``holder`` (namespace/name) as status.conflictWith shows it to ``reader_namespace``."""
    namespace, _, _ = holder.partition("/")
    return holder if namespace == reader_namespace else ANOTHER_NAMESPACE


def holder_for_reader(reader_namespace: str, holder: str) -> str:
    """``holder`` (namespace/name) as messages to ``reader_namespace`` name it."""
    shown = conflict_for_reader(reader_namespace, holder)
    return shown if shown == ANOTHER_NAMESPACE else f"binding {holder}"
