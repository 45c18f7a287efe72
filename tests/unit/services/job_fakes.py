"""In-memory fakes of the job service's gateways: PhoneJobs with the API server's conditional
status writes, and workers answered in-process by the worker's own job endpoint code."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Mapping
from typing import Any

from conftest import apply_merge_patch
from phonefleet_operator.workers import Answer, WorkerUnreachable
from phonefleet_worker.job_server import JobApi

Obj = dict[str, Any]
_versions = itertools.count(100)


class FakeJobApi:
    """PhoneJobs in memory, with the API server's conditional status writes (409 -> None)."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], Obj] = {}
        self.conditions: list[tuple[str, list[Obj]]] = []
        self.unlisted: Exception | None = None
        """What a list of the jobs raises (None: it answers)."""

    def add(self, job: Obj) -> Obj:
        job["metadata"]["resourceVersion"] = str(next(_versions))
        self.jobs[job["metadata"]["namespace"], job["metadata"]["name"]] = job
        return copy.deepcopy(job)

    async def list_served_jobs(self, namespaces: tuple[str, ...]) -> list[Obj]:
        if self.unlisted is not None:
            raise self.unlisted
        return [
            copy.deepcopy(job)
            for (namespace, _), job in self.jobs.items()
            if not namespaces or namespace in namespaces
        ]

    async def get_job(self, namespace: str, name: str) -> Obj | None:
        return copy.deepcopy(self.jobs.get((namespace, name)))

    async def patch_job_status(
        self, namespace: str, name: str, resource_version: str, status: Mapping[str, Any]
    ) -> Obj | None:
        job = self.jobs.get((namespace, name))
        if job is None or job["metadata"]["resourceVersion"] != resource_version:
            return None
        job["status"] = apply_merge_patch(job.get("status") or {}, dict(status))
        job["metadata"]["resourceVersion"] = str(next(_versions))
        return copy.deepcopy(job)

    async def set_job_finalizers(
        self, namespace: str, name: str, resource_version: str, finalizers: list[str]
    ) -> Obj | None:
        """As the API server: conditional on the version; the last finalizer of a job being
        deleted going deletes it (the answer is its last state)."""
        job = self.jobs.get((namespace, name))
        if job is None or job["metadata"]["resourceVersion"] != resource_version:
            return None
        job["metadata"]["finalizers"] = list(finalizers)
        job["metadata"]["resourceVersion"] = str(next(_versions))
        if not finalizers and job["metadata"].get("deletionTimestamp"):
            del self.jobs[namespace, name]
        return copy.deepcopy(job)

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        job = self.jobs.get((namespace, name))
        if job is not None and job["metadata"]["uid"] == uid:
            self.delete(namespace, name)

    def delete(self, namespace: str, name: str) -> tuple[str, Obj]:
        """``kubectl delete pj``, as the API server does it: a job with finalizers gets a
        deletionTimestamp (and a new version); one without goes. The watch event it makes and
        the job's body."""
        job = self.jobs[namespace, name]
        metadata = job["metadata"]
        if not metadata.get("finalizers"):
            del self.jobs[namespace, name]
            return "DELETED", copy.deepcopy(job)
        if not metadata.get("deletionTimestamp"):
            metadata["deletionTimestamp"] = "2026-11-28T12:00:00Z"
            metadata["resourceVersion"] = str(next(_versions))
        return "MODIFIED", copy.deepcopy(job)

    async def annotate_binding(self, *_: Any) -> None:
        raise AssertionError("no job here ends with an account error")

    async def patch_binding_conditions(
        self, namespace: str, name: str, resource_version: str, conditions: list[Obj]
    ) -> bool:
        self.conditions.append((name, conditions))
        return True


class FakeWorkers:
    """The operator's WorkerClient, answered by the worker's real ``JobApi`` (and so its real
    ``JobDesk``: tokens, 409s, fencing, leases) at each address; an address with no worker there
    is unreachable, as a refused or cut-off connection is."""

    def __init__(self) -> None:
        self.at: dict[str, JobApi] = {}
        self.calls: list[tuple[str, str, str]] = []

    async def validate(self, base: str, token: str, task: str, params: Mapping[str, Any]) -> Answer:
        return self._call("POST", base, "/v1/validate", token, {"task": task, "params": params})

    async def deliver(self, base: str, token: str, attempt: Mapping[str, Any]) -> Answer:
        return self._call("POST", base, "/v1/attempts", token, attempt)

    async def attempt(self, base: str, token: str, attempt_id: str) -> Answer:
        return self._call("GET", base, f"/v1/attempts/{attempt_id}", token)

    async def cancel(
        self, base: str, token: str, attempt_id: str, *, superseded: bool = False
    ) -> Answer:
        body = {"reason": "superseded"} if superseded else {}
        return self._call("POST", base, f"/v1/attempts/{attempt_id}/cancel", token, body)

    async def close(self) -> None:
        pass

    def _call(self, method: str, base: str, path: str, token: str, body: Any = None) -> Answer:
        self.calls.append((method, base, path))
        api = self.at.get(base)
        if api is None:
            raise WorkerUnreachable(f"worker job endpoint {base} did not answer {method} {path}")
        data = json.dumps(body or {}).encode()
        status, answer = api.handle(method, path, f"Bearer {token}", data)
        return Answer(int(status), json.loads(json.dumps(answer)))
