"""Pydantic models of our resources (bindings, claims, jobs, pools) and of what we render.

Models speak camelCase on the wire and snake_case in Python. Specs reject unknown keys, as the CRD
schemas in ``crds/`` do (a test keeps the two in step); statuses ignore them.
"""

from __future__ import annotations

from ._adb import AdbConnection
from ._base import NamespacedMeta, ObjectMeta, SpecModel, StatusModel
from ._binding import (
    QUANTITY_PATTERN,
    ContainerOverrides,
    EnvVar,
    JobsPolicy,
    Phase,
    PhoneBinding,
    PhoneBindingSpec,
    PhoneBindingStatus,
    PhoneInfo,
    PhoneStatus,
    Quantity,
    ReleasePolicy,
    Resources,
)
from ._claim import Holder, PhoneClaim, PhoneClaimSpec
from ._conditions import (
    Condition,
    ConditionStatus,
    ConditionType,
    condition,
    rfc3339,
    set_condition,
)
from ._job import (
    TASK_NAME_PATTERN,
    Attempt,
    AttemptOutcome,
    ErrorClass,
    JobMeta,
    JobPhase,
    PhoneJob,
    PhoneJobSpec,
    PhoneJobStatus,
)
from ._pool import (
    ImagePatterns,
    LabelSelector,
    LabelSelectorRequirement,
    NamespaceSelector,
    OnRevoke,
    PhonePool,
    PhonePoolSpec,
    PhonePoolStatus,
    PhoneSelector,
    PoolHolder,
)

__all__ = [
    "QUANTITY_PATTERN",
    "TASK_NAME_PATTERN",
    "AdbConnection",
    "Attempt",
    "AttemptOutcome",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "ContainerOverrides",
    "EnvVar",
    "ErrorClass",
    "Holder",
    "ImagePatterns",
    "JobMeta",
    "JobPhase",
    "JobsPolicy",
    "LabelSelector",
    "LabelSelectorRequirement",
    "NamespaceSelector",
    "NamespacedMeta",
    "ObjectMeta",
    "OnRevoke",
    "Phase",
    "PhoneBinding",
    "PhoneBindingSpec",
    "PhoneBindingStatus",
    "PhoneClaim",
    "PhoneClaimSpec",
    "PhoneInfo",
    "PhoneJob",
    "PhoneJobSpec",
    "PhoneJobStatus",
    "PhonePool",
    "PhonePoolSpec",
    "PhonePoolStatus",
    "PhoneSelector",
    "PhoneStatus",
    "PoolHolder",
    "Quantity",
    "ReleasePolicy",
    "Resources",
    "SpecModel",
    "StatusModel",
    "condition",
    "rfc3339",
    "set_condition",
]
