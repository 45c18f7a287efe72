"""The pooled chaos run's fleet: three PhonePools whose limits are below their bindings.

Phones 1-8 form pool A (simulator group, namespace A by its client label, ``maxRunning`` 3),
9-14 pool B (a tag, namespaces B and C by name, ``maxRunning`` 2), 15-18 pool C (a group,
namespace C by label, ``maxRunning`` 3; phone 18's binding is suspended from the start). Phones
19 and 20 are in no pool, and the operator runs with ``PHONEFLEET_REQUIRE_POOLS=true``. Each bound
phone has one binding in a namespace its pool allows, and 8 more bindings duplicate or alias them
(also in allowed namespaces), so most pools have more candidates than slots and bindings queue.
Three bindings the pools must refuse: one in namespace A naming a phone of pool B, one naming
phone 19 (in no pool), one naming a phone that does not exist (told exactly like the others).

Settled means, per pool: as many phones run as the limit allows (``min(maxRunning, phones that
want to run)``), each by a ``Running`` holder with a live ready pod; the pool's ``status.holders``
are exactly those holders; every other binding is ``Queued`` or ``Conflict`` (naming the holder
as tenancy allows), and a phone not running is off with no pod.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

from phonefleet_testbed.chaos.fleet import (
    ANOTHER_NAMESPACE,
    SUSPENDED_PHONE,
    FleetPlan,
    PlannedBinding,
    PlannedPool,
    World,
    pod_ready,
    untouched_problems,
)
from phonefleet_testbed.geelark_sim import seed_id, seed_name
from phonefleet_testbed.tenants import CLIENT_LABEL

__all__ = ["CLIENT_LABEL", "plan_pooled_fleet", "pooled_settle_problems"]

Obj = Mapping[str, Any]

EXTRA_BINDINGS = 8
OUTSIDE_PHONE = 19
MISSING_REFERENCE = "phone-404"


def plan_pooled_fleet(rng: random.Random, suffix: str) -> FleetPlan:
    """Draw the pooled run's bindings from ``rng`` (namespaces and pools named with ``suffix``)."""
    a, b, c = (f"chaos-p{x}-{suffix}" for x in "abc")
    pools = (
        PlannedPool(
            f"chaos-a-{suffix}", 3, tuple(range(1, 9)), (a,), group=f"g-a-{suffix}", selector=True
        ),
        PlannedPool(f"chaos-b-{suffix}", 2, tuple(range(9, 15)), (b, c), tag=f"t-b-{suffix}"),
        PlannedPool(
            f"chaos-c-{suffix}", 3, tuple(range(15, 19)), (c,), group=f"g-c-{suffix}", selector=True
        ),
    )
    pool_of = {n: pool for pool in pools for n in pool.phones}

    def reference(phone: int) -> str:
        return seed_id(phone) if rng.random() < 0.5 else seed_name(phone)

    bindings: list[PlannedBinding] = []
    for phone in range(1, SUSPENDED_PHONE + 1):
        bindings.append(
            PlannedBinding(
                namespace=rng.choice(pool_of[phone].namespaces),
                name=f"p{phone:02d}",
                reference=reference(phone),
                phone=phone,
                suspend=phone == SUSPENDED_PHONE,
            )
        )
    for extra in range(1, EXTRA_BINDINGS + 1):
        phone = rng.randint(1, SUSPENDED_PHONE)
        first = bindings[phone - 1].reference
        ref = reference(phone) if rng.random() < 0.6 else first
        kind = "dup" if ref == first else "alias"
        bindings.append(
            PlannedBinding(
                namespace=rng.choice(pool_of[phone].namespaces),
                name=f"{kind}{extra:02d}-p{phone:02d}",
                reference=ref,
                phone=phone,
            )
        )
    foreign = rng.choice(pools[1].phones)
    bindings += [
        PlannedBinding(a, f"foreign-p{foreign:02d}", reference(foreign), foreign, forbidden=True),
        PlannedBinding(
            b, f"outside-p{OUTSIDE_PHONE}", seed_name(OUTSIDE_PHONE), OUTSIDE_PHONE, forbidden=True
        ),
        PlannedBinding(c, "ghost1", MISSING_REFERENCE, None, forbidden=True),
    ]
    return FleetPlan(namespaces=(a, b, c), bindings=tuple(bindings), pools=pools)


