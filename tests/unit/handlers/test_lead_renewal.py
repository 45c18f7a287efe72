"""The active replica stops working once it could not renew its Lease for the renew deadline,
even when a renewal hangs instead of failing (leadership.py's ``_lead``).

A standby takes over ``lease_duration_seconds`` after the last renewal it saw. A renewal that
hangs (an API server that stopped answering, a network that drops packets) would otherwise keep
the old holder working until the call's own timeout, past the takeover. On looptime's virtual
clock.
"""

from __future__ import annotations

import asyncio

import pytest
from loop_order import let_virtual_time_pass

from phonefleet_operator import leadership
from phonefleet_operator.errors import KubernetesUnavailable
from phonefleet_operator.fence import Fence
from phonefleet_operator.settings import OperatorSettings
from phonefleet_operator.waiting import within

pytestmark = pytest.mark.looptime

SETTINGS = OperatorSettings(
    lease_duration_seconds=15, lease_renew_deadline_seconds=10, lease_retry_seconds=2
)


class Lock:
    """The Lease: the first ``renewals`` renewals succeed, then each one ``then`` does
    ("hang": never answers; "fail": the API server is unavailable)."""

    namespace, name, identity = "phonefleet-system", "phonefleet-operator", "me"
    observed_holder = "me"

    def __init__(self, renewals: int, then: str) -> None:
        self.renewals = renewals
        self.then = then
        self.renewed_at: list[float] = []
        self.released = False

    async def try_acquire_or_renew(self) -> bool:
        if len(self.renewed_at) < self.renewals:
            self.renewed_at.append(asyncio.get_running_loop().time())
            return True
        if self.then == "hang":
            await asyncio.Event().wait()
        raise KubernetesUnavailable("Kubernetes API call replace_namespaced_lease failed: 503")

    async def release(self) -> None:
        self.released = True


async def _lead_until_stopped(lock: Lock) -> tuple[int, float]:
    """Run ``_lead`` with an operator that works until told to stop; its exit code and the
    loop time at which the operator was told to stop."""
    told: list[float] = []

    async def operator(stop: asyncio.Event) -> None:
        await stop.wait()
        told.append(asyncio.get_running_loop().time())

    code = await within(leadership._lead(lock, SETTINGS, operator, Fence(), 0.0), 600)  # type: ignore[arg-type]
    return code, told[0]


@pytest.mark.parametrize("then", ["hang", "fail"])
async def test_a_holder_whose_renewals_hang_or_fail_stops_within_the_renew_deadline(
    then: str,
) -> None:
    lock = Lock(renewals=2, then=then)
    code, stopped_at = await _lead_until_stopped(lock)
    assert code == 1
    assert not lock.released  # lost, not given up: another replica may hold it by now
    last_renewal = lock.renewed_at[-1]
    deadline = SETTINGS.lease_renew_deadline_seconds
    assert stopped_at - last_renewal <= deadline
    assert stopped_at - last_renewal < SETTINGS.lease_duration_seconds


async def test_an_operator_that_fails_exits_non_zero_says_why_and_gives_the_lease_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """kopf ending with an error must not look like a clean exit (0, nothing logged)."""
    lock = Lock(renewals=100, then="fail")

    async def operator(stop: asyncio.Event) -> None:
        await let_virtual_time_pass(5)
        raise RuntimeError("kopf fell over")

    code = await within(leadership._lead(lock, SETTINGS, operator, Fence(), 0.0), 600)  # type: ignore[arg-type]
    assert code == 1
    assert lock.released  # the standby need not wait the Lease out
    assert "kopf fell over" in caplog.text


async def test_a_holder_whose_operator_does_not_stop_after_losing_the_lease_exits_anyway(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """kopf's shutdown waits for its handlers and clean-up; one that hangs must not keep the
    old holder running (its /healthz still answering) next to the new one: it gets half of
    what is left before a standby may take over, then is cancelled, and the log names what
    had not stopped."""
    lock = Lock(renewals=2, then="fail")
    ended: list[str] = []

    async def hung_handler() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise

    async def operator(stop: asyncio.Event) -> None:
        await stop.wait()
        await asyncio.create_task(hung_handler(), name="a hung clean-up handler")

    code = await within(leadership._lead(lock, SETTINGS, operator, Fence(), 0.0), 600)  # type: ignore[arg-type]
    assert code == 1
    assert not lock.released
    assert "did not stop" in caplog.text
    assert "a hung clean-up handler" in caplog.text
    assert ended == ["cancelled"]
