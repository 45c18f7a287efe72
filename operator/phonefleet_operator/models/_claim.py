"""The PhoneClaim resource: the cluster-wide lock that says which binding holds a phone."""

from __future__ import annotations

from pydantic import Field

from ._base import ObjectMeta, Resource, SpecModel
from ._binding import ReleasePolicy

__all__ = ["Holder", "PhoneClaim", "PhoneClaimSpec"]


class Holder(SpecModel):
    """The PhoneBinding that holds a phone."""

    namespace: str = Field(min_length=1, max_length=63, description="Namespace of the binding.")
    name: str = Field(min_length=1, max_length=253, description="Name of the binding.")
    uid: str = Field(
        min_length=1,
        max_length=64,
        description=(
            "uid of the binding: a binding deleted and created again under the same name is "
            "another holder."
        ),
    )

    @property
    def namespaced_name(self) -> str:
        """``namespace/name`` of the holder."""
        return f"{self.namespace}/{self.name}"


class PhoneClaimSpec(SpecModel):
    """Who holds which phone; set when the claim is created, and only releasePolicy ever changes (the holder keeps it current)."""  # noqa: E501 - the CRD's description, one line

    phone_id: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^\S+$",
        description="Canonical Geelark id of the phone.",
    )
    serial_name: str = Field(
        max_length=256,
        description="The phone's serialName when it was claimed (informational: names can change).",
    )
    holder: Holder = Field(description="The binding that holds the phone.")
    release_policy: ReleasePolicy = Field(
        "Stop",
        description=(
            "The holder's releasePolicy, kept current by the operator while the holder lives: "
            "what the operator does with the phone when it releases a claim whose holder no "
            "longer exists (Stop stops it)."
        ),
    )


class PhoneClaim(Resource):
    """A PhoneClaim as the API server returns it."""

    metadata: ObjectMeta = Field(description="Identity of the claim.")
    spec: PhoneClaimSpec = Field(description="Who holds which phone.")
