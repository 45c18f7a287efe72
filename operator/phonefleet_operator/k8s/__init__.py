"""The only code that calls the Kubernetes API (the official client, off the event loop)."""

from phonefleet_operator.k8s.api import ApiCaller, load_api_client
from phonefleet_operator.k8s.gateway import KubeGateway
from phonefleet_operator.k8s.pools import PoolGateway

__all__ = ["ApiCaller", "KubeGateway", "PoolGateway", "load_api_client"]
