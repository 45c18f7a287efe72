"""The Kubernetes gateway: every read and write of bindings, claims, pods, secrets and events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from phonefleet_operator import constants as c
from phonefleet_operator.k8s.api import ApiCaller, is_conflict, is_not_found
from phonefleet_operator.telemetry import (
    CLAIMS_CREATED,
    CLAIMS_LOST,
    PODS_CREATED,
    PODS_DELETED,
    count_calls,
    count_creates,
)

__all__ = ["KubeGateway"]

Obj = dict[str, Any]


class KubeGateway:
    """Async operations on the objects the operator owns; "already exists" and "gone" are normal."""

    def __init__(self, caller: ApiCaller) -> None:
        self._call = caller
        self._core = caller.core
        self._custom = caller.custom

    # ------------------------------------------------------------ PhoneBindings

    async def get_binding(self, namespace: str, name: str) -> Obj | None:
        """The binding, or None when it does not exist."""
        try:
            binding: Obj = await self._call(
                self._custom.get_namespaced_custom_object,
                c.GROUP,
                c.VERSION,
                namespace,
                c.BINDING_PLURAL,
                name,
            )
        except ApiException as error:
            if is_not_found(error):
                return None
            raise
        return binding

    async def patch_binding_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        """Merge ``status`` into the binding's status subresource (lists are replaced whole)."""
        try:
            await self._call(
                self._custom.patch_namespaced_custom_object_status,
                c.GROUP,
                c.VERSION,
                namespace,
                c.BINDING_PLURAL,
                name,
                {"status": dict(status)},
            )
        except ApiException as error:
            if not is_not_found(error):  # deleted meanwhile: nothing left to report on
                raise

    async def list_bindings(self) -> list[Obj]:
        """Every binding in the cluster (the billing check: which phones are held)."""
        result = await self._call(
            self._custom.list_cluster_custom_object, c.GROUP, c.VERSION, c.BINDING_PLURAL
        )
        items: list[Obj] = result.get("items", [])
        return items

    # ------------------------------------------------------------ PhoneClaims

    async def get_claim(self, phone_id: str) -> Obj | None:
        """The claim on a phone, or None when nobody holds it."""
        try:
            claim: Obj = await self._call(
                self._custom.get_cluster_custom_object, c.GROUP, c.VERSION, c.CLAIM_PLURAL, phone_id
            )
        except ApiException as error:
            if is_not_found(error):
                return None
            raise
        return claim

    @count_creates(CLAIMS_CREATED, CLAIMS_LOST)
    async def create_claim(self, claim: Obj) -> bool:
        """Create a claim; False when one already exists (someone else got there first)."""
        try:
            await self._call(
                self._custom.create_cluster_custom_object, c.GROUP, c.VERSION, c.CLAIM_PLURAL, claim
            )
        except ApiException as error:
            if is_conflict(error):
                return False
            raise
        return True

    async def delete_claim(self, phone_id: str, uid: str) -> bool:
        """Delete the claim only if it is still the object with ``uid``; False if it was not."""
        try:
            await self._call(
                self._custom.delete_cluster_custom_object,
                c.GROUP,
                c.VERSION,
                c.CLAIM_PLURAL,
                phone_id,
                body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
            )
        except ApiException as error:
            if is_not_found(error) or is_conflict(error):
                return False
            raise
        return True

    async def drop_claim_finalizer(self, claim: Mapping[str, Any]) -> bool:
        """Remove our finalizer from ``claim``, only if it is unchanged since it was read (its
        resourceVersion); False when it changed or is gone. A deleted claim then goes."""
        metadata = claim["metadata"]
        kept = [f for f in metadata.get("finalizers") or () if f != c.CLAIM_FINALIZER]
        patch = {
            "metadata": {
                "uid": metadata["uid"],
                "resourceVersion": metadata["resourceVersion"],
                "finalizers": kept or None,
            }
        }
        try:
            await self._call(
                self._custom.patch_cluster_custom_object,
                c.GROUP,
                c.VERSION,
                c.CLAIM_PLURAL,
                metadata["name"],
                patch,
            )
        except ApiException as error:
            if is_not_found(error) or is_conflict(error):
                return False
            raise
        return True

    async def patch_claim(self, claim: Mapping[str, Any], changes: Mapping[str, Any]) -> bool:
        """Merge ``changes`` (labels, spec.releasePolicy) into ``claim`` only if it is unchanged
        since it was read (its uid and resourceVersion); False when it changed or is gone, or
        when the API server refused the change (422 or 403: a CRD or scope policy older than
        the operator, which still forbid any change of a claim's spec)."""
        metadata = claim["metadata"]
        patch = {
            **changes,
            "metadata": {
                **(changes.get("metadata") or {}),
                "uid": metadata["uid"],
                "resourceVersion": metadata["resourceVersion"],
            },
        }
        try:
            await self._call(
                self._custom.patch_cluster_custom_object,
                c.GROUP,
                c.VERSION,
                c.CLAIM_PLURAL,
                metadata["name"],
                patch,
            )
        except ApiException as error:
            if is_not_found(error) or is_conflict(error) or error.status in (403, 422):
                return False
            raise
        return True

    async def list_claims(self, label_selector: str | None = None) -> list[Obj]:
        """Every claim in the cluster, or those matching ``label_selector``."""
        result = await self._call(
            self._custom.list_cluster_custom_object,
            c.GROUP,
            c.VERSION,
            c.CLAIM_PLURAL,
            label_selector=label_selector,
        )
        items: list[Obj] = result.get("items", [])
        return items

    # ------------------------------------------------------------ Pods

    async def get_pod(self, namespace: str, name: str) -> Obj | None:
        """The pod as a plain dict (API field names), or None."""
        try:
            pod: Obj = await self._call(self._core.read_namespaced_pod, name, namespace)
        except ApiException as error:
            if is_not_found(error):
                return None
            raise
        return pod

    async def list_pods(self, label_selector: str) -> list[Obj]:
        """The pods of every namespace that match ``label_selector``."""
        result = await self._call(
            self._core.list_pod_for_all_namespaces, label_selector=label_selector
        )
        items: list[Obj] = result.get("items", [])
        return items

    @count_creates(PODS_CREATED)
    async def create_pod(self, pod: Obj) -> bool:
        """Create a pod; False when a pod of that name exists already."""
        try:
            await self._call(self._core.create_namespaced_pod, pod["metadata"]["namespace"], pod)
        except ApiException as error:
            if is_conflict(error):
                return False
            raise
        return True

    @count_calls(PODS_DELETED)
    async def delete_pod(self, namespace: str, name: str, uid: str | None = None) -> bool:
        """Delete a pod (only the one with ``uid`` when given); True when the API server took
        the deletion, False when there is no such pod or the pod there is another one (its uid
        precondition failed: 409). Only True may be reported as a deletion."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid) if uid else None
        )
        try:
            await self._call(self._core.delete_namespaced_pod, name, namespace, body=options)
        except ApiException as error:
            if is_not_found(error) or is_conflict(error):
                return False
            raise
        return True

    # ------------------------------------------------------------ Secrets

    async def read_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """The base64 ``data`` of a Secret, or None; only used in the operator's own namespace."""
        try:
            secret = await self._call(self._core.read_namespaced_secret, name, namespace)
        except ApiException as error:
            if is_not_found(error):
                return None
            raise
        data: dict[str, str] = secret.get("data") or {}
        return data

    async def create_secret(self, secret: Obj) -> bool:
        """Create a Secret; False when one of that name exists already."""
        try:
            await self._call(
                self._core.create_namespaced_secret, secret["metadata"]["namespace"], secret
            )
        except ApiException as error:
            if is_conflict(error):
                return False
            raise
        return True

    async def put_secret(self, secret: Obj) -> None:
        """Create the Secret, or replace the one of that name."""
        namespace, name = secret["metadata"]["namespace"], secret["metadata"]["name"]
        try:
            await self._call(self._core.create_namespaced_secret, namespace, secret)
        except ApiException as error:
            if not is_conflict(error):
                raise
            await self._call(self._core.replace_namespaced_secret, name, namespace, secret)

    async def delete_secret(self, namespace: str, name: str) -> None:
        """Delete a Secret; a missing one is fine."""
        try:
            await self._call(self._core.delete_namespaced_secret, name, namespace)
        except ApiException as error:
            if not is_not_found(error):
                raise

    # ------------------------------------------------------------ Events

    @staticmethod
    def post_event(binding: Mapping[str, Any], *, warning: bool, reason: str, message: str) -> None:
        """Queue an Event on the binding (kopf posts it in the background, with retries)."""
        kopf.event(
            dict(binding),  # type: ignore[arg-type]
            type="Warning" if warning else "Normal",
            reason=reason,
            message=message,
        )
