"""The Kubernetes calls of tenancy: PhonePools (read, status writes) and Namespaces (read)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from phonefleet_operator import constants as c
from phonefleet_operator.k8s.api import ApiGateway, Conflict, NotFound, or_none

__all__ = ["PoolGateway"]

Obj = dict[str, Any]


class PoolGateway(ApiGateway):
    """Async reads of pools and namespaces, and conditional writes of a pool's status."""

    async def get_pool(self, name: str) -> Obj | None:
        """The pool, or None when it does not exist."""
        pool: Obj | None = await or_none(
            self._call(
                self._custom.get_cluster_custom_object, c.GROUP, c.VERSION, c.POOL_PLURAL, name
            )
        )
        return pool

    async def list_pools(self) -> list[Obj]:
        """Every pool in the cluster; none while the PhonePool CRD is not installed (an operator
        upgraded before its CRDs must not stop every binding: tenancy is simply off)."""
        result = await or_none(
            self._call(self._custom.list_cluster_custom_object, c.GROUP, c.VERSION, c.POOL_PLURAL)
        )
        items: list[Obj] = [] if result is None else result.get("items", [])
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
        written: Obj | None = await or_none(
            self._call(
                self._custom.patch_cluster_custom_object_status,
                c.GROUP,
                c.VERSION,
                c.POOL_PLURAL,
                name,
                body,
            ),
            on=(NotFound, Conflict),
        )
        return written

    async def list_namespaces(self) -> list[Obj]:
        """Every namespace (for their labels)."""
        return await self._items(self._core.list_namespace)
