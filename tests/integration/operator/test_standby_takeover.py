"""Two operator processes, one active through the leader Lease: SIGKILL the active one while
bindings converge and the standby finishes the work, with every invariant intact."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.processes import free_port
from phonefleet_testbed.replicas import ReplicaProcess, StartReplica
from phonefleet_testbed.scenarios import Fleet, make_binding
from phonefleet_testbed.waiting import wait_for
from phonefleet_testbed.watching import Watched

N = 8


@dataclass(frozen=True)
class Replica(ReplicaProcess):
    """One operator process, its liveness URL and its /metrics URL."""

    metrics: str

    def leader_gauge(self) -> str | None:
        """The value of phonefleet_leader on its /metrics, None if it does not answer."""
        try:
            with urllib.request.urlopen(self.metrics, timeout=5) as answer:  # noqa: S310
                text = answer.read().decode()
        except OSError:
            return None
        return next(
            (
                line.split()[1]
                for line in text.splitlines()
                if line.startswith("phonefleet_leader ")
            ),
            None,
        )


def _phase(body: dict[str, object]) -> str | None:
    status = body.get("status") or {}
    return status.get("phase") if isinstance(status, dict) else None


@pytest.fixture
def start_replica(operator_replicas: StartReplica) -> Callable[[str], Replica]:
    """Start `phonefleet-operator` replicas with leader election (production lease timings);
    each serves /metrics."""

    def start(name: str) -> Replica:
        port = free_port()
        started = operator_replicas(
            name, PHONEFLEET_METRICS_PORT=str(port), PHONEFLEET_METRICS_ADDR="127.0.0.1"
        )
        return Replica(started.process, started.liveness, f"http://127.0.0.1:{port}/metrics")

    return start


def test_the_standby_takes_over_after_a_sigkill_and_finishes_converging(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    start_replica: Callable[[str], Replica],
    watched: Watched,
) -> None:
    """The first replica holds the Lease and works; the second waits, answering its liveness
    probe and /metrics (phonefleet_leader 0). SIGKILL the active one while phones boot: the
    standby takes the Lease (how long after is printed, not asserted: a figure of the Lease's
    duration, not of this machine's load) and reports phonefleet_leader 1,
    every binding reaches Running with exactly its own pod and claim, and no phone was stopped."""
    fleet.simulator.admin.update_settings(boot_seconds=4.0)
    a = start_replica("operator-a")
    active = a.process
    wait_for(lambda: a.holds_lease(kubectl), 60, message="a to lead")
    b = start_replica("operator-b")
    standby = b.process
    wait_for(lambda: "Waiting as standby" in standby.log_tail(), 60, message="b to wait as standby")
    with urllib.request.urlopen(b.liveness, timeout=5) as answer:  # noqa: S310 - loopback
        assert answer.status == 200
    wait_for(lambda: a.leader_gauge() == "1.0", 30, message="a's phonefleet_leader 1")
    assert b.leader_gauge() == "0.0"
    phones = {f"pb-{i}": fleet.add_phone() for i in range(N)}
    for name, phone in phones.items():
        kubectl.apply(make_binding(name, phone, namespace))

    watched.start("phonebindings")  # Bound lasts a 4 s boot, which a slow poll can miss
    watched.first("phonebindings", None, lambda b: _phase(b) == "Bound", "a binding booting")
    assert a.holds_lease(kubectl)
    assert active.pid is not None
    os.kill(active.pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(
        lambda: b.holds_lease(kubectl),
        60,
        interval=0.2,
        message=lambda: f"b to take the Lease\n{standby.log_tail()}",
    )
    takeover = time.monotonic() - killed
    wait_for(lambda: b.leader_gauge() == "1.0", 30, message="b's phonefleet_leader 1")
    print(f"\nStandby took the Lease {takeover:.1f} s after the SIGKILL")

    wait_for(
        lambda: (
            all(_phase(b) == "Running" for b in kubectl.list("phonebindings", namespace))
            and len(kubectl.list("phonebindings", namespace)) == N
        ),
        120,
        message=lambda: f"all Running\n{standby.log_tail()}",
    )
    bindings = {b["metadata"]["name"]: b for b in kubectl.list("phonebindings", namespace)}
    pods = kubectl.list("pods", namespace)
    assert sorted(p["metadata"]["name"] for p in pods) == sorted(f"{n}-worker" for n in phones)
    for pod in pods:
        (owner,) = pod["metadata"]["ownerReferences"]
        assert owner["uid"] == bindings[owner["name"]]["metadata"]["uid"]
    for name, phone in phones.items():
        claim = kubectl.get("phoneclaim", phone)
        assert claim is not None, phone
        assert claim["spec"]["holder"]["uid"] == bindings[name]["metadata"]["uid"]
    assert set(phones.values()) <= fleet.running()
    assert fleet.simulator.admin.counters().calls("phone/stop") == 0
