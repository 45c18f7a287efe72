"""Background work that fails is retried or reported, and /healthz tells the truth (defect 10).

The sweeper's failures come from a fake claims service: the real API server cannot be made to
raise an arbitrary exception out of a sweep on demand. Geelark's reachability on /healthz is
checked against the real simulator and API server in
tests/integration/operator/test_health_endpoint.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import kopf
import pytest

from conftest import memo_of
from phonefleet_operator import main
from phonefleet_operator.errors import GeelarkUnavailable, PhoneNotFound
from phonefleet_operator.services.geelark_health import GeelarkHealth
from phonefleet_operator.services.runtime import Runtime
from phonefleet_operator.settings import GeelarkSettings, OperatorSettings


class FlakyClaims:
    """A claims service whose first sweep raises an error no one planned for."""

    def __init__(self) -> None:
        self.sweeps = 0
        self.swept_again = asyncio.Event()

    async def release_orphans(self) -> list[str]:
        self.sweeps += 1
        if self.sweeps == 1:
            raise KeyError("metadata")  # a bug meeting an odd claim, say
        self.swept_again.set()
        return []


@pytest.fixture
async def runtime(kubeconfig: Path) -> AsyncIterator[Runtime]:
    """A runtime that makes no call (nothing is started but what a test starts)."""
    built = Runtime.create(
        OperatorSettings(orphan_sweep_seconds=0.01, kubeconfig=str(kubeconfig)),
        GeelarkSettings(url="http://127.0.0.1:9", token="unit-token", max_attempts=1),
    )
    yield built
    await built.close()


async def test_a_sweep_that_raises_anything_is_logged_and_the_next_sweep_runs(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """Not only PhonefleetError: any exception of one sweep leaves the sweeper running."""
    claims = FlakyClaims()
    runtime.claims = claims  # type: ignore[assignment]
    runtime.start_background()
    await asyncio.wait_for(claims.swept_again.wait(), timeout=30)
    assert claims.sweeps >= 2
    assert "Sweep of orphaned PhoneClaims failed" in caplog.text
    assert main.background_probe(memo=memo_of(runtime))["sweeper"] == "running"  # type: ignore[index]


async def test_healthz_fails_once_the_sweeper_has_ended(runtime: Runtime) -> None:
    """A sweeper that is gone makes the background probe fail (kopf answers /healthz 500)."""
    runtime.claims = FlakyClaims()  # type: ignore[assignment]
    runtime.start_background()
    assert main.background_probe(memo=memo_of(runtime))["sweeper"] == "running"  # type: ignore[index]
    sweeper = runtime._sweeper
    assert sweeper is not None
    sweeper.cancel()  # ended by something other than close()
    with pytest.raises(asyncio.CancelledError):
        await sweeper
    with pytest.raises(kopf.PermanentError, match="sweeper has ended"):
        main.background_probe(memo=memo_of(runtime))


async def test_the_geelark_probe_reports_what_the_last_calls_met(runtime: Runtime) -> None:
    """An unreachable Geelark is reported on /healthz (without failing it); an answer, even a
    "not found", reports it reachable again."""
    assert main.geelark_probe(memo=memo_of(runtime)) == "not asked yet"
    with pytest.raises(GeelarkUnavailable):
        await runtime.reconciler._directory.resolve("phone-1")  # nothing listens on :9
    assert main.geelark_probe(memo=memo_of(runtime)).startswith("unreachable for")
    assert "GeelarkUnavailable" in main.geelark_probe(memo=memo_of(runtime))


async def test_a_refusal_geelark_sent_counts_as_an_answer() -> None:
    """ "Not found" is an answer; "unavailable" is not; a later answer clears the failure."""
    health = GeelarkHealth(clock=lambda: 100.0)

    async def missing() -> None:
        raise PhoneNotFound("Phone 'x' not found in Geelark")

    async def down() -> None:
        raise GeelarkUnavailable("Geelark did not answer")

    with pytest.raises(GeelarkUnavailable):
        await health.record(down())
    assert health.summary().startswith("unreachable for 0 s")
    with pytest.raises(PhoneNotFound):
        await health.record(missing())
    assert health.summary() == "ok (answered 0 s ago)"
