"""In-process coordination between a binding's reconcile loop, its deletion and its wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field

from phonefleet_operator.services.claims import BindingRef

__all__ = ["BindingLocks", "Waiters", "Wakeups"]


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    released: bool = False


@dataclass
class BindingLocks:
    """One lock per binding uid: the reconcile loop and the deletion handler never overlap.

    A deletion is released after the loop's pass in flight (services/binding_loops.py); the
    lock also keeps any other caller of a pass or a release from overlapping them, so that a
    reconcile never starts a phone right after the deletion stopped it. An entry lives only
    while someone holds or waits for its lock, so a fleet that churns leaves nothing behind; a
    reconcile that starts after the entry is gone finds the deletion in the binding's body.
    """

    _entries: dict[str, _Entry] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def hold(self, uid: str) -> AsyncIterator[bool]:
        """Hold the binding's lock; yields False once the binding has been released for good."""
        entry = self._entries.setdefault(uid, _Entry())
        entry.users += 1
        try:
            async with entry.lock:
                yield not entry.released
        finally:
            entry.users -= 1
            if not entry.users:
                del self._entries[uid]

    def mark_released(self, uid: str) -> None:
        """The binding is gone: reconciles waiting for its lock now must do nothing."""
        entry = self._entries.get(uid)
        if entry is not None:
            entry.released = True

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class Wakeups:
    """The bindings whose loops run: lets a spec change or a released claim cut a binding's wait
    before its next reconcile.

    A binding that goes unseen (deleted during a watch gap, its finalizer removed by hand) is
    reported DELETED by the bindings watch when it lists again (``k8s/watch.py``), which ends
    its loop and forgets it here: no periodic list of bindings is needed.
    """

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
        """Wait ``delay`` seconds, or less if woken or ``stopped`` (the loop's halt) fires.

        A binding that is not registered (any more: it was released) is not registered again;
        its loop only waits for the delay or the stop.
        """
        event = self._events.get(uid)
        if event is None:
            await stopped(delay)
            return
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

    def __contains__(self, uid: object) -> bool:
        return uid in self._events

    def __len__(self) -> int:
        return len(self._events)


@dataclass
class Waiters(Mapping[str, tuple[BindingRef, ...]]):
    """Bindings waiting in Conflict, by the phone id they wait for, oldest first.

    Kept from the bindings' watch events, not in a kopf index: kopf's object workers wait for an
    index to have seen every object before they run any other handler, and they hold their slot
    while they wait, so an operator that started among more bindings than its worker limit (100)
    never ran a handler at all. This map only decides who *tries* first for a free phone; the
    claim's create decides who holds it.
    """

    _by_phone: dict[str, dict[str, BindingRef]] = field(default_factory=dict)
    _phone_of: dict[str, str] = field(default_factory=dict)

    def saw(self, uid: str, waiting: tuple[str, BindingRef] | None) -> None:
        """The binding ``uid`` now waits for a phone (``(phone id, who)``), or for none."""
        self.gone(uid)
        if waiting is not None:
            phone_id, who = waiting
            self._by_phone.setdefault(phone_id, {})[uid] = who
            self._phone_of[uid] = phone_id

    def gone(self, uid: str) -> None:
        """The binding ``uid`` waits for nothing (any more)."""
        phone_id = self._phone_of.pop(uid, None)
        if phone_id is None:
            return
        waiting = self._by_phone.get(phone_id, {})
        waiting.pop(uid, None)
        if not waiting:
            self._by_phone.pop(phone_id, None)

    def __getitem__(self, phone_id: str) -> tuple[BindingRef, ...]:
        return tuple(sorted(self._by_phone[phone_id].values()))

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_phone)

    def __len__(self) -> int:
        return len(self._by_phone)

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__
