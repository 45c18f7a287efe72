"""What the watches of PhonePools, Namespaces and PhoneBindings last reported, for tenancy.

Only pools of this operator's Geelark account (``spec.account``, unset: ``default``) decide
anything; other accounts' pools are kept apart, to tell a binding whose namespace one of them
offers phones that another account's operator serves that pool. The pools of this account and
the namespaces' labels decide the policy; the bindings give the quota its queue
(who waits, oldest first) and tell it when a slot is free again (a binding deleted, suspended or
without its phone). Like the other watch views these may lag by an event: the pools and
namespaces are loaded by a list before the first decision, and the quota itself never trusts
them (the API server decides, see ``quota``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from phonefleet_operator.constants import DEFAULT_ACCOUNT
from phonefleet_operator.models import Phase, PhonePool
from phonefleet_operator.services.claims import BindingRef

__all__ = ["BindingEntry", "TenancyView", "entry_of"]


@dataclass(frozen=True)
class BindingEntry:
    """The few facts tenancy needs about one binding."""

    ref: BindingRef
    phase: str | None
    pool: str | None
    phone_id: str | None
    suspend: bool


def entry_of(body: Mapping[str, Any]) -> BindingEntry:
    """The entry of a binding body (as kopf or the API gives it)."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    return BindingEntry(
        ref=BindingRef(
            created=str(metadata.get("creationTimestamp", "")),
            namespace=str(metadata.get("namespace", "")),
            name=str(metadata.get("name", "")),
            uid=str(metadata.get("uid", "")),
        ),
        phase=status.get("phase"),
        pool=status.get("pool"),
        phone_id=(status.get("phone") or {}).get("id"),
        suspend=bool((body.get("spec") or {}).get("suspend")),
    )


def account_of(body: Mapping[str, Any]) -> str:
    """The account a pool body names (``default`` when unset), read before any validation."""
    return str((body.get("spec") or {}).get("account") or DEFAULT_ACCOUNT)


class TenancyView:
    """Pools by name, namespaces' labels, and the bindings' tenancy facts, as last watched."""

    def __init__(self, account: str = DEFAULT_ACCOUNT) -> None:
        #: The Geelark account of this operator: only its pools are in ``pools``.
        self.account = account
        self.pools: dict[str, PhonePool] = {}
        self.invalid_pools: set[str] = set()
        #: Pools of other accounts, by name: never judged by, counted or written here.
        self.foreign: dict[str, PhonePool] = {}
        self.namespaces: dict[str, dict[str, str]] = {}
        self.bindings: dict[str, BindingEntry] = {}
        self.loaded = False

    # ------------------------------------------------------------ pools and namespaces

    def is_mine(self, body: Mapping[str, Any]) -> bool:
        """The pool belongs to this operator's account."""
        return account_of(body) == self.account

    def saw_pool(self, body: Mapping[str, Any]) -> PhonePool | None:
        """A pool was added or changed; returns the previous version of this account's pool
        (None if new, invalid, or another account's until now)."""
        name = str(body["metadata"]["name"])
        old = self.pools.pop(name, None)
        self.invalid_pools.discard(name)
        self.foreign.pop(name, None)
        try:
            pool = PhonePool.from_body(body)
        except ValidationError:
            # The CRD schema refuses what the model refuses; an invalid pool counts as none.
            if self.is_mine(body):
                self.invalid_pools.add(name)
            return old
        if self.is_mine(body):
            self.pools[name] = pool
        else:
            self.foreign[name] = pool
        return old

    def pool_gone(self, name: str) -> PhonePool | None:
        """A pool was deleted; returns it if it was this account's."""
        self.invalid_pools.discard(name)
        self.foreign.pop(name, None)
        return self.pools.pop(name, None)

    def load(
        self, pools: Iterable[Mapping[str, Any]], namespaces: Iterable[Mapping[str, Any]]
    ) -> None:
        """Seed the view from one listing of each (before the watches caught up)."""
        for body in pools:
            self.saw_pool(body)
        for body in namespaces:
            self.saw_namespace(body)
        self.loaded = True

    def saw_namespace(self, body: Mapping[str, Any]) -> bool:
        """A namespace was added or changed; True when its labels differ from before."""
        metadata = body["metadata"]
        labels = dict(metadata.get("labels") or {})
        changed = self.namespaces.get(metadata["name"]) != labels
        self.namespaces[metadata["name"]] = labels
        return changed

    def namespace_gone(self, name: str) -> None:
        """A namespace was deleted."""
        self.namespaces.pop(name, None)

    # ------------------------------------------------------------ bindings

    def saw_binding(self, body: Mapping[str, Any]) -> tuple[BindingEntry | None, BindingEntry]:
        """A binding was added or changed: (its previous entry, its entry now)."""
        entry = entry_of(body)
        old = self.bindings.get(entry.ref.uid)
        self.bindings[entry.ref.uid] = entry
        return old, entry

    def binding_gone(self, uid: str) -> BindingEntry | None:
        """A binding was deleted; returns its last entry."""
        return self.bindings.pop(uid, None)

    def queued(self, pool: str) -> list[BindingRef]:
        """The bindings waiting for a slot of ``pool``, oldest first."""
        return sorted(
            e.ref
            for e in self.bindings.values()
            if e.phase == Phase.QUEUED and e.pool == pool and not e.suspend
        )

    def older_queued(self, pool: str, me: BindingRef) -> int:
        """How many bindings older than ``me`` wait for a slot of ``pool``."""
        return sum(1 for ref in self.queued(pool) if ref < me and ref.uid != me.uid)

    def uids(self, namespace: str | None = None, phase: str | None = None) -> list[str]:
        """uids of every binding (or of those in ``namespace``, or in ``phase``)."""
        return [
            e.ref.uid
            for e in self.bindings.values()
            if (namespace is None or e.ref.namespace == namespace)
            and (phase is None or e.phase == phase)
        ]
