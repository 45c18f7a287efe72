"""The PhoneJob watch: the jobs view that drives each binding's job loop. Binding events reach
the job loops from the bindings watch (handlers/binding_watch.py); the admission check is served
by every replica (handlers/admission.py).

PhoneJobs are watched by the operator's own list-then-watch (``ObjectWatch``), not by kopf: a
relist after a watch gap (410 Gone, a lost connection) reports a job deleted during the gap as
DELETED, where kopf's relist reports only the jobs the list holds. A job the view kept after
its deletion would be started (or followed) forever against a 404, holding back every job queued
behind it, and a Running one would keep its binding's replacement pod from being created and its
phone from being stopped (``JobService.unsettled``).
"""

from __future__ import annotations

from typing import Any

from phonefleet_operator import constants as c
from phonefleet_operator.k8s.watch import (
    ObjectWatch,
    WatchClient,
    custom_object_lists,
    metadata_only,
)
from phonefleet_operator.services.runtime import Runtime

__all__ = ["job_kept", "job_watches"]

Obj = dict[str, Any]


def job_kept(body: Obj) -> Obj:
    """A job found deleted on relist is forgotten by its name under its binding: keep those."""
    kept = metadata_only(body)
    kept["spec"] = {"bindingName": (body.get("spec") or {}).get("bindingName", "")}
    return kept


def job_watches(
    runtime: Runtime, api: WatchClient, namespaces: tuple[str, ...]
) -> list[ObjectWatch]:
    """The watches of PhoneJobs (one per namespace when restricted), feeding the jobs view."""
    calls = custom_object_lists(
        api.custom, c.GROUP, c.VERSION, c.JOB_PLURAL, kind="PhoneJobs", namespaces=namespaces
    )
    timeout = runtime.settings.watch_server_timeout_seconds
    return [
        ObjectWatch(name, call, runtime.jobs.saw, keep=job_kept, server_timeout=timeout)
        for name, call in calls
    ]
