"""Which job of a binding runs next, and why each of the others waits: pure decisions.

Rules, in the order they are checked for a Pending job:

1. the binding's account is held (an Account error; cleared by a person) -> ``AccountHeld``;
2. the binding is not Running with a ready worker pod -> ``BindingNotRunning``;
3. ``spec.notBefore`` is in the future -> ``NotBefore``;
4. a retry's backoff has not passed (``status.nextAttemptTime``) -> ``RetryBackoff``;
5. another job of the binding runs -> ``WaitingForTurn`` (one at a time);
6. the binding's daily cap is used up -> ``DailyCapReached`` (until midnight in its time zone);
7. otherwise it may start; of all such jobs the first in (creationTimestamp, notBefore, name)
   order starts, and the others wait for their turn. A job not yet due never holds back the
   jobs behind it.

A job being deleted never starts and says nothing more; its attempt still running is followed
(and cancelled), and once none runs its finalizer is released (``Plan.released``), as it is
for a finished job.

The cap counts jobs of the binding with an attempt started since midnight (a retry of a job
already counted today does not count again); jobs deleted by their TTL no longer count.
"""

from __future__ import annotations

import dataclasses
import zoneinfo
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from phonefleet_operator.constants import JOB_FINALIZER
from phonefleet_operator.models import AttemptOutcome, JobPhase, PhoneJob

__all__ = [
    "WAITING_FOR_TURN",
    "BindingView",
    "Plan",
    "Wait",
    "midnight_after",
    "plan",
    "releasable",
    "sort_key",
]

_FAR = datetime.max.replace(tzinfo=UTC)
#: The same words whichever job runs: naming it would rewrite every waiting job's status each
#: time the queue moves (quadratic in the queue's length; the job that runs is in its Events).
WAITING_FOR_TURN = "waiting for its turn: one job at a time per binding"


@dataclasses.dataclass(frozen=True)
class BindingView:
    """What scheduling needs to know of a binding."""

    namespace: str
    name: str
    uid: str
    phase: str | None
    pod_uid: str | None
    """uid of its worker pod when that pod is ready, else None."""
    pod_ip: str | None = None
    """IP of that pod (recorded with each attempt), else None."""
    max_per_day: int | None = None
    time_zone: str = "UTC"
    account_hold: str | None = None
    """Why the account is held (the annotation's value), None when it is not."""


@dataclasses.dataclass(frozen=True)
class Wait:
    """A Pending job's visible reason."""

    job: PhoneJob
    reason: str
    message: str
    until: datetime | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one pass does for a binding's jobs."""

    start: PhoneJob | None = None
    running: PhoneJob | None = None
    waits: tuple[Wait, ...] = ()
    expired: tuple[PhoneJob, ...] = ()
    released: tuple[PhoneJob, ...] = ()
    """Jobs holding ``JOB_FINALIZER`` that need it no more: finished or being deleted, with no
    attempt running."""
    next_due: datetime | None = None
    """The earliest time a waiting job could start or a finished one expires."""


def sort_key(job: PhoneJob) -> tuple[datetime, datetime, str]:
    """Jobs run in order of creation, then notBefore, then name."""
    created = job.metadata.creation_timestamp or _FAR
    return created, job.spec.not_before or created, job.name


def midnight_after(now: datetime, time_zone: str) -> datetime:
    """The next midnight in ``time_zone`` after ``now`` (UTC-aware)."""
    zone = zoneinfo.ZoneInfo(time_zone)
    local = now.astimezone(zone)
    tomorrow = (local + timedelta(days=1)).date()
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=zone).astimezone(UTC)


def plan(binding: BindingView, jobs: Sequence[PhoneJob], now: datetime) -> Plan:
    """Decide for all jobs of one binding (jobs of other bindings must not be passed)."""
    ordered = sorted(jobs, key=sort_key)
    running = next((j for j in ordered if j.status.phase is JobPhase.RUNNING), None)
    expired = tuple(j for j in ordered if _expired(j, now))
    released = tuple(j for j in ordered if releasable(j))
    due_times = [t for j in ordered if (t := _expiry(j)) is not None and t > now]
    waits: list[Wait] = []
    start: PhoneJob | None = None
    counted = _started_today(ordered, binding.time_zone, now)
    for job in ordered:
        if job.status.finished or job is running or job.metadata.deletion_timestamp:
            continue
        wait = _why_wait(binding, job, now, running=running, counted=counted)
        if wait is None and start is not None:
            wait = Wait(job, "WaitingForTurn", WAITING_FOR_TURN)
        if wait is None:
            start = job
            continue
        waits.append(wait)
        if wait.until is not None:
            due_times.append(wait.until)
    return Plan(
        start=start,
        running=running,
        waits=tuple(waits),
        expired=expired,
        released=released,
        next_due=min(due_times, default=None),
    )


