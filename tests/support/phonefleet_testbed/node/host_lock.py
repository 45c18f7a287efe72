"""One real-node bed per host at a time.

The node's network namespace (``phonefleet-node``) and the host end of its veth pair have fixed
names, so two beds at once (a second test suite, or ``phonefleet dev demo --real-node`` beside the
tests) would take each other's network away. The lock is an ``flock`` on a file the kernel
releases when the holder's process ends, however it ends: a bed that died leaves no lock behind,
and whoever holds the lock may remove what such a bed left.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["NodeBedBusy", "default_lock_path", "exclusive_node_bed"]


class NodeBedBusy(RuntimeError):
    """Another process runs a real-node bed on this host."""


def default_lock_path() -> Path:
    """``/run/lock/phonefleet-node.lock`` (the temp folder where ``/run/lock`` is missing)."""
    run_lock = Path("/run/lock")
    folder = run_lock if run_lock.is_dir() else Path(tempfile.gettempdir())
    return folder / "phonefleet-node.lock"


@contextlib.contextmanager
def exclusive_node_bed(path: Path | None = None) -> Iterator[None]:
    """Hold the host's real-node lock, or raise :class:`NodeBedBusy` naming its holder."""
    lock = path or default_lock_path()
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise NodeBedBusy(
                f"Another real-node bed runs on this host (process {holder}, lock {lock}): its "
                "network namespace phonefleet-node has a fixed name, so only one may run at a "
                "time; wait for it to end or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # the kernel drops the lock with the last descriptor
