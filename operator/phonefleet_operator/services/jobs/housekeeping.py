"""The job loop's writes of a job's metadata that the API server may refuse: deleting a finished
job whose ``ttlSecondsAfterFinished`` passed, setting the finalizer before a job's first attempt
and dropping it once the job needs it no more.

A refusal (403: the operator's RBAC lacks ``delete`` or ``patch`` on phonejobs; an admission
policy) must not stall the binding's other jobs, nor be tried again at every pass: it is told
once per job (a log line at warning and a Warning Event on the job), then tried again with a
backoff (10 s, doubling to 10 minutes) while the pass goes on with the other jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from phonefleet_operator.errors import KubernetesRefused
from phonefleet_operator.models import PhoneJob
from phonefleet_operator.services.jobs.writes import JobWrites

__all__ = ["FIRST_RETRY_SECONDS", "LAST_RETRY_SECONDS", "Housekeeping"]

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 10.0
LAST_RETRY_SECONDS = 600.0
#: The Event reason of a refused housekeeping write.
REFUSED = "HousekeepingRefused"


class Housekeeping:
    """Runs housekeeping writes; remembers, per job, the refused ones and when to try again."""

    def __init__(self, writes: JobWrites) -> None:
        self._writes = writes
        # Per binding, per job uid: when its refused write may be tried again, and the wait
        # after that.
        self._refused: dict[tuple[str, str], dict[str, tuple[datetime, float]]] = {}

    async def run(
        self, job: PhoneJob, what: str, write: Callable[[], Awaitable[object]], now: datetime
    ) -> bool:
        """Make ``write`` for ``job`` (``what``: the words for it) unless an earlier refusal's
        backoff has not passed; a refusal is told once and backed off, never raised. Whether
        the write was made and went through."""
        uid = job.metadata.uid
        refused = self._refused.setdefault((job.namespace, job.spec.binding_name), {})
        waiting = refused.get(uid)
        if waiting is not None and now < waiting[0]:
            return False
        try:
            await write()
        except KubernetesRefused as error:
            delay = FIRST_RETRY_SECONDS if waiting is None else waiting[1]
            refused[uid] = (
                now + timedelta(seconds=delay),
                min(delay * 2, LAST_RETRY_SECONDS),
            )
            if waiting is None:
                message = (
                    f"could not {what}: the API server refused ({error}); grant the operator "
                    "delete and patch on phonejobs.phonefleet.dev "
                    "(manifests/rbac/tenant_role.yaml). Tried again with a backoff; the "
                    "binding's other jobs go on"
                )
                log.warning("PhoneJob %s: %s", job.namespaced_name, message)
                self._writes.job_event(job, warning=True, reason=REFUSED, message=message)
            return False
        refused.pop(uid, None)
        return True

    def next_try(self, key: tuple[str, str], jobs: list[PhoneJob]) -> datetime | None:
        """The earliest moment a refused write of the binding's ``jobs`` may be tried again
        (None: none waits); the refusals of its jobs no longer there are forgotten."""
        refused = self._refused.get(key)
        if not refused:
            self._refused.pop(key, None)
            return None
        uids = {job.metadata.uid for job in jobs}
        for uid in [u for u in refused if u not in uids]:
            del refused[uid]
        return min((at for at, _ in refused.values()), default=None)

    def forget(self, key: tuple[str, str]) -> None:
        """Drop what was kept of the binding (its loop ended)."""
        self._refused.pop(key, None)
