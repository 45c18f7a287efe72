"""Whether this machine can run a real node, and why not when it cannot."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from phonefleet_testbed.node.binaries import system_tools
from phonefleet_testbed.node.network import NAMESPACE

__all__ = ["real_node_unavailable"]

_TOOLS = ("ip", "iptables", "unshare", "nsenter")


def real_node_unavailable() -> str | None:
    """None when a real node can run here; else one line saying what is missing."""
    if os.geteuid() != 0:
        return "not root (a real node needs network namespaces, mounts and cgroups)"
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    missing += [str(path) for path in system_tools() if not path.is_file()]
    if missing:
        return f"missing {', '.join(missing)} (run hack/install-system-deps.sh)"
    if not Path("/proc/self/ns/net").exists() or not Path("/sys/fs/cgroup").is_dir():
        return "the kernel lacks network namespaces or cgroups"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel lacks overlayfs (containerd's snapshotter)"
    return _occupied()


def _occupied() -> str | None:
    """Why another node (or a crashed run's) holds what only one node per machine can have."""
    # Teardown kills every process under /kubepods: never on a machine whose kubelet uses it.
    for name in ("kubepods", "kubepods.slice"):
        taken = [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{name}")]
        if taken:
            return f"another kubelet's pods live here ({taken[0]} exists)"
    if Path(f"/run/netns/{NAMESPACE}").exists():
        return f"a previous run left its namespace (ip netns del {NAMESPACE})"
    return None
