"""The PhonePools' status: how many phones each matches, holds and runs, who may bind them, and
which phones two pools both claim (a configuration error, also logged).

Only the pools of this operator's Geelark account: each account's operator writes its own
pools' status, so two operators never overwrite each other's counts. A restricted operator
(``--namespace``) says on its pools which namespaces they name that it does not serve.

One background task writes it when it changes, every ``interval`` seconds and soon after a pool
or a namespace changed. The same task sweeps the pools' holders: a binding that is gone (or
suspended, or lost its phone) and was missed by the watch stops counting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from phonefleet_operator.errors import PhonefleetError, ReplicaStopping
from phonefleet_operator.geelark import Phone
from phonefleet_operator.models import Phase, PhonePool, set_condition
from phonefleet_operator.services.tenancy.gate import Tenancy
from phonefleet_operator.services.tenancy.policy import matches_phone
from phonefleet_operator.services.tenancy.quota import holders_of
from phonefleet_operator.waiting import event_within

__all__ = ["PhoneCatalog", "PoolReporter", "pool_status"]

log = logging.getLogger(__name__)

#: Phases in which a binding holds its phone's claim.
_HOLDING = frozenset({Phase.BOUND, Phase.RUNNING, Phase.SUSPENDED, Phase.ERROR})
#: Phases in which a binding runs nothing: a slot it still has is freed by its next pass.
_RUNS_NOTHING = frozenset({Phase.SUSPENDED, Phase.PHONE_NOT_FOUND})
#: At most this many names in the NAMESPACES column and phone ids in status.overlapping.
_SHOWN = 10


class PhoneCatalog(Protocol):
    """The inventory's cached phone list (``geelark.PhoneInventory``)."""

    def cached(self) -> Mapping[str, Phone]: ...
    async def refresh(self) -> None: ...


def _summary(names: list[str]) -> str:
    shown = ",".join(names[:_SHOWN])
    return f"{shown},+{len(names) - _SHOWN}" if len(names) > _SHOWN else shown


