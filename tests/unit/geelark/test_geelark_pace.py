"""Specification of the account's call pace (``geelark/pace.py``) on looptime's virtual clock:
no 60 s holds more calls than the pace, counted as Geelark may count them; no instant more than
a burst; calls go in the order they came, as soon as both allow."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import pytest
from loop_order import let_virtual_time_pass

from phonefleet_operator.geelark import CallPace, build_rate_limiter
from phonefleet_operator.geelark.pace import BURST_CALLS, BURST_SECONDS, WINDOW_SECONDS

from .factories import make_settings

pytestmark = pytest.mark.looptime

#: Looptime's clock has microseconds: a call sent exactly 60 s after another's answer (where the
#: pace lets it go, and Geelark counts the older one no more) can read a float's hair under 60 s.
TICK = 1e-6


@dataclass
class Call:
    """One call's life on the loop's clock: asked for, sent, answered."""

    asked: float
    sent: float = -1.0
    ended: float = -1.0


async def run_calls(pace: CallPace, pattern: list[tuple[float, float]]) -> list[Call]:
    """Make one call per ``(arrival, duration)``: each waits for the pace, is in flight for its
    duration, then releases; returns them in the order they arrived."""
    loop = asyncio.get_running_loop()

    async def one(arrival: float, duration: float) -> Call:
        await let_virtual_time_pass(arrival)
        call = Call(asked=loop.time())
        await pace.acquire()
        call.sent = loop.time()
        try:
            await let_virtual_time_pass(duration)
        finally:
            pace.release()
        call.ended = loop.time()
        return call

    calls = await asyncio.gather(*(one(a, d) for a, d in pattern))
    return sorted(calls, key=lambda c: (c.asked, c.sent))


def most_counted_by_geelark(calls: list[Call]) -> int:
    """The most calls Geelark could count in one 60 s, wherever between its send and its answer
    each call arrived: for each call, those sent no later whose answer came less than 60 s
    before it was sent (any window of arrivals is inside one such set, see pace.py)."""
    return max(
        sum(1 for d in calls if d.sent <= c.sent and d.ended > c.sent - WINDOW_SECONDS + TICK)
        for c in calls
    )


def most_sent_within(calls: list[Call], seconds: float) -> int:
    """The most calls sent in any ``seconds`` (half-open, as Geelark's window)."""
    sent = sorted(c.sent for c in calls)
    return max(sum(1 for t in sent if s <= t < s + seconds - TICK) for s in sent)


def random_pattern(rng: random.Random) -> list[tuple[float, float]]:
    """Calls in clumps and trickles, as a fleet makes them: bursts of up to 60 at one moment,
    pauses of up to 90 s, answers in 0-3 s (a few of up to 40 s)."""
    pattern: list[tuple[float, float]] = []
    now = 0.0
    size = rng.randint(1, 400)
    while len(pattern) < size:
        now += rng.choice([0.0, rng.uniform(0, 2), rng.uniform(0, 90)])
        for _ in range(rng.choice([1, 1, 2, 5, rng.randint(1, 60)])):
            slow = rng.random() < 0.05
            pattern.append((now, rng.uniform(0, 40) if slow else rng.uniform(0, 3)))
    return pattern


@pytest.mark.parametrize("seed", range(40))
async def test_no_60_s_holds_more_calls_than_the_pace_for_any_pattern_of_calls(seed: int) -> None:
    """Random clumps of calls at random paces (190 among them, near the account's 200): no
    60 s holds more than the pace, however long each call was in flight, no second more than a
    burst, every call is sent, and in the order it came."""
    rng = random.Random(seed)  # noqa: S311 - seeded call patterns, no secret
    rpm = rng.choice([1, 5, 30, 125, 190, rng.randint(1, 200)])
    pace = build_rate_limiter(make_settings(requests_per_minute=rpm))
    pattern = random_pattern(rng)

    calls = await run_calls(pace, pattern)

    assert len(calls) == len(pattern)
    assert most_counted_by_geelark(calls) <= rpm
    assert most_sent_within(calls, WINDOW_SECONDS) <= rpm
    assert most_sent_within(calls, BURST_SECONDS) <= min(BURST_CALLS, rpm)
    sent_in_arrival_order = [c.sent for c in calls]
    assert sent_in_arrival_order == sorted(sent_in_arrival_order)
    assert pace.in_window() <= rpm


async def test_a_convergence_of_45_calls_goes_at_the_bursts_speed_not_a_trickle() -> None:
    """45 calls asked for at once at 125 a minute: ten a second, all sent within 4 s (the leaky
    bucket of 125 a minute sent the last one after 12 s)."""
    pace = build_rate_limiter(make_settings(requests_per_minute=125))

    calls = await run_calls(pace, [(0.0, 0.1)] * 45)
    start = calls[0].asked

    assert [c.sent - start for c in calls[::10]] == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])
    assert max(c.sent for c in calls) - start == pytest.approx(4.0)


async def test_the_call_past_the_pace_waits_until_60_s_after_the_first_answer() -> None:
    """At 20 a minute, 21 calls answered in 2 s each: the 21st is sent 60 s after the first
    call's answer (62 s), not 60 s after its send."""
    pace = CallPace(20)

    calls = await run_calls(pace, [(0.0, 2.0)] * 21)

    assert calls[-1].sent == pytest.approx(calls[0].ended + WINDOW_SECONDS)
    assert calls[-1].sent - calls[0].asked == pytest.approx(62.0)


async def test_calls_in_flight_hold_their_place_until_they_end() -> None:
    """At 2 a minute, two calls in flight for 100 s: the third waits for the first to end,
    then 60 s more."""
    pace = CallPace(2)

    calls = await run_calls(pace, [(0.0, 100.0), (0.0, 130.0), (1.0, 0.0)])

    assert calls[2].sent - calls[0].asked == pytest.approx(160.0)


async def test_a_queued_call_leaves_no_room_and_a_cancelled_one_no_trace() -> None:
    """While a call waits for the window nobody else has room; cancelled, it takes nothing."""
    pace = CallPace(1)
    await pace.acquire()
    pace.release()
    waiting = asyncio.ensure_future(pace.acquire())
    await let_virtual_time_pass(1)

    assert not waiting.done()
    assert not pace.has_room()
    assert not pace.is_quiet()

    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await let_virtual_time_pass(WINDOW_SECONDS)
    assert pace.has_room()
    assert pace.in_window() == 0


async def test_the_reserve_is_a_sixth_of_the_minute() -> None:
    """At 125 a minute the account is quiet while 21 calls of the minute are free, however many
    went this second; one call more and it is not, though there is room for calls."""
    pace = build_rate_limiter(make_settings(requests_per_minute=125))
    assert pace.reserve == 21

    for _ in range(96):
        await pace.acquire()
        pace.release()
        await let_virtual_time_pass(0.5)
    await let_virtual_time_pass(1)
    for _ in range(8):  # eight in one instant: 104 in the minute
        await pace.acquire()
        pace.release()
    assert pace.in_window() == 104
    assert pace.is_quiet()

    await pace.acquire()
    pace.release()
    assert pace.has_room()
    assert not pace.is_quiet()
