"""Many calls at once: the simulator answers concurrent calls in parallel, latency included."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from phonefleet_testbed.geelark_sim import (
    GeelarkSimulator,
    seed_id,
    token_headers,
)

CALLS = 300
LATENCY_MS = 100
#: How long the gate waits for every call to arrive: a deadline, never a measured time.
GATE_DEADLINE_SECONDS = 60.0


class LatencyGate:
    """The simulator's ``sleep``: holds each call's latency until ``expected`` calls wait in it.

    Calls the simulator handled one after another could never all be inside at once: the gate
    would hit its deadline and those calls would fail.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.delays: list[float] = []
        self.most_held = 0
        self._held = 0
        self._all_in: asyncio.Event | None = None

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self._all_in is None:
            self._all_in = asyncio.Event()  # in the simulator's own loop
        self._held += 1
        self.most_held = max(self.most_held, self._held)
        if self._held >= self.expected:
            self._all_in.set()
        try:
            await asyncio.wait_for(self._all_in.wait(), GATE_DEADLINE_SECONDS)
        finally:
            self._held -= 1


async def call_status(session: aiohttp.ClientSession, url: str, number: int) -> int:
    """One phone/status call; returns its envelope code (or the HTTP status if not 200)."""
    async with session.post(
        url, json={"ids": [seed_id(number)]}, headers=token_headers("sim-token")
    ) as response:
        if response.status != 200:
            return response.status
        envelope = await response.json()
        code: int = envelope["code"]
        return code


async def test_concurrent_calls_wait_out_their_latency_together(
    make_sim: Callable[..., GeelarkSimulator],
) -> None:
    """300 simultaneous status calls are all inside their 100 ms latency at once, then answered."""
    gate = LatencyGate(expected=CALLS)
    sim = make_sim(phones=1000, latency_ms=LATENCY_MS, rate_limit_per_minute=None, sleep=gate)
    url = f"{sim.base_url}/open/v1/phone/status"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        codes = await asyncio.gather(*(call_status(session, url, n) for n in range(1, CALLS + 1)))
    assert codes == [0] * CALLS
    assert gate.most_held == CALLS
    assert gate.delays == [LATENCY_MS / 1000] * CALLS
    counters = sim.admin.counters()
    assert counters.calls("phone/status") == CALLS
    assert counters.max_per_minute == CALLS
