"""Orders on the event loop for unit tests that run tasks of the code under test: a marker
behind what was scheduled, or a condition waited for with a deadline on the loop's clock.
Neither is a pause: a test says what it waits for."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def loop_caught_up() -> None:
    """Return once the event loop has run every callback scheduled before this call.

    The loop runs its ready callbacks in the order they were scheduled: a marker scheduled now
    runs after a task's first step (``ensure_future``) and after whatever a thread that has
    ended handed over (``call_soon_threadsafe``). An order on the loop, not a pause.
    """
    loop = asyncio.get_running_loop()
    caught_up: asyncio.Future[None] = loop.create_future()
    loop.call_soon(caught_up.set_result, None)
    await caught_up


async def until(
    check: Callable[[], object],
    between: Callable[[], object] | None = None,
    *,
    within: float = 600.0,
    every: float = 0.01,
) -> None:
    """Let the loop's tasks run until ``check`` holds; fail after ``within`` seconds on the
    loop's clock (virtual under looptime: the tasks' own delays pass at once, and a deadline
    this long costs nothing unless the test fails). ``between`` runs before each wait (a
    test's stand-in for a watch delivering what happened meanwhile)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, f"timed out after {within} s (loop clock)"
        if between is not None:
            between()
        await asyncio.sleep(every)


async def let_virtual_time_pass(seconds: float) -> None:
    """Let ``seconds`` pass on looptime's virtual clock while the loop's tasks run: the code's
    own timers (a retry, a renewal, a stand-in's answer delay) fire as they come due, and no
    wall time passes. Refuses a loop whose clock is real, so it can never become a pause."""
    loop = asyncio.get_running_loop()
    assert getattr(loop, "looptime_on", False), "needs looptime's virtual clock (mark: looptime)"
    await asyncio.sleep(seconds)
