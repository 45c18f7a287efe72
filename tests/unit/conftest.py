"""Fixtures every unit test may use."""

from __future__ import annotations

from pathlib import Path

import pytest

_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig naming an API server nobody serves (port 9): ``Runtime.create`` and
    ``Replica.create`` read one, and the tests that build them make no Kubernetes call
    through it."""
    path = tmp_path / "kubeconfig"
    path.write_text(_KUBECONFIG)
    return path
