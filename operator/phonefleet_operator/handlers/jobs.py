"""kopf handlers of PhoneJobs: the jobs and bindings views that drive each binding's job loop,
orphaned jobs. Their admission check is served by every replica (handlers/admission.py)."""

from __future__ import annotations

from typing import Any

import kopf

from phonefleet_operator import constants as c
from phonefleet_operator.services.runtime import Runtime

__all__ = ["QUIET_IDS", "binding_changed", "job_seen"]

_BINDINGS = (c.GROUP, c.VERSION, c.BINDING_PLURAL)
_JOBS = (c.GROUP, c.VERSION, c.JOB_PLURAL)

#: kopf's ids of the per-event handlers below (their success lines are filtered out of the log).
JOB_SEEN_ID = "job_seen"
BINDING_CHANGED_ID = "jobs_binding_changed"
QUIET_IDS = (JOB_SEEN_ID, BINDING_CHANGED_ID)


@kopf.on.event(*_JOBS, id=JOB_SEEN_ID)
async def job_seen(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Keep the jobs view current; wake the job's binding loop, or start it (the loop reports a
    job whose binding does not exist)."""
    runtime: Runtime = memo.runtime
    runtime.jobs.saw(event["type"] or "", event["object"])


@kopf.on.event(*_BINDINGS, id=BINDING_CHANGED_ID)
async def binding_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Wake or stop the binding's job loop (a binding without jobs has none); when the binding
    was deleted, its jobs say so (and a running attempt there ends Lost: its pod is gone)."""
    runtime: Runtime = memo.runtime
    body = event["object"]
    runtime.jobs.saw_binding(event["type"] or "", body)
    if event["type"] == "DELETED":
        metadata = body["metadata"]
        for job in runtime.jobs.jobs.of_binding(metadata["namespace"], metadata["name"]):
            await runtime.jobs.check_orphan(job)
