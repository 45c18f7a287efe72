"""Waits that honour cancellation, and a shutdown that runs every step.

``asyncio.wait_for`` on Python 3.11 loses a cancellation that arrives in the same loop iteration
as the awaited thing completes: it returns the result, and the cancelled task runs on. A
background loop cancelled at shutdown just as it was poked then never ends, and the operator
never stops. ``asyncio.timeout`` does not have that race (it was rewritten around it), so every
bounded wait in the operator goes through here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

__all__ = ["each_step", "event_within", "within"]

log = logging.getLogger(__name__)

T = TypeVar("T")


async def event_within(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` passed; True when it is set."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass
    return event.is_set()


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """``awaitable``'s result; TimeoutError when it takes longer than ``seconds``."""
    async with asyncio.timeout(seconds):
        return await awaitable


async def each_step(steps: Iterable[tuple[str, Callable[[], Awaitable[object]]]]) -> bool:
    """Run every step of a shutdown even when one fails; log what failed; True when all
    succeeded. Shutdown never raises: kopf retries a failed clean-up handler every minute,
    forever, and the process would not exit."""
    clean = True
    for what, step in steps:
        try:
            await step()
        except Exception:
            log.exception("Stopping %s failed", what)
            clean = False
    return clean
