"""In-process coordination between a binding's reconcile loop, its deletion and its wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["BindingLocks", "Wakeups"]


@dataclass
class BindingLocks:
    """One lock per binding uid: the reconcile loop and the deletion handler never overlap.

    kopf runs deletion handlers while it is still stopping a binding's daemon; without this lock
    a reconcile could start a phone right after the deletion stopped it.
    """

    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _released: set[str] = field(default_factory=set)

    @contextlib.asynccontextmanager
    async def hold(self, uid: str) -> AsyncIterator[bool]:
        """Hold the binding's lock; yields False once the binding has been released for good."""
        lock = self._locks.setdefault(uid, asyncio.Lock())
        async with lock:
            yield uid not in self._released

    def mark_released(self, uid: str) -> None:
        """The binding is gone: later reconciles of it must do nothing."""
        self._released.add(uid)

    def forget(self, uid: str) -> None:
        """Drop the bookkeeping of a binding whose object no longer exists."""
        self._locks.pop(uid, None)
        self._released.discard(uid)


@dataclass
class Wakeups:
    """Lets a spec change or a released claim cut a binding's wait before its next reconcile."""

    _events: dict[str, asyncio.Event] = field(default_factory=dict)

    def register(self, uid: str) -> None:
        """The binding's loop runs from now on: wake-ups for it are kept until its next wait."""
        self._events.setdefault(uid, asyncio.Event())

    def wake(self, uid: str) -> None:
        """Make the binding's current or next wait return at once.

        Only a registered binding is woken: watch events name bindings that are gone (the last
        events of a released binding's pod) and must not leave bookkeeping behind.
        """
        event = self._events.get(uid)
        if event is not None:
            event.set()

    async def wait(
        self, uid: str, delay: float, stopped: Callable[[float], Awaitable[object]]
    ) -> None:
        """Wait ``delay`` seconds, or less if woken or ``stopped`` (kopf's daemon flag) fires."""
        event = self._events.setdefault(uid, asyncio.Event())
        woken = asyncio.ensure_future(event.wait())
        halted = asyncio.ensure_future(stopped(delay))
        try:
            await asyncio.wait({woken, halted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            halted.cancel()
            event.clear()

    def forget(self, uid: str) -> None:
        """Drop the event of a binding that is gone."""
        self._events.pop(uid, None)
