"""A control plane with a real node, brought up and taken down in the only safe order."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from phonefleet_testbed.controlplane import KWOK_NODE_NAME, ControlPlane
from phonefleet_testbed.node.host_lock import exclusive_node_bed
from phonefleet_testbed.node.network import NodeNetwork
from phonefleet_testbed.node.node import RealNode

__all__ = ["NodeBed", "real_node_bed"]


@dataclass
class NodeBed:
    """The control plane, the real node on it, and the network joining them."""

    plane: ControlPlane
    node: RealNode
    network: NodeNetwork
    startup_seconds: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def real_node_bed(*, keep_kwok_node: bool = False) -> Iterator[NodeBed]:
    """Network, then a control plane listening on it, then the node; removed in reverse.

    The KWOK node is cordoned unless ``keep_kwok_node``: every new pod then runs for real.
    """
    began = time.monotonic()
    with exclusive_node_bed():  # NodeBedBusy while another bed runs on this host
        NodeNetwork.remove_leftover()  # of a bed that died: no one else can hold it now
        network = NodeNetwork.pick()
        network.create()
        try:
            with ControlPlane(bind_address=network.host_ip) as plane:
                if not keep_kwok_node:
                    plane.kubectl("cordon", KWOK_NODE_NAME)
                plane_ready = time.monotonic()
                with RealNode(plane, network) as node:
                    bed = NodeBed(plane, node, network)
                    bed.startup_seconds = {
                        "control plane": plane_ready - began,
                        **{f"node {k}": v for k, v in node.startup_seconds.items()},
                    }
                    yield bed
        finally:
            network.remove()
