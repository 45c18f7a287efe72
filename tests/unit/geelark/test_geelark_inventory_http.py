"""Specification of the inventory against the simulator: new, renamed and same-named phones."""

from __future__ import annotations

import pytest

from phonefleet_operator.errors import AmbiguousPhone, PhoneNotFound
from phonefleet_operator.geelark import PhoneInventory
from phonefleet_testbed.geelark_sim import seed_id

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
