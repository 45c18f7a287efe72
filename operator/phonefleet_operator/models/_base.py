"""Base classes of our models: camelCase on the wire, snake_case in Python, strict or lenient;
and the shape every resource shares (parsed from a body, a missing status read as empty)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

__all__ = ["Resource", "SpecModel", "StatusModel", "plain"]


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

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Self:
        """Parse a body as kopf or the API returns it (any nested Mapping; unknown keys ignored)."""
        return cls.model_validate(plain(body))


def plain(value: Any) -> Any:
    """A deep copy of ``value`` made of dicts and lists, from any nested Mappings and sequences."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value
