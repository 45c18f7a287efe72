"""The PhoneBinding resource: its spec (what a person asks for), status (what we saw) and body."""

from __future__ import annotations

import zoneinfo
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from ._base import NamespacedMeta, NamespacedResource, ObjectMeta, SpecModel, StatusModel
from ._conditions import Condition

__all__ = [
    "QUANTITY_PATTERN",
    "ContainerOverrides",
    "EnvVar",
    "JobsPolicy",
    "ObjectMeta",  # defined in _base; _pool.py imports it from here
    "Phase",
    "PhoneBinding",
    "PhoneBindingSpec",
    "PhoneBindingStatus",
    "PhoneInfo",
    "PhoneStatus",
    "Quantity",
    "ReleasePolicy",
    "Resources",
]

#: A Kubernetes resource quantity, as the OpenAPI schema of apimachinery's resource.Quantity has it.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _integer_to_string(value: object) -> object:
    # YAML turns `cpu: 1` into an integer; Kubernetes accepts it as a quantity, and so do we.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_integer_to_string),
    StringConstraints(pattern=QUANTITY_PATTERN),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A resource quantity such as ``500m``, ``1Gi`` or ``2``: string or integer, kept as a string."""

ReleasePolicy = Literal["Stop", "Keep"]


class Phase(StrEnum):
    """Where a binding stands, for people (``kubectl get pb``); conditions carry the details."""

    PENDING = "Pending"
    """Accepted; the phone is being looked up or claimed."""
    BOUND = "Bound"
    """The binding holds its phone's claim; the phone or the pod is being brought up."""
    RUNNING = "Running"
    """The phone runs and the worker pod is ready."""
    CONFLICT = "Conflict"
    """Another binding holds this phone (see status.conflictWith)."""
    PHONE_NOT_FOUND = "PhoneNotFound"
    """No Geelark phone has this id or serialName; checked again periodically."""
    SUSPENDED = "Suspended"
    """spec.suspend is true: no pod, the phone stopped, the claim kept."""
    ERROR = "Error"
    """Something only a person can fix; status.message says what."""
    FORBIDDEN = "Forbidden"
    """No PhonePool lets this namespace bind this phone (or run these images); no claim taken."""
    QUEUED = "Queued"
    """The phone's pool runs maxRunning bindings already; admitted oldest first."""


class PhoneStatus(StrEnum):
    """A phone's power state as the operator reports it in status.phone.status."""

    RUNNING = "Running"
    STARTING = "Starting"
    STOPPED = "Stopped"
    EXPIRED = "Expired"
    UNKNOWN = "Unknown"


class EnvVar(SpecModel):
    """An environment variable added to a container."""

    name: str = Field(
        min_length=1,
        pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$",
        description="Name of the variable; it replaces an operator variable of the same name.",
    )
    value: str = Field("", description="Value of the variable (plain text: use no secrets here).")


class Resources(SpecModel):
    """Compute resources of a container, as in a pod's resources field."""

    requests: dict[str, Quantity] = Field(
        default_factory=dict,
        description="Resources reserved for the container, such as cpu: 100m or memory: 256Mi.",
    )
    limits: dict[str, Quantity] = Field(
        default_factory=dict,
        description="Most the container may use, such as memory: 512Mi.",
    )


class ContainerOverrides(SpecModel):
    """Per-binding changes to one container of the worker pod; unset fields keep the defaults."""

    image: str | None = Field(
        None,
        min_length=1,
        description="Container image to run instead of the operator's default.",
    )
    resources: Resources | None = Field(
        None,
        description=(
            "Resources that replace the operator's defaults for this container as a whole "
            "(requests and limits together)."
        ),
    )
    args: list[str] = Field(
        default_factory=list,
        description="Extra arguments appended to the container's arguments.",
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        description="Extra environment variables for the container; each name at most once.",
    )

    @field_validator("env")
    @classmethod
    def _unique_env_names(cls, env: list[EnvVar]) -> list[EnvVar]:
        # The CRD declares env a list-map keyed by name, so the API server rejects duplicates too.
        names = [variable.name for variable in env]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"environment variables named more than once: {', '.join(duplicates)}")
        return env


