"""What an event of the worker pods watch means: keep the pods view current and wake a binding
when its pod's readiness changes or the pod goes, instead of polling the API server for it.

The events come from our own watch (:mod:`phonefleet_operator.handlers.watches`), not from kopf:
it reports the deletions a relist finds, which kopf's does not.
"""

from __future__ import annotations

from typing import Any

from phonefleet_operator import constants as c
from phonefleet_operator.services.reconcile import pod_is_ready
from phonefleet_operator.services.runtime import Runtime
from phonefleet_operator.services.worker_failure import worker_failure

__all__ = ["WORKER_PODS", "worker_pod_seen"]

#: The labels of the pods the operator makes (the watch's label selector).
WORKER_PODS = {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_COMPONENT: c.COMPONENT_WORKER}


def worker_pod_seen(event: dict[str, Any], memo: Any, **_: Any) -> None:
    """Record the pod's state; wake its binding when that state matters to the binding.

    A pod deleted during a watch gap is reported (DELETED) with its metadata only.
    """
    runtime: Runtime = memo.runtime
    pod: dict[str, Any] = dict(event["object"])
    metadata = pod["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    before = runtime.observed_pods.get(namespace, name)
    if event["type"] == "DELETED":
        runtime.observed_pods.gone(namespace, name)
    else:
        runtime.observed_pods.saw(pod)
    if event["type"] == "DELETED" or _state(before) != _state(pod):
        for owner in metadata.get("ownerReferences") or ():
            if owner.get("controller") and owner.get("kind") == c.BINDING_KIND:
                runtime.wakeups.wake(owner["uid"])


def _state(pod: dict[str, Any] | None) -> tuple[object, ...] | None:
    """What a binding's pass reads from its pod: identity, phase, readiness, deletion, and the
    worker's reported failure."""
    if pod is None:
        return None
    metadata = pod["metadata"]
    phase = (pod.get("status") or {}).get("phase")
    deleting = bool(metadata.get("deletionTimestamp"))
    return metadata.get("uid"), phase, pod_is_ready(pod), deleting, worker_failure(pod)
