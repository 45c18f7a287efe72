"""A stopped list-then-watch ends and hands nothing more to its consumer, whatever call it was
in when it was stopped.

The operator stops its watches when it shuts down or loses the leader Lease, then closes the
bindings' loops; a change handed over after that would reach consumers that are closed (or start
a task nobody awaits). The API server is played by the in-memory collection of test_watch.py's
kind, with a call that blocks until the test lets it answer.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

from loop_order import loop_caught_up
from thread_signals import DEADLINE_SECONDS

from phonefleet_operator.k8s.watch import ObjectWatch

Obj = dict[str, Any]


def pod(name: str, version: int) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(version)}}


class Listed:
    """A list answer as the client gives it with _preload_content=False."""

    def __init__(self, body: Obj) -> None:
        self.data = json.dumps(body).encode()

    def release_conn(self) -> None:
        """Nothing to release."""


class HeldStream:
    """A watch answer that stays open until shut (30 s at most); records whether it was read."""

    def __init__(self) -> None:
        self.read = False
        self._shut = threading.Event()

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        self.read = True
        self._shut.wait(30)
        yield from ()

    def shutdown(self) -> None:
        self._shut.set()

    def release_conn(self) -> None:
        """Nothing to release."""


class BlockingCall:
    """The collection's list or watch call (``blocks``: "list" or "watch") answers only once
    the test releases it; the other answers at once."""

    def __init__(self, blocks: str) -> None:
        self.blocks = blocks
        self.entered = threading.Event()
        self.release = threading.Event()
        self.stream = HeldStream()

    def __call__(self, **kwargs: Any) -> Any:
        kind = "watch" if kwargs.get("watch") else "list"
        if kind == self.blocks and not self.entered.is_set():
            self.entered.set()
            self.release.wait(DEADLINE_SECONDS)
        if kind == "watch":
            return self.stream
        return Listed({"metadata": {"resourceVersion": "1"}, "items": [pod("a", 1)]})


async def _stop_while_blocked(watch: ObjectWatch, call: BlockingCall) -> None:
    """Start ``watch``, stop it while ``call`` is blocked, then let the call answer."""
    loop = asyncio.get_running_loop()
    watch.start(loop)
    assert await loop.run_in_executor(None, call.entered.wait, DEADLINE_SECONDS)
    watch.stop(timeout=0)  # the call in flight cannot be interrupted
    call.release.set()


async def _thread_ended(watch: ObjectWatch) -> bool:
    """Join the watch's thread (not through ``stop``: that would interrupt what it reads)."""
    thread = watch._thread
    assert thread is not None
    await asyncio.get_running_loop().run_in_executor(None, thread.join, DEADLINE_SECONDS)
    return not thread.is_alive()


async def test_a_list_answered_after_the_watch_stopped_is_not_handed_over() -> None:
    call = BlockingCall("list")
    seen: list[tuple[str, Obj]] = []
    watch = ObjectWatch("pods", call, lambda t, o: seen.append((t, o)))
    try:
        await _stop_while_blocked(watch, call)
        assert await _thread_ended(watch), "the watch thread outlived its stop"
        for _ in range(3):  # whatever the thread posted before it ended runs now
            await loop_caught_up()
    finally:
        call.stream.shutdown()
        watch.stop()
    assert seen == []


async def test_a_watch_answered_after_the_watch_stopped_is_not_read() -> None:
    """The response did not exist when ``stop`` looked for one to interrupt: the thread must
    see the stop itself, not block on the stream until the API server ends it."""
    call = BlockingCall("watch")
    watch = ObjectWatch("pods", call, lambda t, o: None)
    try:
        await _stop_while_blocked(watch, call)
        assert await _thread_ended(watch), "the watch thread outlived its stop"
    finally:
        call.stream.shutdown()
        watch.stop()
    assert not call.stream.read
