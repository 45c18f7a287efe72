"""Tenancy in the reconcile pass and the webhook: the PhonePools' verdict on one binding.

The pass asks :meth:`Tenancy.admit` right after it resolved the phone and before it claims it.
The answer is written into the binding's report here (phase ``Forbidden`` or ``Queued``, the
``Admitted`` and ``PoolAccessRevoked`` conditions, ``status.pool``); the pass only learns whether
it may go on, and whether a phone it held must be let go.

Choices (docs/tenancy.md explains them to administrators):

* Only pools of this operator's Geelark account count (``spec.account``; unset: ``default``):
  another account's pools are judged, counted and written by that account's operator. No
  PhonePool of this account and ``require_pools`` off: tenancy is off, nothing changes (logged
  once). A binding refused here whose namespace another account's pool offers phones is told
  so (reason ``PoolOfAnotherAccount``): namespaces, not pools, say which operator serves it.
* A binding that already holds its phone and loses access (a pool or namespace label changed,
  pools now overlap) keeps running with a ``PoolAccessRevoked`` condition and a Warning Event,
  unless its pool says ``onRevoke: Stop``. An image outside the pool's patterns is never kept:
  the point of the patterns is that no other image gets the phone's ADB data.
* Held phones whose binding was running are counted even above ``maxRunning`` (lowering the
  limit stops nothing; it only keeps new bindings queued until the count is below it). "Was
  running" is read from the status: an admitted phase and a phone not stopped. The phase alone
  is not enough: a suspended binding (its phone stopped, its slot given back) that then fails a
  pass (Error, Geelark refusing the credentials) and is resumed would be counted above the
  limit and start its phone (found by the pooled chaos test, seed 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from phonefleet_operator.errors import PhonefleetError, PhoneNotFound
from phonefleet_operator.geelark import Phone
from phonefleet_operator.models import (
    ConditionType,
    Phase,
    PhoneBinding,
    PhoneBindingSpec,
    PhonePool,
    PhoneStatus,
    rfc3339,
)
from phonefleet_operator.services.accounts import AccountScope
from phonefleet_operator.services.claims import BindingRef
from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_operator.services.ports import PhoneDirectory
from phonefleet_operator.services.report import Report
from phonefleet_operator.services.tenancy.policy import (
    Allowed,
    Forbidden,
    ImageOverrides,
    Misconfigured,
    Rule,
    evaluate,
    image_problems,
    matches_namespace,
    not_available,
)
from phonefleet_operator.services.tenancy.quota import PoolStore, Quota
from phonefleet_operator.services.tenancy.view import TenancyView
from phonefleet_operator.settings import OperatorSettings
from phonefleet_operator.waiting import within

__all__ = ["Background", "Gate", "NoTenancy", "PoolLister", "Tenancy"]

log = logging.getLogger(__name__)

#: Phases of a binding whose phone was running (or coming up) when it was admitted.
_WAS_ADMITTED = frozenset({Phase.BOUND, Phase.RUNNING, Phase.ERROR})
_TENANCY_CONDITIONS = frozenset({ConditionType.ADMITTED, ConditionType.POOL_ACCESS_REVOKED})
#: Power states (status.phone.status) of a phone that is not running under its binding.
_OFF = frozenset({PhoneStatus.STOPPED, PhoneStatus.EXPIRED})


def _was_running(binding: PhoneBinding) -> bool:
    """The binding ran (or was starting) its phone when it last wrote its status."""
    phone = binding.status.phone
    return (
        binding.status.phase in _WAS_ADMITTED
        and phone is not None
        and phone.status is not None
        and phone.status not in _OFF
    )


def runs_nothing(report: Report) -> bool:
    """After a pass: the binding runs no phone, suspended with its phone stopped or without a
    phone at all (none such in Geelark, or one it may not bind). A slot it has counts nothing.
    Suspended while an attempt is fenced (``FencingAttempt``) its phone still runs: not idle."""
    status = report.status
    phone = status.phone
    if phone is None or not phone.id:
        return status.phase in (Phase.PHONE_NOT_FOUND, Phase.FORBIDDEN)
    return status.phase == Phase.SUSPENDED and phone.status == PhoneStatus.STOPPED


@dataclass(frozen=True)
class Gate:
    """The pass stops here: look again after ``delay``; ``release`` a phone held before."""

    delay: float
    release: bool = False


class PoolLister(PoolStore, Protocol):
    """The reads that seed the view before the watches caught up."""

    async def list_pools(self) -> list[dict[str, Any]]: ...
    async def list_namespaces(self) -> list[dict[str, Any]]: ...


class Background(Protocol):
    """The pools' status reporter, as the gate drives it."""

    def start(self) -> None: ...
    def poke(self) -> None: ...
    async def close(self) -> None: ...


