"""In-memory fakes the PhonePool tests share: the pools as the API server keeps them (its
resourceVersion semantics) and the inventory's cached list the pools' reporter reads."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

from fakes import FakePhones

from phonefleet_operator.geelark import Phone


class FakePoolStore:
    """PhonePools as the API server keeps them: a resourceVersion that moves on every write, and
    409 for a patch whose resourceVersion is not the current one."""

    def __init__(self) -> None:
        self.pools: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.patches = 0
        self.conflicts = 0
        self.namespaces: dict[str, dict[str, str]] = {}
        #: Set: every GET and PATCH is answered at once. A test clears it to hold requests on
        #: their way (``in_flight`` counts them) while other callers ask, and sets it again.
        self.answering = asyncio.Event()
        self.answering.set()
        self.in_flight = 0

    def create(self, name: str, max_running: int | None = None, **spec: Any) -> None:
        """A pool with this limit and no holders; ``spec`` (camelCase) as a group of its name
        for namespace "ns" unless given."""
        self.version += 1
        full: dict[str, Any] = {
            "phones": {"groups": [name]},
            "namespaces": {"names": ["ns"]},
            **spec,
        }
        if max_running is not None:
            full["maxRunning"] = max_running
        self.pools[name] = {
            "metadata": {
                "name": name,
                "uid": f"uid-{name}",
                "generation": 1,
                "resourceVersion": str(self.version),
            },
            "spec": full,
            "status": {},
        }

    async def get_pool(self, name: str) -> dict[str, Any] | None:
        """A copy, as a GET returns."""
        await self._answered()
        pool = self.pools.get(name)
        return copy.deepcopy(pool) if pool else None

    async def patch_pool_status(
        self, name: str, status: Mapping[str, Any], resource_version: str | None = None
    ) -> dict[str, Any] | None:
        """A merge patch of the status; None when gone or on a stale resourceVersion."""
        await self._answered()
        self.patches += 1
        pool = self.pools.get(name)
        if pool is None:
            return None
        if resource_version is not None and resource_version != pool["metadata"]["resourceVersion"]:
            self.conflicts += 1
            return None
        self.version += 1
        pool["status"].update(copy.deepcopy(dict(status)))
        pool["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(pool)

    async def _answered(self) -> None:
        """Return when the test lets the API server answer (at once unless it holds them)."""
        self.in_flight += 1
        try:
            await self.answering.wait()
        finally:
            self.in_flight -= 1

    async def list_pools(self) -> list[dict[str, Any]]:
        """Every pool (as a LIST returns them)."""
        return [copy.deepcopy(pool) for pool in self.pools.values()]

    async def list_namespaces(self) -> list[dict[str, Any]]:
        """The namespaces and their labels."""
        return [
            {"metadata": {"name": name, "labels": labels}}
            for name, labels in self.namespaces.items()
        ]

    def bump(self, name: str) -> None:
        """Someone else (another replica, a person) wrote the pool."""
        self.version += 1
        self.pools[name]["metadata"]["resourceVersion"] = str(self.version)


class Catalog:
    """The inventory's cached list, as the pools' status reporter reads it."""

    def __init__(self, phones: FakePhones) -> None:
        self._phones = phones

    def cached(self) -> dict[str, Phone]:
        return dict(self._phones.phones)

    async def refresh(self) -> None:
        """Nothing to refresh."""
