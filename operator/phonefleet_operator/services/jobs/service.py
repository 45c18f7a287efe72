"""The job loop of each binding: start the next job, follow the running one, write the ledger.

A binding has a loop (a task, see handlers/jobs.py) only while it has work: a job that has not
finished, or a finished one whose TTL has yet to pass. The jobs watch starts it when such a job
appears; it ends when none remains, and the binding then keeps no job state at all, so a fleet
without PhoneJobs costs one dict lookup per binding event. The loop runs ``pass_once`` whenever a
job or the binding changes, when a running attempt is due for a poll, or when a waiting job
comes due. Jobs are read from an in-memory view fed by the PhoneJob watch and by the answers to
our own writes (``observed``); every status write is conditional on the job's resourceVersion
(``writes``), so a stale view or a second operator can never overwrite a newer ledger line (the
write fails and the next pass decides afresh). What happens to one attempt is ``attempts``.

The worker is reached at its pod's IP on the job port with the binding's token; the worker
keeps no Kubernetes rights: the operator delivers each attempt and collects its outcome.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from phonefleet_operator.constants import JOB_FINALIZER
from phonefleet_operator.errors import PhonefleetError, ReplicaStopping
from phonefleet_operator.k8s import ApiCaller, KubeGateway
from phonefleet_operator.k8s.jobs import JobGateway
from phonefleet_operator.k8s.versions import newer
from phonefleet_operator.models import AttemptOutcome, PhoneBinding, PhoneJob
from phonefleet_operator.render import pod_name
from phonefleet_operator.services.coordination import Wakeups
from phonefleet_operator.services.jobs import admission, ledger
from phonefleet_operator.services.jobs.attempts import Attempts
from phonefleet_operator.services.jobs.backfill import TokenBackfill
from phonefleet_operator.services.jobs.conditions import (
    ACCOUNT_HOLD_ANNOTATION,
    account_condition,
    worker_image_condition,
)
from phonefleet_operator.services.jobs.endpoints import WorkerEndpoints
from phonefleet_operator.services.jobs.housekeeping import Housekeeping
from phonefleet_operator.services.jobs.observed import ObservedJobs
from phonefleet_operator.services.jobs.schedule import BindingView, Plan, plan, releasable
from phonefleet_operator.services.jobs.tokens import JobTokens, new_key_data
from phonefleet_operator.services.jobs.writes import JobWrites, parse_job
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.ports import PhonePower
from phonefleet_operator.settings import JobSettings, OperatorSettings
from phonefleet_operator.workers import WorkerClient

__all__ = ["ACCOUNT_HOLD_ANNOTATION", "JobService", "ObservedJobs", "binding_key"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

#: Wait of a binding's loop after a pass failed (the API server or a bug), before it tries again.
RETRY_SECONDS = 5.0


def binding_key(namespace: str, name: str) -> str:
    """The wake-up key of a binding's job loop."""
    return f"jobs:{namespace}/{name}"


