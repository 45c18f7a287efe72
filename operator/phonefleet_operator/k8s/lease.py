"""The leader Lease (coordination.k8s.io/v1): one replica of the operator holds it and works.

The same rules as client-go's leader election: a Lease whose record has not changed for its
``leaseDurationSeconds`` *as this process observed it* (its own clock, never the holder's
timestamps, so clock skew between nodes cannot shorten a lease) may be taken over; every write
carries the resourceVersion just read, so of two replicas racing for it exactly one succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from phonefleet_operator.k8s.api import ApiCaller, Conflict, NotFound, or_none, succeeded

__all__ = ["LeaseLock"]


def _now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Observed:
    record: tuple[Any, ...]
    at: float


class LeaseLock:
    """Acquire, renew and release one named Lease for ``identity``."""

    def __init__(
        self,
        caller: ApiCaller,
        namespace: str,
        name: str,
        identity: str,
        duration_seconds: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._call = caller
        self._api = client.CoordinationV1Api(caller.api_client)
        self.namespace, self.name, self.identity = namespace, name, identity
        self._duration = duration_seconds
        self._clock = clock
        self._observed: _Observed | None = None
        #: The holder the latest read found (None: nobody, or not read yet).
        self.observed_holder: str | None = None

    async def holder(self) -> str | None:
        """Who holds the Lease as the API server has it now (None: nobody)."""
        lease = await self._get()
        return None if lease is None else (lease.get("spec") or {}).get("holderIdentity")

    async def try_acquire_or_renew(self) -> bool:
        """Take the Lease if it is free or expired, renew it if ours; True when we hold it now."""
        lease = await self._get()
        now = _now_micro()
        if lease is None:
            self.observed_holder = None
            return await self._create(now)
        spec = lease.get("spec") or {}
        holder = self.observed_holder = spec.get("holderIdentity")
        record = (holder, spec.get("renewTime"), lease["metadata"].get("resourceVersion"))
        if self._observed is None or self._observed.record != record:
            self._observed = _Observed(record, self._clock())
        unexpired = self._clock() - self._observed.at < float(spec.get("leaseDurationSeconds") or 0)
        if holder and holder != self.identity and unexpired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        taking = holder != self.identity
        lease["spec"] = {
            **spec,
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self._duration,
            "renewTime": now,
            "acquireTime": now if taking else spec.get("acquireTime", now),
            "leaseTransitions": transitions + 1 if taking and holder else transitions,
        }
        return await self._replace(lease)

    async def release(self) -> None:
        """Give the Lease up at once (a clean shutdown: the standby need not wait it out)."""
        lease = await self._get()
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        lease["spec"] = {**lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1}
        await self._replace(lease)

    async def _get(self) -> dict[str, Any] | None:
        lease: dict[str, Any] | None = await or_none(
            self._call(self._api.read_namespaced_lease, self.name, self.namespace)
        )
        return lease

    async def _create(self, now: str) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self._duration,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        return await succeeded(  # unless another replica created it first
            self._call(self._api.create_namespaced_lease, self.namespace, body), unless=(Conflict,)
        )

    async def _replace(self, lease: dict[str, Any]) -> bool:
        return await succeeded(  # unless someone wrote it (or deleted it) since we read it
            self._call(self._api.replace_namespaced_lease, self.name, self.namespace, lease),
            unless=(Conflict, NotFound),
        )
