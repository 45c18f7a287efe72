"""The running limit: admissions and releases are conditional writes the API server decides."""

from __future__ import annotations

import asyncio
import copy

import pytest
from loop_order import loop_caught_up
from pool_fakes import FakePoolStore

from phonefleet_operator.services.claims import BindingRef
from phonefleet_operator.services.tenancy.quota import Quota, holders_of


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


async def test_a_pool_version_older_than_the_last_write_does_not_bring_back_a_released_holder(
    store: FakePoolStore,
) -> None:
    """The pools watch delivers the version of an admission after the release that followed it
    had returned (a late echo, or a relist read before the release). The binding released asks
    again with the pool full: it is queued, not told "held" from the old version without a write
    (it then ran its phone outside the count, and was counted above the limit once the newer
    version came, as one that had been running)."""
    quota = Quota(store)
    assert await quota.admit("acme", ref(1)) is None
    late = copy.deepcopy(store.pools["acme"])  # the admission's version, not delivered yet
    assert await quota.release("acme", "u1") is True
    for i in range(2, 12):
        assert await quota.admit("acme", ref(i)) is None

    quota.observe(late)

    assert await quota.admit("acme", ref(1)) == 1
    assert "u1" not in {h["uid"] for h in holders_of(store.pools["acme"])}
    assert quota.holding("u1") == []


async def test_an_outside_write_costs_one_read(store: FakePoolStore) -> None:
    """A pool changed by someone else is read again and the write retried once."""
    quota = Quota(store)
    await quota.admit("acme", ref(1))
    store.bump("acme")
    before = store.patches

    assert await quota.admit("acme", ref(2)) is None
    assert store.patches - before == 2  # the stale write (409) and the one that counted


async def test_admissions_arriving_during_a_write_are_one_write_oldest_first(
    store: FakePoolStore,
) -> None:
    """Twelve asks against 10 slots, youngest first: the first is written alone; the eleven that
    arrive meanwhile are decided together in one more write, the oldest nine admitted and the
    two youngest of them queued 1 and 2."""
    quota = Quota(store)
    store.answering.clear()  # the first ask's request stays on its way while the others ask

    asks = asyncio.gather(*(quota.admit("acme", ref(i)) for i in reversed(range(12))))
    await loop_caught_up()  # every ask's first step has run
    assert store.in_flight == 1
    store.answering.set()
    results = await asks

    by_binding = dict(zip(reversed(range(12)), results, strict=True))
    assert sorted(i for i, r in by_binding.items() if r is None) == [*range(9), 11]
    assert (by_binding[9], by_binding[10]) == (1, 2)
    assert store.patches == 2
