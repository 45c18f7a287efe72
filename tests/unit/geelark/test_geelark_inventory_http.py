"""Specification of the inventory against the simulator: new, renamed and same-named phones."""

from __future__ import annotations

from typing import Any

import pytest

from phonefleet_operator.errors import AmbiguousPhone, GeelarkUnavailable, PhoneNotFound
from phonefleet_operator.geelark import PhoneInventory
from phonefleet_testbed.geelark_sim import GeelarkSimulator, OpenApiProbe, seed_id, seed_name

from .conftest import SimulatorFactory
from .factories import Clock, make_client, make_settings

MISS_REFRESH = 15.0
REFRESH = 300.0


async def test_phones_created_renamed_or_doubled_after_the_listing_resolve_correctly(
    start_simulator: SimulatorFactory,
) -> None:
    """A new phone is found by one targeted query, a renamed one by id; a doubled name fails.

    A name doubled after the listing is seen as doubled from the next full refresh on.
    """
    simulator = start_simulator(phones=250)
    settings = make_settings(
        url=simulator.base_url,
        inventory_refresh_seconds=REFRESH,
        inventory_miss_refresh_seconds=MISS_REFRESH,
    )
    clock = Clock()

    async with make_client(settings) as client:
        inventory = PhoneInventory(client, settings, clock=clock)
        bound = await inventory.resolve("phone-002")
        listing = simulator.admin.counters().calls("phone/list")

        late = simulator.admin.create_phone("late-phone")
        simulator.admin.rename_phone(bound.id, "renamed-002")
        simulator.admin.create_phone("phone-007")
        clock.advance(MISS_REFRESH)
        found_late = await inventory.resolve("late-phone")
        after_miss = simulator.admin.counters().calls("phone/list")
        found_bound = await inventory.resolve(bound.id)
        clock.advance(REFRESH)
        with pytest.raises(AmbiguousPhone, match=seed_id(7)):
            await inventory.resolve("phone-007")
        with pytest.raises(PhoneNotFound):
            await inventory.resolve("phone-002")

    assert listing == 3
    assert found_late.id == late.id
    assert after_miss == listing + 1
    assert found_bound.id == bound.id


async def test_each_attempt_carries_a_fresh_trace_id(
    start_simulator: SimulatorFactory,
) -> None:
    """A retried call is a new request: every attempt gets its own traceId."""
    simulator = start_simulator(phones=1)
    simulator.admin.set_faults("phone/list", code=50000, times=2)
    issued: list[str] = []

    def new_trace_id() -> str:
        issued.append(f"trace-{len(issued):04d}")
        return issued[-1]

    settings = make_settings(url=simulator.base_url)
    async with make_client(settings, new_trace_id=new_trace_id) as client:
        await client.list_phones()

    assert issued == ["trace-0000", "trace-0001", "trace-0002"]
    assert simulator.admin.counters().calls("phone/list") == 3


def listed_items(simulator: GeelarkSimulator, count: int) -> list[dict[str, Any]]:
    """The first ``count`` phones as the simulator's own ``/phone/list`` shows them."""
    probe = OpenApiProbe(simulator.base_url)
    try:
        items: list[dict[str, Any]] = probe.data("phone/list", {"page": 1, "pageSize": count})[
            "items"
        ]
    finally:
        probe.close()
    return items


async def test_a_listing_answered_with_data_null_is_could_not_check_and_keeps_the_cache(
    start_simulator: SimulatorFactory,
) -> None:
    """Code 0 with ``data: null`` is no listing: the first lookup is unavailable, later ones
    keep the phones already known, and no phone is ever called missing because of it."""
    simulator = start_simulator(phones=5)
    settings = make_settings(url=simulator.base_url)
    clock = Clock()
    simulator.admin.set_faults("phone/list", reply={"data": None})

    async with make_client(settings) as client:
        inventory = PhoneInventory(client, settings, clock=clock)
        with pytest.raises(GeelarkUnavailable):
            await inventory.resolve("phone-001")
        simulator.admin.clear_faults()
        clock.advance(MISS_REFRESH)
        known = await inventory.resolve("phone-001")

        simulator.admin.set_faults("phone/list", reply={"data": None})
        clock.advance(REFRESH)
        still_known = await inventory.resolve("phone-002")
        with pytest.raises(GeelarkUnavailable):
            await inventory.resolve("phone-new")

    assert known.id == seed_id(1)
    assert still_known.id == seed_id(2)
    assert len(inventory.cached()) == 5


async def test_a_short_page_while_the_total_says_more_is_could_not_check(
    start_simulator: SimulatorFactory,
) -> None:
    """A listing that stops before the total it reports is incomplete: GeelarkUnavailable."""
    simulator = start_simulator(phones=150)
    settings = make_settings(url=simulator.base_url)
    short = {"total": 150, "page": 1, "pageSize": 100, "items": listed_items(simulator, 10)}
    simulator.admin.set_faults("phone/list", reply={"data": short}, times=1)

    clock = Clock()

    async with make_client(settings) as client:
        inventory = PhoneInventory(client, settings, clock=clock)
        with pytest.raises(GeelarkUnavailable, match="incomplete"):
            await inventory.resolve(seed_name(50))
        clock.advance(MISS_REFRESH)  # after a failed listing, the next waits out the interval
        found = await inventory.resolve(seed_name(50))

    assert found.id == seed_id(50)


async def test_a_ref_missing_right_after_another_miss_is_still_asked_about(
    start_simulator: SimulatorFactory,
) -> None:
    """A miss refresh answers only the refs it asked about: a phone created meanwhile and
    looked up seconds after another binding's miss is found, not called missing."""
    simulator = start_simulator(phones=250)
    settings = make_settings(url=simulator.base_url, inventory_miss_refresh_seconds=MISS_REFRESH)
    clock = Clock()

    async with make_client(settings) as client:
        inventory = PhoneInventory(client, settings, clock=clock)
        await inventory.resolve("phone-001")
        clock.advance(MISS_REFRESH)
        with pytest.raises(PhoneNotFound):
            await inventory.resolve("ghost-phone")
        created = simulator.admin.create_phone("late-phone")
        clock.advance(1.0)
        calls = simulator.admin.counters().calls("phone/list")
        found = await inventory.resolve("late-phone")
        with pytest.raises(PhoneNotFound):
            await inventory.resolve("ghost-phone")  # asked a second ago: no new call

    assert found.id == created.id
    assert simulator.admin.counters().calls("phone/list") == calls + 1
