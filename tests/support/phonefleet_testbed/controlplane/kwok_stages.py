"""KWOK stages for the test bed: its own pod and node lifecycles, and a worker never ready.

KWOK's own ``pod-ready`` stage makes every scheduled pod Running and Ready at once. A pod whose
worker container runs :data:`NEVER_READY_IMAGE` instead becomes Running with Ready False and stays
so, as a worker that cannot reach its phone would; the operator's ADB re-provisioning is tested
with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

__all__ = ["NEVER_READY_IMAGE", "stages_document"]

#: Worker image (``spec.worker.image`` of a binding) whose pod runs but never turns Ready.
NEVER_READY_IMAGE = "phonefleet.test/never-ready"

_WORKER_IMAGE = '.spec.containers.[] | select( .name == "worker" ) | .image'

_RUNNING_NOT_READY: dict[str, Any] = {
    "apiVersion": "kwok.x-k8s.io/v1alpha1",
    "kind": "Stage",
    "metadata": {"name": "phonefleet-pod-running-not-ready"},
    "spec": {
        "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
        "selector": {
            "matchExpressions": [
                {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
                {"key": _WORKER_IMAGE, "operator": "In", "values": [NEVER_READY_IMAGE]},
            ]
        },
        "next": {
            "statusTemplate": """{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  type: ContainersReady
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""
        },
    },
}


def stages_document(files: Iterable[Path]) -> str:
    """KWOK's stage files as one YAML stream, ``pod-ready`` sparing the never-ready image."""
    stages = [stage for path in files for stage in yaml.safe_load_all(path.read_text()) if stage]
    for stage in stages:
        if stage["metadata"]["name"] == "pod-ready":
            expressions = stage["spec"]["selector"]["matchExpressions"]
            expressions.append(
                {"key": _WORKER_IMAGE, "operator": "NotIn", "values": [NEVER_READY_IMAGE]}
            )
    return yaml.safe_dump_all([*stages, _RUNNING_NOT_READY], sort_keys=False)
