"""Kubeconfig files for the test control plane: admin, any user by certificate, any token."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

__all__ = ["write_kubeconfig"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_pem: bytes,
    user: str,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    token: str | None = None,
    namespace: str = "default",
) -> Path:
    """Write a one-context kubeconfig authenticating by client certificate or by bearer token."""
    credentials: dict[str, str] = {}
    if token is not None:
        credentials["token"] = token
    if cert_pem is not None and key_pem is not None:
        credentials["client-certificate-data"] = _b64(cert_pem)
        credentials["client-key-data"] = _b64(key_pem)
    if not credentials:
        raise ValueError("a kubeconfig needs a client certificate or a token")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "phonefleet-testbed",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [
            {
                "name": user,
                "context": {"cluster": "phonefleet-testbed", "user": user, "namespace": namespace},
            }
        ],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
