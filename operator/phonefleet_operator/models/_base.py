"""Base classes of our models: camelCase on the wire, snake_case in Python, strict or lenient."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["SpecModel", "StatusModel"]


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
