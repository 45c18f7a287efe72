"""KWOK stages for the test bed: its own pod and node lifecycles, and worker pods with no IP.

KWOK's own ``pod-ready`` stage makes every scheduled pod Running and Ready at once, with a made-up
pod IP from the node's CIDR (10.244.0.0/16). That address exists nowhere: a connection to it
follows the machine's default route off the machine. The operator connects to exactly one kind
of pod, a worker (the pod with a ``worker`` container), to deliver PhoneJobs; so worker pods
skip ``pod-ready`` and become Running and Ready here with no pod IP at all. The operator then
has no address to connect to and says so on the job (``WorkerWithoutIP``). Other pods keep
KWOK's IPs: Services select them (the install test's webhook Service), and the API server
refuses loopback addresses in EndpointSlices, so those pods cannot be given 127.x instead.

A pod whose worker container runs :data:`NEVER_READY_IMAGE` becomes Running with Ready False and
stays so, as a worker that cannot reach its phone would; the operator's ADB re-provisioning is
tested with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

__all__ = ["NEVER_READY_IMAGE", "WORKER_CONTAINER", "stages_document"]

#: Worker image (``spec.worker.image`` of a binding) whose pod runs but never turns Ready.
NEVER_READY_IMAGE = "phonefleet.test/never-ready"
#: The container every worker pod has (the operator's CONTAINER_WORKER).
WORKER_CONTAINER = "worker"

_WORKER = f'.spec.containers.[] | select( .name == "{WORKER_CONTAINER}" )'
_WORKER_IMAGE = f"{_WORKER} | .image"
_WORKER_NAME = f"{_WORKER} | .name"


def _running_worker(name: str, *, ready: bool) -> dict[str, Any]:
    """A stage taking a Pending worker pod to Running (Ready or not), with no pod IP."""
    image = "NotIn" if ready else "In"
    status = '"True"' if ready else '"False"'
    flag = str(ready).lower()
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {
                "matchExpressions": [
                    {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                    {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
                    {"key": _WORKER_NAME, "operator": "In", "values": [WORKER_CONTAINER]},
                    {"key": _WORKER_IMAGE, "operator": image, "values": [NEVER_READY_IMAGE]},
                ]
            },
            # No hostIP, podIP or podIPs: nothing runs, so there is no address to give.
            "next": {
                "statusTemplate": f"""{{{{ $now := Now }}}}
conditions:
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: "True"
  type: Initialized
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: {status}
  type: Ready
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: {status}
  type: ContainersReady
containerStatuses:
{{{{ range .spec.containers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: {flag}
  restartCount: 0
  started: true
  state:
    running:
      startedAt: {{{{ $now | Quote }}}}
{{{{ end }}}}
phase: Running
startTime: {{{{ $now | Quote }}}}
"""
            },
        },
    }


def stages_document(files: Iterable[Path]) -> str:
    """KWOK's stage files as one YAML stream, ``pod-ready`` sparing worker pods (ours run them)."""
    stages = [stage for path in files for stage in yaml.safe_load_all(path.read_text()) if stage]
    for stage in stages:
        if stage["metadata"]["name"] == "pod-ready":
            expressions = stage["spec"]["selector"]["matchExpressions"]
            expressions.append(
                {"key": _WORKER_NAME, "operator": "NotIn", "values": [WORKER_CONTAINER]}
            )
    workers = [
        _running_worker("phonefleet-worker-ready-no-ip", ready=True),
        _running_worker("phonefleet-worker-running-not-ready", ready=False),
    ]
    return yaml.safe_dump_all([*stages, *workers], sort_keys=False)
