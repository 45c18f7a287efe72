"""The local control plane the integration tests and ``phonefleet dev up`` run on."""

from phonefleet_testbed.controlplane.cluster import KWOK_NODE_NAME, ControlPlane

__all__ = ["KWOK_NODE_NAME", "ControlPlane"]
