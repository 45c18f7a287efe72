"""Geelark requests are counted by endpoint and outcome, against the real simulator over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from phonefleet_operator.errors import GeelarkRateLimited, GeelarkUnavailable
from phonefleet_testbed.geelark_sim import GeelarkSimulator, seed_id

from .conftest import ClientFactory


def sample(name: str, **labels: str) -> float:
    """The current value of one sample of the process registry (0 when absent)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests(endpoint: str, outcome: str) -> float:
    return sample("phonefleet_geelark_requests_total", endpoint=endpoint, outcome=outcome)


async def test_each_attempt_is_counted_with_its_outcome(
    simulator: GeelarkSimulator, open_client: ClientFactory
) -> None:
    """Two 40007 answers then a success: two rate_limited requests, one ok, two 40007 answers."""
    before = {
        "limited": requests("phone/status", "rate_limited"),
        "ok": requests("phone/status", "ok"),
        "40007": sample("phonefleet_geelark_rate_limit_answers_total", code="40007"),
    }
    simulator.admin.set_faults("phone/status", times=2, code=40007)

    async with open_client(simulator, max_attempts=3) as client:
        await client.phone_status([seed_id(1)])

    assert requests("phone/status", "rate_limited") - before["limited"] == 2
    assert requests("phone/status", "ok") - before["ok"] == 1
    assert (
        sample("phonefleet_geelark_rate_limit_answers_total", code="40007") - before["40007"] == 2
    )
    assert sample("phonefleet_geelark_reachable") == 1


@pytest.mark.parametrize(
    ("fault", "error", "outcome", "reachable"),
    [
        ({"outage": True}, GeelarkUnavailable, "unavailable", 0),
        ({"http_status": 429}, GeelarkRateLimited, "rate_limited", 1),
    ],
    ids=["unreachable", "HTTP 429"],
)
async def test_a_lasting_fault_sets_reachability(
    *,
    simulator: GeelarkSimulator,
    open_client: ClientFactory,
    fault: dict[str, Any],
    error: type[Exception],
    outcome: str,
    reachable: int,
) -> None:
    """Geelark that cannot be asked reads 0 on the reachable gauge; one that answers, even with
    a rate limit, reads 1."""
    before = requests("phone/start", outcome)
    simulator.admin.set_faults("phone/start", **fault)

    async with open_client(simulator, max_attempts=2) as client:
        with pytest.raises(error):
            await client.start_phones([seed_id(1)])

    assert requests("phone/start", outcome) - before == 2
    assert sample("phonefleet_geelark_reachable") == reachable
