"""Each phone's pool for ``phonefleet phones list``: the PhonePools of the listed phones'
Geelark account, by phone (another account's pools hold other phones, even with the same
names)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from phonefleet_operator.constants import DEFAULT_ACCOUNT
from phonefleet_operator.geelark import Phone
from phonefleet_operator.k8s import ApiCaller, PoolGateway, load_api_client
from phonefleet_operator.models import PhonePool
from phonefleet_operator.services.tenancy.policy import pools_of

__all__ = ["NO_POOL", "parse_pools", "pool_of", "read_pools"]

#: POOL of a phone in no pool.
NO_POOL = "<none>"


def parse_pools(
    bodies: Iterable[Mapping[str, Any]], account: str = DEFAULT_ACCOUNT
) -> list[PhonePool]:
    """The valid pools of ``account`` among ``bodies`` (the CRD refuses what the model
    refuses)."""
    pools = []
    for body in bodies:
        try:
            pool = PhonePool.from_body(body)
        except ValidationError:
            continue
        if pool.spec.account_name == account:
            pools.append(pool)
    return pools


def pool_of(phone: Phone, pools: Sequence[PhonePool]) -> str:
    """The pool's name, <none>, or every pool's name joined by "+" for a misconfigured phone."""
    names = sorted(pool.name for pool in pools_of(phone, pools))
    return "+".join(names) if names else NO_POOL


async def read_pools(
    kubeconfig: str | None, account: str = DEFAULT_ACCOUNT
) -> list[PhonePool] | None:
    """The cluster's pools of ``account``; None when there is none or they cannot be read (the
    column is optional: it appears only where tenancy is on for the account)."""
    try:
        caller = ApiCaller(load_api_client(1, kubeconfig), 1)
    except Exception:  # kubernetes' config errors: HELD BY already says why
        return None
    try:
        pools = parse_pools(await PoolGateway(caller).list_pools(), account)
    except Exception:  # 404 (no CRD yet), 403, unreachable
        return None
    finally:
        caller.close()
    return pools or None
