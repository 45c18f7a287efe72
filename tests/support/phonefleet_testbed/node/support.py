"""Whether this machine can run a real node, and why not when it cannot."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from phonefleet_testbed.node.binaries import system_tools

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
    return None
