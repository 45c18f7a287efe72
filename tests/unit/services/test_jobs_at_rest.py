"""A binding has a job loop, and job state, only while it has jobs to run (issue 14 scale)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from fakes import FakeKube
from job_fakes import FakeJobApi
from loop_order import loop_caught_up, until

from conftest import NOW
from phonefleet_operator.errors import KubernetesUnavailable
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.services.jobs.service import ACCOUNT_HOLD_ANNOTATION, JobService
from phonefleet_operator.services.jobs.tokens import JobTokens
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.settings import JobSettings, OperatorSettings

Obj = dict[str, Any]

#: The loops' delays run on a virtual clock (looptime): no test waits on the wall clock.
pytestmark = pytest.mark.looptime


def binding_body(name: str) -> Obj:
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneBinding",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "resourceVersion": "7",
            "generation": 1,
            "creationTimestamp": "2026-11-28T10:00:00Z",
        },
        "spec": {"phoneId": f"phone-{name}"},
        "status": {"phase": "Suspended"},
    }


def job_body(name: str, binding: str, **status: Any) -> Obj:
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneJob",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "generation": 1,
            "creationTimestamp": "2026-11-28T11:00:00Z",
        },
        "spec": {"bindingName": binding, "task": "heartbeat"},
        "status": status,
    }


class World:
    def __init__(self) -> None:
        self.kube = FakeKube()
        self.api = FakeJobApi()
        self.service = JobService(
            kube=self.kube,
            api=self.api,  # type: ignore[arg-type]
            workers=None,  # type: ignore[arg-type]  # no binding here runs: no worker is asked
            tokens=JobTokens(b"k" * 32),
            pods=ObservedPods(),
            settings=JobSettings(),
            operator=OperatorSettings(),
            clock=lambda: NOW,
        )

    def job_event(self, kind: str, body: Obj) -> None:
        self.service.saw(kind, body)

    def loops(self) -> list[asyncio.Task[Any]]:
        return [
            task
            for task in asyncio.all_tasks()
            if task.get_name().startswith("jobs of ") and not task.done()
        ]

    def status_of(self, name: str) -> Obj:
        return dict(self.api.jobs["ns", name].get("status") or {})


@pytest.fixture
async def world() -> AsyncIterator[World]:
    made = World()
    yield made
    for task in made.loops():
        task.cancel()
    await asyncio.gather(*made.loops(), return_exceptions=True)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the bindings parsed into a PhoneBinding, in order."""
    seen: list[str] = []
    original = PhoneBinding.from_body.__func__  # type: ignore[attr-defined]

    def counting(cls: type[PhoneBinding], body: Mapping[str, Any]) -> PhoneBinding:
        seen.append(str(body["metadata"]["name"]))
        parsed: PhoneBinding = original(cls, body)
        return parsed

    monkeypatch.setattr(PhoneBinding, "from_body", classmethod(counting))
    return seen


async def test_bindings_without_jobs_have_no_loop_no_parse_and_no_state(
    world: World, parses: list[str]
) -> None:
    """1,000 bindings, each added and changed, with no PhoneJob: no task, no parse, no body."""
    for n in range(1000):
        body = binding_body(f"b-{n}")
        world.service.saw_binding("ADDED", body)
        world.service.saw_binding("MODIFIED", body)
    await loop_caught_up()  # the first step of any task created above has run
    assert world.loops() == []
    assert parses == []
    assert not any(world.service.keeps_state_of("ns", f"b-{n}") for n in range(1000))
    assert world.kube.reads["binding"] == 0


async def test_a_job_starts_one_loop_that_ends_with_it_and_leaves_nothing(
    world: World, parses: list[str]
) -> None:
    """The first job starts exactly one loop (the binding is read once); more job and binding
    events wake that loop; once the job finished, the loop ends and the binding keeps nothing."""
    for n in range(10):
        world.service.saw_binding("ADDED", binding_body(f"b-{n}"))
    world.kube.bindings["ns", "b-3"] = binding_body("b-3")
    world.job_event("ADDED", world.api.add(job_body("j-1", "b-3")))
    assert [task.get_name() for task in world.loops()] == ["jobs of ns/b-3"]
    await until(lambda: world.status_of("j-1").get("reason") == "BindingNotRunning")
    world.job_event("ADDED", world.api.add(job_body("j-2", "b-3")))
    world.service.saw_binding("MODIFIED", binding_body("b-3"))
    assert [task.get_name() for task in world.loops()] == ["jobs of ns/b-3"]
    await until(lambda: world.status_of("j-2").get("reason") == "BindingNotRunning")
    assert set(parses) == {"b-3"}
    assert world.kube.reads["binding"] == 1
    assert world.service.keeps_state_of("ns", "b-3")

    # The jobs end (their echoes, as the watch would deliver them): the loop goes with them.
    world.job_event("DELETED", world.api.jobs.pop(("ns", "j-1")))
    world.job_event("MODIFIED", world.api.add(job_body("j-2", "b-3", phase="Succeeded")))
    await until(lambda: not world.loops())
    assert not world.service.keeps_state_of("ns", "b-3")
    parsed = len(parses)
    world.service.saw_binding("MODIFIED", binding_body("b-3"))
    assert world.loops() == []
    assert len(parses) == parsed


