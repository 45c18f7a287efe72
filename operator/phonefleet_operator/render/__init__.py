"""Pure builders of the objects a binding needs: its worker pod, its ADB Secret, its PhoneClaim.

Every function here is pure (no I/O, clock or randomness), so equal inputs give equal objects and
the operator can compare what it wants with what exists instead of rewriting it.
"""

from __future__ import annotations

from ._claim import build_claim
from ._names import adb_secret_name, claim_name, label_value, owner_reference, pod_name
from ._pod import build_pod, needs_update, outdated, pod_spec_hash
from ._secret import adb_secret_changed, build_adb_secret

__all__ = [
    "adb_secret_changed",
    "adb_secret_name",
    "build_adb_secret",
    "build_claim",
    "build_pod",
    "claim_name",
    "label_value",
    "needs_update",
    "outdated",
    "owner_reference",
    "pod_name",
    "pod_spec_hash",
]
