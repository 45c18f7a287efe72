"""Labels of the objects rendered for a binding: the app.kubernetes.io set, phone and binding."""

from __future__ import annotations

from ..constants import (
    APP_NAME,
    LABEL_BINDING,
    LABEL_BINDING_NAMESPACE,
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PART_OF,
    LABEL_PHONE_ID,
    MANAGED_BY,
    PART_OF,
)
from ..models import PhoneBinding
from ._names import label_value

__all__ = ["object_labels"]


def object_labels(
    binding: PhoneBinding, *, component: str, phone_id: str, with_namespace: bool = False
) -> dict[str, str]:
    """Labels of an object that serves ``binding`` for ``phone_id``.

    ``with_namespace`` adds the binding's namespace, for cluster-scoped objects.
    """
    labels = {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: label_value(binding.name),
        LABEL_COMPONENT: component,
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_PHONE_ID: label_value(phone_id),
        LABEL_BINDING: label_value(binding.name),
    }
    if with_namespace:
        labels[LABEL_BINDING_NAMESPACE] = binding.namespace
    return labels
