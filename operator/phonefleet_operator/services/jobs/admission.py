"""The admission check of a PhoneJob: its spec, its binding, and its task and params as the
binding's own worker knows them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.k8s import KubeGateway
from phonefleet_operator.models import PhoneBinding, PhoneJobSpec
from phonefleet_operator.render import pod_name
from phonefleet_operator.services.jobs.endpoints import WorkerEndpoints
from phonefleet_operator.services.jobs.tokens import JobTokens
from phonefleet_operator.workers import WorkerClient, WorkerUnreachable

__all__ = ["review"]

log = logging.getLogger(__name__)


async def review(
    namespace: str,
    spec: Mapping[str, Any],
    *,
    kube: KubeGateway,
    endpoints: WorkerEndpoints,
    tokens: JobTokens,
    workers: WorkerClient,
) -> list[str]:
    """Reasons to refuse a PhoneJob at apply time; empty to admit it.

    A missing binding is refused. The task and its params are checked by the binding's own
    worker (its image registers the tasks) when it answers within the timeout; a worker
    that does not answer admits the job, and the job loop reports the problem in the status
    before anything runs.
    """
    try:
        parsed = PhoneJobSpec.model_validate(dict(spec))
    except ValidationError as error:
        return [f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
    body = await kube.get_binding(namespace, parsed.binding_name)
    if body is None:
        return [f"PhoneBinding {parsed.binding_name} not found in namespace {namespace}"]
    binding = PhoneBinding.from_body(body)
    base = endpoints.of_binding(binding)
    token = tokens.token_for(binding.namespace, binding.name, binding.uid)
    if base is None and token:  # not in the pods view (a standby watches no pods): read it
        with contextlib.suppress(PhonefleetError):  # unread: admitted, as unreachable
            pod = await kube.get_pod(binding.namespace, pod_name(binding.name))
            base = endpoints.of_binding(binding, pod)
    if base is None or not token:
        return []
    try:
        answer = await workers.validate(base, token, parsed.task, parsed.params)
    except WorkerUnreachable as error:
        log.info("Admitted a PhoneJob for %s unchecked: %s", binding.namespaced_name, error)
        return []
    if answer.status == 200 and not answer.body.get("ok"):
        return [str(answer.body.get("message"))]
    return []
