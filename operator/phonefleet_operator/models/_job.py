"""The PhoneJob resource: one unit of work (a post, say) for the worker of one PhoneBinding.

The spec is what a person asks for; the status is the ledger the operator keeps: the phase, why a
Pending job waits, and one record per attempt. Attempts are fenced: each has a number and an id,
and only the answer of the attempt the status names last can mark the job.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field
from pydantic.config import JsonDict

from ._base import NamespacedMeta, NamespacedResource, SpecModel, StatusModel

__all__ = [
    "TASK_NAME_PATTERN",
    "Attempt",
    "AttemptOutcome",
    "ErrorClass",
    "JobMeta",
    "JobPhase",
    "PhoneJob",
    "PhoneJobSpec",
    "PhoneJobStatus",
]

#: A task's name as a worker image registers it (an entry point name): lower-case words.
TASK_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$"
#: A PhoneBinding's name in the job's own namespace: a DNS-1123 subdomain, so never ``ns/name``.
_BINDING_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_PRESERVE: JsonDict = {"x-kubernetes-preserve-unknown-fields": True}


class JobPhase(StrEnum):
    """Where a job stands, for people (``kubectl get pj``)."""

    PENDING = "Pending"
    """Waiting: for its binding, its turn, notBefore, the daily cap or a retry (status.reason)."""
    RUNNING = "Running"
    """An attempt was handed to the binding's worker and has not ended."""
    SUCCEEDED = "Succeeded"
    """An attempt succeeded (or found the work already done)."""
    FAILED = "Failed"
    """No attempt is left, the error was permanent, or the job could not run at all."""


class AttemptOutcome(StrEnum):
    """How one attempt ended."""

    RUNNING = "Running"
    """Handed to the worker; no answer yet."""
    SUCCEEDED = "Succeeded"
    """The task did its work."""
    ALREADY_DONE = "AlreadyDone"
    """The task's idempotency check found the work done by an earlier attempt: nothing ran."""
    FAILED = "Failed"
    """The task reported an error (status.attempts[].errorClass says which kind)."""
    TIMED_OUT = "TimedOut"
    """The attempt passed its deadline; the worker cancelled it."""
    LOST = "Lost"
    """The worker pod went away or forgot the attempt; any late answer of it is ignored."""


class ErrorClass(StrEnum):
    """What an error means for the job (the script era's classification, made explicit)."""

    RETRYABLE = "Retryable"
    """Worth another attempt after a delay (a timeout, a lost pod, a flaky screen)."""
    PERMANENT = "Permanent"
    """Another attempt would fail the same way (bad params, a captcha, an action block)."""
    ACCOUNT = "Account"
    """The account itself is unusable (banned, suspended, logged out): the binding's other jobs
    are held until a person clears it."""


class PhoneJobSpec(SpecModel):
    """What a person asks for: run one task once on one binding's worker."""

    binding_name: str = Field(
        min_length=1,
        max_length=253,
        pattern=_BINDING_NAME_PATTERN,
        description="The PhoneBinding in this namespace whose worker runs the job.",
    )
    task: str = Field(
        min_length=1,
        max_length=63,
        pattern=TASK_NAME_PATTERN,
        description="A task the worker image registers, such as heartbeat or ui-steps.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        json_schema_extra=_PRESERVE,
        description="Input of the task, checked against the task's own schema before it runs.",
    )
    not_before: datetime | None = Field(
        None,
        json_schema_extra={"format": "date-time"},
        description="The job does not start before this time (RFC 3339).",
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="Attempts at most, the first one included."
    )
    active_deadline_seconds: int = Field(
        900,
        ge=1,
        le=86400,
        description=(
            "Seconds one attempt may run; the worker cancels the task at this deadline or at the "
            "task's own, whichever comes first."
        ),
    )
    retry_delay_seconds: int = Field(
        60,
        ge=0,
        le=86400,
        description="Wait before the second attempt; doubled for each further one (at most 1 h).",
    )
    ttl_seconds_after_finished: int | None = Field(
        None,
        ge=0,
        description="Delete the job this many seconds after it succeeded or failed; unset: keep.",
    )


