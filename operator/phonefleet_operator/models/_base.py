"""Base classes of our models: camelCase on the wire, snake_case in Python, strict or lenient;
and the shape every resource shares (parsed from a body, a missing status read as empty, the
metadata the operator reads, and a namespaced object's name, namespace and uid)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "NamespacedMeta",
    "NamespacedResource",
    "ObjectMeta",
    "Resource",
    "SpecModel",
    "StatusModel",
    "plain",
]


class _CamelModel(BaseModel):
    """A model read and written with camelCase keys, also built from snake_case names in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
    )

    def to_dict(self) -> dict[str, Any]:
        """This model as Kubernetes JSON: camelCase keys, unset (None) fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class SpecModel(_CamelModel):
    """Input a person wrote: an unknown key is a mistake, so it is rejected (like the CRD does)."""

    model_config = ConfigDict(extra="forbid")


class StatusModel(_CamelModel):
    """Data we or Kubernetes wrote: keys we do not know are ignored, so old and new versions mix."""

    model_config = ConfigDict(extra="ignore")


class Resource(StatusModel):
    """An object as the API server returns it: metadata, spec and (where it has one) status."""

    @field_validator("status", mode="before", check_fields=False)
    @classmethod
    def _missing_status_is_empty(cls, value: object) -> object:
        return {} if value is None else value

    #: Whether :meth:`from_body` copies the body first. Validation builds new containers for
    #: typed fields (a ``list[str]``, a ``dict[str, str]``), so a model shares nothing mutable
    #: with its body; only a free-form field (``Any`` values) would keep the body's own nested
    #: objects, and a model with one sets this. Copying every body was a tenth of a reconcile
    #: pass's CPU (docs/scale.md, Round 4b).
    _copies_body: ClassVar[bool] = False

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Self:
        """Parse a body as kopf or the API returns it (any nested Mapping; unknown keys ignored)."""
        return cls.model_validate(plain(body) if cls._copies_body else body)


class ObjectMeta(StatusModel):
    """The parts of an object's metadata the operator reads."""

    name: str = Field(description="Name of the object.")
    uid: str = Field(description="Unique id Kubernetes gave this incarnation of the object.")
    generation: int | None = Field(None, description="Sequence number of spec changes.")
    creation_timestamp: datetime | None = Field(None, description="When the object was created.")
    deletion_timestamp: datetime | None = Field(
        None, description="When deletion was requested; set while finalizers run."
    )


class NamespacedMeta(ObjectMeta):
    """Metadata of a namespaced object."""

    namespace: str = Field(description="Namespace of the object.")


class NamespacedResource(Resource):
    """A namespaced object (a PhoneBinding, a PhoneJob), named as Events, logs and
    ``status.conflictWith`` name it."""

    metadata: NamespacedMeta = Field(description="Identity of the object.")

    @property
    def name(self) -> str:
        """The object's name."""
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """The object's namespace."""
        return self.metadata.namespace

    @property
    def uid(self) -> str:
        """The object's uid."""
        return self.metadata.uid

    @property
    def namespaced_name(self) -> str:
        """``namespace/name``."""
        return f"{self.metadata.namespace}/{self.metadata.name}"


def plain(value: Any) -> Any:
    """A deep copy of ``value`` made of dicts and lists, from any nested Mappings and sequences."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value
