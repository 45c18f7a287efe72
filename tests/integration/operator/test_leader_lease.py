"""The leader Lease on a real API server: one holder, expiry on the observer's own clock, release,
and an active replica that cannot renew stops working."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from phonefleet_operator.k8s import ApiCaller, load_api_client
from phonefleet_operator.k8s.lease import LeaseLock
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.processes import ManagedProcess, free_port
from phonefleet_testbed.rbac import OPERATOR_NAMESPACE
from phonefleet_testbed.scenarios import Fleet, operator_env
from phonefleet_testbed.waiting import wait_for

LEASE = "phonefleet-operator"


@pytest.fixture
def no_lease(kubectl: Kubectl, operator_credentials: Path) -> Iterator[None]:
    """No leader Lease before or after the test (operator_credentials: the namespace exists)."""
    kubectl("delete", "lease", LEASE, "-n", OPERATOR_NAMESPACE, "--ignore-not-found")
    yield
    kubectl("delete", "lease", LEASE, "-n", OPERATOR_NAMESPACE, "--ignore-not-found")


async def test_one_holder_expiry_by_the_observers_clock_and_release(
    control_plane: ControlPlane, no_lease: None
) -> None:
    """a takes the free Lease; b is refused until a's record has not changed for the duration
    on b's own clock; then b takes it (one transition); b's release lets a in at once."""
    caller = ApiCaller(load_api_client(2, str(control_plane.kubeconfig)), 2)
    clock = [0.0]
    a = LeaseLock(caller, OPERATOR_NAMESPACE, LEASE, "a", 15, clock=lambda: clock[0])
    b = LeaseLock(caller, OPERATOR_NAMESPACE, LEASE, "b", 15, clock=lambda: clock[0])
    try:
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()  # b starts watching a's record at 0
        clock[0] = 14.0
        assert not await b.try_acquire_or_renew()
        clock[0] = 15.5
        assert await b.try_acquire_or_renew()
        assert await b.holder() == "b"
        assert not await a.try_acquire_or_renew()  # b's renewal is new to a: not expired

        await b.release()
        assert await a.try_acquire_or_renew()
        assert await a.holder() == "a"
    finally:
        caller.close()


async def test_racing_replicas_never_both_take_a_free_lease(
    control_plane: ControlPlane, no_lease: None
) -> None:
    """Ten replicas ask for the free Lease at once: exactly one gets it."""
    caller = ApiCaller(load_api_client(10, str(control_plane.kubeconfig)), 10)
    locks = [LeaseLock(caller, OPERATOR_NAMESPACE, LEASE, f"r{i}", 15) for i in range(10)]
    try:
        won = await asyncio.gather(*(lock.try_acquire_or_renew() for lock in locks))
        assert sum(won) == 1
        assert await locks[0].holder() == f"r{won.index(True)}"
    finally:
        caller.close()


def test_an_active_replica_that_cannot_renew_stops_and_exits_1(
    *,
    control_plane: ControlPlane,
    operator_credentials: Path,
    fleet: Fleet,
    kubectl: Kubectl,
    namespace: str,
    no_lease: None,
) -> None:
    """Someone else writes the Lease: the active replica's next renewal finds it held by
    another, so it fences itself at once (no write or Geelark change leaves it any more),
    cancels kopf, says why and exits non-zero (to restart as a standby)."""
    env = {
        **operator_env(control_plane, fleet.simulator),
        "KUBECONFIG": str(operator_credentials),
        "PHONEFLEET_LEADER_ELECTION": "true",
        "PHONEFLEET_LEASE_RENEW_DEADLINE_SECONDS": "3",
        "PHONEFLEET_LEASE_RETRY_SECONDS": "0.5",
    }
    script = str(Path(sys.executable).with_name("phonefleet-operator"))
    liveness = f"--liveness=http://127.0.0.1:{free_port()}/healthz"
    logs = Path(tempfile.mkdtemp(prefix="phonefleet-lease-"))
    process = ManagedProcess("operator", [script, "-n", namespace, liveness], logs, env=env)
    process.start()
    try:
        wait_for(lambda: "this replica is active" in process.log_tail(), 60, message="active")
        kubectl(
            "patch",
            "lease",
            LEASE,
            "-n",
            OPERATOR_NAMESPACE,
            "--type=merge",
            "-p",
            '{"spec":{"holderIdentity":"intruder","leaseDurationSeconds":3600}}',
        )
        wait_for(lambda: not process.is_running(), 60, message="the replica to stop")
        log = process.log_tail(60)
        assert "Lost Lease phonefleet-system/phonefleet-operator: intruder holds it now" in log
        assert "Fenced this replica" in log
        assert "the operator is cancelled at once" in log
        assert "did not end within" not in log
        with pytest.raises(RuntimeError, match="exited with code 1"):
            process.check_running()
    finally:
        process.stop()
