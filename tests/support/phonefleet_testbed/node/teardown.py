"""Taking a real node away for sure: its processes, its pods' processes, its cgroups.

Everything the node mounts lives in a mount namespace of its own, so the mounts go when the last
of its processes goes; what is left on the host is processes (found by namespace and by cgroup)
and the cgroups the kubelet made under ``/kubepods`` in every v1 hierarchy.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from phonefleet_testbed.waiting import wait_for

__all__ = ["kill_namespace_processes", "kill_pod_processes", "remove_pod_cgroups"]

_CGROUP_ROOT = Path("/sys/fs/cgroup")
POD_CGROUP = "kubepods"


def _pod_cgroup_dirs() -> list[Path]:
    """``kubepods`` in every mounted hierarchy, deepest first within each."""
    found: list[Path] = []
    for hierarchy in sorted(_CGROUP_ROOT.iterdir()) if _CGROUP_ROOT.is_dir() else []:
        top = hierarchy / POD_CGROUP
        if hierarchy.is_symlink() or not top.is_dir():
            continue
        below = [Path(d) for d, _, _ in os.walk(top)]
        found.extend(sorted(below, key=lambda p: len(p.parts), reverse=True))
    return found


def _pod_pids() -> set[int]:
    pids: set[int] = set()
    for directory in _pod_cgroup_dirs():
        with contextlib.suppress(OSError):
            pids.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
    return pids


def _kill(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_pod_processes(timeout: float = 30.0) -> None:
    """SIGKILL every process of every pod (all of them live under ``/kubepods``)."""

    def none_left() -> bool:
        pids = _pod_pids()
        _kill(pids)
        return not pids

    wait_for(none_left, timeout, interval=0.2, message="the pods' processes to exit")


def _namespace_pids(inodes: set[tuple[str, int]]) -> set[int]:
    """Processes whose network or mount namespace is one of ``inodes`` ((kind, inode) pairs)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for kind in ("net", "mnt"):
            with contextlib.suppress(OSError):
                if (kind, os.stat(entry / "ns" / kind).st_ino) in inodes:
                    found.add(int(entry.name))
    return found


def kill_namespace_processes(inodes: set[tuple[str, int]], timeout: float = 30.0) -> None:
    """SIGKILL every process left in the node's namespaces (containerd's shims, the holder)."""

    def none_left() -> bool:
        pids = _namespace_pids(inodes)
        _kill(pids)
        return not pids

    wait_for(none_left, timeout, interval=0.2, message="the node's processes to exit")


def remove_pod_cgroups(timeout: float = 30.0) -> None:
    """Remove ``/kubepods`` and everything below it, in every hierarchy."""

    def removed() -> bool:
        for directory in _pod_cgroup_dirs():
            with contextlib.suppress(OSError):
                directory.rmdir()
        return not _pod_cgroup_dirs()

    wait_for(removed, timeout, interval=0.2, message="the pods' cgroups to go")
