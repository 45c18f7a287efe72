"""The running limit of a pool, decided by the API server: ``status.holders`` of the PhonePool.

A binding counts against ``maxRunning`` while it is in the pool's ``status.holders``. The list is
only ever changed by a merge patch that carries the ``resourceVersion`` it was computed from, so
of two writers that read the same version the API server accepts one and answers the other 409
Conflict; the loser reads again and counts again. No process, replica or restart can therefore
admit more than ``maxRunning`` bindings at once: the count and the admission are one write, as a
claim's create is for one phone.

Inside one operator the writes to a pool are serialised by a lock and start from the pool as the
last write returned it, so they need no GET (a 409 from an outside writer costs one); admissions
that arrive while a write is in flight are decided together, oldest first, in one write. Who
may try first is the oldest waiter's right (``older_queued``, from the bindings watch); like the
claims' oldest-waiter rule, that decides the order only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from phonefleet_operator.errors import TemporaryFault
from phonefleet_operator.k8s.versions import newer
from phonefleet_operator.services.claims import BindingRef

__all__ = ["PoolStore", "Quota"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

#: Attempts of one admission or release when other writers keep changing the pool.
_ATTEMPTS = 8


class PoolStore(Protocol):
    """The PhonePool reads and writes the quota needs (``k8s.PoolGateway`` or a fake)."""

    async def get_pool(self, name: str) -> Obj | None: ...
    async def patch_pool_status(
        self, name: str, status: Mapping[str, Any], resource_version: str | None = None
    ) -> Obj | None: ...


def holders_of(body: Mapping[str, Any]) -> list[dict[str, str]]:
    """The pool's status.holders as plain dicts."""
    return [dict(h) for h in ((body.get("status") or {}).get("holders") or [])]


def limit_of(body: Mapping[str, Any]) -> int | None:
    """The pool's spec.maxRunning (None: no limit)."""
    value = (body.get("spec") or {}).get("maxRunning")
    return int(value) if value is not None else None


@dataclass(frozen=True)
class _Ask:
    """One binding's admission, waiting for its answer (None: admitted; n: queue position)."""

    me: BindingRef
    grandfathered: bool
    older_queued: int
    answer: asyncio.Future[int | None]


