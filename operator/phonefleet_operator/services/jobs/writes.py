"""The job loop's writes: a job's next status and its finalizer (each conditional on the version
read) and the Events that tell people of it, on the job and on its binding."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from phonefleet_operator import constants as c
from phonefleet_operator.k8s import KubeGateway
from phonefleet_operator.k8s.jobs import JobGateway
from phonefleet_operator.models import PhoneBinding, PhoneJob, PhoneJobStatus
from phonefleet_operator.services.jobs import ledger
from phonefleet_operator.services.jobs.observed import ObservedJobs

__all__ = ["JobWrites", "binding_event_body", "parse_job"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class JobWrites:
    """Writes a job's status against the version read, and posts the Events of its story."""

    def __init__(self, *, kube: KubeGateway, api: JobGateway, jobs: ObservedJobs) -> None:
        self._kube = kube
        self._api = api
        self._jobs = jobs

    async def write(self, job: PhoneJob, status: PhoneJobStatus) -> PhoneJob | None:
        """Write the job's next status (if it changed) against the version we read; the job as
        written, None when the write lost to a newer version (the view then has that one)."""
        patch = ledger.status_patch(job, status)
        if patch is None:
            return job
        version = job.metadata.resource_version or ""
        written = await self._api.patch_job_status(job.namespace, job.name, version, patch)
        if written is None:
            await self._lost(job)
            return None
        self._jobs.saw(written)
        return parse_job(written)

    async def _lost(self, job: PhoneJob) -> None:
        """A conditional write lost (409, or 404): read the job again into the view."""
        fresh = await self._api.get_job(job.namespace, job.name)
        if fresh is not None:
            self._jobs.saw(fresh)
        elif self._jobs.has(job.namespace, job.spec.binding_name, job.name, job.metadata.uid):
            # Gone (404 twice): forget it now, or a pass would decide for it again until the
            # watch's DELETED came (a watch gap delays that until its relist).
            self._jobs.gone(job.model_dump(by_alias=True, mode="json"))

    async def hold(self, job: PhoneJob) -> PhoneJob | None:
        """The job with the finalizer ``JOB_FINALIZER`` (set now unless it has it); None when
        the job changed meanwhile (the view then has the newer one).

        Set before the job's first attempt is written: from then on a deleted job stays (with a
        deletionTimestamp) until no attempt of it can still run, so the gate of its binding's
        replacement pod keeps reading it, through operator restarts too.
        """
        if c.JOB_FINALIZER in job.metadata.finalizers:
            return job
        written = await self._set_finalizers(job, [*job.metadata.finalizers, c.JOB_FINALIZER])
        return None if written is None else parse_job(written)

    async def release(self, job: PhoneJob) -> bool:
        """Drop the job's finalizer, which it no longer needs (finished, or deleted, with no
        attempt running); False when the job changed meanwhile (the next pass decides again)."""
        if c.JOB_FINALIZER not in job.metadata.finalizers:
            return True
        kept = [name for name in job.metadata.finalizers if name != c.JOB_FINALIZER]
        return await self._set_finalizers(job, kept) is not None

    async def _set_finalizers(self, job: PhoneJob, finalizers: list[str]) -> Obj | None:
        version = job.metadata.resource_version or ""
        written = await self._api.set_job_finalizers(job.namespace, job.name, version, finalizers)
        if written is None:
            await self._lost(job)
            return None
        self._jobs.saw(written)
        return written

    def event(
        self,
        job: PhoneJob,
        binding: PhoneBinding,
        *,
        reason: str,
        message: str,
        warning: bool = False,
        on_binding: bool = True,
    ) -> None:
        """One Event on the job and (unless told otherwise) one on its binding."""
        self.job_event(job, warning=warning, reason=reason, message=message)
        if on_binding:
            self.binding_event(binding, warning=warning, reason=reason, message=message)

    def binding_event(
        self, binding: PhoneBinding, *, reason: str, message: str, warning: bool = False
    ) -> None:
        """One Event on the binding."""
        self._kube.post_event(
            binding_event_body(binding), warning=warning, reason=reason, message=message
        )

    def job_event(self, job: PhoneJob, *, reason: str, message: str, warning: bool) -> None:
        """One Event on the job, and its log line."""
        job_body = {
            "apiVersion": c.API_VERSION,
            "kind": c.JOB_KIND,
            "metadata": {
                "name": job.name,
                "namespace": job.namespace,
                "uid": job.metadata.uid,
            },
        }
        self._kube.post_event(job_body, warning=warning, reason=reason, message=message)
        log.info("%s PhoneJob %s: %s", reason, job.namespaced_name, message)


def parse_job(body: Mapping[str, Any]) -> PhoneJob | None:
    """The job, None (logged) when its body does not parse."""
    try:
        return PhoneJob.from_body(body)
    except ValidationError as error:
        name = (body.get("metadata") or {}).get("name")
        log.warning("Ignored PhoneJob %s: its body does not parse: %s", name, error)
        return None


def binding_event_body(binding: PhoneBinding) -> Obj:
    """What an Event on the binding refers to."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.BINDING_KIND,
        "metadata": {
            "name": binding.name,
            "namespace": binding.namespace,
            "uid": binding.uid,
        },
    }