async def test_a_job_for_a_binding_not_yet_created_runs_its_loop_once_the_binding_is_added(
    world: World,
) -> None:
    """The loop says BindingNotFound and ends; the binding's ADDED event starts it again, with
    that event's body (no read)."""
    world.job_event("ADDED", world.api.add(job_body("j-1", "later")))
    await until(lambda: world.status_of("j-1").get("reason") == "BindingNotFound")
    await until(lambda: not world.loops())
    assert not world.service.keeps_state_of("ns", "later")
    reads = world.kube.reads["binding"]

    world.service.saw_binding("ADDED", binding_body("later"))
    assert [task.get_name() for task in world.loops()] == ["jobs of ns/later"]
    await until(lambda: world.status_of("j-1").get("reason") == "BindingNotRunning")
    assert world.kube.reads["binding"] == reads


async def test_a_finished_job_with_a_ttl_keeps_the_loop_until_it_is_deleted(world: World) -> None:
    """The loop deletes a finished job once its TTL passed, then ends; one without TTL starts
    none."""
    world.kube.bindings["ns", "b"] = binding_body("b")
    world.job_event("ADDED", world.api.add(job_body("kept", "b", phase="Failed")))
    assert world.loops() == []
    done = job_body("ttl", "b", phase="Succeeded", completionTime="2026-11-28T11:30:00Z")
    done["spec"]["ttlSecondsAfterFinished"] = 60
    world.job_event("ADDED", world.api.add(done))
    assert len(world.loops()) == 1
    await until(lambda: ("ns", "ttl") not in world.api.jobs)
    await until(lambda: not world.loops())
    assert ("ns", "kept") in world.api.jobs
    assert not world.service.keeps_state_of("ns", "b")


async def test_deleting_the_binding_ends_its_loop_and_state(world: World) -> None:
    """A binding deleted while its job waits: the loop is cancelled and nothing is kept."""
    world.kube.bindings["ns", "b"] = binding_body("b")
    world.job_event("ADDED", world.api.add(job_body("j", "b")))
    await until(lambda: world.status_of("j").get("reason") == "BindingNotRunning")
    loop = world.loops()[0]
    world.service.saw_binding("DELETED", world.kube.bindings.pop(("ns", "b")))
    await asyncio.gather(loop, return_exceptions=True)
    assert loop.cancelled()
    assert not world.service.keeps_state_of("ns", "b")


async def test_clearing_the_hold_of_a_binding_whose_jobs_are_done_still_reaches_its_condition(
    world: World,
) -> None:
    """The job that held the account finished, so no loop runs; removing the annotation still
    turns AccountHealthy True (one pass), and the binding then keeps no job state."""
    held = binding_body("b")
    held["metadata"]["annotations"] = {ACCOUNT_HOLD_ANNOTATION: "job j: banned"}
    world.kube.bindings["ns", "b"] = held
    world.job_event("ADDED", world.api.add(job_body("j", "b")))
    await until(lambda: world.status_of("j").get("reason") == "AccountHeld")
    assert {c["status"] for _, conditions in world.api.conditions for c in conditions} == {"False"}
    world.job_event("MODIFIED", world.api.add(job_body("j", "b", phase="Failed")))
    await until(lambda: not world.loops())

    cleared = binding_body("b")
    cleared["metadata"]["resourceVersion"] = "8"
    cleared["status"]["conditions"] = world.api.conditions[-1][1]
    world.service.saw_binding("MODIFIED", cleared)
    await until(lambda: world.api.conditions[-1][1][0]["status"] == "True")
    await until(lambda: not world.loops())
    world.service.saw_binding("MODIFIED", cleared)
    assert world.loops() == []
    assert not world.service.keeps_state_of("ns", "b")


async def test_a_failed_read_of_the_binding_is_retried_not_the_end_of_the_loop(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API server refuses the loop's first read of its binding: the loop tries again."""
    world.kube.bindings["ns", "b"] = binding_body("b")
    answers: list[Obj | None] = []
    read = world.kube.get_binding

    async def flaky(namespace: str, name: str) -> Obj | None:
        if not answers:
            answers.append(None)
            raise KubernetesUnavailable("the API server answered 503")
        return await read(namespace, name)

    monkeypatch.setattr(world.kube, "get_binding", flaky)
    monkeypatch.setattr("phonefleet_operator.services.jobs.service.RETRY_SECONDS", 0.01)
    world.job_event("ADDED", world.api.add(job_body("j", "b")))
    await until(lambda: world.status_of("j").get("reason") == "BindingNotRunning")
    assert answers == [None]