def pool_status(
    pool: PhonePool,
    *,
    pools: Mapping[str, PhonePool],
    phones: Mapping[str, Phone],
    bound: int,
    namespaces: list[str],
    now: datetime,
    unserved: list[str] | None = None,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The pool's status fields (without holders) and its overlaps: phone id -> other pools.

    ``unserved``: namespaces the pool names that this operator does not serve (None: it serves
    every namespace, and the pool gets no ``NamespacesServed`` condition)."""
    mine = [p for p in phones.values() if matches_phone(pool.spec.phones, p)]
    overlaps = {
        phone.id: sorted(
            other.name
            for other in pools.values()
            if other.name != pool.name and matches_phone(other.spec.phones, phone)
        )
        for phone in mine
    }
    overlaps = {k: v for k, v in overlaps.items() if v}
    others = sorted({name for names in overlaps.values() for name in names})
    conditions = set_condition(
        pool.status.conditions,
        type="Overlapping",
        status="True" if overlaps else "False",
        reason="PhonesInSeveralPools" if overlaps else "NoOverlap",
        message=(
            f"{len(overlaps)} phones also match PhonePool {', '.join(others)}: nobody binds them "
            "until the pools are fixed"
            if overlaps
            else "Every phone of this pool is in no other pool"
        ),
        now=now,
        generation=pool.metadata.generation,
    )
    if unserved is not None:
        account = pool.spec.account_name
        conditions = set_condition(
            conditions,
            type="NamespacesServed",
            status="False" if unserved else "True",
            reason="NotServedByThisAccount" if unserved else "AllServed",
            message=(
                f"Namespaces {_summary(unserved)} are named by this pool, but the operator of "
                f"account {account} does not serve them (its --namespace): bindings there never "
                "get the pool's phones"
                if unserved
                else f"The operator of account {account} serves every namespace the pool names"
            ),
            now=now,
            generation=pool.metadata.generation,
        )
    status = {
        "phones": len(mine),
        "bound": bound,
        "namespaces": _summary(namespaces),
        "overlapping": sorted(overlaps)[:_SHOWN],
        "observedGeneration": pool.metadata.generation,
        "conditions": [c.to_dict() for c in conditions],
    }
    return status, overlaps


class PoolReporter:
    """Writes the pools' status and sweeps their holders, in the background."""

    def __init__(
        self,
        tenancy: Tenancy,
        catalog: PhoneCatalog,
        binding_exists: Callable[[str, str, str], Awaitable[bool]],
        *,
        interval: float = 30.0,
        gap: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._tenancy = tenancy
        self._catalog = catalog
        self._binding_exists = binding_exists
        self._interval = interval
        self._gap = gap
        self._clock = clock
        self._soon = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._overlaps_logged: dict[str, dict[str, list[str]]] = {}

    def start(self) -> None:
        """Run in the background (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="phonepool-status")

    def poke(self) -> None:
        """Something changed: report soon."""
        self._soon.set()

    async def close(self) -> None:
        """Stop the background task (what ended it is logged, never raised: the operator is
        stopping either way)."""
        if self._task is not None:
            self._task.cancel()
            (ended,) = await asyncio.gather(self._task, return_exceptions=True)
            if isinstance(ended, Exception):
                log.error("The PhonePools' status reporter had ended: %r", ended)

    async def _loop(self) -> None:
        while True:
            try:
                await self.report_once()
            except ReplicaStopping:
                return  # lost the Lease: the next holder reports
            except PhonefleetError as error:
                log.warning("Could not report on the PhonePools: %s", error)
            except Exception:  # a bug must not end the reports for good: the next one may work
                log.exception("Reporting on the PhonePools failed")
            # At most one report per gap however many bindings change: each write of a pool's
            # status costs the quota's next write a 409 and a read.
            await asyncio.sleep(self._gap)
            await event_within(self._soon, self._interval)
            self._soon.clear()

    async def report_once(self) -> None:
        """Sweep every pool's holders and write its status if it changed."""
        view = self._tenancy.view
        if not view.pools:
            return
        phones = self._catalog.cached()
        if not phones:
            await self._catalog.refresh()
            phones = self._catalog.cached()
        now = self._clock()
        for pool in list(view.pools.values()):
            await self._sweep(pool.name)
            mine = {p.id for p in phones.values() if matches_phone(pool.spec.phones, p)}
            bound = sum(
                1 for e in view.bindings.values() if e.phone_id in mine and e.phase in _HOLDING
            )
            status, overlaps = pool_status(
                pool,
                pools=view.pools,
                phones=phones,
                bound=bound,
                namespaces=self._tenancy.namespaces_of(pool),
                now=now,
                unserved=self._tenancy.unserved_of(pool),
            )
            self._log_overlaps(pool.name, overlaps)
            current = pool.status.to_dict()
            if any(current.get(k) != v for k, v in status.items() if k != "conditions") or [
                {k: v for k, v in c.items() if k != "lastTransitionTime"}
                for c in current.get("conditions", [])
            ] != [
                {k: v for k, v in c.items() if k != "lastTransitionTime"}
                for c in status["conditions"]
            ]:
                await self._tenancy.quota.write_status(pool.name, status)

    async def _sweep(self, pool: str) -> None:
        """Free the slots of holders that no longer exist, and of holders in namespaces this
        operator does not serve (left by the operator the pool had before its account was set:
        no binding there can run one of this account's phones). A holder that seems to run
        nothing is woken, not freed: its own pass frees the slot if it still runs nothing (the
        view may be older than a pass that has just admitted it again)."""
        view = self._tenancy.view
        body = self._tenancy.quota.body(pool)
        for holder in holders_of(body) if body else []:
            if not self._tenancy.scope.serves(holder.get("namespace", "")):
                if await self._tenancy.quota.release(pool, holder.get("uid", "")):
                    self._tenancy.wake_queued(pool)
                continue
            entry = view.bindings.get(holder.get("uid", ""))
            if entry is not None:
                if entry.phase in _RUNS_NOTHING:
                    self._tenancy.wake(holder.get("uid", ""))
                continue
            if entry is None and await self._binding_exists(
                holder.get("namespace", ""), holder.get("name", ""), holder.get("uid", "")
            ):
                continue
            if await self._tenancy.quota.release(pool, holder.get("uid", "")):
                self._tenancy.wake_queued(pool)

    def _log_overlaps(self, pool: str, overlaps: dict[str, list[str]]) -> None:
        if overlaps and overlaps != self._overlaps_logged.get(pool):
            phones = ", ".join(sorted(overlaps)[:_SHOWN])
            others = sorted({name for names in overlaps.values() for name in names})
            log.warning(
                "PhonePool %s overlaps PhonePool %s on %d phones (%s): none of them is bound "
                "until the pools are fixed",
                pool,
                ", ".join(others),
                len(overlaps),
                phones,
            )
        self._overlaps_logged[pool] = overlaps
