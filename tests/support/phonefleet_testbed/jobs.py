"""Building blocks of the PhoneJob scenarios: the operator's job settings for tests, job
manifests, and a Running binding whose job endpoint is a URL of the test's choosing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import Fleet, Operator, make_binding, wait_job_token, wait_phase

__all__ = ["JOB_ENV", "make_job", "run_binding_with_job_endpoint"]

#: Job settings of an operator under test: quick polls, a short grace and request timeout.
JOB_ENV = {
    "PHONEFLEET_JOBS_POLL_SECONDS": "0.3",
    "PHONEFLEET_JOBS_GRACE_SECONDS": "2",
    "PHONEFLEET_JOBS_REQUEST_TIMEOUT_SECONDS": "3",
}


def make_job(name: str, binding: str, namespace: str, **spec: Any) -> dict[str, Any]:
    """A PhoneJob manifest for ``probe-post`` (its caption the job's name) unless ``spec`` says
    otherwise, in the CRD's camelCase."""
    body: dict[str, Any] = {"bindingName": binding, "task": "probe-post", **spec}
    body.setdefault("params", {"caption": name})
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def run_binding_with_job_endpoint(
    *,
    kubectl: Kubectl,
    namespace: str,
    name: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
    url: str,
    **env: str,
) -> str:
    """Start an operator (:data:`JOB_ENV` and ``env``) that reaches binding ``namespace/name``'s
    job endpoint at ``url`` (the test-only endpoint override), bind the binding to a new phone,
    wait until it runs, and return the job token the operator wrote into its Secret."""
    operator_factory(
        PHONEFLEET_JOBS_ENDPOINT_OVERRIDES=json.dumps({f"{namespace}/{name}": url}),
        **{**JOB_ENV, **env},
    )
    kubectl.apply(make_binding(name, fleet.add_phone(), namespace))
    wait_phase(kubectl, namespace, name, "Running")
    return wait_job_token(kubectl, namespace, name)