def releasable(job: PhoneJob) -> bool:
    """Whether the job holds ``JOB_FINALIZER`` and needs it no more."""
    if JOB_FINALIZER not in job.metadata.finalizers:
        return False
    current = job.status.current
    if current is not None and current.outcome is AttemptOutcome.RUNNING:
        return False
    return job.status.finished or job.metadata.deletion_timestamp is not None


def _why_wait(  # noqa: PLR0911 (one return per rule of the module docstring reads best)
    binding: BindingView,
    job: PhoneJob,
    now: datetime,
    *,
    running: PhoneJob | None,
    counted: set[str],
) -> Wait | None:
    if binding.account_hold is not None:
        return Wait(
            job,
            "AccountHeld",
            f"account held: {binding.account_hold} (clear: kubectl annotate pb {binding.name} "
            "phonefleet.dev/account-hold-)",
        )
    if binding.phase != "Running" or binding.pod_uid is None:
        return Wait(job, "BindingNotRunning", _not_running(binding))
    not_before = job.spec.not_before
    if not_before is not None and not_before > now:
        return Wait(job, "NotBefore", f"notBefore {_stamp(not_before)}", not_before)
    # Only an ended attempt makes a retry; nextAttemptTime alone may be a cap's or notBefore's.
    retry_at = _parse(job.status.next_attempt_time) if job.status.attempt_count else None
    if retry_at is not None and retry_at > now:
        number = job.status.attempt_count + 1
        return Wait(
            job,
            "RetryBackoff",
            f"attempt {number}/{job.spec.max_attempts} at {_stamp(retry_at)}",
            retry_at,
        )
    if running is not None:
        return Wait(job, "WaitingForTurn", WAITING_FOR_TURN)
    cap = binding.max_per_day
    if cap is not None and job.metadata.uid not in counted and len(counted) >= cap:
        until = midnight_after(now, binding.time_zone)
        started = "1 job" if len(counted) == 1 else f"{len(counted)} jobs"
        return Wait(
            job,
            "DailyCapReached",
            f"daily cap reached: {started} of PhoneBinding {binding.name} started today "
            f"(spec.jobs.maxPerDay {cap}); the next may start at 00:00 {binding.time_zone}",
            until,
        )
    return None


def _not_running(binding: BindingView) -> str:
    """Which binding holds the job back, in which phase, and what lets the job go."""
    phase = binding.phase or "Pending"
    if phase == "Running":
        why = "its worker pod is not ready"
    elif phase == "Suspended":
        why = "phase Suspended: resume it with spec.suspend: false"
    else:
        why = f"phase {phase}: kubectl describe pb {binding.name} says why"
    return f"PhoneBinding {binding.name} is not Running ({why}); the job starts once it is"


def _started_today(jobs: Sequence[PhoneJob], time_zone: str, now: datetime) -> set[str]:
    """uids of the jobs with an attempt started since the last midnight in ``time_zone``."""
    since = midnight_after(now, time_zone) - timedelta(days=1)
    started = set()
    for job in jobs:
        for attempt in job.status.attempts:
            moment = _parse(attempt.start_time)
            if moment is not None and moment >= since:
                started.add(job.metadata.uid)
    return started


def _expiry(job: PhoneJob) -> datetime | None:
    ttl = job.spec.ttl_seconds_after_finished
    completed = _parse(job.status.completion_time)
    if ttl is None or completed is None or not job.status.finished:
        return None
    return completed + timedelta(seconds=ttl)


def _expired(job: PhoneJob, now: datetime) -> bool:
    expiry = _expiry(job)
    return expiry is not None and expiry <= now


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
