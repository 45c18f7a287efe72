"""Specification of the Geelark budget at fleet scale, counted by the simulator: tens of calls."""

from __future__ import annotations

import asyncio
import math

from phonefleet_operator.geelark import PhoneGateway, PhoneInventory, PhoneStatus
from phonefleet_testbed.geelark_sim import seed_id, seed_name

from .conftest import SimulatorFactory
from .factories import make_client, make_settings

FLEET = 1000


async def test_resolving_a_thousand_phones_costs_one_paged_listing(
    start_simulator: SimulatorFactory,
) -> None:
    """1,000 concurrent bindings (by id and by name) cost ceil(1000/100) list calls in total."""
    simulator = start_simulator(phones=FLEET)
    settings = make_settings(url=simulator.base_url, requests_per_minute=150)
    refs = [seed_id(n) if n % 2 else seed_name(n) for n in range(1, FLEET + 1)]

    async with make_client(settings) as client:
        inventory = PhoneInventory(client, settings)
        phones = await asyncio.gather(*(inventory.resolve(ref) for ref in refs))
        again = await asyncio.gather(*(inventory.resolve(ref) for ref in refs))

    counters = simulator.admin.counters()
    assert [p.id for p in phones] == [seed_id(n) for n in range(1, FLEET + 1)]
    assert again == phones
    assert counters.calls("phone/list") == math.ceil(FLEET / 100)
    assert counters.total == counters.replies(0)  # nothing refused, nothing rate-limited


async def test_a_thousand_bindings_become_ready_in_tens_of_calls(
    start_simulator: SimulatorFactory,
) -> None:
    """Start, status, ADB on, ADB data and stop for 1,000 phones: 200 ids per start call, 100
    per status, ADB and stop call."""
    simulator = start_simulator(phones=FLEET)
    settings = make_settings(
        url=simulator.base_url, batch_window_seconds=0.2, live_view_in_status=True
    )
    ids = [seed_id(n) for n in range(1, FLEET + 1)]

    async with make_client(settings) as client:
        gateway = PhoneGateway(client, settings)
        starts = await asyncio.gather(*(gateway.start(i) for i in ids))
        after_start = simulator.admin.counters()
        statuses = await gateway.statuses(ids)
        await asyncio.gather(*(gateway.enable_adb(i) for i in ids))
        endpoints = await asyncio.gather(*(gateway.adb_endpoint(i) for i in ids))
        running = simulator.admin.running_phone_ids()
        await asyncio.gather(*(gateway.stop(i) for i in ids))
        await gateway.aclose()

    counters = simulator.admin.counters()
    assert after_start.calls("phone/start") == 5
    assert [s.id for s in starts] == ids
    assert all(s.url and s.url.endswith(s.id) for s in starts)
    assert statuses == dict.fromkeys(ids, PhoneStatus.RUNNING)
    assert [e.id for e in endpoints] == ids
    assert len({e.port for e in endpoints}) == FLEET
    assert sorted(running) == sorted(ids)
    assert simulator.admin.running_phone_ids() == []
    assert counters.requests == {
        "/open/v1/phone/start": 5,
        "/open/v1/phone/status": 10,
        "/open/v1/adb/setStatus": 10,
        "/open/v1/adb/getData": 10,
        "/open/v1/phone/stop": 10,
    }
    assert counters.total == counters.replies(0)
