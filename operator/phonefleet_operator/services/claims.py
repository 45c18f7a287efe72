"""The lock on a phone: who holds it, who waits for it, and when a claim is released.

Creating the cluster-scoped PhoneClaim named after the canonical phone id is the one atomic step
that decides who holds a phone; the API server lets exactly one create succeed. Everything else
here (the oldest-waiter rule, orphan release) only decides *when* to try, never *whether* two can
hold it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_operator.services.ports import Kube

__all__ = ["BindingRef", "ClaimResult", "ClaimService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class BindingRef:
    """Who a binding is, ordered oldest first (creationTimestamp, then namespace/name)."""

    created: str
    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> str:
        """``namespace/name``, as people write it."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ClaimResult:
    """The outcome of one attempt: held, or held by someone else (``holder``)."""

    held: bool
    holder: str | None = None
    created: bool = False
    waiting_behind: str | None = None


def holder_of(claim: Mapping[str, Any]) -> tuple[str, str, str]:
    """(namespace, name, uid) of the binding a claim records as its holder."""
    holder = claim.get("spec", {}).get("holder", {})
    return holder.get("namespace", ""), holder.get("name", ""), holder.get("uid", "")


class ClaimService:
    """Acquires and releases PhoneClaims for bindings."""

    def __init__(self, kube: Kube, observed: ObservedClaims | None = None) -> None:
        self._kube = kube
        self._observed = observed if observed is not None else ObservedClaims()

    async def acquire(
        self,
        me: BindingRef,
        phone_id: str,
        claim_manifest: dict[str, Any],
        waiters: Iterable[BindingRef],
        *,
        trust_view: bool = True,
    ) -> ClaimResult:
        """Hold the phone if it is free and no older binding waits for it; else say who has it.

        A claim the watch shows held by ``me`` needs no read: only ``me`` deletes it on purpose,
        and a deletion by hand arrives as an event that wakes ``me`` to look again. With
        ``trust_view`` False the claim is read in any case (and the view corrected).
        """
        seen = self._observed.holder_uid(phone_id)
        if trust_view and seen == me.uid:
            return ClaimResult(held=True)
        if trust_view and seen is None:
            # No claim seen: try the create straight away (it fails if one exists after all).
            taken = await self._take(me, phone_id, claim_manifest, waiters)
            if taken is not None:
                return taken
        claim = await self._kube.get_claim(phone_id)
        self._observed.refresh(phone_id, claim)
        if claim is not None:
            namespace, name, uid = holder_of(claim)
            if uid == me.uid:
                return ClaimResult(held=True)
            if await self._holder_alive(namespace, name, uid):
                return ClaimResult(held=False, holder=f"{namespace}/{name}")
            await self._release_orphan(phone_id, claim)
        taken = await self._take(me, phone_id, claim_manifest, waiters)
        return taken if taken is not None else await self._winner(me, phone_id)

    async def _take(
        self,
        me: BindingRef,
        phone_id: str,
        claim_manifest: dict[str, Any],
        waiters: Iterable[BindingRef],
    ) -> ClaimResult | None:
        """Create the claim unless an older binding waits; None when the create lost."""
        older = sorted(w for w in waiters if w < me and w.uid != me.uid)
        if older:
            return ClaimResult(held=False, waiting_behind=older[0].key)
        if not await self._kube.create_claim(claim_manifest):
            return None
        self._observed.saw(claim_manifest)
        log.info("Created PhoneClaim %s for %s", phone_id, me.key)
        return ClaimResult(held=True, created=True)

    async def _winner(self, me: BindingRef, phone_id: str) -> ClaimResult:
        """Who holds the phone after our create lost the race to another binding's."""
        claim = await self._kube.get_claim(phone_id)
        if claim is None:
            return ClaimResult(held=False)
        namespace, name, uid = holder_of(claim)
        return ClaimResult(
            held=uid == me.uid, holder=None if uid == me.uid else f"{namespace}/{name}"
        )

    async def holds(self, me: BindingRef, phone_id: str) -> bool:
        """Whether ``me`` holds the claim on ``phone_id`` right now."""
        claim = await self._kube.get_claim(phone_id)
        return claim is not None and holder_of(claim)[2] == me.uid

    async def release(self, me: BindingRef, phone_id: str) -> bool:
        """Delete the claim if ``me`` holds it; True when a claim of ours was deleted."""
        claim = await self._kube.get_claim(phone_id)
        if claim is None or holder_of(claim)[2] != me.uid:
            return False
        deleted = await self._kube.delete_claim(phone_id, claim["metadata"]["uid"])
        if deleted:
            self._observed.gone(phone_id)
            log.info("Deleted PhoneClaim %s of %s", phone_id, me.key)
        return deleted

    async def release_orphans(self) -> list[str]:
        """Delete every claim whose holder no longer exists; return their phone ids."""
        released = []
        for claim in await self._kube.list_claims():
            namespace, name, uid = holder_of(claim)
            if not await self._holder_alive(namespace, name, uid):
                await self._release_orphan(claim["metadata"]["name"], claim)
                released.append(claim["metadata"]["name"])
        return released

    async def _holder_alive(self, namespace: str, name: str, uid: str) -> bool:
        binding = await self._kube.get_binding(namespace, name) if namespace and name else None
        return binding is not None and binding["metadata"].get("uid") == uid

    async def _release_orphan(self, phone_id: str, claim: Mapping[str, Any]) -> None:
        namespace, name, _ = holder_of(claim)
        if await self._kube.delete_claim(phone_id, claim["metadata"]["uid"]):
            self._observed.gone(phone_id)
            log.warning(
                "Released PhoneClaim %s: its holder %s/%s no longer exists",
                phone_id,
                namespace,
                name,
            )
