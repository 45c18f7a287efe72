"""An attempt whose worker pod left the API server (force-deleted, its node gone) ends only once
it runs nowhere: no attempt of any job starts on the replacement pod before that.

The operator's job service runs its passes against in-memory PhoneJobs (conditional writes) and
two workers, the old pod's and the new pod's, each the worker's own job endpoint and desk at the
pod's IP; the old one can be cut off. Every clock (the operator's, the desks' wall and lease
clocks) is one clock the test moves.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime, timedelta
from typing import Any

import pytest
from fakes import FakeKube, FakePhones
from job_fakes import FakeJobApi, FakeWorkers
from loop_order import until
from pydantic import SecretStr

from conftest import NOW, make_binding
from phonefleet_operator.errors import KubernetesUnavailable
from phonefleet_operator.render import build_claim
from phonefleet_operator.services.claims import ClaimService
from phonefleet_operator.services.jobs.service import JobService
from phonefleet_operator.services.jobs.tokens import JobTokens
from phonefleet_operator.services.observed import ObservedClaims, ObservedPods
from phonefleet_operator.settings import JobSettings, OperatorSettings
from phonefleet_operator.workers import WorkerUnreachable
from phonefleet_worker.job_desk import JobDesk
from phonefleet_worker.job_server import JobApi
from phonefleet_worker.registry import TaskRegistry
from phonefleet_worker.tasks import Task, TaskResult

Obj = dict[str, Any]
OLD, NEW = "http://10.0.0.1:8090", "http://10.0.0.2:8090"
LEASE, GRACE = 30.0, 5.0


class Clock:
    """The one clock of the test, moved by hand."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def pod(uid: str, ip: str) -> Obj:
    return {
        "metadata": {"name": "alpha-worker", "namespace": "ns", "uid": uid},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


class World:
    """Binding alpha, Running on pod-1 (10.0.0.1), with one job, ``post``."""

    def __init__(self, **job_spec: Any) -> None:
        self.clock = Clock()
        self.kube = FakeKube()
        self.api = FakeJobApi()
        self.workers = FakeWorkers()
        self.pods = ObservedPods()
        self.tokens = JobTokens(b"k" * 32)
        self.binding: Obj = {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhoneBinding",
            "metadata": {
                "name": "alpha",
                "namespace": "ns",
                "uid": "uid-alpha",
                "resourceVersion": "7",
                "generation": 1,
            },
            "spec": {"phoneId": "phone-a"},
            "status": {"phase": "Running", "podName": "alpha-worker"},
        }
        self.kube.bindings["ns", "alpha"] = self.binding
        self.desks: dict[str, JobDesk] = {}
        self.stopped: list[tuple[str, str]] = []
        """(address, why) of each worker told to stop altogether."""
        self.service = self.new_operator()
        self.put_pod("pod-1", "10.0.0.1")
        self.put_worker(OLD)
        self.service.saw("ADDED", self.add_job("post", **job_spec))

    def add_job(self, name: str, **job_spec: Any) -> Obj:
        """A heartbeat job for alpha, in the API server; returns its body."""
        return self.api.add(
            {
                "apiVersion": "phonefleet.dev/v1alpha1",
                "kind": "PhoneJob",
                "metadata": {
                    "name": name,
                    "namespace": "ns",
                    "uid": f"uid-{name}",
                    "generation": 1,
                    "creationTimestamp": "2026-11-28T11:00:00Z",
                },
                "spec": {"bindingName": "alpha", "task": "heartbeat", **job_spec},
                "status": {},
            }
        )

    def new_operator(self, *, listed: bool = True) -> JobService:
        """An operator process (a restart forgets everything but the API server); ``listed``:
        it has read the jobs as its start-up does (False: not yet, ``prepare`` does it)."""
        service = JobService(
            kube=self.kube,
            api=self.api,  # type: ignore[arg-type]
            workers=self.workers,  # type: ignore[arg-type]
            tokens=self.tokens,
            pods=self.pods,
            settings=JobSettings(
                lease_seconds=LEASE, grace_seconds=GRACE, token_key=SecretStr("6b" * 32)
            ),
            operator=OperatorSettings(),
            clock=self.clock,
        )
        if not listed:
            return service
        service.jobs.saw_all(self.api.jobs.values())  # what prepare() reads at its start
        for raw in self.api.jobs.values():
            service.saw("ADDED", raw)
        return service

    def put_pod(self, uid: str, ip: str) -> None:
        body = pod(uid, ip)
        self.kube.pods["ns", "alpha-worker"] = body
        self.pods.saw(body)

    def put_worker(self, base: str) -> JobDesk:
        """A fresh worker process at ``base`` (a new pod's, or a restarted container's)."""
        token = self.tokens.token_for("ns", "alpha", "uid-alpha")
        desk = JobDesk(
            TaskRegistry.from_entry_points(),
            wall_clock=self.clock.seconds,
            clock=self.clock.seconds,
            on_superseded=lambda why: self.stopped.append((base, why)),
        )
        self.desks[base] = desk
        self.workers.at[base] = JobApi(desk, lambda: token)
        return desk

    def remove_pod(self) -> None:
        """The pod leaves the API server (its containers may still run)."""
        self.kube.pods.pop(("ns", "alpha-worker"), None)
        self.pods.gone("ns", "alpha-worker")

    def force_delete(self) -> None:
        """``kubectl delete pod --force --grace-period=0``: the pod leaves the API server at
        once (its containers, the old worker, may still run); the operator makes pod-2."""
        self.pods.gone("ns", "alpha-worker")
        self.put_pod("pod-2", "10.0.0.2")
        self.put_worker(NEW)

    async def run_pass(self) -> None:
        await self.service.pass_once(self.binding)

    def status(self) -> Obj:
        return dict(self.api.jobs["ns", "post"]["status"])

    def attempts_on(self, base: str) -> list[tuple[str, str]]:
        """The attempt calls the operator made to the worker at ``base``."""
        return [(m, p) for m, b, p in self.workers.calls if b == base and "/attempts" in p]


async def started(world: World) -> Task:
    """Attempt 1 delivered to the old worker, whose session has started it."""
    await world.run_pass()
    task = world.desks[OLD].next_job(0.0)
    assert task is not None, world.status()
    return task


async def test_the_old_worker_is_told_to_stop_and_the_next_attempt_waits_for_its_word() -> None:
    """The pod is force-deleted while its worker still runs attempt 1: the operator cancels it on
    the old pod's IP and keeps the job Running (Fencing), so nothing starts on pod-2. Once the
    old worker says the attempt ended (its session abandoned the task), that outcome is the
    ledger's, and attempt 2 goes to pod-2 after the backoff."""
    world = World()
    task = await started(world)
    first = world.status()["attempts"][0]
    assert (first["podUid"], first["podIP"], first["leaseSeconds"]) == ("pod-1", "10.0.0.1", LEASE)

    world.force_delete()
    await world.run_pass()

    fencing = world.status()
    assert (fencing["phase"], fencing["reason"]) == ("Running", "Fencing")
    assert "pod alpha-worker went away while it ran" in fencing["message"]
    assert fencing["attempts"][0]["outcome"] == "Running"
    assert world.kube.events["FencingAttempt"] == 2  # on the job and on its binding
    assert task.abandon_reason() == "cancelled by the operator"  # type: ignore[attr-defined]
    assert world.stopped[:1] == [(OLD, "cancelled by the operator: its pod went away")]
    assert world.attempts_on(NEW) == []

    world.clock.advance(10)
    await world.run_pass()
    assert world.status()["reason"] == "Fencing"  # the old worker still says Running
    assert world.attempts_on(NEW) == []
    assert world.kube.events["FencingAttempt"] == 2  # once, not on every pass

    world.desks[OLD].report(  # what its session reports once it abandoned the task
        TaskResult(
            "heartbeat",
            ok=False,
            detail={
                "error": "task heartbeat was stopped: cancelled by the operator",
                "timedOut": True,
            },
        ),
        0.0,
    )
    await world.run_pass()
    ended = world.status()
    assert ended["reason"] == "RetryBackoff"
    assert ended["attempts"][0]["outcome"] == "TimedOut"
    assert (
        ended["attempts"][0]["message"] == "task heartbeat was stopped: cancelled by the operator"
    )

    world.clock.advance(61)
    await world.run_pass()
    second = world.status()["attempts"][1]
    assert (second["podUid"], second["podIP"]) == ("pod-2", "10.0.0.2")
    assert world.desks[NEW].lookup(second["id"]) is not None


async def test_a_worker_out_of_reach_is_fenced_by_its_lease_which_it_honours_first() -> None:
    """The old pod's worker cannot be reached (its node cut off): the job stays Fencing until
    the lease has run out since the worker last answered, plus the grace; by then the worker,
    asked by nobody, has stopped the attempt itself. Only then does attempt 1 end Lost."""
    world = World()
    task = await started(world)
    world.clock.advance(10)
    await world.run_pass()  # a poll: the worker renews the lease at NOW + 10 s
    world.force_delete()
    world.workers.at.pop(OLD)  # cut off, but still running

    await world.run_pass()
    fencing = world.status()
    assert fencing["reason"] == "Fencing"
    assert fencing["message"].endswith("(at the latest 2026-11-28T12:00:45Z)")

    world.clock.advance(34)  # NOW + 44 s: the worker's lease ran out at NOW + 40 s
    assert task.abandon_reason() is not None  # type: ignore[attr-defined]
    await world.run_pass()
    assert world.status()["reason"] == "Fencing"
    assert world.attempts_on(NEW) == []

    world.clock.advance(2)
    await world.run_pass()
    ended = world.status()
    assert ended["attempts"][0]["outcome"] == "Lost"
    assert "lease or deadline has run out" in ended["attempts"][0]["message"]
    assert ended["reason"] == "RetryBackoff"
    assert world.attempts_on(NEW) == []


async def test_a_restarted_operator_counts_the_lease_from_its_own_first_look() -> None:
    """An operator restarted after the pod vanished does not know when the worker last heard
    from its predecessor: it counts the lease from its own first look, never earlier."""
    world = World()
    await started(world)
    world.force_delete()
    world.workers.at.pop(OLD)
    world.clock.advance(100)  # the first operator is gone long before its fence time
    world.service = world.new_operator()

    await world.run_pass()
    world.clock.advance(LEASE + GRACE - 1)
    await world.run_pass()
    assert world.status()["reason"] == "Fencing"

    world.clock.advance(2)
    await world.run_pass()
    assert world.status()["attempts"][0]["outcome"] == "Lost"


async def test_the_deadline_bounds_the_fence_when_it_comes_before_the_lease() -> None:
    """An attempt with a 20 s deadline runs nowhere after it: the fence is its notAfter plus
    the grace, sooner than the lease."""
    world = World(activeDeadlineSeconds=20)
    await started(world)
    world.force_delete()
    world.workers.at.pop(OLD)

    world.clock.advance(20 + GRACE - 1)
    await world.run_pass()
    assert world.status()["reason"] == "Fencing"
    world.clock.advance(2)
    await world.run_pass()
    assert world.status()["attempts"][0]["outcome"] == "Lost"


@pytest.mark.parametrize(
    ("restarted", "outcome"),
    [(True, "Lost"), (False, "Succeeded")],
    ids=["a restarted worker does not know it", "the old worker finished it"],
)
async def test_the_old_pods_own_answer_ends_the_attempt_at_once(
    restarted: bool, outcome: str
) -> None:
    """A worker at the old address that does not know the attempt (a restarted container: the
    attempt runs nowhere) ends it Lost at once; one that finished it gives its outcome."""
    world = World()
    task = await started(world)
    world.force_delete()
    if restarted:
        world.put_worker(OLD)
    else:
        world.desks[OLD].report(_succeeded(task), 0.0)

    await world.run_pass()

    assert world.status()["attempts"][0]["outcome"] == outcome
    # A worker without the attempt is not the deleted pod's: it is not told to stop.
    assert [base for base, _ in world.stopped] == ([] if restarted else [OLD])


async def test_a_worker_container_restarted_mid_attempt_ends_it_lost_not_run_unrecorded() -> None:
    """The worker took attempt 1 (202), then its container restarted: same pod, same address,
    a process that does not know the attempt (404). The attempt ran there and is over: it ends
    Lost (Retryable) and attempt 2 comes after the backoff, recorded. Before, the 404 was taken
    for a delivery that never arrived: attempt 1 was delivered again and ran a second time,
    with one attempt in the ledger, no backoff and maxAttempts not counting it."""
    world = World()
    await started(world)
    restarted = world.put_worker(OLD)

    await world.run_pass()

    first = world.status()["attempts"][0]
    assert (first["outcome"], first["errorClass"]) == ("Lost", "Retryable")
    assert "no longer knew it" in first["message"]
    assert restarted.lookup(first["id"]) is None  # not delivered again
    assert world.status()["reason"] == "RetryBackoff"


async def test_the_old_pods_address_taken_by_another_bindings_pod_gets_no_token() -> None:
    """The pod went away and its IP now belongs to another binding's worker pod (another
    namespace, another tenant's image): nothing is sent there, since every request carries
    alpha's job token. The old pod's containers are gone with its address, so the job waits
    only for the lease, and ends Lost."""
    world = World()
    await started(world)
    world.remove_pod()
    other = pod("pod-9", "10.0.0.1")
    other["metadata"].update(name="beta-worker", namespace="tenant-b")
    world.pods.saw(other)
    asked = len(world.attempts_on(OLD))

    await world.run_pass()
    assert world.status()["reason"] == "Fencing"
    world.clock.advance(LEASE + GRACE + 1)
    await world.run_pass()

    assert world.attempts_on(OLD)[asked:] == []
    assert world.status()["attempts"][0]["outcome"] == "Lost"


async def test_an_overdue_attempt_ends_timed_out_even_when_its_cancel_gets_no_answer() -> None:
    """Past its deadline and the grace the worker still says Running, then does not answer the
    cancel: the attempt ends TimedOut in that pass (the worker stops at its deadline anyway),
    and the worker is asked again until it answers (its hold). Before, the cancel's fault
    failed the pass, and the next one ended it."""
    world = World()
    await started(world)
    world.clock.advance(900 + GRACE + 1)

    async def unreachable(*_: object, **__: object) -> None:
        raise WorkerUnreachable("worker job endpoint did not answer POST cancel")

    world.workers.cancel = unreachable  # type: ignore[method-assign]
    await world.run_pass()

    first = world.status()["attempts"][0]
    assert (first["outcome"], first["message"]) == ("TimedOut", "still running past its deadline")
    assert world.service._attempts.unreached["ns", "alpha"] == ("pod-1", first["id"])


async def test_a_job_whose_write_finds_it_gone_leaves_the_view_at_once() -> None:
    """The job was deleted and no watch event has said so yet (a gap): the pass's write and
    its re-read both find it gone (404), and the view forgets it then, instead of deciding for
    it again at every pass until the event comes."""
    world = World()
    del world.api.jobs["ns", "post"]

    await world.run_pass()

    assert world.service.jobs.of_binding("ns", "alpha") == []
    assert not world.service.jobs.has_work("ns", "alpha")
    assert world.attempts_on(OLD) == []  # nothing was delivered for it


def _succeeded(task: Task) -> TaskResult:
    record = task.record  # type: ignore[attr-defined]
    detail = {"attemptId": record.request.id, "state": "Succeeded", "result": {"size": 1}}
    return TaskResult(task.name, ok=True, detail=detail)


# ------------------------------------------------------------------ the replacement pod waits


async def test_the_replacement_pod_waits_until_the_gone_pods_attempt_is_fenced() -> None:
    """While attempt 1 may still run on the force-deleted pod, the binding's next pod must not
    be created (``unsettled`` says why, which the pod step and the release ask); once the lease
    and the grace ran out the attempt ends, the binding's reconcile is woken, and nothing holds
    the pod any more."""
    world = World()
    fenced: list[str] = []
    world.service.on_fenced = fenced.append
    assert world.service.unsettled("ns", "alpha") is None  # no attempt yet
    await started(world)
    world.remove_pod()  # force-deleted; no replacement pod yet
    world.workers.at.pop(OLD)

    await world.run_pass()
    assert world.status()["reason"] == "Fencing"
    held = world.service.unsettled("ns", "alpha")
    assert held is not None
    assert held.startswith("attempt 1 of PhoneJob post ran on a worker pod that went away")
    assert world.service.unsettled("ns", "other") is None
    assert fenced == []

    world.clock.advance(LEASE + GRACE + 1)
    await world.run_pass()
    assert world.status()["attempts"][0]["outcome"] == "Lost"
    assert world.service.unsettled("ns", "alpha") is None
    assert fenced == ["uid-alpha"]


async def test_a_suspended_bindings_attempt_end_wakes_it_to_stop_its_phone() -> None:
    """Suspended mid-attempt, the binding keeps its phone running while ``unsettled`` says the
    attempt may still run; the worker reports its end from the terminating pod, the attempt
    ends, the binding is woken at once (not at its next recheck), and nothing holds it."""
    world = World()
    fenced: list[str] = []
    world.service.on_fenced = fenced.append
    await started(world)
    world.binding["status"]["phase"] = "Suspended"
    terminating = world.kube.pods["ns", "alpha-worker"]
    terminating["metadata"]["deletionTimestamp"] = "2026-11-28T12:00:05Z"
    world.pods.saw(terminating)

    await world.run_pass()
    assert world.status()["attempts"][0]["outcome"] == "Running"
    assert world.service.unsettled("ns", "alpha") is not None
    assert fenced == []

    world.desks[OLD].report(TaskResult("heartbeat", ok=False, detail={"error": "SIGTERM"}), 0.0)
    await world.run_pass()
    assert world.status()["attempts"][0]["outcome"] == "Failed"
    assert world.service.unsettled("ns", "alpha") is None
    assert fenced == ["uid-alpha"]


@pytest.mark.looptime
async def test_a_pod_gone_right_after_a_start_waits_for_the_first_list_of_the_jobs() -> None:
    """A restarted operator whose jobs view is still empty (its start-up list failed, the
    watch has not listed) cannot know attempt 1 still runs: ``unsettled`` holds every pod-less
    binding until a list of the jobs has been read (retried in the background), then names the
    attempt, wakes the bindings it held and follows the attempt. Before, the empty view answered
    "nothing runs" and the pod was replaced at once."""
    world = World()
    await started(world)
    await world.service.close()
    world.remove_pod()  # force-deleted while no operator ran
    world.api.unlisted = KubernetesUnavailable("the API server did not answer")
    restarted = world.new_operator(listed=False)
    woken: list[str] = []
    restarted.on_fenced = woken.append

    await restarted.prepare()
    restarted.saw_binding("ADDED", world.binding)  # the bindings watch, before any job event
    waiting = restarted.unsettled("ns", "alpha")
    assert waiting is not None
    assert waiting.startswith("the operator has not read the PhoneJobs since it started")
    assert restarted.unsettled("ns", "other") == waiting  # no binding is known to be free

    assert woken == []

    world.api.unlisted = None
    await until(lambda: restarted.jobs.listed)
    held = restarted.unsettled("ns", "alpha")
    assert held is not None
    assert held.startswith("attempt 1 of PhoneJob post ran on a worker pod that went away")
    assert restarted.unsettled("ns", "other") is None
    # The held binding passes again at once, and its jobs' loop follows attempt 1 to its
    # fence (no job event came to start it): before, both waited for a change of the binding.
    assert woken[:1] == ["uid-alpha"]
    assert restarted.keeps_state_of("ns", "alpha")
    await until(lambda: world.status()["reason"] == "Fencing")
    await restarted.close()


async def test_a_worker_held_by_a_lapsed_lease_is_asked_again_once_its_attempt_ended() -> None:
    """The worker of the binding's current pod is cut off mid-attempt: its lease runs out (it
    stops the attempt and keeps off the phone, not Ready), and the operator ends the attempt
    TimedOut at its deadline. Once the worker can be reached again, the next pass asks it, which
    ends its hold: it is not left off its phone until ADB is re-provisioned (2 minutes)."""
    world = World(activeDeadlineSeconds=60)
    await started(world)
    cut_off = world.workers.at.pop(OLD)
    world.clock.advance(LEASE + 1)
    world.desks[OLD].report(TaskResult("heartbeat", ok=False, detail={"timedOut": True}), 0.0)
    assert world.desks[OLD].held() is not None
    unready = pod("pod-1", "10.0.0.1")
    unready["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    world.pods.saw(unready)  # a held worker is not Ready: no job starts on it

    world.clock.advance(60 + GRACE)
    await world.run_pass()
    ended = world.status()["attempts"][0]
    assert (ended["outcome"], ended["message"]) == (
        "TimedOut",
        "the worker did not answer before the deadline passed",
    )
    await world.run_pass()
    assert world.desks[OLD].held() is not None  # still out of reach: still held

    world.workers.at[OLD] = cut_off  # reachable again
    await world.run_pass()
    assert world.desks[OLD].held() is None
    assert world.attempts_on(OLD)[-1] == ("GET", f"/v1/attempts/{ended['id']}")
    asked = len(world.workers.calls)
    await world.run_pass()
    assert len(world.workers.calls) == asked  # answered once: asked no more


# ------------------------------------------------------------------ the binding deleted


def delete_binding(world: World) -> None:
    """The binding leaves the API server while attempt 1 runs (its finalizer removed by hand)."""
    del world.kube.bindings["ns", "alpha"]
    world.remove_pod()
    world.service.saw_binding("DELETED", world.binding)


@pytest.mark.looptime
async def test_a_deleted_bindings_attempt_ends_in_its_old_workers_words() -> None:
    """The binding is gone while its worker still runs attempt 1: the attempt is not ended Lost
    at once (the worker may still drive the phone); the worker is told, with the binding's
    token, that the attempt is superseded, and the attempt ends as the worker reports it."""
    world = World()
    task = await started(world)
    delete_binding(world)

    await world.service.check_orphan(world.api.jobs["ns", "post"])

    fencing = world.status()
    assert (fencing["phase"], fencing["reason"]) == ("Running", "Fencing")
    assert fencing["message"].startswith("PhoneBinding alpha was deleted; attempt 1/3")
    assert task.abandon_reason() == "cancelled by the operator"  # type: ignore[attr-defined]
    assert world.stopped[:1] == [(OLD, "cancelled by the operator: its pod went away")]

    world.desks[OLD].report(TaskResult("heartbeat", ok=False, detail={"error": "stopped"}), 0.0)
    await until(lambda: world.status()["attempts"][0]["outcome"] != "Running")
    ended = world.status()
    assert (ended["attempts"][0]["outcome"], ended["attempts"][0]["message"]) == (
        "Failed",
        "stopped",
    )
    await until(lambda: not world.service.keeps_state_of("ns", "alpha"))
    assert world.status()["reason"] == "BindingNotFound"
    await world.service.close()


@pytest.mark.looptime
async def test_an_operator_started_after_the_deletion_tells_the_old_worker_too() -> None:
    """No deletion event reached this operator (it started after the binding went): the token
    is made from the binding uid the attempt recorded, and the worker is told at once that its
    attempt is superseded, instead of driving the phone until its lease ran out."""
    world = World()
    task = await started(world)
    del world.kube.bindings["ns", "alpha"]
    world.remove_pod()
    await world.service.close()  # the operator that ran the attempt stops
    world.service = world.new_operator()

    await world.service.check_orphan(world.api.jobs["ns", "post"])

    assert world.status()["reason"] == "Fencing"
    assert task.abandon_reason() == "cancelled by the operator"  # type: ignore[attr-defined]
    assert world.stopped[:1] == [(OLD, "cancelled by the operator: its pod went away")]
    await world.service.close()


@pytest.mark.looptime
async def test_a_deleted_bindings_attempt_out_of_reach_ends_lost_only_after_its_lease() -> None:
    """As above with the worker out of reach: the job stays Fencing, its loop asking, until the
    lease (counted from the worker's last answer) and the grace ran out; only then Lost."""
    world = World()
    await started(world)
    world.workers.at.pop(OLD)
    delete_binding(world)

    await world.service.check_orphan(world.api.jobs["ns", "post"])
    assert world.status()["reason"] == "Fencing"
    world.clock.advance(LEASE + GRACE - 1)
    asked = len(world.workers.calls)
    await until(lambda: len(world.workers.calls) > asked)  # the loop asked the worker again
    assert world.status()["attempts"][0]["outcome"] == "Running"
    assert world.service.keeps_state_of("ns", "alpha")

    world.clock.advance(2)
    await until(lambda: world.status()["attempts"][0]["outcome"] != "Running")
    ended = world.status()
    assert ended["attempts"][0]["outcome"] == "Lost"
    assert "lease or deadline has run out" in ended["attempts"][0]["message"]
    await until(lambda: not world.service.keeps_state_of("ns", "alpha"))
    assert world.status()["reason"] == "BindingNotFound"
    assert world.kube.events["FencingAttempt"] == 1  # on the job: its binding is gone
    await world.service.close()


def recreate_binding(world: World) -> None:
    """alpha is deleted and created again under its name: another uid, pod and worker."""
    world.binding["metadata"]["uid"] = "uid-alpha-2"
    world.put_pod("pod-2", "10.0.0.2")
    token = world.tokens.token_for("ns", "alpha", "uid-alpha-2")
    desk = JobDesk(TaskRegistry.from_entry_points(), wall_clock=world.clock.seconds)
    world.desks[NEW] = desk
    world.workers.at[NEW] = JobApi(desk, lambda: token)


async def test_a_binding_created_again_mid_attempt_tells_the_old_worker_with_the_old_token() -> (
    None
):
    """alpha is deleted (its finalizer removed by hand) and created again while attempt 1 runs
    on the old pod: the new alpha's loop fences the attempt, and the old worker, which knows
    only the old alpha's token, is told that it is superseded (before, it was asked with the
    new alpha's token, refused it with 401, and drove the phone until its lease ran out)."""
    world = World()
    task = await started(world)
    world.remove_pod()
    recreate_binding(world)

    await world.run_pass()

    assert world.status()["reason"] == "Fencing"
    assert task.abandon_reason() == "cancelled by the operator"  # type: ignore[attr-defined]
    assert world.stopped[:1] == [(OLD, "cancelled by the operator: its pod went away")]
    await world.service.close()


async def test_the_orphan_sweep_waits_for_its_holders_attempts_not_those_of_a_new_namesake(
    phones: FakePhones,
) -> None:
    """The holder of a claim (alpha, uid-alpha) is gone and a binding of the same name runs a
    job of its own: its attempt records its uid, so the sweep releases the old holder's claim
    (stopping its phone) instead of keeping it as long as the new binding works. An attempt
    that does not record its binding (an older operator's) may be the holder's: it counts."""
    world = World(maxAttempts=1)
    await started(world)
    assert world.status()["attempts"][0]["bindingUid"] == "uid-alpha"
    world.desks[OLD].report(TaskResult("heartbeat", ok=False, detail={"error": "x"}), 0.0)
    await world.run_pass()
    assert world.status()["phase"] == "Failed"  # the old alpha's attempt ended

    holder = make_binding("alpha")  # the claim of the old alpha, whose finalizer went by hand
    holder.metadata.uid = "uid-alpha"
    await world.kube.create_claim(build_claim(holder, "100", "phone-a"))
    recreate_binding(world)
    world.service.saw("ADDED", world.add_job("post-2"))
    await world.run_pass()
    second = world.api.jobs["ns", "post-2"]["status"]["attempts"][0]
    assert (second["outcome"], second["bindingUid"]) == ("Running", "uid-alpha-2")

    assert world.service.unsettled("ns", "alpha") is not None  # the pod step's question
    assert world.service.unsettled("ns", "alpha", "uid-alpha-2") is not None
    assert world.service.unsettled("ns", "alpha", "uid-alpha") is None

    legacy = world.api.jobs["ns", "post-2"]
    del legacy["status"]["attempts"][0]["bindingUid"]
    world.service.saw("MODIFIED", legacy)
    claims = ClaimService(
        world.kube, ObservedClaims(), power=phones, unsettled=world.service.unsettled
    )
    assert await claims.release_orphans() == []
    assert "100" in world.kube.claims

    legacy["status"]["attempts"][0]["bindingUid"] = "uid-alpha-2"
    world.service.saw("MODIFIED", legacy)
    assert await claims.release_orphans() == ["100"]
    assert "100" not in world.kube.claims
    assert phones.count("stop") == 1
    await world.service.close()


# ---------------------------------------------------------------------- letting go mid-start


def suspended(world: World) -> Obj:
    """The binding's next version: a person set ``spec.suspend`` (its status still Running)."""
    body = copy.deepcopy(world.binding)
    body["metadata"].update(resourceVersion="8", generation=2)
    body["spec"]["suspend"] = True
    return body


async def test_a_binding_suspended_while_its_worker_validates_an_attempt_gets_none() -> None:
    """The job loop decided from the binding Running with a ready pod and asks the worker to
    validate the attempt; the binding is suspended meanwhile, and its pass (which found nothing
    unsettled) deletes the pod and stops the phone. No attempt begins: it used to be written
    Running and delivered to the terminating worker, under a phone being stopped."""
    world = World()
    answer, validating = asyncio.Event(), asyncio.Event()
    validate = world.workers.validate

    async def held(*args: Any) -> Any:
        validating.set()
        await answer.wait()
        return await validate(*args)

    world.workers.validate = held  # type: ignore[method-assign]
    passing = asyncio.create_task(world.run_pass())
    await until(validating.is_set)

    world.service.saw_binding("MODIFIED", suspended(world))
    assert world.service.unsettled("ns", "alpha") is None  # the suspend pass goes ahead
    answer.set()
    await passing

    assert not world.status().get("attempts")
    assert world.attempts_on(OLD) == []
    await world.service.close()


async def test_a_suspension_while_an_attempts_running_line_is_written_waits_for_it() -> None:
    """The attempt's Running line is on its way to the API server when the binding is
    suspended: the suspend pass, asking meanwhile, is told an attempt begins (it used to hear
    of none until the write answered, and stopped the phone under the attempt)."""
    world = World()
    answer, writing = asyncio.Event(), asyncio.Event()
    patch = world.api.patch_job_status

    async def held(namespace: str, name: str, version: str, status: Any) -> Any:
        if status.get("attempts"):
            writing.set()
            await answer.wait()
        return await patch(namespace, name, version, status)

    world.api.patch_job_status = held  # type: ignore[method-assign]
    passing = asyncio.create_task(world.run_pass())
    await until(writing.is_set)

    world.service.saw_binding("MODIFIED", suspended(world))
    assert world.service.unsettled("ns", "alpha") is not None
    answer.set()
    await passing

    assert world.status()["attempts"][0]["outcome"] == "Running"
    assert world.service.unsettled("ns", "alpha") is not None
    await world.service.close()
