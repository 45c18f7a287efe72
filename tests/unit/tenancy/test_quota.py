"""The running limit: admissions and releases are conditional writes the API server decides."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

import pytest

from phonefleet_operator.services.claims import BindingRef
from phonefleet_operator.services.tenancy.quota import Quota, holders_of


class FakePoolStore:
    """PhonePools as the API server keeps them: a resourceVersion that moves on every write, and
    409 for a patch whose resourceVersion is not the current one."""

    def __init__(self) -> None:
        self.pools: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.patches = 0
        self.conflicts = 0

    def create(self, name: str, max_running: int | None) -> None:
        """A pool with this limit and no holders."""
        self.version += 1
        spec = {"phones": {"groups": [name]}}
        if max_running is not None:
            spec["maxRunning"] = max_running  # type: ignore[assignment]
        self.pools[name] = {
            "metadata": {"name": name, "resourceVersion": str(self.version)},
            "spec": spec,
            "status": {},
        }

    async def get_pool(self, name: str) -> dict[str, Any] | None:
        """A copy, as a GET returns."""
        await asyncio.sleep(0)
        pool = self.pools.get(name)
        return copy.deepcopy(pool) if pool else None

    async def patch_pool_status(
        self, name: str, status: Mapping[str, Any], resource_version: str | None = None
    ) -> dict[str, Any] | None:
        """A merge patch of the status; None when gone or on a stale resourceVersion."""
        await asyncio.sleep(0)  # other writers run between the read and the write
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

    def bump(self, name: str) -> None:
        """Someone else (another replica, a person) wrote the pool."""
        self.version += 1
        self.pools[name]["metadata"]["resourceVersion"] = str(self.version)


def ref(i: int) -> BindingRef:
    """Binding number ``i`` (older for smaller ``i``)."""
    return BindingRef(
        created=f"2026-01-01T00:00:{i:02d}Z", namespace="ns", name=f"b{i}", uid=f"u{i}"
    )


@pytest.fixture
def store() -> FakePoolStore:
    """One pool "acme" with maxRunning 10."""
    fake = FakePoolStore()
    fake.create("acme", 10)
    return fake


async def test_fifty_admissions_at_once_admit_exactly_the_limit(store: FakePoolStore) -> None:
    """Two operators (two Quota objects, no shared lock) race 50 admissions: 10 hold a slot."""
    replicas = [Quota(store), Quota(store)]

    results = await asyncio.gather(
        *(replicas[i % 2].admit("acme", ref(i)) for i in range(50)), return_exceptions=True
    )

    admitted = [i for i, r in enumerate(results) if r is None]
    assert len(admitted) == 10
    assert len(holders_of(store.pools["acme"])) == 10
    assert store.pools["acme"]["status"]["running"] == 10
    assert store.conflicts > 0  # the replicas did collide, and the API server sorted it out


async def test_a_release_frees_a_slot_for_the_next(store: FakePoolStore) -> None:
    """Once a holder is released the next binding gets its slot; before, it is queued."""
    quota = Quota(store)
    for i in range(10):
        assert await quota.admit("acme", ref(i)) is None

    assert await quota.admit("acme", ref(10)) == 1
    assert await quota.release("acme", "u3") is True
    assert await quota.admit("acme", ref(10)) is None
    assert await quota.release("acme", "u3") is False


async def test_an_older_waiter_goes_first(store: FakePoolStore) -> None:
    """A free slot is not taken while an older binding waits for one."""
    quota = Quota(store)

    assert await quota.admit("acme", ref(20), older_queued=2) == 3
    assert await quota.admit("acme", ref(20)) is None


async def test_admitting_twice_counts_once(store: FakePoolStore) -> None:
    """Admission is idempotent: every pass of a running binding asks again."""
    quota = Quota(store)

    assert await quota.admit("acme", ref(1)) is None
    assert await quota.admit("acme", ref(1)) is None
    assert store.pools["acme"]["status"]["running"] == 1


async def test_a_lowered_limit_stops_nothing_and_blocks_new_admissions(
    store: FakePoolStore,
) -> None:
    """Holders above a lowered limit stay; newcomers wait until the count is below it."""
    quota = Quota(store)
    for i in range(5):
        await quota.admit("acme", ref(i))
    store.pools["acme"]["spec"]["maxRunning"] = 2
    store.bump("acme")

    assert await quota.admit("acme", ref(9)) == 1
    assert len(holders_of(store.pools["acme"])) == 5
    for uid in ("u0", "u1", "u2"):
        await quota.release("acme", uid)
    assert await quota.admit("acme", ref(9)) == 1
    await quota.release("acme", "u3")
    assert await quota.admit("acme", ref(9)) is None


async def test_a_running_binding_is_counted_even_above_the_limit(store: FakePoolStore) -> None:
    """A binding that already ran before the pool existed is grandfathered in, never stopped."""
    quota = Quota(store)
    for i in range(10):
        await quota.admit("acme", ref(i))

    assert await quota.admit("acme", ref(30), grandfathered=True) is None
    assert store.pools["acme"]["status"]["running"] == 11


async def test_an_outside_write_costs_one_read(store: FakePoolStore) -> None:
    """A pool changed by someone else is read again and the write retried once."""
    quota = Quota(store)
    await quota.admit("acme", ref(1))
    store.bump("acme")
    before = store.patches

    assert await quota.admit("acme", ref(2)) is None
    assert store.patches - before == 2  # the stale write (409) and the one that counted
