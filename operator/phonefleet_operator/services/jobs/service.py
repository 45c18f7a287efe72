"""The job loop of each binding: start the next job, follow the running one, write the ledger.

A binding has a loop (a task, see handlers/jobs.py) only while it has work: a job that has not
finished, or a finished one whose TTL has yet to pass. The jobs watch starts it when such a job
appears; it ends when none remains, and the binding then keeps no job state at all, so a fleet
without PhoneJobs costs one dict lookup per binding event. The loop runs ``pass_once`` whenever a
job or the binding changes, when a running attempt is due for a poll, or when a waiting job
comes due. Jobs are read from an in-memory view fed by the PhoneJob watch and by the answers to
our own writes; every status write is conditional on the job's resourceVersion, so a stale view
or a second operator can never overwrite a newer ledger line (the write fails and the next pass
decides afresh).

The worker is reached at its pod's IP on the job port with the binding's token; the worker
keeps no Kubernetes rights: the operator delivers each attempt and collects its outcome.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from phonefleet_operator import constants as c
from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.k8s import ApiCaller, KubeGateway
from phonefleet_operator.k8s.jobs import JobGateway
from phonefleet_operator.models import (
    Attempt,
    AttemptOutcome,
    Condition,
    ConditionStatus,
    ConditionType,
    ErrorClass,
    JobPhase,
    PhoneBinding,
    PhoneJob,
    PhoneJobSpec,
    PhoneJobStatus,
    condition,
    set_condition,
)
from phonefleet_operator.render import adb_secret_name, pod_name
from phonefleet_operator.services.coordination import Wakeups
from phonefleet_operator.services.jobs import fencing, ledger, protocol
from phonefleet_operator.services.jobs.backfill import TokenBackfill
from phonefleet_operator.services.jobs.schedule import BindingView, Plan, plan
from phonefleet_operator.services.jobs.tokens import JobTokens, new_key_data
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.ports import PhonePower
from phonefleet_operator.settings import JobSettings, OperatorSettings
from phonefleet_operator.workers import Answer, WorkerClient, WorkerUnreachable

__all__ = ["ACCOUNT_HOLD_ANNOTATION", "JobService", "ObservedJobs", "binding_key"]

log = logging.getLogger(__name__)

#: On a PhoneBinding: why its account is held; jobs wait until a person removes it.
ACCOUNT_HOLD_ANNOTATION = "phonefleet.dev/account-hold"

Obj = dict[str, Any]

#: Wait of a binding's loop after a pass failed (the API server or a bug), before it tries again.
RETRY_SECONDS = 5.0

# The worker's answers when the token it reads from its Secret is missing (503) or another (401).
_NO_TOKEN = frozenset({401, 503})


def binding_key(namespace: str, name: str) -> str:
    """The wake-up key of a binding's job loop."""
    return f"jobs:{namespace}/{name}"


class ObservedJobs:
    """The latest body of each PhoneJob, grouped by the binding it names."""

    def __init__(self) -> None:
        self._by_binding: dict[tuple[str, str], dict[str, Obj]] = {}
        # Names of the jobs that still need their binding's loop, by binding (none: no entry).
        self._live: dict[tuple[str, str], set[str]] = {}

    def saw(self, job: Mapping[str, Any]) -> None:
        """A job was added or changed (a newer resourceVersion never loses to an older one)."""
        metadata = job["metadata"]
        key = (metadata["namespace"], (job.get("spec") or {}).get("bindingName", ""))
        jobs = self._by_binding.setdefault(key, {})
        old = jobs.get(metadata["name"])
        if old is not None and _newer(old, job):
            return
        jobs[metadata["name"]] = _essentials(job)
        if _needs_loop(job):
            self._live.setdefault(key, set()).add(metadata["name"])
        else:
            self._forget_live(key, metadata["name"])

    def gone(self, job: Mapping[str, Any]) -> None:
        """The job was deleted."""
        metadata = job["metadata"]
        key = (metadata["namespace"], (job.get("spec") or {}).get("bindingName", ""))
        jobs = self._by_binding.get(key)
        if jobs is not None:
            jobs.pop(metadata["name"], None)
            if not jobs:
                del self._by_binding[key]
        self._forget_live(key, metadata["name"])

    def has_work(self, namespace: str, name: str) -> bool:
        """Whether a job of this binding needs its loop (one dict lookup)."""
        return (namespace, name) in self._live

    def _forget_live(self, key: tuple[str, str], name: str) -> None:
        live = self._live.get(key)
        if live is not None:
            live.discard(name)
            if not live:
                del self._live[key]

    def of_binding(self, namespace: str, name: str) -> list[Obj]:
        """Every known job naming this binding."""
        return list(self._by_binding.get((namespace, name), {}).values())


