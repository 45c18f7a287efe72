"""Each phone's pool for ``phonefleet phones list``: the cluster's PhonePools, by phone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from phonefleet_operator.geelark import Phone
from phonefleet_operator.k8s import ApiCaller, PoolGateway, load_api_client
from phonefleet_operator.models import PhonePool
from phonefleet_operator.services.tenancy.policy import pools_of

__all__ = ["NO_POOL", "parse_pools", "pool_of", "read_pools"]

#: POOL of a phone in no pool.
NO_POOL = "<none>"


def parse_pools(bodies: Iterable[Mapping[str, Any]]) -> list[PhonePool]:
    """The valid pools among ``bodies`` (the CRD refuses what the model refuses)."""
    pools = []
    for body in bodies:
        try:
            pools.append(PhonePool.from_body(body))
        except ValidationError:
            continue
    return pools


def pool_of(phone: Phone, pools: Sequence[PhonePool]) -> str:
    """The pool's name, <none>, or every pool's name joined by "+" for a misconfigured phone."""
    names = sorted(pool.name for pool in pools_of(phone, pools))
    return "+".join(names) if names else NO_POOL


async def read_pools(kubeconfig: str | None) -> list[PhonePool] | None:
    """The cluster's pools; None when there is none or they cannot be read (the column is
    optional: it appears only where tenancy is on)."""
    try:
        caller = ApiCaller(load_api_client(1, kubeconfig), 1)
    except Exception:  # kubernetes' config errors: HELD BY already says why
        return None
    try:
        pools = parse_pools(await PoolGateway(caller).list_pools())
    except Exception:  # 404 (no CRD yet), 403, unreachable
        return None
    finally:
        caller.close()
    return pools or None
