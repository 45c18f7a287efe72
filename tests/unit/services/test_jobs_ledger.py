"""The job ledger's pure rules: which job runs, why others wait, and how attempts end (fenced)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from phonefleet_operator.models import (
    AttemptOutcome,
    ErrorClass,
    JobPhase,
    PhoneJob,
    rfc3339,
)
from phonefleet_operator.services.jobs import ledger
from phonefleet_operator.services.jobs.schedule import (
    WAITING_FOR_TURN,
    BindingView,
    midnight_after,
    plan,
)

NOW = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)


def make_job(
    name: str, *, created: int = 0, status: dict[str, Any] | None = None, **spec: Any
) -> PhoneJob:
    """A job of binding insta-042, created ``created`` minutes before NOW."""
    return PhoneJob.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": "farm",
                "uid": f"uid-{name}",
                "resourceVersion": "1",
                "creationTimestamp": rfc3339(NOW - timedelta(minutes=60 - created)),
            },
            "spec": {"bindingName": "insta-042", "task": "heartbeat", **spec},
            "status": status or {},
        }
    )


def running_binding(**overrides: Any) -> BindingView:
    """A Running binding with a ready pod."""
    values: dict[str, Any] = {
        "namespace": "farm",
        "name": "insta-042",
        "uid": "uid-b",
        "phase": "Running",
        "pod_uid": "pod-1",
    }
    return BindingView(**{**values, **overrides})


def started(job: PhoneJob, *, at: datetime = NOW, token: str = "a") -> PhoneJob:  # noqa: S107
    """``job`` with a new attempt recorded."""
    status = ledger.begin_attempt(
        job, pod_uid="pod-1", pod_name="insta-042-worker", now=at, token=token
    )
    return job.model_copy(update={"status": status})


def ended(job: PhoneJob, ending: ledger.Ending, at: datetime = NOW) -> PhoneJob:
    """``job`` with its current attempt ended."""
    current = job.status.current
    assert current is not None
    status = ledger.end_attempt(job, current.id, ending, at)
    assert status is not None
    return job.model_copy(update={"status": status})


def test_jobs_start_in_creation_order_one_at_a_time() -> None:
    """The oldest job starts; the others wait their turn (words that do not change as the queue
    moves, so waiting jobs are not rewritten each time)."""
    jobs = [make_job("b", created=2), make_job("a", created=1), make_job("c", created=3)]

    decided = plan(running_binding(), jobs, NOW)

    assert decided.start is not None
    assert decided.start.name == "a"
    assert {w.job.name: (w.reason, w.message) for w in decided.waits} == {
        "b": ("WaitingForTurn", WAITING_FOR_TURN),
        "c": ("WaitingForTurn", WAITING_FOR_TURN),
    }


def test_a_running_job_holds_the_others_and_nothing_else_starts() -> None:
    """While one attempt runs, no job of the binding starts."""
    first = started(make_job("a", created=1))

    decided = plan(running_binding(), [first, make_job("b", created=2)], NOW)

    assert decided.start is None
    assert decided.running is first
    assert decided.waits[0].reason == "WaitingForTurn"


@pytest.mark.parametrize(
    ("binding", "reason", "message"),
    [
        (
            running_binding(phase="Suspended", pod_uid=None),
            "BindingNotRunning",
            "PhoneBinding insta-042 is not Running (phase Suspended: resume it with "
            "spec.suspend: false); the job starts once it is",
        ),
        (
            running_binding(phase="Conflict", pod_uid=None),
            "BindingNotRunning",
            "PhoneBinding insta-042 is not Running (phase Conflict: kubectl describe pb "
            "insta-042 says why); the job starts once it is",
        ),
        (
            running_binding(pod_uid=None),
            "BindingNotRunning",
            "PhoneBinding insta-042 is not Running (its worker pod is not ready); the job "
            "starts once it is",
        ),
        (
            running_binding(account_hold="job x: banned"),
            "AccountHeld",
            "account held: job x: banned",
        ),
    ],
    ids=["suspended", "conflict", "pod-not-ready", "account-held"],
)
def test_jobs_of_a_binding_that_cannot_run_wait_visibly(
    binding: BindingView, reason: str, message: str
) -> None:
    """A suspended or conflicting binding, an unready pod or a held account: every job waits,
    and its message names the binding, its phase and what lets the job go."""
    decided = plan(binding, [make_job("a")], NOW)

    assert decided.start is None
    (wait,) = decided.waits
    assert wait.reason == reason
    assert wait.message.startswith(message)


def test_not_before_waits_without_holding_back_later_jobs() -> None:
    """A job not yet due shows notBefore; the job behind it runs meanwhile."""
    later = NOW + timedelta(hours=2)
    jobs = [make_job("a", created=1, notBefore=rfc3339(later)), make_job("b", created=2)]

    decided = plan(running_binding(), jobs, NOW)

    assert decided.start is not None
    assert decided.start.name == "b"
    assert (decided.waits[0].reason, decided.waits[0].until) == ("NotBefore", later)
    assert decided.next_due == later


def test_the_daily_cap_counts_todays_jobs_in_the_bindings_time_zone() -> None:
    """With maxPerDay 1 and a job started today, the next waits until midnight; the message
    names the binding, the cap and how many jobs it counted."""
    done = ended(
        started(make_job("a", created=1), at=NOW - timedelta(hours=1)),
        ledger.Ending(AttemptOutcome.SUCCEEDED),
    )

    decided = plan(running_binding(max_per_day=1), [done, make_job("b", created=2)], NOW)

    (wait,) = decided.waits
    assert (wait.reason, wait.message) == (
        "DailyCapReached",
        "daily cap reached: 1 job of PhoneBinding insta-042 started today "
        "(spec.jobs.maxPerDay 1); the next may start at 00:00 UTC",
    )
    assert wait.until == datetime(2026, 11, 30, tzinfo=UTC)


def test_a_capped_job_keeps_saying_so_on_the_next_pass() -> None:
    """The cap's nextAttemptTime (midnight) is not mistaken for a retry's backoff."""
    done = ended(
        started(make_job("a", created=1), at=NOW - timedelta(hours=1)),
        ledger.Ending(AttemptOutcome.SUCCEEDED),
    )
    waiting = make_job("b", created=2)
    (wait,) = plan(running_binding(max_per_day=1), [done, waiting], NOW).waits
    capped = waiting.model_copy(
        update={"status": ledger.wait(waiting, wait.reason, wait.message, wait.until)}
    )

    (again,) = plan(running_binding(max_per_day=1), [done, capped], NOW).waits

    assert again.reason == "DailyCapReached"


def test_yesterdays_jobs_do_not_count_against_todays_cap() -> None:
    """A job started before midnight (in the binding's zone) leaves today's cap free."""
    yesterday = ended(
        started(make_job("a"), at=NOW - timedelta(days=1)), ledger.Ending(AttemptOutcome.SUCCEEDED)
    )

    decided = plan(running_binding(max_per_day=1), [yesterday, make_job("b", created=2)], NOW)

    assert decided.start is not None
    assert decided.start.name == "b"


def test_midnight_follows_the_time_zone() -> None:
    """Midnight in Asia/Tokyo (UTC+9) after 15:00 UTC is 15:00 UTC the same day."""
    assert midnight_after(NOW, "Asia/Tokyo") == datetime(
        2026, 11, 29, 15, 0, tzinfo=UTC
    ) + timedelta(days=1)
    assert midnight_after(datetime(2026, 11, 29, 14, 0, tzinfo=UTC), "Asia/Tokyo") == datetime(
        2026, 11, 29, 15, 0, tzinfo=UTC
    )


def test_a_retryable_failure_schedules_a_retry_with_backoff() -> None:
    """Attempt 1 of 3 fails Retryable: Pending, RetryBackoff, nextAttemptTime = now + delay."""
    job = ended(
        started(make_job("a", retryDelaySeconds=60)),
        ledger.Ending(AttemptOutcome.FAILED, message="flaky"),
    )

    assert (job.status.phase, job.status.reason) == (JobPhase.PENDING, "RetryBackoff")
    assert job.status.next_attempt_time == rfc3339(NOW + timedelta(seconds=60))
    decided = plan(running_binding(), [job], NOW + timedelta(seconds=30))
    assert decided.start is None
    assert decided.waits[0].reason == "RetryBackoff"
    assert plan(running_binding(), [job], NOW + timedelta(seconds=61)).start is job


def test_the_backoff_doubles_per_attempt() -> None:
    """The second failure waits twice the delay."""
    job = make_job("a", retryDelaySeconds=10, maxAttempts=3)
    job = ended(started(job), ledger.Ending(AttemptOutcome.LOST))
    job = ended(started(job, token="b"), ledger.Ending(AttemptOutcome.TIMED_OUT))

    assert job.status.next_attempt_time == rfc3339(NOW + timedelta(seconds=20))


@pytest.mark.parametrize(
    ("error_class", "reason", "why"),
    [
        (ErrorClass.PERMANENT, "PermanentError", "(a permanent error: not retried)"),
        (
            ErrorClass.ACCOUNT,
            "AccountError",
            "(an account error: not retried, and the binding's other jobs are held)",
        ),
    ],
)
def test_permanent_and_account_errors_fail_without_a_retry(
    error_class: ErrorClass, reason: str, why: str
) -> None:
    """A Permanent or Account error fails the job at once, attempts left or not, and its
    message (the REASON column) says why no attempt follows."""
    job = ended(
        started(make_job("a", maxAttempts=5)),
        ledger.Ending(AttemptOutcome.FAILED, error_class=error_class, message="banned"),
    )

    assert (job.status.phase, job.status.reason) == (JobPhase.FAILED, reason)
    assert job.status.message == f"attempt 1 Failed: banned {why}"
    assert job.status.completion_time == rfc3339(NOW)


def test_the_last_attempt_failing_fails_the_job() -> None:
    """maxAttempts 1 and a retryable failure: Failed, AttemptsExhausted, and the message says
    no attempt is left."""
    job = ended(
        started(make_job("a", maxAttempts=1)),
        ledger.Ending(AttemptOutcome.LOST, message="the worker does not know it"),
    )

    assert (job.status.phase, job.status.reason) == (JobPhase.FAILED, "AttemptsExhausted")
    assert job.status.message == (
        "attempt 1 Lost: the worker does not know it (no attempts left: maxAttempts is 1)"
    )


def test_a_late_answer_of_an_old_attempt_changes_nothing() -> None:
    """Attempt 1 was declared Lost and attempt 2 runs: attempt 1's success cannot mark the job."""
    job = ended(started(make_job("a")), ledger.Ending(AttemptOutcome.LOST))
    first_id = job.status.attempts[0].id
    job = started(job, at=NOW + timedelta(minutes=5), token="b")

    late = ledger.end_attempt(job, first_id, ledger.Ending(AttemptOutcome.SUCCEEDED), NOW)

    assert late is None
    assert job.status.phase is JobPhase.RUNNING


def test_an_attempt_ends_only_once() -> None:
    """A second answer for the same, already ended attempt is ignored."""
    job = ended(
        started(make_job("a")), ledger.Ending(AttemptOutcome.SUCCEEDED, result={"url": "u"})
    )

    assert (
        ledger.end_attempt(
            job, job.status.attempts[0].id, ledger.Ending(AttemptOutcome.FAILED), NOW
        )
        is None
    )
    assert job.status.attempts[0].result == {"url": "u"}


def test_the_delivery_is_the_same_for_every_redelivery() -> None:
    """Re-delivering an attempt sends identical data (the worker dedupes by id and data)."""
    job = started(make_job("a", params={"caption": "hi"}, activeDeadlineSeconds=120))
    attempt = job.status.current
    assert attempt is not None

    body = ledger.delivery(job, attempt)

    assert body == ledger.delivery(job, attempt)
    assert body["notAfter"] == (NOW + timedelta(seconds=120)).timestamp()
    assert (body["id"], body["number"], body["params"]) == (attempt.id, 1, {"caption": "hi"})


def test_finished_jobs_expire_after_their_ttl() -> None:
    """ttlSecondsAfterFinished counts from completionTime."""
    job = ended(
        started(make_job("a", ttlSecondsAfterFinished=60)), ledger.Ending(AttemptOutcome.SUCCEEDED)
    )

    assert plan(running_binding(), [job], NOW + timedelta(seconds=59)).expired == ()
    assert plan(running_binding(), [job], NOW + timedelta(seconds=60)).expired == (job,)


def test_waiting_never_pulls_a_retry_earlier() -> None:
    """A job in backoff that then waits for its binding keeps its retry time."""
    job = ended(started(make_job("a", retryDelaySeconds=600)), ledger.Ending(AttemptOutcome.LOST))

    status = ledger.wait(job, "BindingNotRunning", "binding not Running (phase Suspended)")

    assert status.next_attempt_time == job.status.next_attempt_time
