"""The PhonePool resource: which phones a pool holds, who may bind them, with which images, and
how many may run at once (cluster-scoped; written by cluster administrators)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from phonefleet_operator.constants import DEFAULT_ACCOUNT

from ._base import Resource, SpecModel, StatusModel
from ._binding import ObjectMeta
from ._conditions import Condition

__all__ = [
    "ImagePatterns",
    "LabelSelector",
    "LabelSelectorRequirement",
    "NamespaceSelector",
    "OnRevoke",
    "PhonePool",
    "PhonePoolSpec",
    "PhonePoolStatus",
    "PhoneSelector",
    "PoolHolder",
]

OnRevoke = Literal["Keep", "Stop"]


class PhoneSelector(SpecModel):
    """Which Geelark phones belong to the pool: a phone matching any entry does."""

    groups: list[str] = Field(
        default_factory=list, description="Geelark group names; a phone in any of them belongs."
    )
    tags: list[str] = Field(
        default_factory=list, description="Geelark tag names; a phone with any of them belongs."
    )
    serial_names: list[str] = Field(
        default_factory=list,
        description=(
            "serialName patterns (shell-style: * any run of characters, ? one, [a-z] one of); "
            "a phone whose serialName matches any of them belongs."
        ),
    )


class LabelSelectorRequirement(SpecModel):
    """One requirement of a label selector, as in metav1.LabelSelectorRequirement."""

    key: str = Field(min_length=1, description="The label key the requirement applies to.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the key relates to the values: In, NotIn, Exists or DoesNotExist."
    )
    values: list[str] = Field(
        default_factory=list,
        description="Values for In and NotIn (non-empty there); empty for Exists and DoesNotExist.",
    )


class LabelSelector(SpecModel):
    """A label selector, as in metav1.LabelSelector; all its requirements must hold."""

    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels the namespace must carry with these values."
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Further requirements on the namespace's labels."
    )


class NamespaceSelector(SpecModel):
    """Which namespaces may bind the pool's phones: listed by name, or chosen by labels."""

    names: list[str] = Field(default_factory=list, description="Namespaces allowed by name.")
    selector: LabelSelector | None = Field(
        None,
        description=(
            "Namespaces allowed by their labels (an empty selector allows every namespace)."
        ),
    )


class ImagePatterns(SpecModel):
    """Which image overrides may receive the pool's phones' ADB data; the operator's own default
    images are always allowed. No pattern: no override is allowed."""

    worker: list[str] = Field(
        default_factory=list,
        description="Patterns (shell-style) that spec.worker.image of a binding must match.",
    )
    appium: list[str] = Field(
        default_factory=list,
        description="Patterns (shell-style) that spec.appium.image of a binding must match.",
    )


class PhonePoolSpec(SpecModel):
    """What an administrator declares: phones, namespaces, images, and a running limit."""

    account: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$",
        description=(
            "The Geelark account whose phones the pool holds (the PHONEFLEET_ACCOUNT of the "
            "operator that serves it); unset: the account default. Only that account's operator "
            "judges bindings by the pool and writes its status. Set once: it cannot change later."
        ),
    )
    phones: PhoneSelector = Field(description="Which Geelark phones belong to the pool.")
    namespaces: NamespaceSelector = Field(
        default_factory=NamespaceSelector,
        description="Which namespaces may bind the pool's phones (none when empty).",
    )
    images: ImagePatterns = Field(
        default_factory=ImagePatterns,
        description="Image overrides allowed for bindings of the pool's phones.",
    )
    max_running: int | None = Field(
        None,
        ge=0,
        description=(
            "At most this many bindings of the pool's phones admitted at once (suspended ones do "
            "not count); the rest wait in phase Queued, oldest first. Unset: no limit."
        ),
    )
    on_revoke: OnRevoke = Field(
        "Keep",
        description=(
            "What happens to running workers of a namespace that loses access: Keep leaves them "
            "running (with a PoolAccessRevoked condition), Stop releases their phones."
        ),
    )

    @property
    def account_name(self) -> str:
        """The account the pool belongs to (``default`` when unset)."""
        return self.account or DEFAULT_ACCOUNT

    @field_validator("phones")
    @classmethod
    def _selects_something(cls, phones: PhoneSelector) -> PhoneSelector:
        if not (phones.groups or phones.tags or phones.serial_names):
            raise ValueError("a pool names at least one group, tag or serialName pattern")
        return phones


class PoolHolder(StatusModel):
    """A binding admitted under the pool's running limit."""

    namespace: str = Field(description="Namespace of the binding.")
    name: str = Field(description="Name of the binding.")
    uid: str = Field(description="uid of the binding.")


class PhonePoolStatus(StatusModel):
    """What the operator last observed about a pool; every field may be missing."""

    phones: int | None = Field(None, ge=0, description="Geelark phones matching the pool.")
    bound: int | None = Field(
        None, ge=0, description="Bindings holding a phone of the pool (running or not)."
    )
    running: int | None = Field(
        None, ge=0, description="Bindings admitted under maxRunning now (the length of holders)."
    )
    namespaces: str | None = Field(
        None, description="The namespaces that may bind the pool's phones now, comma-separated."
    )
    holders: list[PoolHolder] = Field(
        default_factory=list,
        description=(
            "The bindings counted against maxRunning. The operator changes this list only with "
            "the resourceVersion it read, so the API server refuses a write that would race."
        ),
    )
    overlapping: list[str] = Field(
        default_factory=list,
        description="Ids of phones that also match another pool (never bound until fixed).",
    )
    observed_generation: int | None = Field(
        None, ge=0, description="The metadata.generation this status was computed from."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Latest observations of the pool's state."
    )


class PhonePool(Resource):
    """A PhonePool as the API server returns it."""

    metadata: ObjectMeta = Field(description="Identity of the pool.")
    spec: PhonePoolSpec = Field(description="What the pool declares.")
    status: PhonePoolStatus = Field(
        default_factory=PhonePoolStatus, description="What the operator last observed."
    )

    @property
    def name(self) -> str:
        """The pool's name."""
        return self.metadata.name
