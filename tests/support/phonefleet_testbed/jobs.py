"""Building blocks of the PhoneJob scenarios: the operator's job settings for tests and job
manifests (the ``job_binding`` fixture of the operator scenarios runs a binding whose job
endpoint is a URL of the test's choosing)."""

from __future__ import annotations

from typing import Any

__all__ = ["JOB_ENV", "make_job"]

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