class Quota:
    """Admits bindings into pools' running limits and lets them go again."""

    def __init__(self, store: PoolStore) -> None:
        self._store = store
        self._locks: dict[str, asyncio.Lock] = {}
        #: Admissions waiting for the pool's lock, decided together by whoever gets it first.
        self._pending: dict[str, list[_Ask]] = {}
        #: Each pool as our last write (or read) returned it: where the next write starts.
        self._bodies: dict[str, Obj] = {}

    def observe(self, body: Mapping[str, Any]) -> None:
        """The pools watch saw a version (a write from elsewhere, or our own echo).

        A version older than the one known is ignored: the echo of an earlier write of ours
        can arrive after a later write returned (a release), and so can a relist read before
        it. Taken, it brought back a holder released since, and that binding's next admission
        was answered "held" from it, without a write: it ran its phone outside the count, and
        once the newer version came, its next pass was counted above the limit as running.
        """
        name = str(body["metadata"]["name"])
        known = self._bodies.get(name)
        if known is not None and newer(known, body):
            return
        self._bodies[name] = dict(body)

    def forget(self, pool: str) -> None:
        """The pool was deleted."""
        self._bodies.pop(pool, None)

    def body(self, pool: str) -> Obj | None:
        """The pool as last written or seen (None: not known yet)."""
        return self._bodies.get(pool)

    def holding(self, uid: str) -> list[str]:
        """The pools that, as far as this process knows, count ``uid`` among their holders."""
        return [
            name
            for name, body in self._bodies.items()
            if any(h.get("uid") == uid for h in holders_of(body))
        ]

    def free(self, pool: str) -> int | None:
        """Slots of ``pool`` free as last known (None: no limit, or the pool is unknown)."""
        body = self._bodies.get(pool)
        limit = limit_of(body) if body is not None else None
        return None if limit is None or body is None else max(0, limit - len(holders_of(body)))

    async def admit(
        self, pool: str, me: BindingRef, *, grandfathered: bool = False, older_queued: int = 0
    ) -> int | None:
        """Count ``me`` against ``pool``: None once it holds a slot, else its queue position.

        ``grandfathered`` (a binding that already holds its phone, from before the pool or its
        lower limit) is counted even above the limit: lowering a limit stops nothing. Anyone else
        gets a slot only below the limit and when no older binding waits for one.

        Admissions that arrive while a write to the pool is in flight are decided together, in
        one write, oldest first: a thousand bindings applied at once cost a few writes of the
        holders list, not a thousand ever longer ones in a row.
        """
        known = self._bodies.get(pool)
        if known is not None and any(h.get("uid") == me.uid for h in holders_of(known)):
            return None  # a running binding's periodic pass: no lock, no write
        ask = _Ask(me, grandfathered, older_queued, asyncio.get_running_loop().create_future())
        self._pending.setdefault(pool, []).append(ask)
        async with self._lock(pool):
            if not ask.answer.done():
                batch = self._pending.pop(pool, [])
                try:
                    await self._admit_all(pool, batch)
                except BaseException as error:
                    for waiting in batch:
                        if not waiting.answer.done():
                            waiting.answer.set_exception(error)
                    raise
        return ask.answer.result()

    async def _admit_all(self, pool: str, batch: list[_Ask]) -> None:
        """Decide every ask of ``batch`` with at most one successful write."""
        body = self._bodies.get(pool) or await self._read(pool)
        for _ in range(_ATTEMPTS):
            if body is None:  # the pool is gone: the next pass evaluates without it
                for ask in batch:
                    ask.answer.set_result(None)
                return
            holders = holders_of(body)
            counted = {h.get("uid") for h in holders}
            limit = limit_of(body)
            answers: list[tuple[_Ask, int | None]] = []
            admitted: list[_Ask] = []
            queued = 0
            for ask in sorted(batch, key=lambda a: a.me):
                if ask.me.uid in counted:
                    answers.append((ask, None))
                elif ask.grandfathered or not (
                    ask.older_queued or queued or (limit is not None and len(holders) >= limit)
                ):
                    holders.append(
                        {"namespace": ask.me.namespace, "name": ask.me.name, "uid": ask.me.uid}
                    )
                    counted.add(ask.me.uid)
                    admitted.append(ask)
                    answers.append((ask, None))
                else:
                    queued += 1
                    answers.append((ask, ask.older_queued + queued))
            if not admitted or await self._write(pool, body, holders) is not None:
                for ask in admitted:
                    log.info(
                        "Admitted %s into PhonePool %s (%d of %s running)",
                        ask.me.key,
                        pool,
                        len(holders),
                        "unlimited" if limit is None else limit,
                    )
                for ask, answer in answers:
                    ask.answer.set_result(answer)
                return
            body = await self._read(pool)
        keys = ", ".join(ask.me.key for ask in batch)
        raise TemporaryFault(f"PhonePool {pool} changed too often to admit {keys}", delay=1)

    async def release(self, pool: str, uid: str) -> bool:
        """Stop counting ``uid`` against ``pool``; True when it was counted and no longer is."""
        async with self._lock(pool):
            body = self._bodies.get(pool) or await self._read(pool)
            for _ in range(_ATTEMPTS):
                if body is None:
                    return False
                holders = holders_of(body)
                kept = [h for h in holders if h.get("uid") != uid]
                if len(kept) == len(holders):
                    return False
                if await self._write(pool, body, kept) is not None:
                    gone = next(h for h in holders if h.get("uid") == uid)
                    log.info(
                        "Released %s/%s from PhonePool %s (%d running)",
                        gone.get("namespace"),
                        gone.get("name"),
                        pool,
                        len(kept),
                    )
                    return True
                body = await self._read(pool)
        raise TemporaryFault(f"PhonePool {pool} changed too often to release {uid}", delay=1)

    async def write_status(self, pool: str, status: Mapping[str, Any]) -> None:
        """Write other status fields (counts, conditions) in turn with the quota's own writes."""
        async with self._lock(pool):
            body = self._bodies.get(pool)
            running = {"running": len(holders_of(body))} if body is not None else {}
            written = await self._store.patch_pool_status(pool, {**status, **running})
            if written is not None:
                self._bodies[pool] = written

    def _lock(self, pool: str) -> asyncio.Lock:
        return self._locks.setdefault(pool, asyncio.Lock())

    async def _read(self, pool: str) -> Obj | None:
        body = await self._store.get_pool(pool)
        if body is None:
            self._bodies.pop(pool, None)
        else:
            self._bodies[pool] = body
        return body

    async def _write(
        self, pool: str, body: Mapping[str, Any], holders: list[dict[str, str]]
    ) -> Obj | None:
        """The patch of status.holders, conditional on the version ``body`` had; None on 409."""
        written = await self._store.patch_pool_status(
            pool,
            {"holders": holders, "running": len(holders)},
            resource_version=str(body["metadata"]["resourceVersion"]),
        )
        if written is not None:
            self._bodies[pool] = written
        return written
