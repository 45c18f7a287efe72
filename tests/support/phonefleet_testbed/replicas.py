"""Operator replicas started as processes by a test: how they start, their log folder, and what
they leave.

Both the standby and the admission tests run several `phonefleet-operator` processes under
leader election; this owns the part they share: each replica watches the test's namespace with
the scenarios' settings and its own liveness port; the bindings are released while the replicas
still run (so their finalizers go), then the replicas stop and their cluster-wide leftovers go.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import GeelarkSimulator
from phonefleet_testbed.processes import ManagedProcess, free_port
from phonefleet_testbed.rbac import OPERATOR_NAMESPACE
from phonefleet_testbed.scenarios import operator_env
from phonefleet_testbed.waiting import wait_for

__all__ = ["LEASE", "ReplicaProcess", "StartReplica", "lease_holder", "replica_processes"]

#: The leader Lease of the account "default" (the tests' operators').
LEASE = "phonefleet-operator"


@dataclass(frozen=True)
class ReplicaProcess:
    """One started `phonefleet-operator` process and the URL of its liveness probe."""

    process: ManagedProcess
    liveness: str

    def holds_lease(self, kubectl: Kubectl) -> bool:
        """Whether this process holds the leader Lease now."""
        return str(lease_holder(kubectl)).endswith(f"_{self.process.pid}")


class StartReplica(Protocol):
    """Starts replica ``name``; ``env`` adds to or overrides the shared settings."""

    def __call__(self, name: str, **env: str) -> ReplicaProcess: ...


def lease_holder(kubectl: Kubectl) -> str | None:
    """The identity holding the leader Lease, None without a Lease."""
    lease = kubectl.get("lease", LEASE, OPERATOR_NAMESPACE)
    return None if lease is None else (lease.get("spec") or {}).get("holderIdentity")


@contextmanager
def replica_processes(
    plane: ControlPlane,
    simulator: GeelarkSimulator,
    credentials: Path,
    kubectl: Kubectl,
    namespace: str,
    *,
    log_prefix: str,
    env: dict[str, str] | None = None,
    leftovers: Sequence[tuple[str, str]] = (),
) -> Iterator[StartReplica]:
    """Yields a function that starts a replica: `phonefleet-operator -n namespace` under
    leader election, as ``credentials`` (a kubeconfig), with the scenarios' settings for
    ``plane`` and ``simulator`` and ``env``, logging into a folder of its own.

    Before: the Lease of an earlier test is deleted. After: the namespace's bindings are deleted
    and waited for, the replicas stopped, and the Lease and ``leftovers`` (kind, name: cluster-
    scoped objects the replicas registered) deleted.
    """
    shared = {
        **operator_env(plane, simulator),
        "KUBECONFIG": str(credentials),
        "PHONEFLEET_LEADER_ELECTION": "true",
        **(env or {}),
    }
    script = str(Path(sys.executable).with_name("phonefleet-operator"))
    kubectl("delete", "lease", LEASE, "-n", OPERATOR_NAMESPACE, "--ignore-not-found")
    logs = Path(tempfile.mkdtemp(prefix=log_prefix))
    started: list[ManagedProcess] = []

    def start(name: str, **extra: str) -> ReplicaProcess:
        liveness = f"http://127.0.0.1:{free_port()}/healthz"
        argv = [script, "-n", namespace, f"--liveness={liveness}"]
        process = ManagedProcess(name, argv, logs, env={**shared, **extra})
        process.start()
        started.append(process)
        return ReplicaProcess(process, liveness)

    try:
        yield start
        kubectl("delete", "phonebindings", "--all", "-n", namespace, "--wait=false")
        wait_for(
            lambda: not kubectl.list("phonebindings", namespace),
            90,
            message=lambda: "bindings released\n" + "\n".join(p.log_tail() for p in started),
        )
    finally:
        for process in started:
            process.stop()
        kubectl("delete", "lease", LEASE, "-n", OPERATOR_NAMESPACE, "--ignore-not-found")
        for kind, name in leftovers:
            kubectl("delete", kind, name, "--ignore-not-found")
        shutil.rmtree(logs, ignore_errors=True)
