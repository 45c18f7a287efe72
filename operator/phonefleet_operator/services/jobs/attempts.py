"""A binding's attempts, from start to end: ask the worker, write the attempt, deliver it,
follow it, fence it when its pod went away (or its binding did), and end it in the ledger.

Each step writes the job's status through :class:`~.writes.JobWrites` (conditional on the
version read) before the worker hears of what it wrote, and keeps per binding what this process
heard of the running attempt: when its worker last answered for it (the base of its lease,
services/jobs/fencing.py), and what the binding's worker image takes (services/jobs/protocol.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from phonefleet_operator.constants import JOB_FINALIZER
from phonefleet_operator.k8s import KubeGateway
from phonefleet_operator.k8s.jobs import JobGateway
from phonefleet_operator.models import (
    Attempt,
    AttemptOutcome,
    ErrorClass,
    JobPhase,
    Phase,
    PhoneBinding,
    PhoneJob,
)
from phonefleet_operator.render import adb_secret_name, pod_name
from phonefleet_operator.services.jobs import fencing, ledger, protocol
from phonefleet_operator.services.jobs.backfill import TokenBackfill
from phonefleet_operator.services.jobs.conditions import ACCOUNT_HOLD_ANNOTATION
from phonefleet_operator.services.jobs.endpoints import WorkerEndpoints
from phonefleet_operator.services.jobs.housekeeping import Housekeeping
from phonefleet_operator.services.jobs.schedule import BindingView
from phonefleet_operator.services.jobs.tokens import JobTokens
from phonefleet_operator.services.jobs.writes import JobWrites
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.settings import JobSettings
from phonefleet_operator.workers import Answer, WorkerClient, WorkerUnreachable

__all__ = ["WORKER_WITHOUT_IP", "Attempts", "binding_key_of", "refusal_message"]

#: Why a job waits for a worker pod that is Ready but has no pod IP to deliver to.
WORKER_WITHOUT_IP = "WorkerWithoutIP"

log = logging.getLogger(__name__)

# The worker's answers when the token it reads from its Secret is missing (503) or another (401).
_NO_TOKEN = frozenset({401, 503})


def binding_key_of(binding: PhoneBinding) -> tuple[str, str]:
    """(namespace, name) of the binding: the key of its job state."""
    return binding.namespace, binding.name


class Attempts:
    """Starts, follows, fences and ends the attempts of every binding's jobs."""

    def __init__(
        self,
        *,
        kube: KubeGateway,
        api: JobGateway,
        workers: WorkerClient,
        tokens: JobTokens,
        pods: ObservedPods,
        settings: JobSettings,
        endpoints: WorkerEndpoints,
        writes: JobWrites,
        housekeeping: Housekeeping,
        backfill: TokenBackfill | None,
        clock: Callable[[], datetime],
        disabled: Callable[[], str | None],
        on_fenced: Callable[[str], object],
    ) -> None:
        self._kube = kube
        self._api = api
        self._workers = workers
        self._tokens = tokens
        self._pods = pods
        self._settings = settings
        self._endpoints = endpoints
        self._writes = writes
        self._housekeeping = housekeeping
        self._backfill = backfill
        self._clock = clock
        self._disabled = disabled
        self._on_fenced = on_fenced
        # Per binding with a running attempt: its id and when its worker last answered for it
        # (or when this process first followed it), the base of its lease (services/jobs/fencing).
        self.heard: dict[tuple[str, str], tuple[str, datetime]] = {}
        # Per binding (kept while it exists, not only while it has a loop: a loop ends between
        # jobs): the worker pod last warned of as older than this operator.
        self._old_workers: dict[tuple[str, str], str] = {}
        # Per binding with a loop: whether the worker last asked takes leases, and its pod (the
        # binding's WorkerImageCurrent condition follows it; services/jobs/protocol.py).
        self.worker_images: dict[tuple[str, str], tuple[bool, str]] = {}
        # Per binding deleted while an attempt of its jobs ran: its uid (for the job token to
        # tell the old worker with), while that attempt is fenced (JobService.check_orphan).
        self.gone: dict[tuple[str, str], str] = {}
        # Per binding whose attempt was ended while its worker could not be reached: that
        # pod's uid and the attempt's id. A worker whose lease ran out keeps off the phone until
        # the operator asks it anything; it is asked each pass until it answers (release_held).
        self.unreached: dict[tuple[str, str], tuple[str, str]] = {}
        # Per binding: the running attempt its worker took (a 200 or 202 to its delivery, or a
        # 200 to a question about it). Its worker answering 404 later lost it (its container
        # restarted): the attempt ran and is over; a delivery, which runs it again, is only for
        # an attempt the worker never took.
        self.taken: dict[tuple[str, str], str] = {}
        # Per binding whose attempt's Running line is being written: the binding's uid. The
        # jobs view learns of the attempt only from the write's answer; until then ``unsettled``
        # learns of it from here (JobService._running_attempt).
        self.beginning: dict[tuple[str, str], str] = {}
        # Per binding: the attempt of a deleted job last told on the binding as cancelled.
        self.cancelled: dict[tuple[str, str], str] = {}

    def forget(self, key: tuple[str, str]) -> None:
        """Drop what was kept of the binding's attempts (its loop ended). Which worker pod was
        warned of stays until the binding is deleted (``forget_binding``): the next job's loop
        must not warn of that pod again."""
        self.unreached.pop(key, None)
        self.taken.pop(key, None)
        self.heard.pop(key, None)
        self.worker_images.pop(key, None)
        self.gone.pop(key, None)
        self.cancelled.pop(key, None)

    def forget_binding(self, key: tuple[str, str]) -> None:
        """Drop all that was kept of a deleted binding."""
        self.forget(key)
        self._old_workers.pop(key, None)

    def token(self, binding: PhoneBinding) -> str:
        """The binding's job token."""
        return self._tokens.token_for(binding.namespace, binding.name, binding.uid)

    # ------------------------------------------------------------ starting a job

    async def start(
        self,
        binding: PhoneBinding,
        view: BindingView,
        job: PhoneJob,
        now: datetime,
        letting_go: Callable[[], str | None] = lambda: None,
    ) -> None:
        """Start the job's next attempt on the binding's worker, or say why it waits.

        ``letting_go`` says why the binding, as last seen, is letting its worker go (suspended,
        deleted); asked right before the attempt's Running line is written, after the worker
        validated it. The pass decided from an older body: the binding's own pass may have
        asked ``unsettled`` meanwhile, found no attempt, and stopped the phone under the worker
        (the suspend step does not wait for the pod to be gone). Then no attempt begins."""
        write = self._writes.write
        disabled = self._disabled()
        if disabled is not None:
            await write(job, ledger.wait(job, "JobsDisabled", disabled))
            return
        base, token = self._endpoints.of_binding(binding), self.token(binding)
        if base is None or not token or view.pod_uid is None:
            if base is None and view.pod_uid is not None:
                await self._wait_without_ip(binding, job)
            else:
                await write(job, ledger.wait(job, "BindingNotRunning", "worker not reachable"))
            return
        try:
            checked = await self._workers.validate(base, token, job.spec.task, job.spec.params)
        except WorkerUnreachable as error:
            await write(job, ledger.wait(job, "WorkerUnreachable", str(error)))
            return
        if checked.status != 200:
            message = refusal_message(checked)
            if checked.status in _NO_TOKEN and await self._write_token(binding):
                message = (
                    f"the worker has no job token, or another (it answered {checked.status}): "
                    f"wrote it into Secret {adb_secret_name(binding.name)}; the worker reads it "
                    "once the kubelet updates the mounted Secret"
                )
            await write(job, ledger.wait(job, "WorkerRefused", message))
            return
        if not checked.body.get("ok"):
            message = str(checked.body.get("message") or "the worker refused the job")
            reason = "UnknownTask" if message.startswith("unknown task") else "InvalidParams"
            written = await write(job, ledger.refuse(job, reason, message, now))
            if written is not None:
                self._writes.event(written, binding, warning=True, reason=reason, message=message)
            return
        # A worker of an earlier release refuses a delivery with fields it does not know: send
        # the lease only to one that names it (services/jobs/protocol.py).
        leases = protocol.LEASE in protocol.features(checked.body)
        if not leases:
            self._warn_old_worker(binding, view.pod_uid)
        self.worker_images[binding_key_of(binding)] = (leases, view.pod_uid)
        started = await self._begin(binding, view, job, now, leases=leases, letting_go=letting_go)
        if started is None:
            return  # the job changed meanwhile, or the binding lets its worker go: decide again
        attempt = started.status.current
        if attempt is None:
            raise RuntimeError(f"PhoneJob {started.namespaced_name} lost the attempt it started")
        self.heard[binding_key_of(binding)] = (attempt.id, now)
        self._writes.event(
            started,
            binding,
            reason="StartedAttempt",
            message=f"Started attempt {attempt.number} of PhoneJob {started.name} "
            f"({started.spec.task}) on pod {pod_name(binding.name)}"
            + ("" if leases else " without a lease (the worker image predates them)"),
            # The binding hears how each attempt ended; its start is the job's own story.
            on_binding=False,
        )
        await self._deliver(binding, started, base, token)

    async def _begin(
        self,
        binding: PhoneBinding,
        view: BindingView,
        job: PhoneJob,
        now: datetime,
        *,
        leases: bool,
        letting_go: Callable[[], str | None],
    ) -> PhoneJob | None:
        """Write the job's next attempt, Running, after its finalizer; the job as written, None
        when it changed meanwhile (deleted, perhaps: the next pass decides again) or when the
        binding lets its worker go.

        The finalizer first: from the moment an attempt may run, a deleted job stays until the
        attempt ended or was fenced (``JobWrites.hold``). Then ``letting_go``, asked with no
        await before the write is marked in ``beginning``: a binding suspended or deleted since
        the pass decided gets no attempt (the next pass, on its new status, says why).
        """
        held: list[PhoneJob | None] = [None]

        async def hold() -> None:
            held[0] = await self._writes.hold(job)

        what = f"set its finalizer {JOB_FINALIZER}"
        if not await self._housekeeping.run(job, what, hold, now):
            # Refused (RBAC of an earlier release: no patch on phonejobs), or backing off.
            message = (
                f"the operator may not set its finalizer {JOB_FINALIZER} on the job: grant it "
                "patch on phonejobs.phonefleet.dev (manifests/rbac/tenant_role.yaml); the job "
                "starts once it may"
            )
            await self._writes.write(job, ledger.wait(job, "FinalizerRefused", message))
            return None
        if held[0] is None or view.pod_uid is None:
            return None
        why = letting_go()
        if why:
            log.info("Did not start PhoneJob %s: its binding %s", job.namespaced_name, why)
            return None
        key = binding_key_of(binding)
        self.beginning[key] = binding.uid
        try:
            return await self._writes.write(
                held[0],
                ledger.begin_attempt(
                    held[0],
                    pod_uid=view.pod_uid,
                    binding_uid=binding.metadata.uid,
                    pod_name=pod_name(binding.name),
                    now=now,
                    pod_ip=view.pod_ip,
                    lease_seconds=self._settings.lease_seconds if leases else None,
                ),
            )
        finally:
            self.beginning.pop(key, None)

    async def _wait_without_ip(self, binding: PhoneBinding, job: PhoneJob) -> None:
        """The worker pod is Ready with no pod IP: there is no address to deliver to. No kubelet
        reports that; a simulated node does (KWOK's pods run nothing), and the job waits saying
        so, with one Event when it starts to, rather than "not reachable"."""
        pod = pod_name(binding.name)
        message = (
            f"worker pod {pod} is Ready with no pod IP: nothing runs there to take the job (a "
            "simulated node, such as the KWOK node of `phonefleet dev up`, runs no containers; "
            "a real node does: `make demo`)"
        )
        first = job.status.reason != WORKER_WITHOUT_IP
        written = await self._writes.write(job, ledger.wait(job, WORKER_WITHOUT_IP, message))
        if first and written is not None:
            self._writes.event(
                written,
                binding,
                warning=True,
                reason=WORKER_WITHOUT_IP,
                message=f"PhoneJob {job.name} waits: {message}",
                on_binding=False,
            )

    async def _deliver(self, binding: PhoneBinding, job: PhoneJob, base: str, token: str) -> None:
        attempt = job.status.current
        if attempt is None:
            raise RuntimeError(f"PhoneJob {job.namespaced_name} has no attempt to follow")
        try:
            answer = await self._workers.deliver(base, token, ledger.delivery(job, attempt))
        except WorkerUnreachable as error:
            log.info("Could not deliver attempt %s yet: %s", attempt.id, error)
            return  # it is still ours to deliver: the next poll finds the worker without it
        if answer.status in (200, 202):
            self._heard_of(binding, attempt)
            self.taken[binding_key_of(binding)] = attempt.id
        if answer.status == 422:
            ending = ledger.Ending(
                AttemptOutcome.FAILED,
                error_class=ErrorClass.PERMANENT,
                message=str(answer.body.get("message", "the worker refused the attempt")),
            )
            await self._end(binding, job, attempt.id, ending)
        elif answer.status == 400:
            # The worker cannot read the delivery (another release's protocol): it did not take
            # the attempt, and every re-delivery, the same bytes, would draw the same answer.
            ending = ledger.Ending(
                AttemptOutcome.FAILED,
                error_class=ErrorClass.RETRYABLE,
                message=f"the worker could not read the delivery ({refusal_message(answer)}); "
                "is its image of another release than this operator?",
            )
            await self._end(binding, job, attempt.id, ending)
        elif answer.status not in (200, 202, 409):
            log.warning("Worker refused attempt %s: %s", attempt.id, refusal_message(answer))

    async def cancel_deleted(self, job: PhoneJob, binding_body: Mapping[str, Any] | None) -> None:
        """A job whose attempt runs left the API server (it did not hold ``JOB_FINALIZER``: its
        attempt was started by an operator of an earlier release, or a person removed the
        finalizer): tell its worker to stop the attempt now. A job that holds the finalizer is
        cancelled by its binding's loop instead (``follow``), and stays until its attempt ended.

        Deleting is how a person cancels a job. Without this the attempt ran on (a post made
        after its job was deleted) until the worker's lease lapsed, as nobody asked about it
        any more, and the binding's next job, refused by the busy worker (409) meanwhile, was
        said to be Running. When the attempt's pod went away (force-deleted, its containers
        may still run), the worker at the attempt's recorded address is told it is superseded
        and stops altogether, as for a fenced attempt: the deleted job leaves the operator's
        view, so the replacement pod's gate no longer waits for this attempt. A worker that
        cannot be reached stops at its lease.
        """
        attempt = job.status.current
        if attempt is None or attempt.ended:
            return
        if binding_body is None:
            binding_body = await self._kube.get_binding(job.namespace, job.spec.binding_name)
            if binding_body is None:
                return  # its binding is gone too: fenced by the lease (check_orphan's case)
        binding = PhoneBinding.from_body(binding_body)
        pod = self._pods.get(binding.namespace, pod_name(binding.name))
        gone = (pod or {}).get("metadata", {}).get("uid") != attempt.pod_uid
        base = (
            self._endpoints.of_attempt(binding_key_of(binding), attempt)
            if gone
            else self._endpoints.of_binding(binding, pod)
        )
        if base is None:
            return
        try:
            answer = await self._workers.cancel(
                base, self.token(binding), attempt.id, superseded=gone
            )
        except WorkerUnreachable as error:
            log.info(
                "Could not cancel attempt %d of deleted PhoneJob %s (its lease ends it): %s",
                attempt.number,
                job.namespaced_name,
                error,
            )
            return
        if not 200 <= answer.status < 300:
            log.warning(
                "Worker refused to cancel attempt %d of deleted PhoneJob %s: %s",
                attempt.number,
                job.namespaced_name,
                refusal_message(answer),
            )
            return
        self._cancelled_once(binding, job, attempt, gone=gone)

    # ------------------------------------------------------------ following a running job

    async def follow(
        self, binding: PhoneBinding, view: BindingView, job: PhoneJob, now: datetime
    ) -> None:
        """Ask the worker how the running attempt goes; end it, or fence it (its pod went)."""
        attempt = job.status.current
        if attempt is None:
            raise RuntimeError(f"PhoneJob {job.namespaced_name} has no attempt to follow")
        pod = self._pods.get(binding.namespace, pod_name(binding.name))
        live_uid = (pod or {}).get("metadata", {}).get("uid")
        if live_uid != attempt.pod_uid or job.metadata.deletion_timestamp is not None:
            # The pod that had the attempt is gone (deleted, or replaced by a new incarnation),
            # or the job was deleted (its finalizer keeps it): stop it, never renew its lease.
            await self._stop_unasked(binding, job, attempt, now, pod)
            return
        deadline = ledger.not_after(job, attempt).timestamp() + self._settings.grace_seconds
        overdue = now.timestamp() > deadline
        base, token = self._endpoints.of_binding(binding), self.token(binding)
        if base is None:
            return  # the pod has no address (yet); it is the same pod: keep waiting
        try:
            answer = await self._workers.attempt(base, token, attempt.id)
        except WorkerUnreachable:
            if overdue:
                await self._end(
                    binding,
                    job,
                    attempt.id,
                    ledger.Ending(
                        AttemptOutcome.TIMED_OUT,
                        message="the worker did not answer before the deadline passed",
                    ),
                )
                self.unreached[binding_key_of(binding)] = (live_uid, attempt.id)
            return
        if answer.status == 200:
            self._heard_of(binding, attempt)
            self.taken[binding_key_of(binding)] = attempt.id
        if answer.status == 404:
            took = self.taken.get(binding_key_of(binding)) == attempt.id
            if now < ledger.not_after(job, attempt) and not took:
                await self._deliver(binding, job, base, token)  # the delivery did not arrive
            else:
                message = (
                    "the worker took it and then no longer knew it (its container restarted)"
                    if took
                    else "the worker does not know it"
                )
                await self._end(
                    binding, job, attempt.id, ledger.Ending(AttemptOutcome.LOST, message=message)
                )
            return
        ending = fencing.outcome_of(answer)
        if ending is not None:
            await self._end(binding, job, attempt.id, ending)
        elif overdue:
            try:
                await self._workers.cancel(base, token, attempt.id)
            except WorkerUnreachable:  # gone quiet since it answered: it stops at its deadline
                self.unreached[binding_key_of(binding)] = (live_uid, attempt.id)
            await self._end(
                binding,
                job,
                attempt.id,
                ledger.Ending(AttemptOutcome.TIMED_OUT, message="still running past its deadline"),
            )

    async def release_held(self, binding: PhoneBinding) -> bool:
        """Ask the worker whose attempt ended unreached about it again: the question itself
        ends the hold its lapsed lease put it in (any request with the binding's token), so it
        drives the phone again as soon as it can be reached, not at the next re-provision of
        ADB. True while it is still to be asked (its pod unchanged, not reached yet)."""
        key = binding_key_of(binding)
        unreached = self.unreached.get(key)
        if unreached is None:
            return False
        pod_uid, attempt_id = unreached
        pod = self._pods.get(binding.namespace, pod_name(binding.name))
        if pod is None or pod["metadata"].get("uid") != pod_uid:
            del self.unreached[key]  # another pod's worker: nothing holds it
            return False
        base = self._endpoints.of_binding(binding, pod)
        if base is None:
            return True
        try:
            await self._workers.attempt(base, self.token(binding), attempt_id)
        except WorkerUnreachable:
            return True
        del self.unreached[key]
        log.info(
            "Reached the worker of Pod %s/%s again after attempt %s ended: it may drive the "
            "phone again",
            binding.namespace,
            pod_name(binding.name),
            attempt_id,
        )
        return False

    async def _stop_unasked(
        self,
        binding: PhoneBinding,
        job: PhoneJob,
        attempt: Attempt,
        now: datetime,
        pod: dict[str, Any] | None,
    ) -> None:
        """Stop an attempt that is no longer to be asked about (a question renews its lease):
        fence it where its pod went away; where its job was deleted, cancel it on the binding's
        pod on every pass (a cancel renews nothing) until its worker says it ended, does not
        know it, or its lease or deadline has run out. The job (its finalizer) stays until
        then, so the gate of a replacement pod keeps waiting for it if the pod is force-deleted
        meanwhile."""
        if (pod or {}).get("metadata", {}).get("uid") != attempt.pod_uid:
            await self._fence(binding, job, attempt, now)
            return
        key = binding_key_of(binding)
        until = fencing.fenced_at(
            job,
            attempt,
            last_heard=self._last_heard(key, attempt, now),
            grace=self._settings.grace_seconds,
        )
        base, answer = self._endpoints.of_binding(binding, pod), None
        if base is not None:
            with contextlib.suppress(WorkerUnreachable):
                answer = await self._workers.cancel(base, self.token(binding), attempt.id)
        if answer is not None and 200 <= answer.status < 300:
            self._cancelled_once(binding, job, attempt, gone=False)
        ending = fencing.ending_of(answer, until=until, now=now, why="the job was deleted")
        if ending is None:
            await self._writes.write(job, ledger.cancelling(job, pod_name(binding.name), until))
            return
        await self._end(binding, job, attempt.id, ending)

    def _cancelled_once(
        self, binding: PhoneBinding, job: PhoneJob, attempt: Attempt, *, gone: bool
    ) -> None:
        """Tell the binding, once per attempt, that the attempt of its deleted job was
        cancelled on its worker."""
        key = binding_key_of(binding)
        if self.cancelled.get(key) == attempt.id:
            return
        self.cancelled[key] = attempt.id
        self._writes.binding_event(
            binding,
            reason="CancelledAttempt",
            message=f"Cancelled attempt {attempt.number} of PhoneJob {job.name} on "
            f"{'the pod that went away, ' if gone else ''}pod {pod_name(binding.name)}: the "
            "job was deleted",
        )
        log.info(
            "Cancelled attempt %d of PhoneJob %s on pod %s: the job was deleted",
            attempt.number,
            job.namespaced_name,
            pod_name(binding.name),
        )

    # ------------------------------------------------------------ fencing

    async def _fence(
        self, binding: PhoneBinding, job: PhoneJob, attempt: Attempt, now: datetime
    ) -> None:
        """End an attempt whose pod went away only once it runs nowhere (see fencing.py).

        The pod may have been force-deleted with its containers still running: the worker at
        the attempt's address is told to stop it, and until it says the attempt ended (or does
        not know it), or the attempt's lease or deadline has run out, the job stays Running, so
        no attempt of any job starts on the replacement pod.
        """
        until = fencing.fenced_at(
            job,
            attempt,
            last_heard=self._last_heard(binding_key_of(binding), attempt, now),
            grace=self._settings.grace_seconds,
        )
        base, answer = self._endpoints.of_attempt(binding_key_of(binding), attempt), None
        if base is not None:
            # A cancel, not a GET: it does not renew the lease of a worker we lose again. With
            # the token of the binding the attempt ran for: one created again under its name
            # has another uid, hence another token, which the old worker refuses (401).
            uid = attempt.binding_uid or binding.uid
            token = self._tokens.token_for(binding.namespace, binding.name, uid)
            with contextlib.suppress(WorkerUnreachable):
                answer = await self._workers.cancel(base, token, attempt.id, superseded=True)
        deleted = job.metadata.deletion_timestamp is not None
        if deleted and answer is not None and 200 <= answer.status < 300:
            self._cancelled_once(binding, job, attempt, gone=True)
        ending = fencing.ending_of(answer, until=until, now=now)
        if ending is None:
            status = ledger.fencing(job, pod_name(binding.name), until)
            if deleted:
                status.message = f"the job was deleted; {status.message}; the job goes then"
            written = await self._writes.write(job, status)
            if written is not None and job.status.reason != "Fencing":
                self._writes.event(
                    written,
                    binding,
                    warning=True,
                    reason="FencingAttempt",
                    message=f"PhoneJob {job.name}: {status.message}",
                )
            return
        await self._end(binding, job, attempt.id, ending)
        self._on_fenced(binding.uid)  # its reconcile may create the pod it held back now

    async def fence_orphan(
        self, job: PhoneJob, attempt: Attempt, keep_asking: Callable[[tuple[str, str]], None]
    ) -> PhoneJob | None:
        """Fence a running attempt of a job whose binding is gone; the job as written (None
        when a write lost to a newer version). While it is fenced, ``keep_asking`` is told the
        binding's key (its loop asks again)."""
        key = (job.namespace, job.spec.binding_name)
        now = self._clock()
        until = fencing.fenced_at(
            job,
            attempt,
            last_heard=self._last_heard(key, attempt, now),
            grace=self._settings.grace_seconds,
        )
        # The uid from the binding's deletion event, else (an operator started after it) the one
        # the attempt recorded: without it there is no token to tell the old worker with.
        uid = self.gone.get(key) or attempt.binding_uid
        base, answer = self._endpoints.of_attempt(key, attempt), None
        if base is not None and uid:
            token = self._tokens.token_for(key[0], key[1], uid)
            with contextlib.suppress(WorkerUnreachable):
                answer = await self._workers.cancel(base, token, attempt.id, superseded=True)
        ending = fencing.ending_of(answer, until=until, now=now)
        if ending is None:
            status = ledger.fencing(job, pod_name(key[1]), until)
            status.message = (
                f"PhoneBinding {key[1]} was deleted; {status.message}; its phone is stopped "
                "(or handed on) and its claim released only then"
            )
            written = await self._writes.write(job, status)
            if written is not None and job.status.reason != "Fencing":
                self._writes.job_event(
                    written, warning=True, reason="FencingAttempt", message=status.message
                )
            keep_asking(key)
            return written
        ended = ledger.end_attempt(job, attempt.id, ending, now)
        if ended is None:
            return job
        written = await self._writes.write(job, ended)
        if written is not None:
            self.heard.pop(key, None)
            self._writes.job_event(
                written,
                warning=True,
                reason=f"Attempt{ending.outcome}",
                message=f"PhoneJob {written.name}: {written.status.message}",
            )
        return written

    def _last_heard(self, key: tuple[str, str], attempt: Attempt, now: datetime) -> datetime:
        heard = self.heard.get(key)
        if heard is None or heard[0] != attempt.id:
            # First look of this process: it cannot have renewed the lease before now.
            heard = self.heard[key] = (attempt.id, now)
        return heard[1]

    def _heard_of(self, binding: PhoneBinding, attempt: Attempt) -> None:
        """The worker answered for the attempt, which renewed its lease there."""
        self.heard[binding_key_of(binding)] = (attempt.id, self._clock())

    def _warn_old_worker(self, binding: PhoneBinding, pod_uid: str) -> None:
        """Tell the binding, once per pod and process, that its worker image is old."""
        key = binding_key_of(binding)
        if self._old_workers.get(key) == pod_uid:
            return
        self._old_workers[key] = pod_uid
        message = protocol.old_worker_message(pod_name(binding.name))
        self._writes.binding_event(
            binding, warning=True, reason=protocol.OLD_WORKER_REASON, message=message
        )
        log.warning("%s PhoneBinding %s: %s", protocol.OLD_WORKER_REASON, binding.name, message)

    # ------------------------------------------------------------ ending an attempt

    async def _end(
        self, binding: PhoneBinding, job: PhoneJob, attempt_id: str, ending: ledger.Ending
    ) -> None:
        status = ledger.end_attempt(job, attempt_id, ending, self._clock())
        if status is None:
            return  # not the current attempt any more: its answer changes nothing
        why = f"job {job.name}: {ending.message or 'account error'}"
        if ending.error_class is ErrorClass.ACCOUNT:
            # The hold first: a write of it that fails fails the pass with the attempt still
            # Running, and the next pass holds it again. Written after the job's end, a failed
            # hold left a Failed job and no hold: the binding's other jobs ran on the account.
            await self._api.annotate_binding(
                binding.namespace, binding.name, {ACCOUNT_HOLD_ANNOTATION: why[:250]}
            )
        written = await self._writes.write(job, status)
        if written is None:
            return
        if (
            binding.spec.suspend
            or binding.metadata.deletion_timestamp is not None
            or binding.status.phase is not Phase.RUNNING
        ):
            # A suspended binding keeps its phone running until this end (services/release.py).
            self._on_fenced(binding.uid)
        warning = written.status.phase is not JobPhase.SUCCEEDED
        self._writes.event(
            written,
            binding,
            warning=warning,
            reason=f"Attempt{ending.outcome}",
            message=f"PhoneJob {written.name}: {written.status.message}",
        )
        if ending.error_class is ErrorClass.ACCOUNT:
            self._writes.binding_event(
                binding,
                warning=True,
                reason="AccountHeld",
                message=f"Held the jobs of {binding.name}: {why}",
            )

    async def _write_token(self, binding: PhoneBinding) -> bool:
        """Put the binding's job token into its ADB Secret (written before it had one)."""
        if self._backfill is None:
            return False
        return await self._backfill.write(binding)


def refusal_message(answer: Answer) -> str:
    """A worker's refusal in the job's status: its code and its own words, if it gave any."""
    said = str(answer.body.get("message") or "").strip()
    if not said:
        return (
            f"the worker answered HTTP {answer.status} with no message: is phonefleet's worker "
            "listening at the pod's address?"
        )
    return f"the worker answered {answer.status}: {said}"