def _ref(binding: PhoneBinding) -> BindingRef:
    created = binding.metadata.creation_timestamp
    return BindingRef(
        created=rfc3339(created) if created else "",  # as the API server writes it (the view)
        namespace=binding.namespace,
        name=binding.name,
        uid=binding.uid,
    )


def _images(spec: PhoneBindingSpec) -> ImageOverrides:
    return ImageOverrides(worker=spec.worker.image, appium=spec.appium.image)


class Tenancy:
    """The PhonePools' decisions for bindings: policy, quota and what the binding is told."""

    def __init__(
        self,
        *,
        view: TenancyView,
        quota: Quota,
        store: PoolLister,
        directory: PhoneDirectory,
        claims: ObservedClaims,
        settings: OperatorSettings,
        wake: Callable[[str], None],
        scope: AccountScope | None = None,
        timeout: float = 5.0,
        announce: bool = True,
    ) -> None:
        self.view = view
        #: Whether this instance logs tenancy turning on or off: the reconcile pass's does (it
        #: owns the decision); the webhook's copy in the same process would say it again.
        self._announce = announce
        #: This operator's account and namespaces: its pools are those of ``view.account``.
        self.scope = scope or AccountScope(settings.account)
        self.quota = quota
        self._store = store
        self._directory = directory
        self._claims = claims
        self._settings = settings
        self._wake = wake
        self._timeout = timeout
        self._loading: asyncio.Lock | None = None
        self._said_on: bool | None = None
        #: Writes the pools' status; started with the first pool seen.
        self.reporter: Background | None = None

    async def close(self) -> None:
        """Stop the background work."""
        if self.reporter is not None:
            await self.reporter.close()

    # ------------------------------------------------------------ on or off

    async def is_on(self) -> bool:
        """Pools exist (or are required); logs when that changes (so "off" once at start)."""
        if not self.view.loaded:
            self._loading = self._loading or asyncio.Lock()
            async with self._loading:
                if not self.view.loaded:
                    pools, namespaces = await asyncio.gather(
                        self._store.list_pools(), self._store.list_namespaces()
                    )
                    self.view.load(pools, namespaces)
                    for body in pools:
                        if self.view.is_mine(body):
                            self.quota.observe(body)
        on = self._settings.require_pools or bool(self.view.pools or self.view.invalid_pools)
        if on != self._said_on and self._announce:
            self._said_on = on
            if on:
                log.info(
                    "Tenancy is on: %d PhonePools of account %s%s",
                    len(self.view.pools),
                    self.view.account,
                    "; phones in no pool cannot be bound" if self._settings.require_pools else "",
                )
            else:
                log.info(
                    "Tenancy is off: no PhonePool of account %s exists, every namespace may bind "
                    "any phone",
                    self.view.account,
                )
        return on

    # ------------------------------------------------------------ the reconcile hooks

    async def admit(self, binding: PhoneBinding, phone: Phone, report: Report) -> Gate | None:
        """Whether the pass may claim ``phone`` for ``binding`` now; None: go on."""
        if not await self.is_on():
            _clear_tenancy(report)
            return None
        s = self._settings
        if not (phone.group_name or phone.tags):
            # A bound binding's pass knows its phone by id only (see resolution.py): its
            # group and tags come from the inventory (cached: no Geelark call).
            with contextlib.suppress(PhoneNotFound):
                phone = await self._directory.resolve(phone.id)
        verdict = evaluate(
            namespace=binding.namespace,
            labels=self.view.namespaces.get(binding.namespace),
            reference=binding.spec.phone_id,
            phone=phone,
            images=_images(binding.spec),
            pools=list(self.view.pools.values()),
            require_pools=s.require_pools,
        )
        holds = self._claims.holder_uid(phone.id) == binding.uid
        if isinstance(verdict, Forbidden) and not holds:
            verdict = self._elsewhere(verdict, binding.namespace)
        if isinstance(verdict, Allowed):
            return await self._allowed(binding, verdict.pool, holds, report)
        if isinstance(verdict, Misconfigured):
            refusal, keep = _overlap(binding.spec.phone_id), True
        else:
            # Only for the namespace that holds the phone: anyone else must not learn its pool.
            refusal = _with_images(verdict, binding.spec) if holds else verdict
            keep = refusal.rule is not Rule.IMAGE_NOT_ALLOWED and (
                refusal.pool is None or refusal.pool.spec.on_revoke == "Keep"
            )
        if holds and keep and _was_running(binding):
            _revoked(report, refusal)
            return None
        _forbid(report, refusal, holds=holds)
        if not holds:
            await self.yield_slot(binding)
        return Gate(s.error_recheck_seconds, release=holds)

    async def _allowed(
        self, binding: PhoneBinding, pool: PhonePool | None, holds: bool, report: Report
    ) -> Gate | None:
        _drop(report, ConditionType.POOL_ACCESS_REVOKED)
        report.status.pool = pool.name if pool else None
        report.status.queue_position = None
        if pool is None:
            report.condition(
                ConditionType.ADMITTED, "True", "InNoPool", "The phone is in no PhonePool"
            )
            return None
        if not binding.spec.suspend:  # a suspended binding runs nothing and counts for nothing
            me = _ref(binding)
            position = await self.quota.admit(
                pool.name,
                me,
                grandfathered=holds and _was_running(binding),
                older_queued=self.view.older_queued(pool.name, me),
            )
            if position is not None:
                message = (
                    f"PhonePool {pool.name} runs its maxRunning of {pool.spec.max_running} "
                    f"bindings: position {position} in its queue"
                )
                report.status.queue_position = position
                report.condition(ConditionType.ADMITTED, "False", "MaxRunningReached", message)
                report.phase(Phase.QUEUED, "MaxRunningReached", message)
                return Gate(self._settings.conflict_recheck_seconds)
        report.condition(
            ConditionType.ADMITTED, "True", "Admitted", f"PhonePool {pool.name} admits it"
        )
        return None

    async def conceals_missing(self, binding: PhoneBinding, report: Report) -> bool:
        """With tenancy on, "no such phone" is told exactly as "not yours" is: True if it was.

        Also with tenancy off when another account's pool offers the binding's namespace
        phones: the binding most likely names one of them, and "not found" would hide why.
        """
        on = await self.is_on()
        refusal = self._elsewhere(
            not_available(binding.spec.phone_id, binding.namespace), binding.namespace
        )
        if not on and refusal.rule is not Rule.ANOTHER_ACCOUNT:
            return False
        _forbid(report, refusal, holds=False)
        return True

    def _elsewhere(self, refusal: Forbidden, namespace: str) -> Forbidden:
        """``refusal``, told that pools of other accounts offer ``namespace`` phones, if any do.

        It depends on the namespace alone, never on the phone, so it tells nothing about which
        phones exist; and the pools it names are ones this namespace may use.
        """
        if refusal.rule is not Rule.NOT_AVAILABLE:
            return refusal
        labels = self.view.namespaces.get(namespace)
        offering = sorted(
            f"{pool.name} (account {pool.spec.account_name})"
            for pool in self.view.foreign.values()
            if matches_namespace(pool.spec.namespaces, namespace, labels)
        )
        if not offering:
            return refusal
        message = (
            f"{refusal.message}. PhonePool {', '.join(offering)} offers this namespace phones of "
            f"another Geelark account, but namespace {namespace} is served by the operator of "
            f"account {self.view.account}, which binds only that account's phones"
        )
        return Forbidden(Rule.ANOTHER_ACCOUNT, message, refusal.pool)

    async def yield_slot(self, binding: PhoneBinding) -> None:
        """The binding runs nothing after all (its phone is held by another): free its slot."""
        await self.free(binding.uid)

    async def free_if_idle(self, binding: PhoneBinding, report: Report) -> None:
        """The end of a pass, its status written: free the slot of a binding that now runs
        nothing (suspended with its phone stopped, or without a phone). Only the binding's own
        pass decides this, so no later pass of it can have been admitted in between; and only
        once its status says so, so no later pass can read a status that says the phone runs
        and be counted above the limit as running (a grandfathered holder)."""
        if runs_nothing(report):
            await self.free(binding.uid)

    def wake(self, uid: str) -> None:
        """Have the binding ``uid`` looked at again soon (its pass frees an idle slot)."""
        self._wake(uid)

    async def free(self, uid: str) -> None:
        """Stop counting ``uid`` in any pool; the oldest waiters of a freed pool look again."""
        for pool in self.quota.holding(uid):
            if await self.quota.release(pool, uid):
                self.wake_queued(pool)

    def wake_queued(self, pool: str) -> None:
        """Wake the oldest waiters of ``pool``, as many as it has free slots (at least one)."""
        free = self.quota.free(pool)
        waiting = self.view.queued(pool)
        for ref in waiting[: max(1, free or 0) if free is not None else len(waiting)]:
            self._wake(ref.uid)

    # ------------------------------------------------------------ the webhook

    async def refusal(
        self, namespace: str, spec: PhoneBindingSpec, *, holds: bool = False
    ) -> str | None:
        """Why the webhook refuses a binding under the pools (None: admit; the pass still checks).

        An unknown phone is refused exactly as a phone of another tenant is, so that the answer
        tells nothing; a Geelark that does not answer in time admits (the pass decides later).
        A binding that ``holds`` its phone (running on after its access was revoked) may still
        be changed, to suspend it for one, as long as its images stay allowed.
        """
        try:
            if not await self.is_on():
                return None
            phone = await within(self._directory.resolve(spec.phone_id), self._timeout)
        except PhoneNotFound:
            return self._elsewhere(not_available(spec.phone_id, namespace), namespace).message
        except (PhonefleetError, TimeoutError) as error:
            log.info("Admitted a binding for %s unchecked by the pools: %s", spec.phone_id, error)
            return None
        verdict = evaluate(
            namespace=namespace,
            labels=self.view.namespaces.get(namespace),
            reference=spec.phone_id,
            phone=phone,
            images=_images(spec),
            pools=list(self.view.pools.values()),
            require_pools=self._settings.require_pools,
        )
        if isinstance(verdict, Misconfigured):
            return None if holds else _overlap(spec.phone_id).message
        if not isinstance(verdict, Forbidden):
            return None
        refusal = _with_images(verdict, spec) if holds else self._elsewhere(verdict, namespace)
        return refusal.message if not holds or refusal.rule is Rule.IMAGE_NOT_ALLOWED else None

    # ------------------------------------------------------------ watch events

    async def binding_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Keep the bindings view; free the slot of a binding that is gone.

        A binding that still exists gives its slot back in its own pass, once it runs nothing
        (``free_if_idle``), never here: an event may be older than a pass already under way.
        Freed from a stale ``Suspended`` event, a binding resumed meanwhile ran its phone
        without a slot, and its next pass was counted above the limit as one that had been
        running (the pooled chaos test's seed 155619085: 4 holders of 3).
        """
        uid = str(body["metadata"].get("uid", ""))
        if event_type == "DELETED":
            self.view.binding_gone(uid)
            await self.free(uid)
            return
        old, new = self.view.saw_binding(body)
        if (
            self.reporter is not None
            and self.view.pools
            and (old is None or old.phase != new.phase)
        ):
            self.reporter.poke()  # BOUND may have changed
        if (
            old is not None
            and old.phase == Phase.QUEUED != new.phase
            and old.pool
            and self.quota.free(old.pool)
        ):
            self.wake_queued(old.pool)

    def pool_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Keep the pools view; a changed spec of this account's pool wakes every binding (all
        are judged again), another account's wakes only the refused ones (their message)."""
        name = str(body["metadata"]["name"])
        was_foreign = self.view.foreign.get(name)
        was_invalid = name in self.view.invalid_pools  # still this account's: it turned tenancy on
        if event_type == "DELETED":
            old = self.view.pool_gone(name)
            new = None
            self.quota.forget(name)
            mine = old is not None or was_invalid
        else:
            old = self.view.saw_pool(body)
            new = self.view.pools.get(name)
            mine = old is not None or was_invalid or self.view.is_mine(body)
            if self.view.is_mine(body):
                self.quota.observe(body)
                if self.quota.free(name):
                    self.wake_queued(name)
            else:  # another account's (or moved to one): not ours to count or write
                self.quota.forget(name)
        changed = mine and (old is None or new is None or old.spec != new.spec)
        foreign = self.view.foreign.get(name)
        offers_changed = (was_foreign or foreign) is not None and (
            was_foreign is None
            or foreign is None
            or was_foreign.spec.namespaces != foreign.spec.namespaces
        )
        if self.view.loaded and changed:
            for uid in self.view.uids():
                self._wake(uid)
        elif self.view.loaded and offers_changed:
            for phase in (Phase.FORBIDDEN, Phase.PHONE_NOT_FOUND):
                for uid in self.view.uids(phase=phase):
                    self._wake(uid)
        if self.reporter is not None and (self.view.pools or changed):
            self.reporter.start()
            self.reporter.poke()

    def namespace_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Keep the namespaces' labels; new labels wake the namespace's bindings."""
        name = str(body["metadata"]["name"])
        if event_type == "DELETED":
            self.view.namespace_gone(name)
        elif self.view.saw_namespace(body) and (self.view.pools or self.view.foreign):
            for uid in self.view.uids(name):
                self._wake(uid)
            if self.reporter is not None and self.view.pools:
                self.reporter.poke()

    def namespaces_of(self, pool: PhonePool) -> list[str]:
        """The namespaces (as watched) this operator serves that may bind the pool's phones."""
        return sorted(
            name
            for name, labels in self.view.namespaces.items()
            if matches_namespace(pool.spec.namespaces, name, labels) and self.scope.serves(name)
        )

    def unserved_of(self, pool: PhonePool) -> list[str] | None:
        """The namespaces the pool names (``namespaces.names``) that this operator does not
        serve; None when it serves every namespace. A label selector matching another
        account's namespaces is no mistake (one client, a pool in each account, one selector),
        a name is: it means that namespace and no other."""
        if not self.scope.namespaces:
            return None
        return sorted(
            name for name in set(pool.spec.namespaces.names) if not self.scope.serves(name)
        )


# ------------------------------------------------------------ what the binding is told


def _with_images(refusal: Forbidden, spec: PhoneBindingSpec) -> Forbidden:
    """An image outside the phone's pool's patterns outweighs a lost access: it is never kept."""
    problems = image_problems(refusal.pool, _images(spec)) if refusal.pool else []
    if refusal.rule is Rule.IMAGE_NOT_ALLOWED or not problems:
        return refusal
    return Forbidden(Rule.IMAGE_NOT_ALLOWED, "; ".join(problems), refusal.pool)


def _overlap(reference: str) -> Forbidden:
    return Forbidden(
        Rule.POOLS_OVERLAP,
        f"Phone {reference!r} matches more than one PhonePool: it is bound by nobody until a "
        "cluster administrator fixes the pools",
    )


def _drop(report: Report, kind: ConditionType) -> None:
    report.status.conditions = [c for c in report.status.conditions if c.type != kind]


def _clear_tenancy(report: Report) -> None:
    """Tenancy is off: no tenancy field or condition is left from when it was on."""
    report.status.pool = None
    report.status.queue_position = None
    if any(c.type in _TENANCY_CONDITIONS for c in report.status.conditions):
        report.status.conditions = [
            c for c in report.status.conditions if c.type not in _TENANCY_CONDITIONS
        ]


def _forbid(report: Report, refusal: Forbidden, *, holds: bool) -> None:
    report.status.pool = None
    report.status.queue_position = None
    report.status.conflict_with = None
    if not holds:  # nothing about the phone stays in the status (nor did it get there)
        report.status.phone = None
        report.status.pod_name = None
    _drop(report, ConditionType.POOL_ACCESS_REVOKED)
    report.condition(ConditionType.ADMITTED, "False", refusal.rule, refusal.message)
    report.condition(ConditionType.CLAIMED, "False", "NotAdmitted", "The PhonePools refuse it")
    report.phase(Phase.FORBIDDEN, refusal.rule, refusal.message, warning=True)


def _revoked(report: Report, refusal: Forbidden) -> None:
    old = next(
        (c for c in report.status.conditions if c.type == ConditionType.POOL_ACCESS_REVOKED), None
    )
    lost = (
        refusal.message
        if refusal.rule is not Rule.NOT_AVAILABLE
        else "The PhonePools no longer let this namespace bind this phone"
    )
    message = f"{lost}; the running worker is kept until the binding is deleted or suspended"
    report.condition(ConditionType.POOL_ACCESS_REVOKED, "True", refusal.rule, message)
    report.condition(ConditionType.ADMITTED, "False", refusal.rule, refusal.message)
    if old is None or old.reason != refusal.rule:
        report.event("PoolAccessRevoked", message, warning=True)


class NoTenancy:
    """The hooks of an operator built without tenancy (unit tests of other parts): all allow."""

    async def admit(self, binding: PhoneBinding, phone: Phone, report: Report) -> Gate | None:
        """Always go on."""
        return None

    async def conceals_missing(self, binding: PhoneBinding, report: Report) -> bool:
        """Never conceal."""
        return False

    async def yield_slot(self, binding: PhoneBinding) -> None:
        """No slots."""

    async def free_if_idle(self, binding: PhoneBinding, report: Report) -> None:
        """No slots."""

    async def refusal(
        self, namespace: str, spec: PhoneBindingSpec, *, holds: bool = False
    ) -> str | None:
        """Never refuse."""
        return None
