"""The Kubernetes calls of tenancy: PhonePools (read, status writes) and Namespaces (read)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from phonefleet_operator import constants as c
from phonefleet_operator.k8s.api import ApiCaller, is_conflict, is_not_found

__all__ = ["PoolGateway"]

Obj = dict[str, Any]


class PoolGateway:
    """Async reads of pools and namespaces, and conditional writes of a pool's status."""

    def __init__(self, caller: ApiCaller) -> None:
        self._call = caller
        self._core = caller.core
        self._custom = caller.custom

    async def get_pool(self, name: str) -> Obj | None:
        """The pool, or None when it does not exist."""
        try:
            pool: Obj = await self._call(
                self._custom.get_cluster_custom_object, c.GROUP, c.VERSION, c.POOL_PLURAL, name
            )
        except ApiException as error:
            if is_not_found(error):
                return None
            raise
        return pool

    async def list_pools(self) -> list[Obj]:
        """Every pool in the cluster; none while the PhonePool CRD is not installed (an operator
        upgraded before its CRDs must not stop every binding: tenancy is simply off)."""
        try:
            result = await self._call(
                self._custom.list_cluster_custom_object, c.GROUP, c.VERSION, c.POOL_PLURAL
            )
        except ApiException as error:
            if is_not_found(error):
                return []
            raise
        items: list[Obj] = result.get("items", [])
        return items

    async def patch_pool_status(
        self, name: str, status: Mapping[str, Any], resource_version: str | None = None
    ) -> Obj | None:
        """Merge ``status`` into the pool's status; the pool as written, or None when it is gone
        or (with ``resource_version``) changed since that version (409: read it again)."""
        body: Obj = {"status": dict(status)}
        if resource_version is not None:
            # A resourceVersion in a patch is a precondition: the API server applies the patch
            # only to that version of the object and answers 409 Conflict otherwise.
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            written: Obj = await self._call(
                self._custom.patch_cluster_custom_object_status,
                c.GROUP,
                c.VERSION,
                c.POOL_PLURAL,
                name,
                body,
            )
        except ApiException as error:
            if is_not_found(error) or is_conflict(error):
                return None
            raise
        return written

    async def list_namespaces(self) -> list[Obj]:
        """Every namespace (for their labels)."""
        result = await self._call(self._core.list_namespace)
        items: list[Obj] = result.get("items", [])
        return items
