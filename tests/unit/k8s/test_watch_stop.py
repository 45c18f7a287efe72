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
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
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


async def _stop_while_blocked(
    watch: ObjectWatch, call: BlockingCall, *, release: bool = True
) -> None:
    """Start ``watch``, stop it while ``call`` is blocked, then (``release``) let the call
    answer."""
    loop = asyncio.get_running_loop()
    watch.start(loop)
    assert await loop.run_in_executor(None, call.entered.wait, DEADLINE_SECONDS)
    watch.stop(timeout=0)  # the call in flight cannot be interrupted
    if release:
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


async def test_a_watch_whose_thread_still_runs_refuses_to_start_again() -> None:
    """A second thread would share the first's kept objects and resourceVersion."""
    call = BlockingCall("list")
    watch = ObjectWatch("pods", call, lambda t, o: None)
    try:
        await _stop_while_blocked(watch, call, release=False)
        with pytest.raises(RuntimeError, match="the watch of pods still runs"):
            watch.start(asyncio.get_running_loop())
        call.release.set()
        assert await _thread_ended(watch), "the watch thread outlived its stop"
    finally:
        call.release.set()
        call.stream.shutdown()
        watch.stop()
    assert not call.stream.read


async def test_a_watch_started_again_delivers_what_its_stop_held_back_once() -> None:
    """The list answered after the stop was recorded but not delivered: the watch resumes from
    its version (no list again), so the restart delivers it, once."""
    call = BlockingCall("list")
    seen: list[tuple[str, str]] = []
    watch = ObjectWatch("pods", call, lambda t, o: seen.append((t, o["metadata"]["name"])))
    try:
        await _stop_while_blocked(watch, call)
        assert await _thread_ended(watch), "the watch thread outlived its stop"
        for _ in range(3):  # whatever the thread posted before it ended runs now
            await loop_caught_up()
        assert seen == []

        watch.start(asyncio.get_running_loop())
        for _ in range(3):
            await loop_caught_up()
        assert seen == [("ADDED", "a")]
    finally:
        call.stream.shutdown()
        watch.stop()
    assert watch.lists == 1


def test_a_watch_whose_event_loop_closed_ends_quietly(caplog: pytest.LogCaptureFixture) -> None:
    """A list answered after the loop closed (an operator stopped without stopping its watch)
    has nowhere to go: the thread ends, with no error logged and no list again."""
    loop = asyncio.new_event_loop()
    call = BlockingCall("list")
    watch = ObjectWatch("namespaces", call, lambda t, o: None)
    try:
        watch.start(loop)
        assert call.entered.wait(DEADLINE_SECONDS)
        loop.close()
        call.release.set()
        thread = watch._thread
        assert thread is not None
        thread.join(DEADLINE_SECONDS)
        assert not thread.is_alive(), "the watch outlived its event loop"
    finally:
        watch.stop()
        loop.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert watch.lists == 1
