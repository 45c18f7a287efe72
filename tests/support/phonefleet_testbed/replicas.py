"""Operator replicas started as processes by a test: their log folder, and what they leave.

Both the standby and the admission tests run several `phonefleet-operator` processes under
leader election; this owns the part they share: the bindings are released while the replicas
still run (so their finalizers go), then the replicas stop and their cluster-wide leftovers go.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.processes import ManagedProcess
from phonefleet_testbed.rbac import OPERATOR_NAMESPACE
from phonefleet_testbed.waiting import wait_for

__all__ = ["replica_processes"]


@contextmanager
def replica_processes(
    kubectl: Kubectl,
    namespace: str,
    *,
    lease: str,
    log_prefix: str,
    leftovers: Sequence[tuple[str, str]] = (),
) -> Iterator[tuple[Path, list[ManagedProcess]]]:
    """A log folder and the list the test puts its started replicas in.

    Before: the Lease of an earlier test is deleted. After: the namespace's bindings are deleted
    and waited for, the replicas stopped, and the Lease and ``leftovers`` (kind, name: cluster-
    scoped objects the replicas registered) deleted.
    """
    kubectl("delete", "lease", lease, "-n", OPERATOR_NAMESPACE, "--ignore-not-found")
    logs = Path(tempfile.mkdtemp(prefix=log_prefix))
    started: list[ManagedProcess] = []
    try:
        yield logs, started
        kubectl("delete", "phonebindings", "--all", "-n", namespace, "--wait=false")
        wait_for(
            lambda: not kubectl.list("phonebindings", namespace),
            90,
            message=lambda: "bindings released\n" + "\n".join(p.log_tail() for p in started),
        )
    finally:
        for process in started:
            process.stop()
        kubectl("delete", "lease", lease, "-n", OPERATOR_NAMESPACE, "--ignore-not-found")
        for kind, name in leftovers:
            kubectl("delete", kind, name, "--ignore-not-found")
        shutil.rmtree(logs, ignore_errors=True)