def pooled_settle_problems(  # noqa: PLR0917 - the listings of one snapshot
    plan: FleetPlan,
    bindings: Iterable[Obj],
    claims: Iterable[Obj],
    pods: Iterable[Obj],
    phones: Mapping[str, tuple[int, int]],
    pools: Iterable[Obj],
) -> list[str]:
    """What keeps the pooled fleet from its expected end state; empty once it is there.

    ``phones`` maps ids to (status, starts); ``pools`` are the PhonePools as listed.
    """
    world = World.of(bindings, claims, pods, phones)
    ledgers = {
        p["metadata"]["name"]: {h.get("uid") for h in (p.get("status") or {}).get("holders") or []}
        for p in pools
    }
    problems: list[str] = []
    for planned in plan.bindings:
        body = world.body(planned)
        phase = world.status(planned).get("phase")
        if body is None:
            problems.append(f"{planned.key} does not exist")
        elif world.status(planned).get("observedGeneration") != body["metadata"].get("generation"):
            problems.append(f"{planned.key} has not reconciled its latest generation")
        elif planned.forbidden and phase != "Forbidden":
            problems.append(f"{planned.key} is {phase}, not Forbidden {world.why(planned)}")
    expected_pods: set[tuple[str, str]] = set()
    for pool in plan.pools:
        problems += _pool_problems(plan, pool, world, ledgers.get(pool.name), expected_pods)
    in_pools = {n for pool in plan.pools for n in pool.phones}
    return problems + untouched_problems(phones, in_pools, "in no pool", world, expected_pods)


def _pool_problems(
    plan: FleetPlan,
    pool: PlannedPool,
    world: World,
    ledger: set[Any] | None,
    expected_pods: set[tuple[str, str]],
) -> list[str]:
    problems: list[str] = []
    running: set[str] = set()
    wanting = 0  # phones some binding wants to run (not held by a suspended one)
    for phone in pool.phones:
        mine = [b for b in plan.bindings if b.phone == phone and not b.forbidden]
        if mine:
            found, holder_uid, wants = _phone_problems(mine, seed_id(phone), world, expected_pods)
            problems += found
            wanting += wants
            if holder_uid is not None:
                running.add(holder_uid)
    expected = min(pool.max_running, wanting)
    if len(running) != expected:
        problems.append(
            f"PhonePool {pool.name} runs {len(running)} phones, not {expected} "
            f"(min of maxRunning {pool.max_running} and {wanting} phones wanting to run)"
        )
    if ledger is None:
        problems.append(f"PhonePool {pool.name} is not listed")
    elif ledger != running:
        problems.append(
            f"PhonePool {pool.name} counts {len(ledger)} holders, its Running holders are "
            f"{len(running)}: the ledger and the cluster disagree"
        )
    return problems


def _phone_problems(
    mine: list[PlannedBinding],
    phone_id: str,
    world: World,
    expected_pods: set[tuple[str, str]],
) -> tuple[list[str], str | None, bool]:
    """One phone of a pool: its problems, the uid of its Running holder, whether it wants to run."""
    claim = world.claims.get(phone_id) or {}
    holder_uid = (claim.get("spec") or {}).get("holder", {}).get("uid")
    holder = next((b for b in mine if holder_uid and world.uid(b) == holder_uid), None)
    if claim and holder is None:
        return [f"phone {phone_id}: none of its bindings holds its claim"], None, False
    wants = (holder is None or not holder.suspend) and any(not b.suspend for b in mine)
    problems: list[str] = []
    power = world.phones.get(phone_id, (None, 0))[0]
    phase = world.status(holder).get("phase") if holder else None
    running = None
    if holder is not None and phase == "Running":
        running = str(holder_uid)
        pod_key = (holder.namespace, f"{holder.name}-worker")
        expected_pods.add(pod_key)
        pod = world.live_pods.get(pod_key)
        if power != 0 or pod is None or not pod_ready(pod):
            problems.append(f"{holder.key} is Running: phone status {power}, pod {pod_key}")
    elif holder is not None and phase != ("Suspended" if holder.suspend else "Queued"):
        problems.append(f"{holder.key} holds {phone_id} but is {phase} {world.why(holder)}")
    elif power != 2:
        problems.append(f"phone {phone_id} is on (status {power}) with no Running holder")
    for other in mine:
        if other is holder:
            continue
        found = world.status(other)
        shown = None
        if holder is not None:
            shown = holder.key if other.namespace == holder.namespace else ANOTHER_NAMESPACE
        if found.get("phase") == "Queued" or (
            shown is not None
            and (found.get("phase"), found.get("conflictWith")) == ("Conflict", shown)
        ):
            continue
        problems.append(
            f"{other.key} is {found.get('phase')} (conflictWith {found.get('conflictWith')}), "
            f"not Queued or Conflict with {shown} {world.why(other)}"
        )
    return problems, running, wants
