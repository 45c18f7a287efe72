"""The Kubernetes calls of the admission webhook: its ValidatingWebhookConfiguration."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from phonefleet_operator.k8s.api import ApiCaller, is_conflict

__all__ = ["WebhookConfigurations"]

Obj = dict[str, Any]


class WebhookConfigurations:
    """Creates or patches one ValidatingWebhookConfiguration (create and patch are all the
    operator may do to it: manifests/rbac)."""

    def __init__(self, caller: ApiCaller) -> None:
        self._call = caller
        self._api = client.AdmissionregistrationV1Api(caller.api_client)

    async def ensure_validating(self, name: str, webhooks: list[Obj]) -> None:
        """Make the configuration ``name`` hold exactly ``webhooks``.

        Create first and patch on "already exists" (no read: the operator has no get right). The
        patch is a JSON merge patch, which replaces the whole list, so a webhook of an earlier
        release under another name does not linger; a patch that changes nothing is not written
        by the API server (the object's resourceVersion stays), so replicas that register the
        same webhooks never fight.
        """
        body: Obj = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": webhooks,
        }
        try:
            await self._call(self._api.create_validating_webhook_configuration, body)
        except ApiException as error:
            if not is_conflict(error):
                raise
            await self._call(
                self._api.patch_validating_webhook_configuration,
                name,
                {"webhooks": webhooks},
                _content_type="application/merge-patch+json",
            )
