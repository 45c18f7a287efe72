"""Tenancy: PhonePools say which namespaces may bind which phones, with which images, and how
many may run at once. Off while no PhonePool of the operator's Geelark account exists; other
accounts' pools are their operators' (docs/tenancy.md).

- ``policy``: the pure verdict on one binding (Allowed, Forbidden naming the rule, Misconfigured);
- ``quota``: the running limit, decided by the API server (conditional writes of a pool's status);
- ``view``: what the watches of pools, namespaces and bindings last reported;
- ``gate``: the hooks the reconcile pass and the webhook call, and the watch events;
- ``status``: the pools' status (PHONES, BOUND, NAMESPACES, overlaps) and the holders' sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from phonefleet_operator.k8s import ApiCaller, PoolGateway
from phonefleet_operator.services.accounts import AccountScope
from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_operator.services.ports import Kube, PhoneDirectory
from phonefleet_operator.services.tenancy.gate import Gate, NoTenancy, Tenancy
from phonefleet_operator.services.tenancy.policy import (
    ANOTHER_NAMESPACE,
    conflict_for_reader,
    holder_for_reader,
)
from phonefleet_operator.services.tenancy.quota import Quota
from phonefleet_operator.services.tenancy.status import PhoneCatalog, PoolReporter
from phonefleet_operator.services.tenancy.view import TenancyView
from phonefleet_operator.settings import OperatorSettings

__all__ = [
    "ANOTHER_NAMESPACE",
    "Gate",
    "NoTenancy",
    "PoolReporter",
    "Quota",
    "Tenancy",
    "TenancyView",
    "build_tenancy",
    "conflict_for_reader",
    "holder_for_reader",
]


class _Inventory(PhoneDirectory, PhoneCatalog, Protocol):
    """The phone inventory as tenancy uses it: resolve, and the cached list."""


def build_tenancy(
    *,
    caller: ApiCaller,
    inventory: _Inventory,
    claims: ObservedClaims,
    kube: Kube,
    settings: OperatorSettings,
    wake: Callable[[str], None],
    scope: AccountScope | None = None,
) -> Tenancy:
    """Tenancy for the operator of ``scope`` (its account and namespaces; unset: the account of
    ``settings``, every namespace), with its pools' status reporter (started by the first pool
    of its account)."""
    scope = scope or AccountScope(settings.account)
    store = PoolGateway(caller)

    async def binding_exists(namespace: str, name: str, uid: str) -> bool:
        body = await kube.get_binding(namespace, name) if namespace and name else None
        return body is not None and body["metadata"].get("uid") == uid

    tenancy = Tenancy(
        view=TenancyView(scope.account),
        quota=Quota(store),
        store=store,
        directory=inventory,
        claims=claims,
        settings=settings,
        wake=wake,
        scope=scope,
    )
    tenancy.reporter = PoolReporter(tenancy, inventory, binding_exists)
    return tenancy
