"""Many calls at once: the simulator answers concurrent calls in parallel, latency included."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from phonefleet_testbed.geelark_sim import (
    GeelarkSimulator,
    seed_id,
    token_headers,
)

CALLS = 300
LATENCY_MS = 100


async def call_status(session: aiohttp.ClientSession, url: str, number: int) -> int:
    """One phone/status call; returns its envelope code."""
    async with session.post(
        url, json={"ids": [seed_id(number)]}, headers=token_headers("sim-token")
    ) as response:
        envelope = await response.json()
        code: int = envelope["code"]
        return code


async def test_concurrent_calls_with_latency_overlap(
    make_sim: Callable[..., GeelarkSimulator],
) -> None:
    """300 simultaneous status calls with 100 ms latency finish together, far below 300 x 100 ms."""
    sim = make_sim(phones=1000, latency_ms=LATENCY_MS, rate_limit_per_minute=None)
    url = f"{sim.base_url}/open/v1/phone/status"
    connector = aiohttp.TCPConnector(limit=0)
    began = time.monotonic()
    async with aiohttp.ClientSession(connector=connector) as session:
        codes = await asyncio.gather(*(call_status(session, url, n) for n in range(1, CALLS + 1)))
    elapsed = time.monotonic() - began
    assert codes == [0] * CALLS
    assert elapsed < CALLS * LATENCY_MS / 1000 / 5
    counters = sim.admin.counters()
    assert counters.calls("phone/status") == CALLS
    assert counters.max_per_minute == CALLS
