"""The finalizers of a PhoneBinding, written only if the binding is unchanged since it was read.

A merge patch replaces ``metadata.finalizers`` whole, so it names the resourceVersion it was
computed from: the API server refuses it (409) when anyone changed the binding meanwhile, and
another controller's finalizer added in between is never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubernetes.client.exceptions import ApiException

from phonefleet_operator import constants as c
from phonefleet_operator.k8s.api import ApiGateway, is_conflict, is_not_found
from phonefleet_operator.k8s.watch import slim

__all__ = ["BindingFinalizers"]


class BindingFinalizers(ApiGateway):
    """Sets a binding's finalizers under its resourceVersion."""

    async def set(
        self, namespace: str, name: str, resource_version: str, finalizers: Sequence[str]
    ) -> dict[str, Any] | None:
        """The binding with ``finalizers``; None when it changed since ``resource_version``
        (409) or is gone (404)."""
        patch = {"metadata": {"resourceVersion": resource_version, "finalizers": list(finalizers)}}
        try:
            patched: dict[str, Any] = await self._call(
                self._custom.patch_namespaced_custom_object,
                c.GROUP,
                c.VERSION,
                namespace,
                c.BINDING_PLURAL,
                name,
                patch,
            )
        except ApiException as error:
            if is_conflict(error) or is_not_found(error):
                return None
            raise
        return slim(patched)  # it runs the binding's loop until the watch's echo comes
