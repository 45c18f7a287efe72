"""The job desk: attempts the operator delivered, handed to the device session one at a time.

The job server (``job_server.py``) offers attempts here from its HTTP threads; the session takes
them as its ``JobSource`` and reports how each went. The desk keeps the worker's side of fencing:

- it holds one current attempt; another is refused (409) until the current one has ended, so at
  most one attempt runs on a worker;
- an attempt is known by its id: delivering the same id again answers the same record, and a
  result is recorded only for the attempt it belongs to;
- an attempt is never started after its ``notAfter`` time, and runs at most its deadline, so the
  operator can count an attempt it has not heard from as over once ``notAfter`` (plus a grace)
  has passed;
- an attempt delivered with a lease (``leaseSeconds``) runs only while the operator keeps asking
  about it: each delivery or ``GET`` of the attempt renews the lease, and once it has run out
  the attempt is not started, or a running one is stopped (the session abandons its task and
  quits the Appium session). A worker cut off from the operator (its pod force-deleted, its node
  partitioned) thus stops driving the phone within the lease, and the operator, which stopped
  renewing it, counts the attempt over after the lease plus a grace;
- a cancel stops a running attempt the same way. The operator cancels an attempt whose pod went
  away (force-deleted while its containers still run) as ``superseded``, before it starts the
  next one on the replacement pod: a worker that has that attempt is a leftover of a deleted
  pod, and stops altogether (``on_superseded``), so it does not reopen an Appium session that
  would fight the replacement's on the phone;
- an attempt that ended because its lease ran out holds the worker off the phone (``held``):
  the operator stopped asking, so the pod may have been deleted and its replacement may be
  driving the phone (the operator creates it once the lease plus the grace has passed). The
  session quits its Appium session, disconnects adb and does not connect again until the
  operator is heard from (any request with the binding's token: it asks about the attempts of
  the binding's current pod only) or the operator writes other ADB data into the Secret (a
  re-provision, which it does only for the binding's current pod).

While no attempt waits, the session's idle source (the periodic heartbeat) runs as before.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from phonefleet_worker.registry import TaskRegistry
from phonefleet_worker.task_api import AttemptInfo, JobContext, JobTask, MediaFile, TaskError
from phonefleet_worker.tasks import JobSource, Task, TaskContext, TaskResult

__all__ = ["FEATURES", "AttemptRecord", "AttemptRequest", "JobDesk", "MediaPusher"]

log = logging.getLogger(__name__)

MediaPusher = Callable[[str, Sequence[MediaFile]], Mapping[str, str]]
"""Pushes files to the device with this adb serial; returns each URL's path on the phone."""

FINAL_STATES = frozenset({"Succeeded", "AlreadyDone", "Failed", "TimedOut"})

FEATURES = ("lease", "superseded")
"""What this worker understands beyond the first protocol, advertised in its answer to
``POST /v1/validate`` (which the operator asks before each attempt): ``lease``, an attempt's
``leaseSeconds``; ``superseded``, a cancel that stops the worker altogether. The operator sends
a feature's fields only to a worker that names it, so a worker image of an older release keeps
working (docs/jobs.md, "Upgrading")."""


class AttemptRequest(BaseModel):
    """``POST /v1/attempts``: one attempt of a PhoneJob, as the operator delivers it."""

    # Fields of a later protocol are ignored (the job server logs their names), not refused:
    # a worker image older than the operator must keep taking its deliveries. What a task
    # takes is checked strictly, by the task's own Params model.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )

    job: str = Field(min_length=1, description="namespace/name of the PhoneJob.")
    job_uid: str = Field(min_length=1, description="The PhoneJob's uid.")
    number: int = Field(ge=1, description="The attempt's number.")
    id: str = Field(min_length=1, max_length=128, description="The attempt's fencing id.")
    task: str = Field(min_length=1, description="The task to run.")
    params: dict[str, Any] = Field(default_factory=dict, description="The task's params.")
    deadline_seconds: float = Field(gt=0, description="Longest the attempt may run.")
    not_after: float = Field(description="Unix time after which the attempt must not start.")
    lease_seconds: float | None = Field(
        None,
        gt=0,
        description=(
            "Stop the attempt when the operator has not asked about it for this long (each "
            "delivery or GET of it renews the lease); None: no lease."
        ),
    )

    @classmethod
    def unknown_fields(cls, body: Mapping[str, Any]) -> list[str]:
        """The names in a delivery's body that this worker does not know (it ignores them)."""
        known = set(cls.model_fields) | {
            field.alias for field in cls.model_fields.values() if field.alias
        }
        return sorted(str(key) for key in body if key not in known)