class JobService:
    """Runs every binding's job loop against the API server and the workers."""

    def __init__(
        self,
        *,
        kube: KubeGateway,
        api: JobGateway,
        workers: WorkerClient,
        tokens: JobTokens,
        pods: ObservedPods,
        settings: JobSettings,
        operator: OperatorSettings,
        power: PhonePower | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        namespaces: tuple[str, ...] = (),
    ) -> None:
        self._namespaces = namespaces  # the ones it serves (empty: every one)
        self._lister: asyncio.Task[None] | None = None
        self._kube = kube
        self._api = api
        self._workers = workers
        self._tokens = tokens
        self._pods = pods
        self._settings = settings
        self._operator = operator
        self._clock = clock
        self._backfill = (
            None
            if power is None
            else TokenBackfill(power=power, kube=kube, tokens=tokens, clock=clock)
        )
        self.jobs = ObservedJobs()
        self.wakeups = Wakeups()
        self._endpoints = WorkerEndpoints(settings, operator, pods)
        self._writes = JobWrites(kube=kube, api=api, jobs=self.jobs)
        self._housekeeping = Housekeeping(self._writes)
        self._attempts = Attempts(
            kube=kube,
            api=api,
            workers=workers,
            tokens=tokens,
            pods=pods,
            settings=settings,
            endpoints=self._endpoints,
            writes=self._writes,
            housekeeping=self._housekeeping,
            backfill=self._backfill,
            clock=clock,
            disabled=lambda: self.disabled,
            on_fenced=self._fenced,
        )
        # Per binding, only while its loop runs: the loop's task and the binding's latest body
        # (absent until the loop has read it, when a job started the loop).
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._cancelling: set[asyncio.Task[None]] = set()  # cancels of deleted jobs' attempts
        self._bindings: dict[tuple[str, str], Mapping[str, Any]] = {}
        # Bindings whose last pass saw an account hold: clearing it must reach the condition
        # even when no job is left to run a loop for it.
        self._held: set[tuple[str, str]] = set()
        # Bindings seen before the jobs were first listed (key -> uid), which the gate may
        # hold (:meth:`unsettled`): woken once a late list is in. Empty after the first list.
        self._seen_unlisted: dict[tuple[str, str], str] = {}
        self.on_fenced: Callable[[str], object] = lambda uid: None
        """Told the uid of a binding that may wait for an attempt which just ended (it ran on a
        pod that went away, or the binding is suspended or deleted): the binding's reconcile
        creates the pod it held back, or stops the phone it kept running (:meth:`unsettled`)."""
        self.disabled: str | None = None
        """Why PhoneJobs cannot run at all (no job key), or None."""

    def _fenced(self, uid: str) -> None:
        # Through the attribute at call time: the composition root sets it after construction.
        self.on_fenced(uid)

    @classmethod
    def create(
        cls,
        *,
        kube: KubeGateway,
        caller: ApiCaller,
        tokens: JobTokens,
        pods: ObservedPods,
        settings: JobSettings | None,
        operator: OperatorSettings,
        power: PhonePower | None = None,
        namespaces: tuple[str, ...] = (),
    ) -> JobService:
        """The service with its own gateway and worker client (no I/O until used), for the
        jobs of ``namespaces`` (empty: of every one)."""
        settings = settings or JobSettings()
        return cls(
            kube=kube,
            api=JobGateway(caller),
            workers=WorkerClient(
                timeout_seconds=settings.request_timeout_seconds, fence=caller.fence
            ),
            tokens=tokens,
            pods=pods,
            settings=settings,
            operator=operator,
            power=power,
            namespaces=namespaces,
        )

    async def close(self) -> None:
        """Stop every job loop and close the connections to the workers."""
        tasks = [*self._tasks.values(), *self._cancelling]
        if self._lister is not None:
            tasks.append(self._lister)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        await self._workers.close()

    # ------------------------------------------------------------ start-up

    async def prepare(self) -> None:
        """Load the job key, and list the jobs once (the replacement-pod gate waits for it).

        A list that fails is tried again in the background every ``RETRY_SECONDS``: meanwhile
        bindings without a pod wait (:meth:`unsettled`), as no API server means no pod anyway.
        """
        await self._load_key()
        if not await self._list_jobs():
            self._lister = asyncio.create_task(self._list_until_done(), name="PhoneJob list")

    async def _list_jobs(self) -> bool:
        """Read every job this operator serves into the view; False when the read failed."""
        try:
            self.jobs.saw_all(await self._api.list_served_jobs(self._namespaces))
        except PhonefleetError as error:
            log.warning("Could not list PhoneJobs (worker pods wait for it): %s", error)
            return False
        return True

    async def _list_until_done(self) -> None:
        listed = False
        while not listed:  # bounded by the API server's return; close() cancels it
            await asyncio.sleep(RETRY_SECONDS)
            listed = await self._list_jobs()
        self._after_late_list()

    def _after_late_list(self) -> None:
        """The jobs are read, late: every binding seen meanwhile passes again (the gate held
        those without a pod, and nothing else would wake one whose jobs run nowhere), and a
        binding with jobs gets its loop, which follows an attempt still Running to its fence
        (the watch's events may have come before the list, and found no loop to start)."""
        seen, self._seen_unlisted = self._seen_unlisted, {}
        for key, uid in seen.items():
            if key not in self._tasks and self.jobs.has_work(*key):
                self._start_loop(key, None)
            self.on_fenced(uid)

    async def _load_key(self) -> None:
        """Load the job key: from the settings, else the key Secret (made at the first start).

        Jobs must never keep the operator from running bindings: when the key cannot be had
        (no operator namespace, no rights), PhoneJobs wait with reason JobsDisabled instead.
        """
        if self._settings.token_key is not None:
            self._tokens.load(bytes.fromhex(self._settings.token_key.get_secret_value()))
            return
        namespace, name = self._operator.operator_namespace, self._settings.key_secret
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "stringData": new_key_data(),
        }
        try:
            data = await self._api.keep_secret(secret)
        except PhonefleetError as error:
            log.warning(
                "PhoneJobs are disabled: could not keep Secret %s/%s: %s", namespace, name, error
            )
            data = None
        if data is None:
            self.disabled = (
                f"jobs are disabled: the operator could not keep its job key in Secret "
                f"{namespace}/{name} (create namespace {namespace}, or set "
                "PHONEFLEET_JOBS_TOKEN_KEY)"
            )
            return
        self._tokens.load(base64.b64decode(data["key"]))

    # ------------------------------------------------------------ watch events

    def saw(self, event_type: str, job: Mapping[str, Any]) -> None:
        """Record a job event; wake its binding's loop, or start it when the job needs one."""
        if event_type == "DELETED":
            self.jobs.gone(job)
            self._cancel_deleted(job)
        else:
            self.jobs.saw(job)
        key = (job["metadata"]["namespace"], (job.get("spec") or {}).get("bindingName", ""))
        if key in self._tasks:
            self.wake(*key)
        elif key[1] and self.jobs.has_work(*key):
            self._start_loop(key, None)

    def _cancel_deleted(self, raw: Mapping[str, Any]) -> None:
        """Cancel the running attempt of a job just deleted, in the background (the watch
        event's handler must not wait for a worker)."""
        job = parse_job(raw)
        if job is None or not _running(job):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): the worker's lease ends it
            return
        binding = self._bindings.get((job.namespace, job.spec.binding_name))
        task = loop.create_task(self._attempts.cancel_deleted(job, binding))
        self._cancelling.add(task)
        task.add_done_callback(self._cancelled)

    def _cancelled(self, task: asyncio.Task[None]) -> None:
        self._cancelling.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("Could not cancel the attempt of a deleted PhoneJob: %s", error)

    def wake(self, namespace: str, name: str) -> None:
        """Run the binding's job loop now (its phase, pod or annotations changed)."""
        self.wakeups.wake(binding_key(namespace, name))

    def unsettled(self, namespace: str, name: str, uid: str | None = None) -> str | None:
        """Why the binding's worker pod must not be created, nor its phone let go, yet: an
        attempt of one of its jobs is still Running; None when none is (one dict lookup for a
        binding without jobs).

        Asked when the binding has no pod, or is letting it go (it is about to create one, or
        to stop or hand on its phone: the pod step, the release, the suspend step, and the
        orphan sweep for a binding that is gone): an attempt still Running then ran on a pod
        that went away or is going, force-deleted perhaps, whose worker may still drive the
        phone until the attempt ends or is fenced (see ``Attempts.follow``). As a StatefulSet
        creates no replacement pod until the old one is gone, the new worker pod is created
        only once the old attempt ended: two workers never hold the phone at once, and this
        holds for worker images of every release (docs/jobs.md).

        Until this process has listed the jobs (:meth:`prepare`), it cannot know of such an
        attempt: it says so, and every binding without a pod waits for that list. A job deleted
        while its attempt runs is still in the view: its finalizer keeps it in the API server
        until the attempt ended or was fenced (docs/jobs.md, "A deleted job's attempt").

        ``uid`` (the orphan sweep's: the uid its claim records as holder) narrows it to the
        attempts of that incarnation of the binding: a binding created again under the same
        name runs jobs of its own, which must not keep the gone holder's claim and phone. An
        attempt that does not say whose it is (started before attempts recorded
        ``bindingUid``) may be anybody's, and counts; so does every attempt without ``uid``.
        """
        if not self.jobs.listed:
            return (
                "the operator has not read the PhoneJobs since it started, and an attempt of "
                "them may still run on a worker pod that went away: waiting until it has"
            )
        return self._running_attempt(namespace, name, uid)

    def _running_attempt(self, namespace: str, name: str, uid: str | None = None) -> str | None:
        """What :meth:`unsettled` says of the jobs in the view (and of an attempt whose
        Running line is being written: the view has it once the write answered)."""
        beginning = self._attempts.beginning.get((namespace, name))
        if beginning is not None and (not uid or uid == beginning):
            return "an attempt of its PhoneJobs is being started on its worker: waiting for it"
        if not self.jobs.has_work(namespace, name):
            return None
        for raw in self.jobs.of_binding(namespace, name):
            attempts = (raw.get("status") or {}).get("attempts") or []
            last = attempts[-1] if attempts else {}
            if uid and last.get("bindingUid") not in (None, uid):
                continue  # another incarnation's attempt, on a pod of its own
            if last.get("outcome") == AttemptOutcome.RUNNING.value:
                job = raw["metadata"]["name"]
                return (
                    f"attempt {last.get('number')} of PhoneJob {job} ran on a worker pod that "
                    "went away and may still run there: waiting until it is fenced"
                )
        return None

    async def check_orphan(self, body: Mapping[str, Any], *, read: bool = True) -> None:
        """A job whose binding was deleted: say so in its status if the binding is still gone
        (``read``; False when the caller has just read that it is).

        An attempt still Running is fenced as one whose pod went away
        (``Attempts.fence_orphan``): its worker may still run it (a binding's release waits for
        its attempts to end, so this is a binding whose finalizer was removed by hand, or that
        went while no operator watched).
        It ends when its worker says so or does not know it, or when its lease or deadline has
        run out; until then the job stays Running (``Fencing``) and the binding's loop keeps
        asking (:meth:`_loop`).
        """
        job = parse_job(body)
        if job is None or (job.status.finished and not releasable(job)):
            return
        if read and await self._kube.get_binding(job.namespace, job.spec.binding_name):
            return  # created again meanwhile: its loop runs the job
        current = job.status.current
        if current is not None and not current.ended:
            written = await self._attempts.fence_orphan(job, current, self._keep_asking)
            if written is None or _running(written):
                return  # still fenced (or changed meanwhile: the next look decides)
            job = written
        if releasable(job):  # finished, or deleted, with no attempt running
            await self._writes.release(job)
        elif not job.status.finished and job.metadata.deletion_timestamp is None:
            await self._waits_for_its_binding(job)

    async def _waits_for_its_binding(self, job: PhoneJob) -> None:
        """Say in the job's status that its binding does not exist."""
        await self._writes.write(
            job,
            ledger.wait(
                job,
                "BindingNotFound",
                f"PhoneBinding {job.spec.binding_name} not found in namespace {job.namespace}: "
                "create it, or delete this job and create it naming another (a job's spec "
                "cannot change); the job runs once its binding exists",
            ),
        )

    def _keep_asking(self, key: tuple[str, str]) -> None:
        """Run the loop of a gone binding whose attempt is fenced: it asks until it ended."""
        if key not in self._tasks:
            self._start_loop(key, None)

    # ------------------------------------------------------------ admission

    async def review(self, namespace: str, spec: Mapping[str, Any]) -> list[str]:
        """Reasons to refuse a PhoneJob at apply time; empty to admit it.

        See :func:`~phonefleet_operator.services.jobs.admission.review`.
        """
        return await admission.review(
            namespace,
            spec,
            kube=self._kube,
            endpoints=self._endpoints,
            tokens=self._tokens,
            workers=self._workers,
        )

    # ------------------------------------------------------------ the loop

    def saw_binding(self, event_type: str, body: Mapping[str, Any]) -> None:
        """Wake the binding's loop on a change (its phase, pod or annotations), stop it when the
        binding is gone, or start it when jobs were waiting for the binding to exist.

        A binding without jobs costs a lookup or two: no parse, no task, no body kept.
        """
        metadata = body["metadata"]
        key = (metadata["namespace"], metadata["name"])
        if not self.jobs.listed:
            self._seen_unlisted[key] = str(metadata.get("uid", ""))
        if event_type == "DELETED":
            self._seen_unlisted.pop(key, None)
            self._held.discard(key)
            heard = self._attempts.heard.get(key)
            task = self._tasks.get(key)
            if task is not None:
                self._drop(key)
                task.cancel()
            self._attempts.forget_binding(key)
            if self._running_attempt(*key) is not None:
                # An attempt still runs (the finalizer was removed by hand, or the binding went
                # while no operator watched): check_orphan fences it, with the binding's token
                # and from when its worker last answered.
                self._attempts.gone[key] = str(metadata.get("uid", ""))
                if heard is not None:
                    self._attempts.heard[key] = heard
            return
        if key in self._tasks:
            self._keep_newer(key, body)
            self.wake(*key)
        elif key in self._held or self.jobs.has_work(*key):
            self._start_loop(key, body)

    def keeps_state_of(self, namespace: str, name: str) -> bool:
        """Whether the binding has a job loop or any job state here (a body, a wake-up)."""
        key = (namespace, name)
        return key in self._tasks or key in self._bindings or binding_key(*key) in self.wakeups

    def _start_loop(self, key: tuple[str, str], body: Mapping[str, Any] | None) -> None:
        if body is not None:
            self._bindings[key] = body
        self.wakeups.register(binding_key(*key))
        self._tasks[key] = asyncio.create_task(self._loop(key), name=f"jobs of {key[0]}/{key[1]}")

    def _keep_newer(self, key: tuple[str, str], body: Mapping[str, Any]) -> None:
        old = self._bindings.get(key)
        if old is None or not newer(old, body):
            self._bindings[key] = body

    def _drop(self, key: tuple[str, str]) -> None:
        """Forget every piece of the binding's job state (its loop ended or is cancelled)."""
        self._tasks.pop(key, None)
        self._attempts.forget(key)
        self._housekeeping.forget(key)
        body = self._bindings.pop(key, None)
        self.wakeups.forget(binding_key(*key))
        if self._backfill is not None and body is not None:
            self._backfill.forget(str(body["metadata"].get("uid", "")))

    async def _loop(self, key: tuple[str, str]) -> None:
        """The job loop of one binding, while it has work and exists.

        A plain task rather than a kopf daemon per binding: it needs no kopf progress storage or
        daemon bookkeeping, and it reads the binding's latest body from the watch each pass.
        Started by a job, it reads the binding once: bodies of bindings without jobs are not
        kept, as most bindings of a fleet may never have one.
        """
        wake = binding_key(*key)
        me = asyncio.current_task()
        try:
            while True:
                try:
                    if key in self._bindings or await self._read_binding(key):
                        delay = await self.pass_once(self._bindings[key])
                    elif self._running_attempt(*key) is not None:
                        # Gone, with an attempt still fenced (check_orphan): ask again.
                        delay = self._settings.poll_seconds
                    else:
                        return  # the binding does not exist: its ADDED event starts the loop
                except ReplicaStopping:
                    return  # lost the Lease: the next holder runs the jobs
                except PhonefleetError as error:
                    log.warning("Job pass of PhoneBinding %s/%s failed: %s", *key, error)
                    delay = RETRY_SECONDS
                except Exception:  # a bug must not end the binding's jobs for good
                    log.exception("Job pass of PhoneBinding %s/%s failed", *key)
                    delay = RETRY_SECONDS
                # Checked and dropped with no await in between: a job seen after this starts a
                # new loop, one seen before keeps this one.
                if not self.jobs.has_work(*key) and key not in self._attempts.unreached:
                    return
                await self.wakeups.wait(wake, delay, asyncio.sleep)
        finally:
            if self._tasks.get(key) is me:
                self._drop(key)

    async def _read_binding(self, key: tuple[str, str]) -> bool:
        """Read the binding of a loop a job started; False (its jobs told) when it is missing."""
        body = await self._kube.get_binding(*key)
        if body is not None:
            self._keep_newer(key, body)
            return True
        for job in self.jobs.of_binding(*key):
            await self.check_orphan(job, read=False)
        return key in self._bindings  # its ADDED event came meanwhile

    async def pass_once(self, body: Mapping[str, Any]) -> float:
        """One pass over a binding's jobs; the seconds until the next is due."""
        binding = PhoneBinding.from_body(body)
        now = self._clock()
        await self._know_pod(binding)
        asking = await self._attempts.release_held(binding)
        view = self._binding_view(binding, body)
        await self._sync_conditions(binding, body, view.account_hold)
        if view.account_hold is None:
            self._held.discard(_key(binding))
        else:
            self._held.add(_key(binding))
        jobs = [job for raw in self.jobs.of_binding(*_key(binding)) if (job := parse_job(raw))]
        decided = plan(view, jobs, now)
        for job in decided.released:
            await self._housekeeping.run(
                job, "remove its finalizer", functools.partial(self._writes.release, job), now
            )
        for job in decided.expired:
            await self._housekeeping.run(
                job,
                "delete it after its ttlSecondsAfterFinished",
                functools.partial(self._delete_expired, job),
                now,
            )
        for wait in decided.waits:
            await self._writes.write(
                wait.job, ledger.wait(wait.job, wait.reason, wait.message, wait.until)
            )
        if decided.running is not None:
            running = await self._adopt(decided.running, now)
            await self._attempts.follow(binding, view, running, now)
            await self._release_if_done(running)
        elif decided.start is not None and binding.metadata.deletion_timestamp is None:
            seen = self._attempts.worker_images.get(_key(binding))
            await self._attempts.start(
                binding, view, decided.start, now, lambda: self._letting_go(_key(binding))
            )
            if self._attempts.worker_images.get(_key(binding)) != seen:  # its worker was asked
                await self._sync_conditions(binding, body, view.account_hold)
        delay = self._delay(decided, now)
        retry = self._housekeeping.next_try(_key(binding), jobs)
        if retry is not None:
            delay = min(delay, max(0.0, (retry - now).total_seconds()) + 0.05)
        return min(delay, self._settings.poll_seconds) if asking else delay

    def _letting_go(self, key: tuple[str, str]) -> str | None:
        """Why the binding, as the watch last showed it, is letting its worker go: suspended or
        being deleted (None: it is not, or this loop has no body of it)."""
        body = self._bindings.get(key) or {}
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            return "is being deleted"
        if (body.get("spec") or {}).get("suspend"):
            return "is suspended"
        return None

    async def _delete_expired(self, job: PhoneJob) -> None:
        """Delete a finished job whose ttlSecondsAfterFinished passed."""
        await self._api.delete_job(job.namespace, job.name, job.metadata.uid)
        self.jobs.gone(job.model_dump(by_alias=True, mode="json"))
        log.info("Deleted PhoneJob %s: its ttlSecondsAfterFinished passed", job.namespaced_name)

    async def _adopt(self, job: PhoneJob, now: datetime) -> PhoneJob:
        """The running job with the finalizer: an attempt an operator of an earlier release
        started has none, and its job, deleted, would leave the view while the attempt may run
        (an upgrade mid-attempt). The job as it is now (unchanged when the patch did not go)."""
        if JOB_FINALIZER in job.metadata.finalizers or job.metadata.deletion_timestamp:
            return job
        held: list[PhoneJob | None] = [None]

        async def hold() -> None:
            held[0] = await self._writes.hold(job)

        await self._housekeeping.run(job, f"set its finalizer {JOB_FINALIZER}", hold, now)
        return held[0] or job

    async def _release_if_done(self, followed: PhoneJob) -> None:
        """Drop the finalizer of a job whose attempt just ended, if it needs it no more (it
        finished, or was deleted): a deleted job goes now, not at the next pass."""
        for raw in self.jobs.of_binding(followed.namespace, followed.spec.binding_name):
            if raw["metadata"]["name"] == followed.name:
                job = parse_job(raw)
                if job is not None and releasable(job):
                    await self._writes.release(job)
                return

    def _delay(self, decided: Plan, now: datetime) -> float:
        if decided.running is not None or decided.start is not None:
            return self._settings.poll_seconds
        delay = self._settings.idle_seconds
        if decided.next_due is not None:
            delay = min(delay, max(0.0, (decided.next_due - now).total_seconds()) + 0.05)
        return delay

    # ------------------------------------------------------------ the binding's condition

    async def _sync_conditions(
        self, binding: PhoneBinding, body: Mapping[str, Any], hold: str | None
    ) -> None:
        """Write the binding's conditions the job loop owns, when they changed: AccountHealthy
        (the account hold) and WorkerImageCurrent (whether its worker takes attempt leases)."""
        now = self._clock()
        conditions = account_condition(binding, binding.status.conditions, hold, now)
        seen = self._attempts.worker_images.get(_key(binding))
        conditions = worker_image_condition(binding, conditions, seen, now)
        if conditions is binding.status.conditions:
            return
        version = str((body.get("metadata") or {}).get("resourceVersion", ""))
        if not version:
            return  # no body to write against yet: the next pass has one
        await self._api.patch_binding_conditions(
            binding.namespace,
            binding.name,
            version,
            [item.to_dict() for item in conditions],
        )

    # ------------------------------------------------------------ helpers

    async def _know_pod(self, binding: PhoneBinding) -> None:
        """Ask the API server for a binding's pod the pods watch has not shown yet.

        Right after a start the watch may not have listed the pods: without this, a running
        attempt would look as if its pod were gone and be ended Lost while it still runs.
        """
        name = pod_name(binding.name)
        if binding.status.pod_name and self._pods.get(binding.namespace, name) is None:
            self._pods.refresh(
                binding.namespace, name, await self._kube.get_pod(binding.namespace, name)
            )

    def _binding_view(self, binding: PhoneBinding, body: Mapping[str, Any]) -> BindingView:
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        pod = self._pods.get(binding.namespace, pod_name(binding.name))
        ready = pod is not None and _pod_ready(pod) and not pod["metadata"].get("deletionTimestamp")
        policy = binding.spec.jobs
        return BindingView(
            namespace=binding.namespace,
            name=binding.name,
            uid=binding.uid,
            phase=binding.status.phase,
            pod_uid=pod["metadata"].get("uid") if ready and pod is not None else None,
            pod_ip=((pod or {}).get("status") or {}).get("podIP") if ready else None,
            max_per_day=policy.max_per_day,
            time_zone=policy.time_zone,
            account_hold=annotations.get(ACCOUNT_HOLD_ANNOTATION),
        )


def _key(binding: PhoneBinding) -> tuple[str, str]:
    return binding.namespace, binding.name


def _running(job: PhoneJob) -> bool:
    """Whether the job's current attempt has not ended."""
    current = job.status.current
    return current is not None and not current.ended


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(x.get("type") == "Ready" and x.get("status") == "True" for x in conditions)
