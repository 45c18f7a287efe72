"""A real node for the test bed: containerd, kubelet and kube-proxy in a namespace of their own.

``real_node_bed()`` brings up a control plane listening on the node's veth address and a real
node registered with it; ``real_node_unavailable()`` says why a machine cannot (no root, missing
tools or kernel features), for callers that fall back to KWOK.
"""

from phonefleet_testbed.node.bed import NodeBed, real_node_bed
from phonefleet_testbed.node.host_state import HostState
from phonefleet_testbed.node.node import NODE_NAME, RealNode
from phonefleet_testbed.node.support import real_node_unavailable

__all__ = [
    "NODE_NAME",
    "HostState",
    "NodeBed",
    "RealNode",
    "real_node_bed",
    "real_node_unavailable",
]
