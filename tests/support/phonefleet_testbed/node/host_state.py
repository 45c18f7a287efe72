"""What a real node could leave behind on the host, captured to compare before and after."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HostState"]

# Docker (other work on the same machine) mounts and unmounts image layers at any time.
_FOREIGN_MOUNTS = ("/var/lib/docker/", "/run/docker/", "/var/run/docker/")
# The first ``ip netns add`` since boot mounts iproute2's folder of namespaces on itself (shared)
# and no ``ip`` command ever unmounts it: the host's, kept for every later namespace. The
# namespaces in it (``/run/netns/<name>``) still count.
_IPROUTE2_MOUNTS = frozenset({"/run/netns", "/var/run/netns"})


def _run(*argv: str) -> list[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    return result.stdout.splitlines()


def _iptables(command: str) -> frozenset[str]:
    # Counters and the dump's timestamps change by themselves; rules and chains do not.
    lines = _run(command)
    return frozenset(
        line for line in lines if line and not line.startswith(("#", ":"))
    ) | frozenset(line.split()[0] for line in lines if line.startswith(":"))


def _mounts() -> frozenset[str]:
    mounts = set()
    for line in Path("/proc/self/mounts").read_text().splitlines():
        device, target, fstype = line.split()[:3]
        if not target.startswith(_FOREIGN_MOUNTS) and target not in _IPROUTE2_MOUNTS:
            mounts.add(f"{device} {target} {fstype}")
    return frozenset(mounts)


@dataclass(frozen=True)
class HostState:
    """The host's interfaces, routes, iptables rules, mounts and network namespaces."""

    interfaces: frozenset[str]
    routes: frozenset[str]
    iptables: frozenset[str]
    mounts: frozenset[str]
    netns: frozenset[str]

    @classmethod
    def capture(cls) -> HostState:
        """The host as it is now."""
        return cls(
            interfaces=frozenset(
                line.split(":")[1].strip().split("@")[0] for line in _run("ip", "-o", "link")
            ),
            routes=frozenset(_run("ip", "route", "show", "table", "all")),
            iptables=_iptables("iptables-save") | _iptables("ip6tables-save"),
            mounts=_mounts(),
            netns=frozenset(line.split()[0] for line in _run("ip", "netns", "list") if line),
        )

    def leftovers(self, before: HostState) -> dict[str, list[str]]:
        """What is in ``self`` and was not in ``before``, by kind (empty when nothing is)."""
        found = {
            "interfaces": sorted(self.interfaces - before.interfaces),
            "routes": sorted(self.routes - before.routes),
            "iptables": sorted(self.iptables - before.iptables),
            "mounts": sorted(self.mounts - before.mounts),
            "netns": sorted(self.netns - before.netns),
        }
        return {kind: items for kind, items in found.items() if items}
