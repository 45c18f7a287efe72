"""What the k8s tests need to follow a real thread (the API pool's, a watch's) from the event
loop without a clock: the thread (or a callback it causes) notifies, the test waits on the
condition it expects, with a deadline; and a count of the thread's wake-ups of the loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

#: How long a test waits for another thread before it fails (a deadline, not a pause).
DEADLINE_SECONDS = 10.0


class Changes:
    """Notified after each change another thread (or a loop callback) makes."""

    def __init__(self) -> None:
        self._condition = threading.Condition()

    def notify(self) -> None:
        with self._condition:
            self._condition.notify_all()

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait, off the loop (so its callbacks keep running), until ``condition`` holds."""

        def wait() -> bool:
            with self._condition:
                return self._condition.wait_for(condition, DEADLINE_SECONDS)

        held = await asyncio.get_running_loop().run_in_executor(None, wait)
        assert held, f"timed out waiting for {what}"


class Wakeups:
    """How often other threads woke the loop (``call_soon_threadsafe``)."""

    count = 0


@contextlib.contextmanager
def counted_wakeups(loop: asyncio.AbstractEventLoop) -> Iterator[Wakeups]:
    """Count the loop's wake-ups from other threads while the block runs."""
    wakeups = Wakeups()
    call_soon_threadsafe = loop.call_soon_threadsafe

    def counted(callback: Callable[..., Any], *args: Any) -> Any:
        wakeups.count += 1
        return call_soon_threadsafe(callback, *args)

    loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
    try:
        yield wakeups
    finally:
        del loop.call_soon_threadsafe
