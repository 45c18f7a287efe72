"""The real node's network namespace: a veth pair to the host, addresses the test bed picks.

Every address lives either inside the namespace or on the host end of the veth pair, which this
module creates and removes; the host gets one route (to the pod network, through the namespace)
and nothing else. The namespace has no default route: a packet for anywhere but the host end, the
pods and the Services dies there, so nothing a pod sends can leave the machine.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from dataclasses import dataclass

__all__ = ["NodeNetwork", "ip"]

NAMESPACE = "phonefleet-node"
HOST_LINK = "pfnode0"
NODE_LINK = "eth0"
# Candidates, first free wins: 10.250.N.0/30 joins host and namespace, 10.251.N.0/24 holds pods.
_LINK_NETS = (ipaddress.IPv4Network(f"10.250.{n}.0/30") for n in range(0, 256, 4))


def ip(*args: str, namespace: str | None = None, check: bool = True) -> str:
    """Run ``ip`` (inside ``namespace`` when given) and return its output."""
    argv = ["ip", *(["-n", namespace] if namespace else []), *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result.stdout


def _host_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the host routes or holds an address in (to pick around them)."""
    nets: list[ipaddress.IPv4Network] = []
    for route in json.loads(ip("-j", "-4", "route", "show", "table", "all") or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default" and ":" not in dst:
            nets.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    for link in json.loads(ip("-j", "-4", "addr") or "[]"):
        for addr in link.get("addr_info", []):
            nets.append(ipaddress.IPv4Network(f"{addr['local']}/{addr['prefixlen']}", strict=False))
    return nets


@dataclass(frozen=True)
class NodeNetwork:
    """The addresses of one node namespace; ``create`` builds it, ``remove`` takes it all away."""

    link_net: ipaddress.IPv4Network
    pod_cidr: ipaddress.IPv4Network

    @property
    def host_ip(self) -> str:
        """The host end of the veth pair: where pods reach the API server and the phones."""
        return str(self.link_net.network_address + 1)

    @property
    def node_ip(self) -> str:
        """The node's InternalIP: the namespace end of the veth pair."""
        return str(self.link_net.network_address + 2)

    @property
    def namespace(self) -> str:
        """The name of the network namespace (``ip netns``)."""
        return NAMESPACE

    @classmethod
    def pick(cls) -> NodeNetwork:
        """Addresses that overlap nothing the host routes today."""
        taken = _host_networks()
        for link_net in _LINK_NETS:
            pod_cidr = ipaddress.IPv4Network(f"10.251.{link_net.network_address.packed[2]}.0/24")
            if not any(link_net.overlaps(n) or pod_cidr.overlaps(n) for n in taken):
                return cls(link_net, pod_cidr)
        raise RuntimeError("No free 10.250.N.0/30 and 10.251.N.0/24 pair on this host")

    def create(self) -> None:
        """Create the namespace, the veth pair, its addresses and the route to the pods.

        A namespace that exists already is not ours: ``create`` fails without touching it (a
        leftover of a bed that died is removed by the caller that holds the host's lock)."""
        ip("netns", "add", NAMESPACE)
        try:
            ip(
                "link",
                "add",
                HOST_LINK,
                "type",
                "veth",
                "peer",
                "name",
                NODE_LINK,
                "netns",
                NAMESPACE,
            )
            ip("addr", "add", f"{self.host_ip}/{self.link_net.prefixlen}", "dev", HOST_LINK)
            ip("link", "set", HOST_LINK, "up")
            ns = NAMESPACE
            ip(
                "addr",
                "add",
                f"{self.node_ip}/{self.link_net.prefixlen}",
                "dev",
                NODE_LINK,
                namespace=ns,
            )
            ip("link", "set", NODE_LINK, "up", namespace=ns)
            ip("link", "set", "lo", "up", namespace=ns)
            ip("route", "add", str(self.pod_cidr), "via", self.node_ip, "dev", HOST_LINK)
            # Inside the namespace only: it routes between its pods' bridge and the veth, and
            # bridged traffic goes through its iptables (Service replies between two pods).
            _sysctl("net.ipv4.ip_forward", "1")
            _sysctl("net.bridge.bridge-nf-call-iptables", "1")
        except BaseException:
            self.remove()
            raise

    @staticmethod
    def remove_leftover() -> bool:
        """Remove the namespace and host link a bed that died left (call with the host's lock
        held: see ``host_lock``); True if there was one."""
        found = NAMESPACE in ip("netns", "list").split() or bool(
            ip("link", "show", HOST_LINK, check=False)
        )
        if found:
            ip("link", "del", HOST_LINK, check=False)
            ip("netns", "del", NAMESPACE, check=False)
        return found

    def remove(self) -> None:
        """Delete the namespace (its end of the veth, the bridge and iptables go with it)."""
        ip("link", "del", HOST_LINK, check=False)  # also drops the host's route to the pods
        ip("netns", "del", NAMESPACE, check=False)

    def exists(self) -> bool:
        """True while the namespace is listed by ``ip netns``."""
        return NAMESPACE in ip("netns", "list").split()


def _sysctl(name: str, value: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", NAMESPACE, "sysctl", "-q", "-w", f"{name}={value}"],
        check=True,
        capture_output=True,
        timeout=30,
    )
