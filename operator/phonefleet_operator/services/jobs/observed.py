"""The jobs view: the latest body of each PhoneJob, grouped by the binding it names.

Fed by one list of every job at start-up (the gate of the replacement pod waits for it), by the
PhoneJob watch (handlers/jobs.py) and by the answers to the job loop's own writes;
it keeps only what the loop reads of each job (no managedFields), and which bindings have a job
that still needs their loop, so that a binding without jobs costs one dict lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from phonefleet_operator.constants import JOB_FINALIZER
from phonefleet_operator.k8s.versions import newer
from phonefleet_operator.models import AttemptOutcome, JobPhase

__all__ = ["ObservedJobs"]

Obj = dict[str, Any]


class ObservedJobs:
    """The latest body of each PhoneJob, grouped by the binding it names."""

    def __init__(self) -> None:
        self._by_binding: dict[tuple[str, str], dict[str, Obj]] = {}
        # Names of the jobs that still need their binding's loop, by binding (none: no entry).
        self._live: dict[tuple[str, str], set[str]] = {}
        # The binding key each job is kept under, by (namespace, name): a relist reports a job
        # deleted and made again under its name (for another binding) as one change of it.
        self._binding_of: dict[tuple[str, str], tuple[str, str]] = {}
        self.listed = False
        """Whether every job the operator serves has been seen once (:meth:`saw_all`): until
        then, that no job of a binding runs an attempt is not known."""

    def saw_all(self, jobs: Iterable[Mapping[str, Any]]) -> None:
        """Every job, as one list of them read from the API server, has been seen."""
        for job in jobs:
            self.saw(job)
        self.listed = True

    def saw(self, job: Mapping[str, Any]) -> None:
        """A job was added or changed (a newer resourceVersion never loses to an older one)."""
        metadata = job["metadata"]
        key = (metadata["namespace"], (job.get("spec") or {}).get("bindingName", ""))
        jobs = self._by_binding.setdefault(key, {})
        old = jobs.get(metadata["name"])
        if old is not None and newer(old, job):
            return
        before = self._binding_of.get((metadata["namespace"], metadata["name"]))
        if before is not None and before != key:  # another job of that name, for another binding
            self._drop(before, metadata["name"])
        self._binding_of[metadata["namespace"], metadata["name"]] = key
        jobs[metadata["name"]] = _essentials(job)
        if _needs_loop(job):
            self._live.setdefault(key, set()).add(metadata["name"])
        else:
            self._forget_live(key, metadata["name"])

    def gone(self, job: Mapping[str, Any]) -> None:
        """The job was deleted."""
        metadata = job["metadata"]
        name = (metadata["namespace"], metadata["name"])
        key = (metadata["namespace"], (job.get("spec") or {}).get("bindingName", ""))
        if self._binding_of.get(name) == key:
            del self._binding_of[name]
        self._drop(key, metadata["name"])

    def _drop(self, key: tuple[str, str], name: str) -> None:
        jobs = self._by_binding.get(key)
        if jobs is not None:
            jobs.pop(name, None)
            if not jobs:
                del self._by_binding[key]
        self._forget_live(key, name)

    def has_work(self, namespace: str, name: str) -> bool:
        """Whether a job of this binding needs its loop (one dict lookup)."""
        return (namespace, name) in self._live

    def _forget_live(self, key: tuple[str, str], name: str) -> None:
        live = self._live.get(key)
        if live is not None:
            live.discard(name)
            if not live:
                del self._live[key]

    def has(self, namespace: str, binding: str, name: str, uid: str) -> bool:
        """Whether the view holds the job ``name`` of ``binding`` as the object ``uid``."""
        job = self._by_binding.get((namespace, binding), {}).get(name)
        return job is not None and job["metadata"].get("uid") == uid

    def of_binding(self, namespace: str, name: str) -> list[Obj]:
        """Every known job naming this binding."""
        return list(self._by_binding.get((namespace, name), {}).values())


#: What the job loop reads of a job's metadata (managedFields and the rest stay out of memory).
_METADATA_KEPT = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "finalizers",
)


def _essentials(job: Mapping[str, Any]) -> Obj:
    metadata = job["metadata"]
    return {
        "metadata": {key: metadata[key] for key in _METADATA_KEPT if key in metadata},
        "spec": dict(job.get("spec") or {}),
        "status": dict(job.get("status") or {}),
    }


_FINISHED = frozenset({JobPhase.SUCCEEDED.value, JobPhase.FAILED.value})


def _needs_loop(job: Mapping[str, Any]) -> bool:
    """Whether the job still needs its binding's loop, read from the raw body (no parse).

    It does while an attempt of it runs; while it holds the finalizer the loop removes
    (``JOB_FINALIZER``: the loop drops it once the job finished, or was deleted, and no attempt
    of it runs); until it has finished; and, with a TTL, until the loop has deleted it. A job
    being deleted needs nothing else: it never starts again.
    """
    metadata = job.get("metadata") or {}
    status = job.get("status") or {}
    attempts = status.get("attempts") or []
    if attempts and (attempts[-1] or {}).get("outcome") == AttemptOutcome.RUNNING.value:
        return True
    if JOB_FINALIZER in (metadata.get("finalizers") or ()):
        return True
    if metadata.get("deletionTimestamp"):
        return False
    if status.get("phase") not in _FINISHED:
        return True
    return (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None
