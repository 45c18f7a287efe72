"""Bounded waits that honour cancellation, and a shutdown that runs every step."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

import pytest

from phonefleet_operator.waiting import each_step, event_within, within


async def _poked_loop(event: asyncio.Event) -> None:
    """A background loop as the operator writes them: wait for a poke or a period, again."""
    while True:
        await event_within(event, 10)
        event.clear()


class Poke(asyncio.Event):
    """An event that tells the test when its waiter waits, and when the poke has reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = asyncio.Event()
        self.reached = asyncio.Event()

    async def wait(self) -> Literal[True]:
        self.waited.set()
        await super().wait()
        self.reached.set()
        return True


@pytest.mark.looptime
async def test_a_loop_cancelled_as_it_is_poked_ends() -> None:
    """asyncio.wait_for on 3.11 lost this cancellation (the poke won, the loop ran on and the
    operator never stopped); event_within keeps it. The cancellation comes as soon as the poke
    has reached the wait, before the loop could take the next step."""
    event = Poke()
    task = asyncio.create_task(_poked_loop(event))
    await event.waited.wait()
    event.set()
    await event.reached.wait()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=60)
    assert task in done
    assert task.cancelled()


@pytest.mark.looptime
async def test_event_within_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await event_within(event, 5) is False
    asyncio.get_running_loop().call_later(1, event.set)
    assert await event_within(event, 5) is True


@pytest.mark.looptime
async def test_within_gives_the_result_or_times_out() -> None:
    async def answer(after: float) -> str:
        await asyncio.sleep(after)
        return "done"

    assert await within(answer(1), 5) == "done"
    with pytest.raises(TimeoutError):
        await within(answer(10), 5)


async def test_each_step_runs_every_step_and_logs_the_failed_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    async def ok(name: str) -> None:
        ran.append(name)

    async def broken() -> None:
        ran.append("broken")
        raise RuntimeError("cannot schedule new futures after shutdown")

    with caplog.at_level(logging.ERROR):
        clean = await each_step(
            [
                ("first", lambda: ok("first")),
                ("the broken part", broken),
                ("last", lambda: ok("last")),
            ]
        )
    assert ran == ["first", "broken", "last"]
    assert clean is False
    assert "Stopping the broken part failed" in caplog.text
    assert await each_step([("only", lambda: ok("only"))]) is True
