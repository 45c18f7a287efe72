"""The Kubernetes calls of the job ledger: PhoneJob status writes (conditional), its finalizer
(conditional), deletes, and the binding's account-hold annotation and AccountHealthy condition."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from phonefleet_operator import constants as c
from phonefleet_operator.k8s.api import (
    ApiGateway,
    Conflict,
    NotFound,
    is_not_found,
    or_none,
    succeeded,
)

__all__ = ["JobGateway"]

Obj = dict[str, Any]


class JobGateway(ApiGateway):
    """PhoneJob reads and writes; a write against an older resourceVersion is refused (None)."""

    async def keep_secret(self, secret: Obj) -> dict[str, str] | None:
        """The ``data`` of the Secret named like ``secret``, creating it from ``secret`` first
        if it does not exist; None when its namespace does not exist."""
        namespace, name = secret["metadata"]["namespace"], secret["metadata"]["name"]
        try:
            await succeeded(  # there already: fine
                self._call(self._core.create_namespaced_secret, namespace, secret),
                unless=(Conflict,),
            )
            found = await self._call(self._core.read_namespaced_secret, name, namespace)
        except ApiException as error:
            if is_not_found(error):
                return None
            raise
        data: dict[str, str] = found.get("data") or {}
        return data

    async def get_job(self, namespace: str, name: str) -> Obj | None:
        """The job, or None when it does not exist."""
        job: Obj | None = await or_none(
            self._call(
                self._custom.get_namespaced_custom_object,
                c.GROUP,
                c.VERSION,
                namespace,
                c.JOB_PLURAL,
                name,
            )
        )
        return job

    async def list_jobs(self, namespace: str) -> list[Obj]:
        """Every job of a namespace."""
        return await self._items(
            self._custom.list_namespaced_custom_object, c.GROUP, c.VERSION, namespace, c.JOB_PLURAL
        )

    async def list_served_jobs(self, namespaces: tuple[str, ...]) -> list[Obj]:
        """Every job of ``namespaces`` (empty: of every namespace)."""
        if not namespaces:
            return await self._items(
                self._custom.list_cluster_custom_object, c.GROUP, c.VERSION, c.JOB_PLURAL
            )
        return [job for namespace in namespaces for job in await self.list_jobs(namespace)]

    async def create_job(self, job: Obj) -> bool:
        """Create a job; False when a job of that name exists already."""
        return await succeeded(
            self._call(
                self._custom.create_namespaced_custom_object,
                c.GROUP,
                c.VERSION,
                job["metadata"]["namespace"],
                c.JOB_PLURAL,
                job,
            ),
            unless=(Conflict,),
        )

    async def list_bindings(self, namespace: str | None = None) -> list[Obj]:
        """The bindings of one namespace, or of all."""
        if namespace:
            return await self._items(
                self._custom.list_namespaced_custom_object,
                c.GROUP,
                c.VERSION,
                namespace,
                c.BINDING_PLURAL,
            )
        return await self._items(
            self._custom.list_cluster_custom_object, c.GROUP, c.VERSION, c.BINDING_PLURAL
        )

    async def patch_job_status(
        self, namespace: str, name: str, resource_version: str, status: Mapping[str, Any]
    ) -> Obj | None:
        """Merge ``status`` into the job's status if the job is still at ``resource_version``.

        Returns the updated job, or None when the job changed meanwhile (409) or is gone (404):
        the caller reads it again and decides afresh. This is the ledger's fencing: two writers
        (an old operator and a new one, or a late answer and a new attempt) cannot both win.
        """
        body = {"metadata": {"resourceVersion": resource_version}, "status": dict(status)}
        return await self._patch_unless_changed(
            self._custom.patch_namespaced_custom_object_status, namespace, name, body
        )

    async def set_job_finalizers(
        self, namespace: str, name: str, resource_version: str, finalizers: list[str]
    ) -> Obj | None:
        """Set the job's ``metadata.finalizers`` if the job is still at ``resource_version``.

        A merge patch replaces the list whole, so it is conditional: another controller's
        finalizer added meanwhile is never dropped (409, None: read it again). None also when
        the job is gone (404).
        """
        body = {"metadata": {"resourceVersion": resource_version, "finalizers": finalizers}}
        return await self._patch_unless_changed(
            self._custom.patch_namespaced_custom_object, namespace, name, body
        )

    async def _patch_unless_changed(
        self, method: Callable[..., Any], namespace: str, name: str, body: Obj
    ) -> Obj | None:
        """The job patched with ``body`` (which names the resourceVersion it was read at);
        None when it changed since (409) or is gone (404)."""
        job: Obj | None = await or_none(
            self._call(method, c.GROUP, c.VERSION, namespace, c.JOB_PLURAL, name, body),
            on=(Conflict, NotFound),
        )
        return job

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        """Delete the job if it is still the object ``uid``; gone already is fine."""
        await succeeded(
            self._call(
                self._custom.delete_namespaced_custom_object,
                c.GROUP,
                c.VERSION,
                namespace,
                c.JOB_PLURAL,
                name,
                body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
            ),
            unless=(NotFound, Conflict),
        )

    async def annotate_binding(
        self, namespace: str, name: str, annotations: Mapping[str, str | None]
    ) -> None:
        """Set (or, with None, remove) annotations of a binding."""
        await succeeded(
            self._call(
                self._custom.patch_namespaced_custom_object,
                c.GROUP,
                c.VERSION,
                namespace,
                c.BINDING_PLURAL,
                name,
                {"metadata": {"annotations": dict(annotations)}},
            ),
            unless=(NotFound,),
        )

    async def patch_binding_conditions(
        self, namespace: str, name: str, resource_version: str, conditions: list[Obj]
    ) -> bool:
        """Replace the binding's status.conditions if the binding is still at that version."""
        body = {
            "metadata": {"resourceVersion": resource_version},
            "status": {"conditions": conditions},
        }
        return await succeeded(
            self._call(
                self._custom.patch_namespaced_custom_object_status,
                c.GROUP,
                c.VERSION,
                namespace,
                c.BINDING_PLURAL,
                name,
                body,
            ),
            unless=(Conflict, NotFound),
        )
