"""The fence of one operator process: once this replica has lost the Lease, no call that changes
anything (a Kubernetes write, a Geelark power or ADB change, a job attempt delivered to a worker
or cancelled) leaves it any more.

The holder closes it the moment it stops being sure of the Lease (``leadership.py``), before it
asks kopf to stop: kopf's stop waits for the passes in flight, and each of them would otherwise
go on writing statuses, creating pods and starting phones beside the replica that took over. A
refused call raises :class:`~phonefleet_operator.errors.ReplicaStopping`, checked where the call
would leave the process (``k8s/api.py``'s pool thread, after ``geelark/client.py``'s rate
limiter), so calls already queued are refused too; a call already sent cannot be taken back.

Reads pass: admission, served by every replica to its exit, only reads; and a read changes
nothing another replica relies on.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import TypeVar

from phonefleet_operator.errors import ReplicaStopping

__all__ = ["Fence"]

T = TypeVar("T")


class Fence:
    """Open until :meth:`close`; then every :meth:`check` raises ReplicaStopping. Thread-safe
    (the Kubernetes calls are checked in the API pool's threads)."""

    def __init__(self) -> None:
        self._why: str | None = None
        self._lock = threading.Lock()
        self._refused: collections.Counter[str] = collections.Counter()

    def close(self, why: str) -> None:
        """Refuse every call that changes anything from now on; ``why`` ends their error."""
        self._why = why

    def check(self, call: str) -> None:
        """Raise ReplicaStopping if the fence is closed (``call`` names it in the error)."""
        why = self._why
        if why is None:
            return
        with self._lock:
            self._refused[call] += 1
        raise ReplicaStopping(f"Refused {call}: {why}")

    def guard(self, call: str, make: Callable[[], T]) -> T:
        """``make()``, unless the fence is closed by the time it would run."""
        self.check(call)
        return make()

    def refused(self) -> dict[str, int]:
        """How many calls were refused since the fence closed, by name."""
        with self._lock:
            return dict(self._refused)
