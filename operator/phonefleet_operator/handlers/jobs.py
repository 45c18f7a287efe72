"""kopf handlers of PhoneJobs: the jobs view that drives each binding's job loop. Binding events
reach the job loops from the bindings watch (handlers/binding_watch.py); the admission check is
served by every replica (handlers/admission.py)."""

from __future__ import annotations

from typing import Any

import kopf

from phonefleet_operator import constants as c
from phonefleet_operator.services.runtime import Runtime

__all__ = ["QUIET_IDS", "job_seen"]

_JOBS = (c.GROUP, c.VERSION, c.JOB_PLURAL)

#: kopf's ids of the per-event handlers below (their success lines are filtered out of the log).
JOB_SEEN_ID = "job_seen"
QUIET_IDS = (JOB_SEEN_ID,)


@kopf.on.event(*_JOBS, id=JOB_SEEN_ID)
async def job_seen(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Keep the jobs view current; wake the job's binding loop, or start it (the loop reports a
    job whose binding does not exist)."""
    runtime: Runtime = memo.runtime
    runtime.jobs.saw(event["type"] or "", event["object"])
