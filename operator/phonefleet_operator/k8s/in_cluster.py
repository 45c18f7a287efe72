"""Logging in from inside a cluster at the API server's Service address, not its DNS name.

kopf's service-account login names ``https://kubernetes.default.svc``, which only resolves where
cluster DNS runs. client-go and the kubernetes client connect to ``KUBERNETES_SERVICE_HOST`` and
``KUBERNETES_SERVICE_PORT`` instead, which the kubelet sets in every container (even with
``enableServiceLinks: false``); so does the operator, and both its clients agree on one address.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import kopf

__all__ = ["service_account_login"]


def service_account_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's service-account login, pointed at the Service's address when the kubelet gave it."""
    info = kopf.login_with_service_account(**kwargs)
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "")
    if info is None or not host or not port:
        return info
    address = f"[{host}]" if ":" in host else host
    return dataclasses.replace(info, server=f"https://{address}:{port}")
