"""Names and owner references of the objects rendered for a binding, valid at any length."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ..constants import API_VERSION, BINDING_KIND
from ..models import PhoneBinding

__all__ = ["adb_secret_name", "claim_name", "label_value", "owner_reference", "pod_name"]

_MAX_NAME = 253  # DNS-1123 subdomain: names of pods, Secrets and cluster-scoped objects
_MAX_LABEL_VALUE = 63
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DIGEST_LENGTH = 8


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:_DIGEST_LENGTH]


def _suffixed_name(base: str, suffix: str) -> str:
    # A binding name may use all 253 characters: shorten it then, with a digest to stay unique.
    name = f"{base}{suffix}"
    if len(name) <= _MAX_NAME:
        return name
    keep = _MAX_NAME - len(suffix) - _DIGEST_LENGTH - 1
    return f"{base[:keep].rstrip('-.')}-{_digest(base)}{suffix}"


def pod_name(binding_name: str) -> str:
    """Name of a binding's worker pod: ``<binding>-worker``."""
    return _suffixed_name(binding_name, "-worker")


def adb_secret_name(binding_name: str) -> str:
    """Name of the Secret holding a binding's ADB endpoint: ``<binding>-adb``."""
    return _suffixed_name(binding_name, "-adb")


def claim_name(phone_id: str) -> str:
    """Name of a phone's PhoneClaim: the canonical phone id itself (Geelark ids are digits).

    An id that is no valid object name is lowered and cleaned, and gets a digest of the original,
    so two ids never share a claim.
    """
    if len(phone_id) <= _MAX_NAME and _SUBDOMAIN.match(phone_id):
        return phone_id
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", phone_id.lower())
    cleaned = cleaned[: _MAX_NAME - _DIGEST_LENGTH - 1].strip("-.")
    return f"{cleaned}-{_digest(phone_id)}" if cleaned else _digest(phone_id)


def label_value(value: str) -> str:
    """``value`` as a label value: itself when valid, else cleaned, cut and suffixed by a digest."""
    if len(value) <= _MAX_LABEL_VALUE and _LABEL_VALUE.match(value):
        return value
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)
    cleaned = cleaned[: _MAX_LABEL_VALUE - _DIGEST_LENGTH - 1].strip("-_.")
    return f"{cleaned}-{_digest(value)}" if cleaned else _digest(value)


def owner_reference(binding: PhoneBinding) -> dict[str, Any]:
    """An ownerReference that makes the binding the controller of an object in its namespace.

    Kubernetes deletes owned objects when the binding goes (garbage collection) and ``kubectl``
    shows who manages them. Cluster-scoped objects (PhoneClaims) cannot have a namespaced owner.
    """
    return {
        "apiVersion": API_VERSION,
        "kind": BINDING_KIND,
        "name": binding.name,
        "uid": binding.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
