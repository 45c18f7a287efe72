"""What "settled" means for the pooled chaos run: pools full to their limits, ledgers exact."""

from __future__ import annotations

import random
from typing import Any

from phonefleet_testbed.chaos.fleet import FleetPlan, PlannedBinding, PlannedPool
from phonefleet_testbed.chaos.pooled import plan_pooled_fleet, pooled_settle_problems
from phonefleet_testbed.geelark_sim import seed_id

Obj = dict[str, Any]
RUNNING, STOPPED = 0, 2
POOL = PlannedPool("pool", 1, (1, 2), ("ns",), group="g")


def plan(*bindings: PlannedBinding) -> FleetPlan:
    return FleetPlan(namespaces=("ns",), bindings=bindings, pools=(POOL,))


def binding(name: str, phase: str, **status: Any) -> Obj:
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": f"u-{name}", "generation": 1},
        "status": {"phase": phase, "observedGeneration": 1, **status},
    }


def claim(phone: int, holder: str) -> Obj:
    return {"metadata": {"name": seed_id(phone)}, "spec": {"holder": {"uid": f"u-{holder}"}}}


def pod(name: str) -> Obj:
    return {
        "metadata": {"namespace": "ns", "name": f"{name}-worker"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def pool(*holders: str) -> Obj:
    return {
        "metadata": {"name": "pool"},
        "status": {"holders": [{"uid": f"u-{h}"} for h in holders]},
    }


ONE = PlannedBinding("ns", "one", "phone-001", 1)
TWO = PlannedBinding("ns", "two", "phone-002", 2)


def power(*on: int) -> dict[str, tuple[int, int]]:
    """The simulator's 20 phones: (status, starts), the ``on`` ones running."""
    return {seed_id(n): (RUNNING, 1) if n in on else (STOPPED, 0) for n in range(1, 21)}


PHONES = power(1)


def one_running_two_queued(ledger: str) -> list[str]:
    """The problems of ``one`` Running (its claim, pod and phone) and ``two`` Queued, the pool's
    ledger counting ``ledger``."""
    return pooled_settle_problems(
        plan(ONE, TWO),
        [binding("one", "Running"), binding("two", "Queued")],
        [claim(1, "one")],
        [pod("one")],
        PHONES,
        [pool(ledger)],
    )


def test_a_full_pool_with_the_rest_queued_is_settled() -> None:
    """maxRunning 1, two phones: one Running holder counted, the other binding Queued."""
    problems = one_running_two_queued(ledger="one")
    assert problems == []


def test_a_ledger_that_disagrees_with_the_running_holders_is_not_settled() -> None:
    """The pool counting a binding that does not run (or missing one that does) is reported."""
    problems = one_running_two_queued(ledger="two")
    assert any("the ledger and the cluster disagree" in p for p in problems)


def test_a_free_slot_with_a_waiter_is_not_settled() -> None:
    """Nothing runs while a binding waits and the limit allows one: the pool is under-used."""
    problems = pooled_settle_problems(
        plan(ONE, TWO),
        [binding("one", "Queued"), binding("two", "Queued")],
        [],
        [],
        power(),
        [pool()],
    )
    assert problems == [
        "PhonePool pool runs 0 phones, not 1 (min of maxRunning 1 and 2 phones wanting to run)"
    ]


def test_the_pooled_plan_is_drawn_from_the_seed_and_refuses_three() -> None:
    """The same seed draws the same fleet; three bindings are planned Forbidden."""
    first = plan_pooled_fleet(random.Random(7), "x")  # noqa: S311 - reproducible test data
    again = plan_pooled_fleet(random.Random(7), "x")  # noqa: S311
    assert first == again
    assert len(first.bindings) == 29
    assert sum(b.forbidden for b in first.bindings) == 3
    assert [p.max_running for p in first.pools] == [3, 2, 3]
    assert 19 not in first.phones()