#: What the job loop reads of a job's metadata (managedFields and the rest stay out of memory).
_METADATA_KEPT = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
)


def _essentials(job: Mapping[str, Any]) -> Obj:
    metadata = job["metadata"]
    return {
        "metadata": {key: metadata[key] for key in _METADATA_KEPT if key in metadata},
        "spec": dict(job.get("spec") or {}),
        "status": dict(job.get("status") or {}),
    }


_FINISHED = frozenset({JobPhase.SUCCEEDED.value, JobPhase.FAILED.value})


def _needs_loop(job: Mapping[str, Any]) -> bool:
    """Whether the job still needs its binding's loop, read from the raw body (no parse).

    It does until it has finished with no attempt left running, and, with a TTL, until the
    loop has deleted it.
    """
    status = job.get("status") or {}
    if status.get("phase") not in _FINISHED:
        return True
    attempts = status.get("attempts") or []
    if attempts and (attempts[-1] or {}).get("outcome") == AttemptOutcome.RUNNING.value:
        return True
    return (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None


def _newer(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether ``old`` is a later version than ``new`` (resourceVersions of one object grow)."""
    try:
        return int(old["metadata"]["resourceVersion"]) > int(new["metadata"]["resourceVersion"])
    except (KeyError, ValueError, TypeError):
        return False


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
    ) -> None:
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
        # Per binding, only while its loop runs: the loop's task and the binding's latest body
        # (absent until the loop has read it, when a job started the loop).
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._bindings: dict[tuple[str, str], Mapping[str, Any]] = {}
        # Bindings whose last pass saw an account hold: clearing it must reach the condition
        # even when no job is left to run a loop for it.
        self._held: set[tuple[str, str]] = set()
        # Per binding with a running attempt: its id and when its worker last answered for it
        # (or when this process first followed it), the base of its lease (services/jobs/fencing).
        self._heard: dict[tuple[str, str], tuple[str, datetime]] = {}
        # Per binding with a loop: the worker pod last warned of as older than this operator.
        self._old_workers: dict[tuple[str, str], str] = {}
        # Per binding with a loop: whether the worker last asked takes leases, and its pod (the
        # binding's WorkerImageCurrent condition follows it; services/jobs/protocol.py).
        self._worker_images: dict[tuple[str, str], tuple[bool, str]] = {}
        # Per binding deleted while an attempt of its jobs ran: its uid (for the job token to
        # tell the old worker with), while that attempt is fenced (check_orphan).
        self._gone: dict[tuple[str, str], str] = {}
        self.on_fenced: Callable[[str], object] = lambda uid: None
        """Told the uid of a binding whose attempt, run on a pod that went away, just ended:
        the binding's reconcile creates the pod it held back (:meth:`unsettled`)."""
        self.disabled: str | None = None
        """Why PhoneJobs cannot run at all (no job key), or None."""

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
    ) -> JobService:
        """The service with its own gateway and worker client (no I/O until used)."""
        settings = settings or JobSettings()
        return cls(
            kube=kube,
            api=JobGateway(caller),
            workers=WorkerClient(timeout_seconds=settings.request_timeout_seconds),
            tokens=tokens,
            pods=pods,
            settings=settings,
            operator=operator,
            power=power,
        )

    async def close(self) -> None:
        """Stop every job loop and close the connections to the workers."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        await self._workers.close()

    # ------------------------------------------------------------ start-up

    async def prepare(self) -> None:
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
        else:
            self.jobs.saw(job)
        key = (job["metadata"]["namespace"], (job.get("spec") or {}).get("bindingName", ""))
        if key in self._tasks:
            self.wake(*key)
        elif key[1] and self.jobs.has_work(*key):
            self._start_loop(key, None)

    def wake(self, namespace: str, name: str) -> None:
        """Run the binding's job loop now (its phase, pod or annotations changed)."""
        self.wakeups.wake(binding_key(namespace, name))

    def unsettled(self, namespace: str, name: str) -> str | None:
        """Why the binding's worker pod must not be created, nor its phone let go, yet: an
        attempt of one of its jobs is still Running; None when none is (one dict lookup for a
        binding without jobs).

        Asked only when the binding has no pod (it is about to create one, or to stop its phone):
        an attempt still Running then ran on a pod that went away, force-deleted perhaps, whose
        worker may still drive the phone until the attempt is fenced (see ``_fence``). As a
        StatefulSet creates no replacement pod until the old one is gone, the new worker pod is
        created only once the old attempt ended: two workers never hold the phone at once, and
        this holds for worker images of every release (docs/jobs.md).
        """
        if not self.jobs.has_work(namespace, name):
            return None
        for raw in self.jobs.of_binding(namespace, name):
            attempts = (raw.get("status") or {}).get("attempts") or []
            last = attempts[-1] if attempts else {}
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

        An attempt still Running is fenced as one whose pod went away (``_fence``): its worker
        may still run it (a binding's release waits for its attempts to end, so this is a
        binding whose finalizer was removed by hand, or that went while no operator watched).
        It ends when its worker says so or does not know it, or when its lease or deadline has
        run out; until then the job stays Running (``Fencing``) and the binding's loop keeps
        asking (:meth:`_loop`).
        """
        job = _parse(body)
        if job is None or job.status.finished:
            return
        if read and await self._kube.get_binding(job.namespace, job.spec.binding_name):
            return  # created again meanwhile: its loop runs the job
        current = job.status.current
        if current is not None and not current.ended:
            written = await self._fence_orphan(job, current)
            if written is None or _running(written):
                return  # still fenced (or changed meanwhile: the next look decides)
            job = written
        if job.status.finished:
            return
        await self._write(
            job,
            ledger.wait(
                job,
                "BindingNotFound",
                f"PhoneBinding {job.spec.binding_name} not found in namespace {job.namespace}",
            ),
        )

    async def _fence_orphan(self, job: PhoneJob, attempt: Attempt) -> PhoneJob | None:
        """Fence a running attempt of a job whose binding is gone; the job as written (None
        when a write lost to a newer version)."""
        key = (job.namespace, job.spec.binding_name)
        now = self._clock()
        heard = self._heard.get(key)
        if heard is None or heard[0] != attempt.id:
            heard = self._heard[key] = (attempt.id, now)  # first look: not renewed before
        until = fencing.fenced_at(
            job, attempt, last_heard=heard[1], grace=self._settings.grace_seconds
        )
        uid = self._gone.get(key)
        base, answer = self._attempt_endpoint_of(key, attempt), None
        if base is not None and uid:  # without the binding's uid there is no token to ask with
            token = self._tokens.token_for(key[0], key[1], uid)
            with contextlib.suppress(WorkerUnreachable):
                answer = await self._workers.cancel(base, token, attempt.id, superseded=True)
        ending = fencing.ending_of(answer, until=until, now=now)
        if ending is None:
            status = ledger.fencing(job, pod_name(key[1]), until)
            status.message = f"PhoneBinding {key[1]} was deleted; {status.message}"
            written = await self._write(job, status)
            if written is not None and job.status.reason != "Fencing":
                self._post_job_event(
                    written, warning=True, reason="FencingAttempt", message=status.message
                )
            if key not in self._tasks:
                self._start_loop(key, None)  # asks again until the attempt is fenced
            return written
        ended = ledger.end_attempt(job, attempt.id, ending, now)
        if ended is None:
            return job
        written = await self._write(job, ended)
        if written is not None:
            self._heard.pop(key, None)
            self._post_job_event(
                written,
                warning=True,
                reason=f"Attempt{ending.outcome}",
                message=f"Attempt {attempt.number} of PhoneJob {written.name} {ending.outcome}"
                f": {written.status.message}",
            )
        return written

    # ------------------------------------------------------------ admission

    async def review(self, namespace: str, spec: Mapping[str, Any]) -> list[str]:
        """Reasons to refuse a PhoneJob at apply time; empty to admit it.

        A missing binding is refused. The task and its params are checked by the binding's own
        worker (its image registers the tasks) when it answers within the timeout; a worker
        that does not answer admits the job, and the job loop reports the problem in the status
        before anything runs.
        """
        try:
            parsed = PhoneJobSpec.model_validate(dict(spec))
        except ValidationError as error:
            return [f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        body = await self._kube.get_binding(namespace, parsed.binding_name)
        if body is None:
            return [f"PhoneBinding {parsed.binding_name} not found in namespace {namespace}"]
        binding = PhoneBinding.from_body(body)
        base, token = self._endpoint(binding), self._token(binding)
        if base is None and token:  # not in the pods view (a standby watches no pods): read it
            with contextlib.suppress(PhonefleetError):  # unread: admitted, as unreachable
                pod = await self._kube.get_pod(binding.namespace, pod_name(binding.name))
                base = self._endpoint(binding, pod)
        if base is None or not token:
            return []
        try:
            answer = await self._workers.validate(base, token, parsed.task, parsed.params)
        except WorkerUnreachable as error:
            log.info("Admitted a PhoneJob for %s unchecked: %s", binding.namespaced_name, error)
            return []
        if answer.status == 200 and not answer.body.get("ok"):
            return [str(answer.body.get("message"))]
        return []

    # ------------------------------------------------------------ the loop

    def saw_binding(self, event_type: str, body: Mapping[str, Any]) -> None:
        """Wake the binding's loop on a change (its phase, pod or annotations), stop it when the
        binding is gone, or start it when jobs were waiting for the binding to exist.

        A binding without jobs costs a lookup or two: no parse, no task, no body kept.
        """
        metadata = body["metadata"]
        key = (metadata["namespace"], metadata["name"])
        if event_type == "DELETED":
            self._held.discard(key)
            heard = self._heard.get(key)
            task = self._tasks.get(key)
            if task is not None:
                self._drop(key)
                task.cancel()
            if self.unsettled(*key) is not None:
                # An attempt still runs (the finalizer was removed by hand, or the binding went
                # while no operator watched): check_orphan fences it, with the binding's token
                # and from when its worker last answered.
                self._gone[key] = str(metadata.get("uid", ""))
                if heard is not None:
                    self._heard[key] = heard
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
        if old is None or not _newer(old, body):
            self._bindings[key] = body

    def _drop(self, key: tuple[str, str]) -> None:
        """Forget every piece of the binding's job state (its loop ended or is cancelled)."""
        self._tasks.pop(key, None)
        self._heard.pop(key, None)
        self._old_workers.pop(key, None)
        self._worker_images.pop(key, None)
        self._gone.pop(key, None)
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
                    elif self.unsettled(*key) is not None:
                        # Gone, with an attempt still fenced (check_orphan): ask again.
                        delay = self._settings.poll_seconds
                    else:
                        return  # the binding does not exist: its ADDED event starts the loop
                except PhonefleetError as error:
                    log.warning("Job pass of PhoneBinding %s/%s failed: %s", *key, error)
                    delay = RETRY_SECONDS
                except Exception:  # a bug must not end the binding's jobs for good
                    log.exception("Job pass of PhoneBinding %s/%s failed", *key)
                    delay = RETRY_SECONDS
                # Checked and dropped with no await in between: a job seen after this starts a
                # new loop, one seen before keeps this one.
                if not self.jobs.has_work(*key):
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
        view = self._binding_view(binding, body)
        await self._sync_conditions(binding, body, view.account_hold)
        if view.account_hold is None:
            self._held.discard(_key(binding))
        else:
            self._held.add(_key(binding))
        jobs = [job for raw in self.jobs.of_binding(*_key(binding)) if (job := _parse(raw))]
        decided = plan(view, jobs, now)
        for job in decided.expired:
            await self._api.delete_job(job.namespace, job.name, job.metadata.uid)
            self.jobs.gone(job.model_dump(by_alias=True, mode="json"))
            log.info("Deleted PhoneJob %s: its ttlSecondsAfterFinished passed", job.namespaced_name)
        for wait in decided.waits:
            await self._write(
                wait.job, ledger.wait(wait.job, wait.reason, wait.message, wait.until)
            )
        if decided.running is not None:
            await self._follow(binding, view, decided.running, now)
        elif decided.start is not None and binding.metadata.deletion_timestamp is None:
            seen = self._worker_images.get(_key(binding))
            await self._start(binding, view, decided.start, now)
            if self._worker_images.get(_key(binding)) != seen:  # its worker was asked
                await self._sync_conditions(binding, body, view.account_hold)
        return self._delay(decided, now)

    def _delay(self, decided: Plan, now: datetime) -> float:
        if decided.running is not None or decided.start is not None:
            return self._settings.poll_seconds
        delay = self._settings.idle_seconds
        if decided.next_due is not None:
            delay = min(delay, max(0.0, (decided.next_due - now).total_seconds()) + 0.05)
        return delay

    # ------------------------------------------------------------ starting a job

    async def _start(
        self, binding: PhoneBinding, view: BindingView, job: PhoneJob, now: datetime
    ) -> None:
        if self.disabled is not None:
            await self._write(job, ledger.wait(job, "JobsDisabled", self.disabled))
            return
        base, token = self._endpoint(binding), self._token(binding)
        if base is None or not token or view.pod_uid is None:
            await self._write(job, ledger.wait(job, "BindingNotRunning", "worker not reachable"))
            return
        try:
            checked = await self._workers.validate(base, token, job.spec.task, job.spec.params)
        except WorkerUnreachable as error:
            await self._write(job, ledger.wait(job, "WorkerUnreachable", str(error)))
            return
        if checked.status != 200:
            message = _refusal(checked)
            if checked.status in _NO_TOKEN and await self._write_token(binding):
                message = (
                    f"the worker has no job token, or another (it answered {checked.status}): "
                    f"wrote it into Secret {adb_secret_name(binding.name)}; the worker reads it "
                    "once the kubelet updates the mounted Secret"
                )
            await self._write(job, ledger.wait(job, "WorkerRefused", message))
            return
        if not checked.body.get("ok"):
            message = str(checked.body.get("message") or "the worker refused the job")
            reason = "UnknownTask" if message.startswith("unknown task") else "InvalidParams"
            written = await self._write(job, ledger.refuse(job, reason, message, now))
            if written is not None:
                self._event(written, binding, warning=True, reason=reason, message=message)
            return
        # A worker of an earlier release refuses a delivery with fields it does not know: send
        # the lease only to one that names it (services/jobs/protocol.py).
        leases = protocol.LEASE in protocol.features(checked.body)
        if not leases:
            self._warn_old_worker(binding, view.pod_uid)
        self._worker_images[_key(binding)] = (leases, view.pod_uid)
        started = await self._write(
            job,
            ledger.begin_attempt(
                job,
                pod_uid=view.pod_uid,
                pod_name=pod_name(binding.name),
                now=now,
                pod_ip=view.pod_ip,
                lease_seconds=self._settings.lease_seconds if leases else None,
            ),
        )
        if started is None:
            return  # the job changed meanwhile: decide again on the next pass
        attempt = started.status.current
        if attempt is None:
            raise RuntimeError(f"PhoneJob {started.namespaced_name} lost the attempt it started")
        self._heard[_key(binding)] = (attempt.id, now)
        self._event(
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
                message=f"the worker could not read the delivery ({_refusal(answer)}); is its "
                "image of another release than this operator?",
            )
            await self._end(binding, job, attempt.id, ending)
        elif answer.status not in (200, 202, 409):
            log.warning("Worker refused attempt %s: %s", attempt.id, _refusal(answer))

    # ------------------------------------------------------------ following a running job

    async def _follow(
        self, binding: PhoneBinding, view: BindingView, job: PhoneJob, now: datetime
    ) -> None:
        attempt = job.status.current
        if attempt is None:
            raise RuntimeError(f"PhoneJob {job.namespaced_name} has no attempt to follow")
        pod = self._pods.get(binding.namespace, pod_name(binding.name))
        live_uid = (pod or {}).get("metadata", {}).get("uid")
        if live_uid != attempt.pod_uid:
            # The pod that had the attempt is gone (deleted, or replaced by a new incarnation).
            await self._fence(binding, job, attempt, now)
            return
        deadline = ledger.not_after(job, attempt).timestamp() + self._settings.grace_seconds
        overdue = now.timestamp() > deadline
        base, token = self._endpoint(binding), self._token(binding)
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
            return
        if answer.status == 200:
            self._heard_of(binding, attempt)
        if answer.status == 404:
            if now < ledger.not_after(job, attempt):
                await self._deliver(binding, job, base, token)  # the delivery did not arrive
            else:
                await self._end(
                    binding,
                    job,
                    attempt.id,
                    ledger.Ending(AttemptOutcome.LOST, message="the worker does not know it"),
                )
            return
        ending = fencing.outcome_of(answer)
        if ending is not None:
            await self._end(binding, job, attempt.id, ending)
        elif overdue:
            await self._workers.cancel(base, token, attempt.id)
            await self._end(
                binding,
                job,
                attempt.id,
                ledger.Ending(AttemptOutcome.TIMED_OUT, message="still running past its deadline"),
            )

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
            last_heard=self._last_heard(binding, attempt, now),
            grace=self._settings.grace_seconds,
        )
        base, answer = self._attempt_endpoint(binding, attempt), None
        if base is not None:
            # A cancel, not a GET: it does not renew the lease of a worker we lose again.
            with contextlib.suppress(WorkerUnreachable):
                answer = await self._workers.cancel(
                    base, self._token(binding), attempt.id, superseded=True
                )
        ending = fencing.ending_of(answer, until=until, now=now)
        if ending is None:
            status = ledger.fencing(job, pod_name(binding.name), until)
            written = await self._write(job, status)
            if written is not None and job.status.reason != "Fencing":
                self._event(
                    written,
                    binding,
                    warning=True,
                    reason="FencingAttempt",
                    message=f"PhoneJob {job.name}: {status.message}",
                )
            return
        await self._end(binding, job, attempt.id, ending)
        self.on_fenced(binding.uid)  # its reconcile may create the pod it held back now

    def _last_heard(self, binding: PhoneBinding, attempt: Attempt, now: datetime) -> datetime:
        heard = self._heard.get(_key(binding))
        if heard is None or heard[0] != attempt.id:
            # First look of this process: it cannot have renewed the lease before now.
            heard = self._heard[_key(binding)] = (attempt.id, now)
        return heard[1]

    def _warn_old_worker(self, binding: PhoneBinding, pod_uid: str) -> None:
        """Tell the binding, once per pod and process, that its worker image is old."""
        if self._old_workers.get(_key(binding)) == pod_uid:
            return
        self._old_workers[_key(binding)] = pod_uid
        message = protocol.old_worker_message(pod_name(binding.name))
        self._kube.post_event(
            _event_body(binding), warning=True, reason=protocol.OLD_WORKER_REASON, message=message
        )
        log.warning("%s PhoneBinding %s: %s", protocol.OLD_WORKER_REASON, binding.name, message)

    def _heard_of(self, binding: PhoneBinding, attempt: Attempt) -> None:
        """The worker answered for the attempt, which renewed its lease there."""
        self._heard[_key(binding)] = (attempt.id, self._clock())

    async def _end(
        self, binding: PhoneBinding, job: PhoneJob, attempt_id: str, ending: ledger.Ending
    ) -> None:
        status = ledger.end_attempt(job, attempt_id, ending, self._clock())
        if status is None:
            return  # not the current attempt any more: its answer changes nothing
        written = await self._write(job, status)
        if written is None:
            return
        attempt = written.status.attempts[-1]
        warning = written.status.phase is not JobPhase.SUCCEEDED
        self._event(
            written,
            binding,
            warning=warning,
            reason=f"Attempt{ending.outcome}",
            message=f"Attempt {attempt.number} of PhoneJob {written.name} "
            f"{ending.outcome}: {written.status.message}",
        )
        if ending.error_class is ErrorClass.ACCOUNT:
            why = f"job {written.name}: {ending.message or 'account error'}"
            await self._api.annotate_binding(
                binding.namespace, binding.name, {ACCOUNT_HOLD_ANNOTATION: why[:250]}
            )
            self._kube.post_event(
                _event_body(binding),
                warning=True,
                reason="AccountHeld",
                message=f"Held the jobs of {binding.name}: {why}",
            )

    # ------------------------------------------------------------ the binding's condition

    async def _sync_conditions(
        self, binding: PhoneBinding, body: Mapping[str, Any], hold: str | None
    ) -> None:
        """Write the binding's conditions the job loop owns, when they changed: AccountHealthy
        (the account hold) and WorkerImageCurrent (whether its worker takes attempt leases)."""
        conditions = self._account_condition(binding, binding.status.conditions, hold)
        conditions = self._worker_image_condition(binding, conditions)
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

    def _account_condition(
        self, binding: PhoneBinding, conditions: list[Condition], hold: str | None
    ) -> list[Condition]:
        status: ConditionStatus = "False" if hold else "True"
        old = condition(conditions, ConditionType.ACCOUNT_HEALTHY)
        if old is None and hold is None:
            return conditions  # never held: no condition until something happens
        if old is not None and old.status == status and (hold is None or old.message == hold):
            return conditions
        return set_condition(
            conditions,
            type=ConditionType.ACCOUNT_HEALTHY,
            status=status,
            reason="AccountError" if hold else "Cleared",
            message=hold or "A person cleared the account hold.",
            now=self._clock(),
            generation=binding.metadata.generation,
        )

    def _worker_image_condition(
        self, binding: PhoneBinding, conditions: list[Condition]
    ) -> list[Condition]:
        """WorkerImageCurrent: False (OldWorkerImage) while the worker last asked takes no lease,
        True once a worker that does answers; absent until a worker took no lease (as the
        account's condition, nothing is said until something happens)."""
        seen = self._worker_images.get(_key(binding))
        if seen is None:
            return conditions
        current = seen[0]
        old = condition(conditions, protocol.WORKER_IMAGE_CURRENT)
        if old is None and current:
            return conditions
        status: ConditionStatus = "True" if current else "False"
        pod = pod_name(binding.name)
        reason, message = (
            (protocol.CURRENT_WORKER_REASON, protocol.current_worker_message(pod))
            if current
            else (protocol.OLD_WORKER_REASON, protocol.old_worker_message(pod))
        )
        if old is not None and (old.status, old.reason, old.message) == (status, reason, message):
            return conditions
        return set_condition(
            conditions,
            type=protocol.WORKER_IMAGE_CURRENT,
            status=status,
            reason=reason,
            message=message,
            now=self._clock(),
            generation=binding.metadata.generation,
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

    def _attempt_endpoint(self, binding: PhoneBinding, attempt: Attempt) -> str | None:
        """Where the worker that had ``attempt`` listens: its pod's recorded IP (that pod may
        have left the API server while its containers still run); None when not recorded (an
        attempt started by an operator from before podIP was)."""
        return self._attempt_endpoint_of(_key(binding), attempt)

    def _attempt_endpoint_of(self, key: tuple[str, str], attempt: Attempt) -> str | None:
        override = self._settings.endpoint_overrides.get(f"{key[0]}/{key[1]}")
        return override or self._job_url(attempt.pod_ip)

    def _endpoint(self, binding: PhoneBinding, pod: Obj | None = None) -> str | None:
        override = self._settings.endpoint_overrides.get(binding.namespaced_name)
        if override:
            return override
        pod = pod or self._pods.get(binding.namespace, pod_name(binding.name))
        return self._job_url(((pod or {}).get("status") or {}).get("podIP"))

    def _job_url(self, address: str | None) -> str | None:
        if not address:
            return None
        host = f"[{address}]" if ":" in address else address
        return f"http://{host}:{self._operator.worker_job_port}"

    async def _write_token(self, binding: PhoneBinding) -> bool:
        """Put the binding's job token into its ADB Secret (written before it had one)."""
        if self._backfill is None:
            return False
        return await self._backfill.write(binding)

    def _token(self, binding: PhoneBinding) -> str:
        return self._tokens.token_for(binding.namespace, binding.name, binding.uid)

    async def _write(self, job: PhoneJob, status: PhoneJobStatus) -> PhoneJob | None:
        """Write the job's next status (if it changed) against the version we read."""
        patch = ledger.status_patch(job, status)
        if patch is None:
            return job
        version = job.metadata.resource_version or ""
        written = await self._api.patch_job_status(job.namespace, job.name, version, patch)
        if written is None:
            fresh = await self._api.get_job(job.namespace, job.name)
            if fresh is not None:
                self.jobs.saw(fresh)
            return None
        self.jobs.saw(written)
        return _parse(written)

    def _event(
        self,
        job: PhoneJob,
        binding: PhoneBinding,
        *,
        reason: str,
        message: str,
        warning: bool = False,
        on_binding: bool = True,
    ) -> None:
        """One Event on the job and (unless told otherwise) one on its binding."""
        self._post_job_event(job, warning=warning, reason=reason, message=message)
        if on_binding:
            self._kube.post_event(
                _event_body(binding), warning=warning, reason=reason, message=message
            )

    def _post_job_event(self, job: PhoneJob, *, reason: str, message: str, warning: bool) -> None:
        job_body = {
            "apiVersion": c.API_VERSION,
            "kind": c.JOB_KIND,
            "metadata": {
                "name": job.name,
                "namespace": job.namespace,
                "uid": job.metadata.uid,
            },
        }
        self._kube.post_event(job_body, warning=warning, reason=reason, message=message)
        log.info("%s PhoneJob %s: %s", reason, job.namespaced_name, message)


def _key(binding: PhoneBinding) -> tuple[str, str]:
    return binding.namespace, binding.name


def _parse(body: Mapping[str, Any]) -> PhoneJob | None:
    try:
        return PhoneJob.from_body(body)
    except ValidationError as error:
        name = (body.get("metadata") or {}).get("name")
        log.warning("Ignored PhoneJob %s: its body does not parse: %s", name, error)
        return None


def _running(job: PhoneJob) -> bool:
    """Whether the job's current attempt has not ended."""
    current = job.status.current
    return current is not None and not current.ended


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(x.get("type") == "Ready" and x.get("status") == "True" for x in conditions)


def _refusal(answer: Answer) -> str:
    return f"the worker answered {answer.status}: {answer.body.get('message', '')}".strip()


def _event_body(binding: PhoneBinding) -> Obj:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.BINDING_KIND,
        "metadata": {
            "name": binding.name,
            "namespace": binding.namespace,
            "uid": binding.uid,
        },
    }
