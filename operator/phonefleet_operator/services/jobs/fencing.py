"""When an attempt whose worker pod left the API server has surely stopped: pure rules.

A pod leaves the API server after an ordinary delete only once the kubelet has stopped its
containers. A force delete (``kubectl delete --force --grace-period=0``, or the pod GC after its
node was deleted while cut off) removes it at once, while its containers may still run and drive
the phone. So the pod's absence alone never ends an attempt; the operator asks the worker at the
attempt's recorded address to stop it (``POST /v1/attempts/{id}/cancel``, which does not renew
its lease) and ends it by the first of:

1. the worker answers that the attempt has ended: its own outcome is recorded;
2. the worker answers that it does not know the attempt (404, with the binding's token): the
   process at that address is another incarnation, so the attempt runs nowhere;
3. the attempt can no longer run anywhere: its lease ran out (the worker stops an attempt the
   operator has not asked about for ``leaseSeconds``), or its ``notAfter`` passed (the worker
   never runs an attempt past it), plus the grace for clock skew and requests in flight.

Until then the job stays Running (reason ``Fencing``), so nothing else starts on its binding.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from phonefleet_operator.models import Attempt, AttemptOutcome, ErrorClass, PhoneJob
from phonefleet_operator.services.jobs import ledger
from phonefleet_operator.workers import Answer

__all__ = ["FINAL_STATES", "ending_of", "fenced_at", "outcome_of"]

FINAL_STATES = {
    "Succeeded": AttemptOutcome.SUCCEEDED,
    "AlreadyDone": AttemptOutcome.ALREADY_DONE,
    "Failed": AttemptOutcome.FAILED,
    "TimedOut": AttemptOutcome.TIMED_OUT,
}


def fenced_at(job: PhoneJob, attempt: Attempt, *, last_heard: datetime, grace: float) -> datetime:
    """The moment after which the attempt runs nowhere, even on a worker we cannot reach.

    ``last_heard`` is when the worker last renewed the lease for us, or a moment no earlier
    than that (the operator process's first look at the attempt: it cannot have renewed it
    before).
    """
    end = ledger.not_after(job, attempt)
    if attempt.lease_seconds is not None:
        end = min(end, last_heard + timedelta(seconds=attempt.lease_seconds))
    return end + timedelta(seconds=grace)


def outcome_of(answer: Answer) -> ledger.Ending | None:
    """The ending a worker reports for an attempt, or None while it has not ended."""
    state = str(answer.body.get("state", ""))
    if state not in FINAL_STATES:
        return None
    error_class = str(answer.body.get("errorClass", ""))
    return ledger.Ending(
        FINAL_STATES[state],
        error_class=ErrorClass(error_class) if error_class in set(ErrorClass) else None,
        message=answer.body.get("message"),
        result=answer.body.get("result"),
    )


def ending_of(
    answer: Answer | None, *, until: datetime, now: datetime, why: str = "the worker pod went away"
) -> ledger.Ending | None:
    """How an attempt whose pod went away (or whose job was deleted: ``why``) ends, given the
    worker's answer to the cancel (None: not reached); None while it may still run."""
    if answer is not None and answer.status == 404:
        return ledger.Ending(
            AttemptOutcome.LOST,
            message=f"{why}; the worker at its address does not know it",
        )
    if answer is not None and answer.status < 300:
        reported = outcome_of(answer)
        if reported is not None:
            return reported
    if now >= until:
        return ledger.Ending(
            AttemptOutcome.LOST,
            message=f"{why} and its worker did not say the attempt ended; "
            "its lease or deadline has run out since",
        )
    return None
