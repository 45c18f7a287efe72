"""The local control plane the integration tests and ``phonefleet dev up`` run on."""

from phonefleet_testbed.controlplane.cluster import KWOK_NODE_NAME, ControlPlane
from phonefleet_testbed.controlplane.kwok_stages import NEVER_READY_IMAGE

__all__ = ["KWOK_NODE_NAME", "NEVER_READY_IMAGE", "ControlPlane"]