@dataclasses.dataclass
class AttemptRecord:
    """What the worker knows of one attempt; ``state`` moves Queued -> Running -> a final one."""

    request: AttemptRequest
    renewed: float
    """When the operator last delivered or asked about it (the desk's monotonic clock)."""
    state: str = "Queued"
    error_class: str | None = None
    message: str | None = None
    result: dict[str, Any] | None = None
    cancelled: bool = False
    """The operator cancelled it: a running task is stopped, not just asked to return."""
    told: bool = False
    """The operator has read the record since it ended."""

    @property
    def final(self) -> bool:
        """Whether the attempt has ended."""
        return self.state in FINAL_STATES

    def to_json(self) -> dict[str, Any]:
        """The record as ``GET /v1/attempts/{id}`` answers it."""
        body: dict[str, Any] = {
            "id": self.request.id,
            "number": self.request.number,
            "jobUid": self.request.job_uid,
            "state": self.state,
        }
        for key, value in (
            ("errorClass", self.error_class),
            ("message", self.message),
            ("result", self.result),
        ):
            if value is not None:
                body[key] = value
        return body


class AttemptTask:
    """Adapts one delivered attempt to the session's ``Task``: check, push media, run."""

    def __init__(
        self,
        record: AttemptRecord,
        task: JobTask[Any],
        *,
        deadline_seconds: float,
        media: MediaPusher | None,
        stop_reason: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.record = record
        self.name = record.request.task
        self.deadline_seconds = deadline_seconds
        self._task = task
        self._media = media
        self._cancel = threading.Event()
        self._stop_reason = stop_reason

    def cancel(self) -> None:
        """Ask the task to return at once (its deadline passed or the operator cancelled it)."""
        self._cancel.set()

    def abandon_reason(self) -> str | None:
        """Why the session must stop this attempt now (cancelled, lease run out), else None."""
        reason = self._stop_reason()
        if reason is not None:
            self._cancel.set()  # a task that watches its cancel event may still return in time
        return reason

    def run(self, context: TaskContext) -> TaskResult:
        """Run the attempt; every outcome, failures included, comes back as a TaskResult."""
        request = self.record.request
        info = AttemptInfo(request.job, request.job_uid, request.number, request.id)
        params = self._task.Params.model_validate(request.params)
        job = JobContext(session=context, attempt=info, cancel=self._cancel)
        try:
            done = self._task.is_done(job, params)
            if done is not None:
                return self._result("AlreadyDone", result=dict(done))
            files = self._task.media(params)
            if files:
                if self._media is None:
                    raise TaskError("this worker cannot push media files")
                pushed = self._media(context.device.serial, files)
                job = dataclasses.replace(job, media=dict(pushed))
            result = self._task.run(job, params)
        except TaskError as exc:
            return self._result("Failed", error_class=exc.error_class, message=str(exc))
        return self._result("Succeeded", result=dict(result))

    def _result(self, state: str, **fields: Any) -> TaskResult:
        detail = {"attemptId": self.record.request.id, "state": state, **fields}
        return TaskResult(self.name, ok=state in ("Succeeded", "AlreadyDone"), detail=detail)


class JobDesk(JobSource):
    """The attempts of one worker, shared by the job server's threads and the session."""

    def __init__(
        self,
        registry: TaskRegistry,
        *,
        idle: JobSource | None = None,
        media: MediaPusher | None = None,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        on_superseded: Callable[[str], None] | None = None,
        keep: int = 100,
        delivery_poll: float = 0.5,
    ) -> None:
        self.registry = registry
        self._idle = idle
        # An idle session sleeps until its next own duty (up to the Secret poll, 5 s): it looks
        # for a delivered attempt this often, so an attempt does not lose that to its deadline.
        self._delivery_poll = delivery_poll
        self._media = media
        self._wall = wall_clock
        self._clock = clock
        self._on_superseded = on_superseded
        self._keep = keep
        self._lock = threading.Lock()
        self._told = threading.Condition(self._lock)
        self._stopping: str | None = None
        self._records: dict[str, AttemptRecord] = {}
        self._current: AttemptRecord | None = None
        self._running: AttemptTask | None = None
        # Why the worker keeps off the phone: an attempt's lease ran out and the operator has
        # not been heard from since (see ``held``).
        self._hold: str | None = None
        self.runs: list[str] = []
        """Ids of the attempts whose task was started, in order (the bench counts double runs)."""

    # ------------------------------------------------------------ the job server's side

    def offer(self, request: AttemptRequest) -> tuple[int, dict[str, Any]]:
        """Take an attempt: (HTTP status, body). 202 queued, 200 known, 409 busy, 422 bad input."""
        with self._lock:
            known = self._records.get(request.id)
            if known is not None:
                if known.request != request:
                    return 409, {"message": f"attempt {request.id} was delivered with other data"}
                self._renew(known)
                self._note_told(known)
                return 200, known.to_json()
            if self._stopping is not None:
                return 409, {"message": f"the worker is stopping ({self._stopping})"}
            problem = self.registry.problem(request.task, request.params)
            if problem is not None:
                return 422, {"errorClass": "Permanent", "message": problem}
            current = self._current
            if current is not None and not current.final:
                return 409, {
                    "message": f"busy with attempt {current.request.number} of "
                    f"{current.request.job}",
                    "current": current.to_json(),
                }
            record = AttemptRecord(request, renewed=self._clock())
            self._records[request.id] = record
            self._current = record
            self._forget_old()
            log.info("Accepted attempt %d of job %s (%s)", request.number, request.job, request.id)
            return 202, record.to_json()

    def lookup(self, attempt_id: str, *, renew: bool = False) -> dict[str, Any] | None:
        """The record of an attempt, or None when this worker never had it (or forgot it).

        ``renew``: the operator asks (``GET /v1/attempts/{id}``), which renews the lease.
        """
        with self._lock:
            record = self._records.get(attempt_id)
            if record is None:
                return None
            if renew:
                self._renew(record)
                self._note_told(record)
            return record.to_json()

    def cancel(self, attempt_id: str, *, superseded: bool = False) -> dict[str, Any] | None:
        """Cancel an attempt: a queued one never starts, a running one is stopped (its task is
        asked to return, and the session abandons it at its next look). ``superseded``: its pod
        is gone; this worker, which has the attempt, is told to stop altogether."""
        with self._lock:
            record = self._records.get(attempt_id)
            if record is None:
                return None  # another incarnation (such as the replacement pod): nothing to stop
            if superseded and self._on_superseded is not None:
                self._on_superseded("cancelled by the operator: its pod went away")
            if record.state == "Queued":
                self._finish(record, "Failed", error_class="Retryable", message="cancelled")
            elif record.state == "Running":
                record.cancelled = True
                if self._running is not None and self._running.record is record:
                    self._running.cancel()
            self._note_told(record)
            return record.to_json()

    def stop(self, reason: str) -> None:
        """The worker stops (its session has ended): take no attempt any more, and end a queued
        one, so that the operator hears how the last attempt ended (see ``wait_told``)."""
        with self._lock:
            self._stopping = reason
            current = self._current
            if current is not None and current.state == "Queued":
                message = f"the worker stopped ({reason}) before it started"
                self._finish(current, "Failed", error_class="Retryable", message=message)

    def wait_told(self, timeout: float) -> bool:
        """Wait until the operator has read how the current attempt ended (True), or ``timeout``
        seconds; True at once when there is nothing to tell."""
        with self._told:
            return self._told.wait_for(
                lambda: self._current is None or not self._current.final or self._current.told,
                timeout,
            )

    def heard(self) -> None:
        """The operator made a request with the binding's token: it still runs this pod's jobs,
        so a hold after a lapsed lease ends."""
        with self._lock:
            if self._hold is not None:
                log.info("Heard from the operator again: the worker may drive the phone")
            self._hold = None

    # ------------------------------------------------------------ the session's side

    def held(self) -> str | None:
        """Why the worker must not connect to the phone now (an attempt's lease ran out and the
        operator has not been heard from since), else None."""
        with self._lock:
            return self._hold

    def release_hold(self) -> None:
        """The operator wrote other ADB data for this pod: the hold ends as on a request."""
        self.heard()

    def next_job(self, now: float) -> Task | None:
        """The queued attempt (started now), else the idle task when it is due."""
        with self._lock:
            record = self._current
            if record is not None and record.state == "Queued":
                left = record.request.not_after - self._wall()
                lapsed = self._lease_lapsed(record)
                if left <= 0 or lapsed is not None:
                    self._finish(
                        record,
                        "TimedOut",
                        error_class="Retryable",
                        message=f"not started: {lapsed or 'its deadline passed'}",
                    )
                else:
                    task = self.registry.tasks[record.request.task]
                    deadline = min(task.deadline_seconds, record.request.deadline_seconds, left)
                    record.state = "Running"
                    self.runs.append(record.request.id)
                    self._running = AttemptTask(
                        record,
                        task,
                        deadline_seconds=deadline,
                        media=self._media,
                        stop_reason=lambda: self._stop_reason(record),
                    )
                    return self._running
        return self._idle.next_job(now) if self._idle is not None else None

    def seconds_until_next(self, now: float) -> float:
        """0 while an attempt waits, else the idle source's wait, at most the delivery poll."""
        with self._lock:
            if self._current is not None and self._current.state == "Queued":
                return 0.0
        idle = self._idle.seconds_until_next(now) if self._idle is not None else 1.0
        return min(idle, self._delivery_poll)

    def report(self, result: TaskResult, now: float) -> None:
        """Record an attempt's outcome (only on the attempt it belongs to), or pass it on."""
        with self._lock:
            running = self._running
            if running is None or result.task != running.name:
                handled = False
            else:
                handled = True
                self._running = None
                self._record_outcome(running.record, result)
        if not handled and self._idle is not None:
            self._idle.report(result, now)

    @property
    def running_deadline(self) -> float | None:
        """The running attempt's deadline in seconds (None when none runs)."""
        running = self._running
        return None if running is None else running.deadline_seconds

    # ------------------------------------------------------------ helpers

    def _note_told(self, record: AttemptRecord) -> None:
        if record.final and not record.told:
            record.told = True
            self._told.notify_all()

    def _renew(self, record: AttemptRecord) -> None:
        # A lease that has run out stays out: the operator may already count the attempt over.
        if not record.final and self._lease_lapsed(record) is None:
            record.renewed = self._clock()

    def _lease_lapsed(self, record: AttemptRecord) -> str | None:
        lease = record.request.lease_seconds
        if lease is None or self._clock() - record.renewed <= lease:
            return None
        return f"its lease ran out (no word from the operator for {lease:g} s)"

    def _stop_reason(self, record: AttemptRecord) -> str | None:
        """Why a running attempt must stop now, else None (asked by the session's wait)."""
        with self._lock:
            if record.cancelled:
                return "cancelled by the operator"
            return self._lease_lapsed(record)

    def _record_outcome(self, record: AttemptRecord, result: TaskResult) -> None:
        detail = dict(result.detail)
        if detail.get("attemptId") == record.request.id:
            self._finish(
                record,
                str(detail["state"]),
                error_class=detail.get("error_class"),
                message=detail.get("message"),
                result=detail.get("result"),
            )
        elif detail.get("timedOut"):
            self._finish(record, "TimedOut", error_class="Retryable", message=detail.get("error"))
        else:  # the session caught a device or session fault around the task
            self._finish(record, "Failed", error_class="Retryable", message=detail.get("error"))

    def _finish(self, record: AttemptRecord, state: str, **fields: Any) -> None:
        lapsed = self._lease_lapsed(record)
        if lapsed is not None:
            self._hold = (
                f"attempt {record.request.id} ended as {lapsed} and the operator has not asked "
                "since: its pod may have been replaced"
            )
        record.state = state
        record.error_class = fields.get("error_class")
        record.message = fields.get("message")
        record.result = fields.get("result")
        log.info(
            "Finished attempt %d of job %s: %s%s",
            record.request.number,
            record.request.job,
            state,
            f" ({record.error_class}: {record.message})" if record.error_class else "",
        )

    def _forget_old(self) -> None:
        while len(self._records) > self._keep:
            oldest = next(iter(self._records))
            if self._records[oldest] is self._current:
                return
            del self._records[oldest]