class JobsPolicy(SpecModel):
    """How the binding's worker takes PhoneJobs."""

    max_per_day: int | None = Field(
        None,
        ge=1,
        description="Jobs started at most per calendar day in timeZone; unset: no cap.",
    )
    time_zone: str = Field(
        "UTC",
        min_length=1,
        max_length=64,
        description="IANA time zone whose midnight starts a new day for maxPerDay, such as UTC.",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as UTC)") from None
        return value


class PhoneBindingSpec(SpecModel):
    """What a person asks for: run a worker for this one phone."""

    phone_id: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^\S+$",
        description=(
            "The Geelark phone to bind: its id (a string of digits) or its exact serialName, "
            "without whitespace."
        ),
    )
    suspend: bool = Field(
        False,
        description="Stop the phone and remove the worker pod while keeping the phone reserved.",
    )
    release_policy: ReleasePolicy = Field(
        "Stop",
        description=(
            "What happens to the phone when the binding is deleted: Stop stops it (billing is per "
            "running minute), Keep leaves it running."
        ),
    )
    worker: ContainerOverrides = Field(
        default_factory=ContainerOverrides,
        description="Overrides for the worker container.",
    )
    appium: ContainerOverrides = Field(
        default_factory=ContainerOverrides,
        description="Overrides for the Appium server container.",
    )
    jobs: JobsPolicy = Field(
        default_factory=JobsPolicy,
        description="How the worker takes PhoneJobs: a daily cap and its time zone.",
    )


class PhoneInfo(StatusModel):
    """The Geelark phone a binding resolved to."""

    # Frozen, as Condition is: a pass replaces it (model_copy(update=)), so a status copied
    # shallowly shares it safely with the status it was copied from (services/report.py).
    model_config = ConfigDict(frozen=True)

    id: str | None = Field(None, description="Canonical Geelark phone id.")
    serial_name: str | None = Field(None, description="The phone's serialName in Geelark.")
    status: str | None = Field(
        None,
        description="Power state of the phone: Running, Starting, Stopped, Expired or Unknown.",
    )
    live_view_url: str | None = Field(
        None,
        description=(
            "Address of the phone's live view in Geelark; only with "
            "PHONEFLEET_GEELARK_LIVE_VIEW_IN_STATUS=true, as the link lets its reader control "
            "the phone."
        ),
    )
    adb_provisioned_at: str | None = Field(
        None,
        json_schema_extra={"format": "date-time"},
        description=(
            "When the operator last wrote the phone's ADB endpoint into the binding's Secret, for "
            "the phone's current power-on (unset while the phone is off or being re-provisioned)."
        ),
    )
    reference: str | None = Field(
        None,
        description=(
            "The spec.phoneId this id was resolved from; while it is unchanged the binding stays "
            "on this id even if the phone is renamed in Geelark."
        ),
    )


class PhoneBindingStatus(StatusModel):
    """What the operator last observed about a binding; every field may be missing."""

    phase: Phase | None = Field(None, description="Where the binding stands, in one word.")
    phone: PhoneInfo | None = Field(None, description="The Geelark phone the binding resolved to.")
    pod_name: str | None = Field(None, description="Name of the worker pod.")
    conflict_with: str | None = Field(
        None,
        description=(
            "namespace/name of the binding that holds the phone instead of this one; 'a binding "
            "in another namespace' when it is not in this binding's namespace."
        ),
    )
    pool: str | None = Field(None, description="The PhonePool the phone belongs to, if any.")
    queue_position: int | None = Field(
        None, ge=1, description="Place in the pool's queue while the phase is Queued (1: next)."
    )
    observed_generation: int | None = Field(
        None, ge=0, description="The metadata.generation this status was computed from."
    )
    message: str | None = Field(None, description="Human-readable summary of the state.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Latest observations of the binding's state; Ready summarises them.",
    )


class PhoneBinding(NamespacedResource):
    """A PhoneBinding as the API server returns it: metadata, spec and status."""

    metadata: NamespacedMeta = Field(description="Identity of the binding.")
    spec: PhoneBindingSpec = Field(description="What the binding asks for.")
    status: PhoneBindingStatus = Field(
        default_factory=PhoneBindingStatus, description="What the operator last observed."
    )
