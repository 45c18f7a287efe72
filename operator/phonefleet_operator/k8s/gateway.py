"""The Kubernetes gateway: every read and write of bindings, claims, pods, secrets and events."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from phonefleet_operator import constants as c
from phonefleet_operator.k8s.api import (
    ApiCaller,
    ApiGateway,
    Conflict,
    NotFound,
    create_or_update,
    or_none,
    succeeded,
)
from phonefleet_operator.k8s.events import EVENT_LANES, EventPoster
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


class KubeGateway(ApiGateway):
    """Async operations on the objects the operator owns; "already exists" and "gone" are normal."""

    # ------------------------------------------------------------ PhoneBindings

    async def get_binding(self, namespace: str, name: str) -> Obj | None:
        """The binding, or None when it does not exist."""
        binding: Obj | None = await or_none(
            self._call(
                self._custom.get_namespaced_custom_object,
                c.GROUP,
                c.VERSION,
                namespace,
                c.BINDING_PLURAL,
                name,
            )
        )
        return binding

    async def patch_binding_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        """Merge ``status`` into the binding's status subresource (lists are replaced whole)."""
        await succeeded(  # unless deleted meanwhile: then nothing is left to report on
            self._call(
                self._custom.patch_namespaced_custom_object_status,
                c.GROUP,
                c.VERSION,
                namespace,
                c.BINDING_PLURAL,
                name,
                {"status": dict(status)},
            ),
            unless=(NotFound,),
        )

    async def list_bindings(self) -> list[Obj]:
        """Every binding in the cluster (the billing check: which phones are held)."""
        return await self._items(
            self._custom.list_cluster_custom_object, c.GROUP, c.VERSION, c.BINDING_PLURAL
        )

    # ------------------------------------------------------------ PhoneClaims

    async def get_claim(self, phone_id: str) -> Obj | None:
        """The claim on a phone, or None when nobody holds it."""
        claim: Obj | None = await or_none(
            self._call(
                self._custom.get_cluster_custom_object, c.GROUP, c.VERSION, c.CLAIM_PLURAL, phone_id
            )
        )
        return claim

    @count_creates(CLAIMS_CREATED, CLAIMS_LOST)
    async def create_claim(self, claim: Obj) -> bool:
        """Create a claim; False when one already exists (someone else got there first)."""
        return await succeeded(
            self._call(
                self._custom.create_cluster_custom_object, c.GROUP, c.VERSION, c.CLAIM_PLURAL, claim
            ),
            unless=(Conflict,),
        )

    async def delete_claim(self, phone_id: str, uid: str) -> bool:
        """Delete the claim only if it is still the object with ``uid``; False if it was not."""
        return await succeeded(
            self._call(
                self._custom.delete_cluster_custom_object,
                c.GROUP,
                c.VERSION,
                c.CLAIM_PLURAL,
                phone_id,
                body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
            ),
            unless=(NotFound, Conflict),
        )

    async def drop_claim_finalizer(self, claim: Mapping[str, Any]) -> bool:
        """Remove our finalizer from ``claim``, only if it is unchanged since it was read (its
        resourceVersion); False when it changed or is gone. A deleted claim then goes. Raises
        KubernetesRefused when the API server refused (403: RBAC without ``patch`` on
        PhoneClaims)."""
        finalizers = claim["metadata"].get("finalizers") or ()
        kept = [f for f in finalizers if f != c.CLAIM_FINALIZER]
        return await self._patch_unchanged_claim(claim, {"metadata": {"finalizers": kept or None}})

    async def patch_claim(self, claim: Mapping[str, Any], changes: Mapping[str, Any]) -> bool:
        """Merge ``changes`` (labels, spec.releasePolicy) into ``claim`` only if it is unchanged
        since it was read (its uid and resourceVersion); False when it changed or is gone.

        Raises KubernetesRefused when the API server refused the change itself: 422 from a CRD
        older than the operator (its spec wholly immutable), 403 from an older scope policy or
        RBAC without ``patch`` on PhoneClaims. Asking again gets the same answer, so the
        caller decides what the refusal means (services/claims.py).
        """
        return await self._patch_unchanged_claim(claim, changes)

    async def _patch_unchanged_claim(
        self, claim: Mapping[str, Any], changes: Mapping[str, Any]
    ) -> bool:
        """Merge ``changes`` into ``claim`` with its uid and resourceVersion as preconditions;
        False when the claim changed (409) or is gone (404)."""
        metadata = claim["metadata"]
        patch = {
            **changes,
            "metadata": {
                **(changes.get("metadata") or {}),
                "uid": metadata["uid"],
                "resourceVersion": metadata["resourceVersion"],
            },
        }
        return await succeeded(
            self._call(
                self._custom.patch_cluster_custom_object,
                c.GROUP,
                c.VERSION,
                c.CLAIM_PLURAL,
                metadata["name"],
                patch,
            ),
            unless=(NotFound, Conflict),
        )

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
        pod: Obj | None = await or_none(self._call(self._core.read_namespaced_pod, name, namespace))
        return pod

    async def list_pods(self, label_selector: str) -> list[Obj]:
        """The pods of every namespace that match ``label_selector``."""
        return await self._items(
            self._core.list_pod_for_all_namespaces, label_selector=label_selector
        )

    @count_creates(PODS_CREATED)
    async def create_pod(self, pod: Obj) -> bool:
        """Create a pod; False when a pod of that name exists already."""
        return await succeeded(
            self._call(self._core.create_namespaced_pod, pod["metadata"]["namespace"], pod),
            unless=(Conflict,),
        )

    @count_calls(PODS_DELETED)
    async def delete_pod(self, namespace: str, name: str, uid: str | None = None) -> bool:
        """Delete a pod (only the one with ``uid`` when given); True when the API server took
        the deletion, False when there is no such pod or the pod there is another one (its uid
        precondition failed: 409). Only True may be reported as a deletion."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid) if uid else None
        )
        return await succeeded(
            self._call(self._core.delete_namespaced_pod, name, namespace, body=options),
            unless=(NotFound, Conflict),
        )

    # ------------------------------------------------------------ Secrets

    async def read_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """The base64 ``data`` of a Secret, or None; only used in the operator's own namespace."""
        secret = await or_none(self._call(self._core.read_namespaced_secret, name, namespace))
        if secret is None:
            return None
        data: dict[str, str] = secret.get("data") or {}
        return data

    async def create_secret(self, secret: Obj) -> bool:
        """Create a Secret; False when one of that name exists already."""
        return await succeeded(
            self._call(
                self._core.create_namespaced_secret, secret["metadata"]["namespace"], secret
            ),
            unless=(Conflict,),
        )

    async def put_secret(self, secret: Obj) -> None:
        """Create the Secret, or replace the one of that name (one deleted between the two is
        created again, a few times at most)."""
        namespace, name = secret["metadata"]["namespace"], secret["metadata"]["name"]
        await create_or_update(
            lambda: self._call(self._core.create_namespaced_secret, namespace, secret),
            lambda: self._call(self._core.replace_namespaced_secret, name, namespace, secret),
            what=f"Secret {namespace}/{name}",
            updated="replaced",
        )

    async def delete_secret(self, namespace: str, name: str) -> None:
        """Delete a Secret; a missing one is fine."""
        await succeeded(
            self._call(self._core.delete_namespaced_secret, name, namespace), unless=(NotFound,)
        )

    # ------------------------------------------------------------ Events

    def post_event(
        self, binding: Mapping[str, Any], *, warning: bool, reason: str, message: str
    ) -> None:
        """Queue an Event on the binding (or job); it is posted in the background, in order."""
        self._events.post(binding, warning=warning, reason=reason, message=message)

    @functools.cached_property
    def _events(self) -> EventPoster:
        # Not kopf.event: bindings and job loops run outside kopf's handlers (k8s/events.py).
        # Threads and connections of their own, as kopf's poster had: on the passes' few API
        # threads, 4,000 Events for 1,000 new bindings lagged minutes behind (make bench).
        configuration = copy.deepcopy(self._call.api_client.configuration)
        configuration.connection_pool_maxsize = EVENT_LANES
        # They give way to the passes' own calls (k8s/events.py): a pass awaits its writes.
        caller = ApiCaller(client.ApiClient(configuration), EVENT_LANES, fence=self._call.fence)
        return EventPoster(caller, yield_to=self._call, owns_caller=True)

    async def close(self) -> None:
        """Stop posting Events (queued ones are dropped) and close their threads and
        connections; the caller given to this gateway is its owner's to close."""
        poster: EventPoster | None = self.__dict__.pop("_events", None)
        if poster is not None:
            await poster.close()
