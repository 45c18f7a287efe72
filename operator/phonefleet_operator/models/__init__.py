"""Pydantic models of our resources (bindings, claims, pools) and of the data rendered from them.

Models speak camelCase on the wire and snake_case in Python. Specs reject unknown keys, as the CRD
schemas in ``crds/`` do (a test keeps the two in step); statuses ignore them.
"""

from __future__ import annotations

from ._adb import AdbConnection
from ._base import SpecModel, StatusModel
from ._binding import (
    QUANTITY_PATTERN,
    ContainerOverrides,
    EnvVar,
    NamespacedMeta,
    ObjectMeta,
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
    "AdbConnection",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "ContainerOverrides",
    "EnvVar",
    "Holder",
    "ImagePatterns",
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