class Attempt(StatusModel):
    """One try of a job on a worker: the ledger's line, never rewritten once it has ended."""

    number: int = Field(ge=1, description="1 for the first attempt, then 2, 3, ...")
    id: str = Field(description="Unique id of the attempt; the fencing token the worker echoes.")
    start_time: str = Field(
        json_schema_extra={"format": "date-time"}, description="When it was handed to the worker."
    )
    end_time: str | None = Field(
        None, json_schema_extra={"format": "date-time"}, description="When it ended."
    )
    outcome: AttemptOutcome = Field(description="How it ended (Running until then).")
    error_class: ErrorClass | None = Field(
        None, description="For a failure: Retryable, Permanent or Account."
    )
    message: str | None = Field(None, description="What happened, in one line.")
    pod_uid: str | None = Field(None, description="uid of the worker pod that ran it.")
    binding_uid: str | None = Field(
        None,
        description=(
            "uid of the PhoneBinding it ran for: a binding created again under the same name "
            "is another one."
        ),
    )
    pod_ip: str | None = Field(
        None,
        alias="podIP",
        description="IP of that pod: where its worker is asked to stop should the pod vanish.",
    )
    lease_seconds: float | None = Field(
        None,
        description=(
            "The worker stops the attempt when the operator has not asked about it for this "
            "long; the operator counts an unreachable one over after it (plus a grace)."
        ),
    )
    result: dict[str, Any] | None = Field(
        None,
        json_schema_extra=_PRESERVE,
        description="What the task reported, such as the URL of a post.",
    )

    @property
    def ended(self) -> bool:
        """Whether the attempt has an outcome other than Running."""
        return self.outcome is not AttemptOutcome.RUNNING


class PhoneJobStatus(StatusModel):
    """The ledger of a job: what the operator decided and saw; every field may be missing."""

    phase: JobPhase | None = Field(None, description="Where the job stands, in one word.")
    reason: str | None = Field(
        None,
        description=(
            "Why the job is in its phase, in one CamelCase word (BindingNotRunning, "
            "DailyCapReached, NotBefore, WaitingForTurn, RetryBackoff, AccountHeld, ...)."
        ),
    )
    message: str | None = Field(
        None, description="The reason for people, such as: daily cap reached until 00:00 UTC."
    )
    attempt_count: int = Field(0, ge=0, description="How many attempts were started.")
    attempts: list[Attempt] = Field(default_factory=list, description="Every attempt, in order.")
    next_attempt_time: str | None = Field(
        None,
        json_schema_extra={"format": "date-time"},
        description="When the next attempt may start (a retry's backoff or notBefore).",
    )
    start_time: str | None = Field(
        None, json_schema_extra={"format": "date-time"}, description="When the first attempt began."
    )
    completion_time: str | None = Field(
        None, json_schema_extra={"format": "date-time"}, description="When the job finished."
    )
    observed_generation: int | None = Field(
        None, ge=0, description="The metadata.generation this status was computed from."
    )

    @property
    def current(self) -> Attempt | None:
        """The latest attempt, if any."""
        return self.attempts[-1] if self.attempts else None

    @property
    def finished(self) -> bool:
        """Whether the job succeeded or failed for good."""
        return self.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED)


class JobMeta(NamespacedMeta):
    """Metadata of a job, with the version its status writes are conditional on."""

    resource_version: str | None = Field(
        None, description="The object's version; a write against an older one is refused (409)."
    )
    finalizers: list[str] = Field(
        default_factory=list, description="What must happen before the job may go."
    )


class PhoneJob(NamespacedResource):
    """A PhoneJob as the API server returns it: metadata, spec and status."""

    # spec.params and status.result hold free-form JSON: parse a copy, not the body's objects.
    _copies_body: ClassVar[bool] = True

    metadata: JobMeta = Field(description="Identity of the job.")
    spec: PhoneJobSpec = Field(description="What the job asks for.")
    status: PhoneJobStatus = Field(default_factory=PhoneJobStatus, description="The job's ledger.")
