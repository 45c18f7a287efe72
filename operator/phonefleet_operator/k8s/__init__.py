"""The only code that calls the Kubernetes API (the official client, off the event loop)."""

from phonefleet_operator.k8s.api import ApiCaller, load_api_client
from phonefleet_operator.k8s.gateway import KubeGateway

__all__ = ["ApiCaller", "KubeGateway", "load_api_client"]
