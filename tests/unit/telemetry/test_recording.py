"""The recording decorators and the rate budget."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, Counter

from phonefleet_operator.telemetry import count_calls, count_creates, reconcile_pass
from phonefleet_operator.telemetry.metrics import RateBudget


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_reconcile_passes_are_counted_by_outcome_and_timed() -> None:
    """A pass that returns counts ok, one that raises counts error; both are timed."""

    @reconcile_pass
    async def pass_(fail: bool) -> float:
        if fail:
            raise RuntimeError("boom")
        return 5.0

    ok, error = (
        value("phonefleet_reconcile_passes_total", outcome="ok"),
        value("phonefleet_reconcile_passes_total", outcome="error"),
    )
    timed = value("phonefleet_reconcile_duration_seconds_count")

    assert await pass_(False) == 5.0
    with pytest.raises(RuntimeError):
        await pass_(True)

    assert value("phonefleet_reconcile_passes_total", outcome="ok") - ok == 1
    assert value("phonefleet_reconcile_passes_total", outcome="error") - error == 1
    assert value("phonefleet_reconcile_duration_seconds_count") - timed == 2
    assert value("phonefleet_reconcile_last_pass_timestamp_seconds") > 0


async def test_creates_count_made_and_existing_separately() -> None:
    """True counts as created, False (it existed) as lost; plain calls count when they return."""
    made, lost, calls = (Counter(f"test_{n}", "test", registry=None) for n in ("m", "l", "c"))

    @count_creates(made, lost)
    async def create(result: bool) -> bool:
        return result

    @count_calls(calls)
    async def delete() -> None:
        return None

    await create(True)
    await create(False)
    await create(False)
    await delete()

    assert (made._value.get(), lost._value.get(), calls._value.get()) == (1, 2, 1)


def test_the_rate_budget_is_the_configured_rate_minus_the_last_minutes_requests() -> None:
    """Requests older than 60 s no longer count against the budget."""
    now = [0.0]
    budget = RateBudget(clock=lambda: now[0])
    assert list(budget.collect()) == []  # nothing exported before it is configured
    budget.configure(125)
    for t in (0.0, 10.0, 30.0):
        now[0] = t
        budget.spent()
    now[0] = 59.0
    assert budget.remaining() == 122
    now[0] = 65.0
    assert budget.remaining() == 123
    families = {f.name: f.samples[0].value for f in budget.collect()}
    assert families == {
        "phonefleet_geelark_rate_budget_remaining": 123,
        "phonefleet_geelark_rate_budget_per_minute": 125,
    }
