"""Where a binding's worker takes job requests: its pod's IP on the job port (or a test's
override), and, for a running attempt, the IP recorded in the attempt."""

from __future__ import annotations

from typing import Any

from phonefleet_operator.models import Attempt, PhoneBinding
from phonefleet_operator.render import pod_name
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.settings import JobSettings, OperatorSettings

__all__ = ["WorkerEndpoints"]

Obj = dict[str, Any]


class WorkerEndpoints:
    """The base URLs of the workers' job endpoints."""

    def __init__(
        self, settings: JobSettings, operator: OperatorSettings, pods: ObservedPods
    ) -> None:
        self._settings = settings
        self._operator = operator
        self._pods = pods

    def of_attempt(self, key: tuple[str, str], attempt: Attempt) -> str | None:
        """Where the worker that had ``attempt`` listens: its pod's recorded IP (that pod may
        have left the API server while its containers still run); None when not recorded (an
        attempt started by an operator from before podIP was), or when another worker pod has
        that IP now: the old pod's containers are gone then, and a request there would hand
        the binding's job token to another binding's worker (another tenant's image)."""
        override = self._settings.endpoint_overrides.get(f"{key[0]}/{key[1]}")
        if override:
            return override
        if attempt.pod_ip and self._pods.uid_at(attempt.pod_ip) not in (None, attempt.pod_uid):
            return None
        return self._job_url(attempt.pod_ip)

    def of_binding(self, binding: PhoneBinding, pod: Obj | None = None) -> str | None:
        """Where the binding's current worker pod listens (``pod``, else the pods view's)."""
        override = self._settings.endpoint_overrides.get(binding.namespaced_name)
        if override:
            return override
        pod = pod or self._pods.get(binding.namespace, pod_name(binding.name))
        return self._job_url(((pod or {}).get("status") or {}).get("podIP"))

    def _job_url(self, address: str | None) -> str | None:
        if not address:
            return None
        host = f"[{address}]" if ":" in address else address
        return f"http://{host}:{self._operator.worker_job_port}"
