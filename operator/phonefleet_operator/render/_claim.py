"""The PhoneClaim of a phone: the cluster-scoped object whose creation decides who holds it."""

from __future__ import annotations

from typing import Any

from ..constants import (
    API_VERSION,
    CLAIM_FINALIZER,
    CLAIM_KIND,
    COMPONENT_CLAIM,
    DEFAULT_ACCOUNT,
    LABEL_ACCOUNT,
)
from ..models import Holder, PhoneBinding, PhoneClaimSpec
from ._labels import object_labels
from ._names import claim_name

__all__ = ["build_claim"]


def build_claim(
    binding: PhoneBinding, phone_id: str, serial_name: str, *, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """The PhoneClaim that makes ``binding`` the holder of phone ``phone_id`` (its canonical id).

    It has no owner reference (a cluster-scoped object cannot be owned by a namespaced one); the
    operator deletes it on release, and labels name the binding for ``kubectl get -l``. It records
    the binding's releasePolicy, which the orphan sweep applies once the binding is gone (the
    holder keeps it current), and the label ``phonefleet.dev/account``: only the operator of
    that Geelark account watches, sweeps and releases the claim (docs/accounts.md).
    Its finalizer keeps a claim deleted by hand in place until the holder's worker pod is gone,
    so that the next holder's create fails until then (docs/safety.md).
    """
    spec = PhoneClaimSpec(
        phone_id=phone_id,
        serial_name=serial_name,
        holder=Holder(namespace=binding.namespace, name=binding.name, uid=binding.uid),
        release_policy=binding.spec.release_policy,
    )
    labels = object_labels(
        binding, component=COMPONENT_CLAIM, phone_id=phone_id, with_namespace=True
    )
    return {
        "apiVersion": API_VERSION,
        "kind": CLAIM_KIND,
        "metadata": {
            "name": claim_name(phone_id),
            "labels": {**labels, LABEL_ACCOUNT: account},
            "finalizers": [CLAIM_FINALIZER],
        },
        "spec": spec.to_dict(),
    }
