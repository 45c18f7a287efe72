"""The Kubernetes calls of the admission webhook: its ValidatingWebhookConfiguration, and the
empty MutatingWebhookConfiguration an older release left behind."""

from __future__ import annotations

from enum import Enum
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from phonefleet_operator.k8s.api import (
    ApiCaller,
    create_or_update,
    is_conflict,
    is_not_found,
    or_none,
)

__all__ = ["Leftover", "WebhookConfigurations"]

Obj = dict[str, Any]


class Leftover(Enum):
    """What became of an older release's MutatingWebhookConfiguration."""

    #: It held no webhook and is deleted now.
    DELETED = "deleted"
    #: There is none (never made, or deleted already, by another replica say).
    ABSENT = "absent"
    #: It holds webhooks, which phonefleet never made (it has no mutating webhook), or it
    #: changed between the read and the delete: left alone.
    KEPT = "kept"


class WebhookConfigurations:
    """Creates or patches one ValidatingWebhookConfiguration, and removes the leftover
    MutatingWebhookConfiguration of the same name (the only calls the operator may make on
    them: manifests/rbac)."""

    def __init__(self, caller: ApiCaller) -> None:
        self._call = caller
        self._api = client.AdmissionregistrationV1Api(caller.api_client)

    async def ensure_validating(self, name: str, webhooks: list[Obj]) -> None:
        """Make the configuration ``name`` hold exactly ``webhooks``.

        Create first and patch on "already exists" (no read: the operator has no get right). The
        patch is a JSON merge patch, which replaces the whole list, so a webhook of an earlier
        release under another name does not linger; a patch that changes nothing is not written
        by the API server (the object's resourceVersion stays), so replicas that register the
        same webhooks never fight. One deleted between the create (409) and the patch (404) is
        created again, a few times at most.
        """
        body: Obj = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": webhooks,
        }
        await create_or_update(
            lambda: self._call(self._api.create_validating_webhook_configuration, body),
            lambda: self._call(
                self._api.patch_validating_webhook_configuration,
                name,
                {"webhooks": webhooks},
                _content_type="application/merge-patch+json",
            ),
            what=f"ValidatingWebhookConfiguration {name}",
            updated="patched",
        )

    async def remove_empty_mutating(self, name: str) -> Leftover:
        """Delete the MutatingWebhookConfiguration ``name`` if it holds no webhook.

        Releases that ran kopf's webhook server let kopf keep one of these, always empty.
        One with webhooks is someone else's and stays. The delete carries the uid and
        resourceVersion of the read, so a configuration that gained a webhook (or was made
        again) since the read fails the precondition (409) and stays too.
        """
        live: Obj | None = await or_none(
            self._call(self._api.read_mutating_webhook_configuration, name)
        )
        if live is None:
            return Leftover.ABSENT
        if live.get("webhooks"):
            return Leftover.KEPT
        metadata = live["metadata"]
        preconditions = {"uid": metadata["uid"], "resourceVersion": metadata["resourceVersion"]}
        try:
            await self._call(
                self._api.delete_mutating_webhook_configuration,
                name,
                body={"preconditions": preconditions},
            )
        except ApiException as error:
            if is_not_found(error):
                return Leftover.ABSENT
            if is_conflict(error):
                return Leftover.KEPT
            raise
        return Leftover.DELETED
