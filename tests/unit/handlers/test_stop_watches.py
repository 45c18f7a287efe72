"""The operator's clean-up stops its watch threads off the event loop: it tells every watch to
stop at once, then waits for all of them together (one deadline), while the loop goes on running
(the bindings' loops, the probes, kopf's own clean-up).

The watches' list calls block until the test lets them answer: such a call cannot be
interrupted, so a thread ends only once its call has answered.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import kopf

from phonefleet_operator.handlers.watches import stop_watches
from phonefleet_operator.k8s.watch import ObjectWatch
from phonefleet_operator.waiting import within

#: How long the test waits for another thread before it fails (a deadline, not a pause).
DEADLINE_SECONDS = 10.0


async def loop_caught_up() -> None:
    """Return once the loop has run every callback scheduled before (a task's first step)."""
    caught_up: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(caught_up.set_result, None)
    await caught_up


class Listed:
    """An empty list answer as the client gives it with _preload_content=False."""

    data = json.dumps({"metadata": {"resourceVersion": "1"}, "items": []}).encode()

    def release_conn(self) -> None:
        """Nothing to release."""


class HeldList:
    """A list call that answers once the test releases it (never a watch: the stop comes
    first)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, **kwargs: Any) -> Any:
        assert not kwargs.get("watch"), "the stopped watch went on to watch"
        self.entered.set()
        self.release.wait(DEADLINE_SECONDS)
        return Listed()


async def test_stopping_the_watches_leaves_the_event_loop_running_until_their_threads_end() -> None:
    loop = asyncio.get_running_loop()
    calls = [HeldList(), HeldList()]
    memo = kopf.Memo()
    memo.watches = [ObjectWatch(f"w{i}", call, lambda t, o: None) for i, call in enumerate(calls)]
    for watch in memo.watches:
        watch.start(loop)
    try:
        for call in calls:
            assert await loop.run_in_executor(None, call.entered.wait, DEADLINE_SECONDS)

        stopping = asyncio.create_task(stop_watches(memo))
        await loop_caught_up()  # the clean-up's first step ran; the loop runs this test again
        assert not stopping.done(), "the clean-up returned before the watch threads ended"
        assert all(watch._stop.is_set() and watch.alive() for watch in memo.watches)

        for call in calls:
            call.release.set()
        await within(stopping, DEADLINE_SECONDS)
        assert not any(watch.alive() for watch in memo.watches)
    finally:
        for call in calls:
            call.release.set()
        for watch in memo.watches:
            watch.stop()
