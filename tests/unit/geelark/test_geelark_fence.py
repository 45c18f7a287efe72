"""Once the replica's fence is closed (it lost the Lease, fence.py), the Geelark client sends no
call that changes a phone (start, stop, ADB on or off), even one that was already waiting for
the rate limiter; reads (list, status, ADB data) still go, since admission on every replica
reads the inventory until the process exits. Over real HTTP (the simulator)."""

from __future__ import annotations

import asyncio

import pytest

from phonefleet_operator.errors import ReplicaStopping
from phonefleet_operator.fence import Fence
from phonefleet_operator.geelark import CallPace
from phonefleet_testbed.geelark_sim import GeelarkSimulator, seed_id

from .factories import make_client, make_settings

LOST = "this replica lost Lease phonefleet-system/phonefleet-operator and is stopping"


class GateLimiter(CallPace):
    """A pace that holds every call until ``open`` is set, and says when one waits."""

    def __init__(self) -> None:
        super().__init__(1_000_000, burst=1_000_000)
        self.open = asyncio.Event()
        self.waiting = asyncio.Event()

    async def acquire(self) -> None:
        """Wait for the gate, then acquire as usual."""
        self.waiting.set()
        await self.open.wait()
        await super().acquire()


async def test_a_closed_fence_refuses_every_change_and_lets_reads_through(
    simulator: GeelarkSimulator,
) -> None:
    fence = Fence()
    settings = make_settings(url=simulator.base_url)
    async with make_client(settings, fence=fence) as client:
        fence.close(LOST)
        for change in (
            client.start_phones([seed_id(1)]),
            client.stop_phones([seed_id(1)]),
            client.set_adb([seed_id(1)], True),
        ):
            with pytest.raises(ReplicaStopping, match=LOST):
                await change
        assert (await client.list_phones()).total == 5
        assert seed_id(1) in (await client.phone_status([seed_id(1)])).succeeded
        await client.adb_data([seed_id(1)])

    requests = simulator.admin.counters().requests
    assert set(requests) == {"/open/v1/phone/list", "/open/v1/phone/status", "/open/v1/adb/getData"}
    assert fence.refused() == {
        "/open/v1/phone/start": 1,
        "/open/v1/phone/stop": 1,
        "/open/v1/adb/setStatus": 1,
    }


async def test_a_change_waiting_for_the_rate_limiter_when_the_fence_closes_is_not_sent(
    simulator: GeelarkSimulator,
) -> None:
    """A fleet's calls queue for the account's budget; one let through after the loss would
    start a phone beside the new holder."""
    fence = Fence()
    limiter = GateLimiter()
    settings = make_settings(url=simulator.base_url)
    async with make_client(settings, fence=fence, limiter=limiter) as client:
        start = asyncio.ensure_future(client.start_phones([seed_id(1)]))
        await limiter.waiting.wait()
        fence.close(LOST)
        limiter.open.set()
        with pytest.raises(ReplicaStopping, match="phone/start"):
            await start

    assert simulator.admin.counters().total == 0
