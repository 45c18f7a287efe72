"""The API threads hand their answers to the event loop in batches, and a call nobody waits for
any more is not made: cancelled while queued, or queued when the caller closes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes import client
from loop_order import loop_caught_up
from thread_signals import DEADLINE_SECONDS, Changes, counted_wakeups

from phonefleet_operator.k8s.api import ApiCaller
from phonefleet_operator.k8s.handoff import Handoff


class Answer:
    """A response as the client gives it with _preload_content=False."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def release_conn(self) -> None:
        """Nothing to release."""


class Gate:
    """A client method that blocks until opened, and records each call it got."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.calls: list[str] = []
        self.changes = Changes()

    def __call__(self, name: str, **_kwargs: Any) -> Answer:
        self.calls.append(name)
        self.changes.notify()
        if not self.open.wait(10):
            raise TimeoutError("the gate was never opened")
        return Answer(b'{"name": "%s"}' % name.encode())


def free(name: str, **_kwargs: Any) -> Answer:
    return Answer(b'{"name": "%s"}' % name.encode())


@pytest.fixture
async def one_thread() -> AsyncIterator[ApiCaller]:
    api = ApiCaller(client.ApiClient(), 1)
    yield api
    api.close()


async def test_answers_that_come_while_the_loop_is_busy_wake_it_once(
    one_thread: ApiCaller,
) -> None:
    """Fifty calls answered while the event loop is blocked: one wake-up brings all fifty,
    in order."""
    names = [f"o{i}" for i in range(50)]
    gate = Gate()
    with counted_wakeups(asyncio.get_running_loop()) as wakeups:
        calls = [asyncio.ensure_future(one_thread(gate, name)) for name in names]
        await gate.changes.until(lambda: gate.calls == ["o0"], "the first call in flight")
        before = wakeups.count
        gate.open.set()
        # Block the loop until the thread has answered every call (the answers queue up).
        answered = threading.Event()
        one_thread._pool.submit(answered.set)  # behind the fifty, in the pool's order
        assert answered.wait(10)
        answers = await asyncio.gather(*calls)
    assert [a["name"] for a in answers] == names
    assert wakeups.count - before == 1


async def test_a_call_cancelled_while_queued_is_never_made(one_thread: ApiCaller) -> None:
    gate = Gate()
    first = asyncio.ensure_future(one_thread(gate, "first"))
    await gate.changes.until(lambda: gate.calls == ["first"], "the first call in flight")
    second = asyncio.ensure_future(one_thread(gate, "second"))
    await loop_caught_up()  # its first step ran: queued behind the first
    second.cancel()
    gate.open.set()
    assert (await first) == {"name": "first"}
    with pytest.raises(asyncio.CancelledError):
        await second
    # The pool's single thread runs one more call only after the cancelled one was skipped.
    assert (await one_thread(free, "third")) == {"name": "third"}
    assert gate.calls == ["first"]


async def test_closing_cancels_the_calls_still_queued_and_answers_the_one_in_flight() -> None:
    caller = ApiCaller(client.ApiClient(), 1)
    gate = Gate()
    first = asyncio.ensure_future(caller(gate, "first"))
    await gate.changes.until(lambda: gate.calls == ["first"], "the first call in flight")
    queued = asyncio.ensure_future(caller(gate, "queued"))
    await loop_caught_up()  # its first step ran: queued behind the first
    caller.close()
    gate.open.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(queued, 10)
    assert (await asyncio.wait_for(first, 10)) == {"name": "first"}  # in flight: answered
    assert gate.calls == ["first"]


async def test_callbacks_posted_first_run_before_those_already_pending_in_their_order() -> None:
    """A restarted watch's held-back changes come before what its ended thread posted last."""
    ran: list[str] = []
    handoff = Handoff(asyncio.get_running_loop())
    handoff.post(lambda: ran.append("posted"))
    handoff.post_first([lambda: ran.append("held 1"), lambda: ran.append("held 2")])
    await loop_caught_up()
    assert ran == ["held 1", "held 2", "posted"]


async def test_quiet_says_whether_a_call_waits_for_a_thread_and_wakes_when_none_does(
    one_thread: ApiCaller,
) -> None:
    """The backlog the Events give way to (k8s/events.py): a call queued behind the one in
    flight is a backlog; once both are answered there is none, and a waiter is woken."""
    assert await one_thread.quiet(within=0)  # nothing called yet
    gate = Gate()
    first = asyncio.ensure_future(one_thread(gate, "first"))
    await gate.changes.until(lambda: gate.calls == ["first"], "the first call in flight")
    assert await one_thread.quiet(within=0)  # in flight, none waiting behind it
    second = asyncio.ensure_future(one_thread(gate, "second"))
    await loop_caught_up()  # its first step ran: queued behind the first
    assert not await one_thread.quiet(within=0)
    waiter = asyncio.ensure_future(one_thread.quiet(within=DEADLINE_SECONDS))
    await loop_caught_up()
    assert not waiter.done()
    gate.open.set()
    await asyncio.gather(first, second)
    assert await waiter
    assert await one_thread.quiet(within=0)
