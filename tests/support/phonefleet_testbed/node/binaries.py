"""Finding the real node's binaries: the cache that ``hack/controlplane/build.sh node`` fills."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from phonefleet_testbed.binaries import build

__all__ = ["NodeBinaries"]

_BUILT = ("kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr", "pause")
# From Debian (hack/install-system-deps.sh): the OCI runtime and the CNI plugins.
RUNC = Path("/usr/sbin/runc")
CNI_BIN_DIR = Path("/usr/lib/cni")
_CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")


@dataclass(frozen=True)
class NodeBinaries:
    """Paths of the kubelet, kube-proxy, containerd (with shim and ctr) and the pause program."""

    directory: Path

    @classmethod
    def ensure(cls) -> NodeBinaries:
        """Return the cached binaries, building whatever is missing (a warm cache costs nothing).

        ``PHONEFLEET_NODE_BIN_DIR`` points at a ready folder and skips the build script.
        """
        explicit = os.environ.get("PHONEFLEET_NODE_BIN_DIR")
        binaries = cls(Path(explicit) if explicit else build("controlplane/build.sh", "node"))
        missing = [name for name in _BUILT if not binaries.path(name).is_file()]
        missing += [str(p) for p in system_tools() if not p.is_file()]
        if missing:
            raise RuntimeError(
                f"Node binaries missing: {missing} (hack/install-system-deps.sh installs "
                "runc and containernetworking-plugins)"
            )
        return binaries

    def path(self, name: str) -> Path:
        """The executable called ``name``."""
        return self.directory / name


def system_tools() -> list[Path]:
    """The node's executables that come from Debian packages."""
    return [RUNC, *(CNI_BIN_DIR / plugin for plugin in _CNI_PLUGINS)]
