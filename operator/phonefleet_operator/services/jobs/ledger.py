"""Status transitions of one PhoneJob: pure functions from the current status to the next.

The ledger's rules live here: an attempt is recorded (Running) before it is delivered; it ends
only once, and only the attempt the status names last can be ended (fencing: a late answer of
an older attempt changes nothing); what an ending means for the job follows its error class.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from phonefleet_operator.models import (
    Attempt,
    AttemptOutcome,
    ErrorClass,
    JobPhase,
    PhoneJob,
    PhoneJobStatus,
    rfc3339,
)
from phonefleet_operator.services.report import merge_patch

__all__ = [
    "MAX_RETRY_DELAY",
    "Ending",
    "begin_attempt",
    "delivery",
    "end_attempt",
    "fencing",
    "not_after",
    "refuse",
    "status_patch",
    "wait",
]

MAX_RETRY_DELAY = 3600.0
_SUCCESS = (AttemptOutcome.SUCCEEDED, AttemptOutcome.ALREADY_DONE)


class Ending:
    """How an attempt ended, as the worker (or the operator's fencing rules) tells it."""

    def __init__(
        self,
        outcome: AttemptOutcome,
        *,
        error_class: ErrorClass | None = None,
        message: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        self.outcome = outcome
        self.error_class = error_class
        if error_class is None and outcome not in _SUCCESS:
            self.error_class = ErrorClass.RETRYABLE
        self.message = message
        self.result = result


def _copy(job: PhoneJob) -> PhoneJobStatus:
    status = job.status.model_copy(deep=True)
    status.observed_generation = job.metadata.generation
    return status


def wait(job: PhoneJob, reason: str, message: str, until: datetime | None = None) -> PhoneJobStatus:
    """The job is Pending for ``reason``; ``until`` (notBefore, cap) may push nextAttemptTime
    later, never earlier: a retry's backoff survives any other wait."""
    status = _copy(job)
    if status.phase is JobPhase.PENDING and status.reason == reason == "RetryBackoff":
        return status  # the failed attempt's own words say it best; nothing to rewrite
    status.phase = JobPhase.PENDING
    status.reason = reason
    status.message = message
    if until is not None:
        stamp = rfc3339(until)
        if status.next_attempt_time is None or stamp > status.next_attempt_time:
            status.next_attempt_time = stamp
    return status


def refuse(job: PhoneJob, reason: str, message: str, now: datetime) -> PhoneJobStatus:
    """The job cannot run at all (unknown task, bad params): Failed, nothing ran."""
    status = _copy(job)
    status.phase = JobPhase.FAILED
    status.reason = reason
    status.message = message
    status.next_attempt_time = None
    status.completion_time = rfc3339(now)
    return status


def begin_attempt(
    job: PhoneJob,
    *,
    pod_uid: str,
    pod_name: str,
    now: datetime,
    pod_ip: str | None = None,
    lease_seconds: float | None = None,
    token: str | None = None,
    binding_uid: str | None = None,
) -> PhoneJobStatus:
    """Record a new attempt as Running; it is written before the worker hears of it.

    ``binding_uid`` names the binding's incarnation: the orphan sweep waits for the attempts of
    the claim's holder by uid, not by a name a new binding may have taken meanwhile."""
    status = _copy(job)
    number = status.attempt_count + 1
    attempt_id = f"{job.metadata.uid[:8]}-{number}-{token or secrets.token_hex(4)}"
    status.attempts = [
        *status.attempts,
        Attempt(
            number=number,
            id=attempt_id,
            start_time=rfc3339(now),
            outcome=AttemptOutcome.RUNNING,
            pod_uid=pod_uid,
            binding_uid=binding_uid,
            pod_ip=pod_ip,
            lease_seconds=lease_seconds,
        ),
    ]
    status.attempt_count = number
    status.phase = JobPhase.RUNNING
    status.reason = "Running"
    status.message = f"attempt {number}/{job.spec.max_attempts} on pod {pod_name}"
    status.next_attempt_time = None
    status.start_time = status.start_time or rfc3339(now)
    return status


def not_after(job: PhoneJob, attempt: Attempt) -> datetime:
    """When the attempt must have ended: its start plus the job's activeDeadlineSeconds."""
    start = datetime.fromisoformat(attempt.start_time.replace("Z", "+00:00"))
    return start + timedelta(seconds=job.spec.active_deadline_seconds)


def delivery(job: PhoneJob, attempt: Attempt) -> dict[str, Any]:
    """The body of ``POST /v1/attempts``: the same bytes for every re-delivery of one attempt
    (the lease is the attempt's own, so an operator restarted with another setting delivers the
    same)."""
    body: dict[str, Any] = {
        "job": job.namespaced_name,
        "jobUid": job.metadata.uid,
        "number": attempt.number,
        "id": attempt.id,
        "task": job.spec.task,
        "params": job.spec.params,
        "deadlineSeconds": job.spec.active_deadline_seconds,
        "notAfter": not_after(job, attempt).timestamp(),
    }
    if attempt.lease_seconds is not None:
        body["leaseSeconds"] = attempt.lease_seconds
    return body


def fencing(job: PhoneJob, pod_name: str, until: datetime) -> PhoneJobStatus:
    """The running attempt's pod went away: the job stays Running (reason ``Fencing``) until the
    attempt cannot run any more, so nothing else starts on the binding meanwhile."""
    return _still_running(
        job,
        "Fencing",
        "attempt {attempt}: pod {pod} went away while it ran; waiting for its worker to stop it "
        "(at the latest {until})",
        pod_name,
        until,
    )


def cancelling(job: PhoneJob, pod_name: str, until: datetime) -> PhoneJobStatus:
    """The job was deleted while its attempt runs: it stays (its finalizer) until the attempt
    ended on its worker or cannot run any more (reason ``Cancelling``)."""
    return _still_running(
        job,
        "Cancelling",
        "the job was deleted; attempt {attempt} on pod {pod} is cancelled, waiting for its "
        "worker to say it stopped (at the latest {until}); the job goes then",
        pod_name,
        until,
    )


def _still_running(
    job: PhoneJob, reason: str, words: str, pod_name: str, until: datetime
) -> PhoneJobStatus:
    status = _copy(job)
    current = status.current
    number = current.number if current is not None else status.attempt_count
    status.reason = reason
    status.message = words.format(
        attempt=f"{number}/{job.spec.max_attempts}", pod=pod_name, until=rfc3339(until)
    )
    return status


def end_attempt(
    job: PhoneJob, attempt_id: str, ending: Ending, now: datetime
) -> PhoneJobStatus | None:
    """End the current attempt and move the job on; None when ``attempt_id`` is not the running,
    current attempt (an old or already ended attempt: its answer is ignored)."""
    current = job.status.current
    if current is None or current.id != attempt_id or current.ended:
        return None
    status = _copy(job)
    status.attempts = [
        *status.attempts[:-1],
        current.model_copy(
            update={
                "outcome": ending.outcome,
                "end_time": rfc3339(now),
                "error_class": ending.error_class,
                "message": ending.message,
                "result": ending.result,
            }
        ),
    ]
    number = current.number
    if ending.outcome in _SUCCESS:
        status.phase, status.reason = JobPhase.SUCCEEDED, str(ending.outcome)
        done = "already done" if ending.outcome is AttemptOutcome.ALREADY_DONE else "succeeded"
        status.message = f"{done} on attempt {number}"
    elif ending.error_class is ErrorClass.RETRYABLE and number < job.spec.max_attempts:
        delay = min(job.spec.retry_delay_seconds * 2 ** (number - 1), MAX_RETRY_DELAY)
        retry_at = now + timedelta(seconds=delay)
        status.phase, status.reason = JobPhase.PENDING, "RetryBackoff"
        status.message = (
            f"attempt {number} {ending.outcome}: {ending.message or 'no message'}; "
            f"attempt {number + 1}/{job.spec.max_attempts} at {rfc3339(retry_at)}"
        )
        status.next_attempt_time = rfc3339(retry_at)
        return status
    else:
        status.phase = JobPhase.FAILED
        status.reason = (
            f"{ending.error_class}Error"
            if ending.error_class is not ErrorClass.RETRYABLE
            else "AttemptsExhausted"
        )
        status.message = (
            f"attempt {number} {ending.outcome}: {ending.message or 'no message'}"
            f"{_why_final(ending.error_class, number)}"
        )
    status.next_attempt_time = None
    status.completion_time = rfc3339(now)
    return status


def _why_final(error_class: ErrorClass | None, number: int) -> str:
    """Why a failed job gets no further attempt: the REASON column tells no more."""
    if error_class is ErrorClass.PERMANENT:
        return " (a permanent error: not retried)"
    if error_class is ErrorClass.ACCOUNT:
        return " (an account error: not retried, and the binding's other jobs are held)"
    return f" (no attempts left: maxAttempts is {number})"


def status_patch(job: PhoneJob, status: PhoneJobStatus) -> dict[str, Any] | None:
    """The merge patch from the job's status to ``status``; None when nothing changed."""
    patch = merge_patch(job.status.to_dict(), status.to_dict())
    return patch or None
