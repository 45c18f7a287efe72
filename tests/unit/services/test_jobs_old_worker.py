"""The job protocol across releases. An operator of this release and a worker image of the
previous one (main at f90bf98, before job leases): the worker is sent no field it does not know,
its attempts run without a lease, and its binding is told that the image is old. And a worker of
a later release: what this operator does not know in its answers is ignored, not refused.

Two kinds of old worker: the previous release's own job endpoint code, extracted from git at
that commit and run as a process on loopback by ``tests/previous_release_worker.py`` (the
operator talks to it over HTTP with its real client), and, for the passes that need one clock,
the current desk behind the previous release's answers (``PreviousReleaseApi``: its validate
names no features, its delivery model refuses fields it does not know), a frozen copy of what
that release checked.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from test_jobs_fencing import GRACE, LEASE, OLD, World, started, until

from phonefleet_operator.services.jobs.service import JobService
from phonefleet_operator.settings import JobSettings, OperatorSettings
from phonefleet_operator.workers import WorkerClient
from phonefleet_worker.job_desk import AttemptRequest
from phonefleet_worker.job_server import JobApi
from phonefleet_worker.registry import describe_validation_error
from phonefleet_worker.tasks import TaskResult

REPO = Path(__file__).resolve().parents[3]


class PreviousReleaseDelivery(BaseModel):
    """Frozen copy of the previous release's ``AttemptRequest`` checks (f90bf98): no lease, and
    ``extra="forbid"``. It pins what a worker image built then refuses; do not update it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    job: str = Field(min_length=1)
    job_uid: str = Field(min_length=1)
    number: int = Field(ge=1)
    id: str = Field(min_length=1, max_length=128)
    task: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    deadline_seconds: float = Field(gt=0)
    not_after: float


class PreviousReleaseApi(JobApi):
    """The current desk behind the previous release's answers: validate names no features, a
    delivery is checked by the frozen model, and a cancel knows no ``superseded``."""

    def handle(
        self, method: str, path: str, authorization: str, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        parsed = json.loads(body or b"{}")
        if method == "POST" and path == "/v1/attempts":
            try:
                PreviousReleaseDelivery.model_validate(parsed)
            except ValidationError as exc:
                return 400, {"message": describe_validation_error(exc)}
        if method == "POST" and path.endswith("/cancel"):
            body = b"{}"
        status, answer = super().handle(method, path, authorization, body)
        answer.pop("features", None)
        return status, answer


class OldWorldInProcess(World):
    """The fencing tests' world, with the previous release's worker on pod-1."""

    def __init__(self, **job_spec: Any) -> None:
        super().__init__(**job_spec)
        api = self.workers.at[OLD]
        self.workers.at[OLD] = PreviousReleaseApi(api.desk, api._token)


async def test_a_worker_of_the_previous_release_gets_its_attempt_without_a_lease() -> None:
    """The previous release's worker names no features when asked to validate: the attempt is
    recorded and delivered without ``leaseSeconds`` (which it would refuse with a 400), and the
    binding gets one OldWorkerImage Event for that pod, not one per pass."""
    world = OldWorldInProcess()

    await world.run_pass()
    await world.run_pass()

    attempt = world.status()["attempts"][0]
    assert attempt["outcome"] == "Running"
    assert "leaseSeconds" not in attempt
    assert (world.desks[OLD].lookup(attempt["id"]) or {}).get("state") == "Queued"
    assert ("POST", "/v1/attempts") in world.attempts_on(OLD)
    assert world.kube.events["OldWorkerImage"] == 1


@pytest.mark.looptime
async def test_the_old_worker_image_event_is_not_repeated_when_the_job_loop_starts_again() -> None:
    """The binding's job loop ends once its job succeeded; a later job starts a new loop on the
    same old worker pod: the binding still has one OldWorkerImage Event, not one per loop."""
    world = OldWorldInProcess()
    task = await started(world)
    attempt_id = task.record.request.id  # type: ignore[attr-defined]
    world.desks[OLD].report(
        TaskResult(task.name, ok=True, detail={"attemptId": attempt_id, "state": "Succeeded"}),
        0.0,
    )
    await until(lambda: world.status().get("phase") == "Succeeded")
    world.service.saw("MODIFIED", world.api.jobs["ns", "post"])  # the watch's echo
    await until(lambda: not world.service.keeps_state_of("ns", "alpha"))

    world.service.saw("ADDED", world.add_job("post-2"))
    await until(lambda: bool(world.api.jobs["ns", "post-2"]["status"].get("attempts")))

    assert "leaseSeconds" not in world.api.jobs["ns", "post-2"]["status"]["attempts"][0]
    assert world.kube.events["OldWorkerImage"] == 1


async def test_an_old_workers_attempt_out_of_reach_is_fenced_by_its_deadline() -> None:
    """Without a lease nothing stops the old worker before the attempt's deadline: when its pod
    is force-deleted and it cannot be reached, the job stays Fencing past what a lease would
    have allowed, and attempt 1 ends Lost only at its notAfter plus the grace."""
    world = OldWorldInProcess(activeDeadlineSeconds=120)
    await started(world)
    world.force_delete()
    world.workers.at.pop(OLD)

    world.clock.advance(LEASE + GRACE + 1)
    await world.run_pass()
    assert world.status()["reason"] == "Fencing"
    assert world.status()["message"].endswith("(at the latest 2026-11-28T12:02:05Z)")

    world.clock.advance(120 - LEASE - 1)  # NOW + 125 s: notAfter + GRACE
    await world.run_pass()
    ended = world.status()
    assert ended["attempts"][0]["outcome"] == "Lost"
    assert ended["reason"] == "RetryBackoff"


# ------------------------------------------------------------------ the previous release's code

SCRIPT = REPO / "tests" / "previous_release_worker.py"


@dataclasses.dataclass
class PreviousWorker:
    """The previous release's worker process: its job endpoint, and a session run on demand."""

    base: str
    token_file: Path
    process: subprocess.Popen[str]

    def run_attempt(self) -> str:
        """Let its session run the delivered attempt (with a stand-in Appium driver)."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()


def start_previous_worker(folder: Path, *args: str) -> PreviousWorker:
    """Start tests/previous_release_worker.py; fail with its words when it does not serve."""
    token_file, errors = folder / "jobToken", folder / "previous-worker.stderr"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(token_file), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    if not port.isdigit():
        process.kill()
        process.wait()
        pytest.fail(f"the previous release's worker did not start: {errors.read_text().strip()}")
    return PreviousWorker(f"http://127.0.0.1:{port}", token_file, process)


def stop_previous_worker(worker: PreviousWorker) -> None:
    """End its stdin (it stops), or kill it."""
    assert worker.process.stdin is not None
    worker.process.stdin.close()
    try:
        worker.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.wait()


@pytest.fixture
def previous_worker(tmp_path: Path) -> Iterator[PreviousWorker]:
    """The previous release's job endpoint (its job_server, job_desk, registry and built-in
    tasks, from git at f90bf98) serving on a loopback port, in a process of its own."""
    worker = start_previous_worker(tmp_path)
    try:
        yield worker
    finally:
        stop_previous_worker(worker)


class PreviousReleaseWorld(World):
    """The fencing tests' world, but the operator reaches pod-1's worker, the previous release's
    process, over HTTP with its real WorkerClient (through the test-only endpoint override)."""

    def __init__(self, worker: PreviousWorker) -> None:
        self.base = worker.base
        super().__init__()
        worker.token_file.write_text(self.tokens.token_for("ns", "alpha", "uid-alpha"))
        # Seeing the job started the binding's own loop (a task); the test runs the passes. The
        # in-process workers never yield, so there the loop cannot interleave; over HTTP it would.
        for task in self.service._tasks.values():
            task.cancel()

    def new_operator(self) -> JobService:
        service = JobService(
            kube=self.kube,
            api=self.api,  # type: ignore[arg-type]
            workers=WorkerClient(timeout_seconds=10),
            tokens=self.tokens,
            pods=self.pods,
            settings=JobSettings(
                lease_seconds=LEASE,
                grace_seconds=GRACE,
                endpoint_overrides={"ns/alpha": self.base},
            ),
            operator=OperatorSettings(),
            clock=self.clock,
        )
        for raw in self.api.jobs.values():
            service.saw("ADDED", raw)
        return service


async def test_the_previous_releases_worker_takes_the_attempt_and_its_cancel_ends_it(
    previous_worker: PreviousWorker,
) -> None:
    """The previous release's own worker code: it accepts the delivery (202, where the lease
    field drew a 400), reports the attempt Queued; once its pod is force-deleted the operator's
    cancel (whose ``superseded`` it does not know) ends the queued attempt there, and that is
    the ledger's outcome."""
    base = previous_worker.base
    world = PreviousReleaseWorld(previous_worker)
    try:
        await world.run_pass()
        attempt = world.status()["attempts"][0]
        assert (attempt["outcome"], world.status()["phase"]) == ("Running", "Running")
        assert "leaseSeconds" not in attempt
        assert world.kube.events["OldWorkerImage"] == 1

        answer = await world.service._workers.attempt(
            base, world.tokens.token_for("ns", "alpha", "uid-alpha"), attempt["id"]
        )
        assert (answer.status, answer.body.get("state")) == (200, "Queued")

        world.force_delete()
        await world.run_pass()
        ended = world.status()
        assert ended["attempts"][0]["outcome"] == "Failed"
        assert ended["attempts"][0]["message"] == "cancelled"
        assert ended["reason"] == "RetryBackoff"
    finally:
        await world.service.close()


async def test_the_previous_releases_worker_runs_the_new_operators_job_to_succeeded(
    previous_worker: PreviousWorker,
) -> None:
    """The previous release's worker runs the attempt the new operator delivered (its session
    runs the heartbeat task), and the operator records its result: the job Succeeds."""
    world = PreviousReleaseWorld(previous_worker)
    world.clock.now = datetime.now(UTC)  # that worker checks notAfter against its own clock
    try:
        await world.run_pass()
        assert previous_worker.run_attempt() == "ran"

        world.clock.advance(2)
        await world.run_pass()

        status = world.status()
        assert (status["phase"], status["attemptCount"]) == ("Succeeded", 1)
        assert status["attempts"][0]["result"] == {"width": 720, "height": 1280}
    finally:
        await world.service.close()


def test_the_frozen_copy_refuses_what_the_previous_release_refused(
    previous_worker: PreviousWorker,
) -> None:
    """The frozen model is checked against the real previous release: both refuse a lease."""
    body: Mapping[str, Any] = {
        **json.loads(
            AttemptRequest(
                job="ns/post",
                job_uid="u",
                number=1,
                id="a-1",
                task="heartbeat",
                deadline_seconds=60,
                not_after=0,
                lease_seconds=30,
            ).model_dump_json(by_alias=True, exclude_none=True)
        ),
    }
    with pytest.raises(ValidationError, match="leaseSeconds"):
        PreviousReleaseDelivery.model_validate(body)
    base = previous_worker.base
    previous_worker.token_file.write_text("test-token")

    refused = requests.post(
        f"{base}/v1/attempts",
        json=body,
        headers={"Authorization": "Bearer test-token"},
        timeout=10,
    )
    assert refused.status_code == 400
    assert "leaseSeconds" in refused.json()["message"]


# ------------------------------------------------------------------ a later worker


class LaterReleaseApi(JobApi):
    """A worker of a later release: it names features this operator does not know (in a form
    it may not read), and its answers carry fields and a state this operator does not know."""

    def __init__(self, api: JobApi, *, features: Any, state: str | None = None) -> None:
        super().__init__(api.desk, api._token)
        self.features = features
        self.state = state

    def handle(
        self, method: str, path: str, authorization: str, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        status, answer = super().handle(method, path, authorization, body)
        if path == "/v1/validate":
            answer["features"] = self.features
        elif self.state is not None and answer.get("state") == "Queued":
            answer.update(state=self.state, progress={"step": 3}, etaSeconds=12)
        return status, answer


@pytest.mark.parametrize(
    ("features", "lease"),
    [
        (["lease", "superseded", "checkpoints"], LEASE),
        ({"lease": True}, None),
        ("lease", None),
    ],
    ids=["more-features", "a-mapping", "a-string"],
)
async def test_the_lease_goes_only_to_a_worker_that_names_it_in_a_list(
    features: Any, lease: float | None
) -> None:
    """Features this operator does not know are ignored; a features value it cannot read counts
    as none (no lease, as for the previous release), never as an error."""
    world = World()
    world.workers.at[OLD] = LaterReleaseApi(world.workers.at[OLD], features=features)

    await world.run_pass()

    attempt = world.status()["attempts"][0]
    assert attempt.get("leaseSeconds") == lease
    assert (world.desks[OLD].lookup(attempt["id"]) or {}).get("state") == "Queued"
    assert world.kube.events["OldWorkerImage"] == (0 if lease else 1)


async def test_a_later_workers_unknown_state_and_fields_keep_the_attempt_running() -> None:
    """A later worker reports a state this operator does not know (with more fields): the
    attempt is not over for it, so it stays Running and is asked again; nothing is refused."""
    world = World()
    world.workers.at[OLD] = LaterReleaseApi(
        world.workers.at[OLD], features=["lease", "superseded"], state="Paused"
    )
    await world.run_pass()

    world.clock.advance(2)
    await world.run_pass()

    status = world.status()
    assert (status["phase"], status["reason"]) == ("Running", "Running")
    assert status["attempts"][0]["outcome"] == "Running"
    assert world.attempts_on(OLD).count(("GET", f"/v1/attempts/{status['attempts'][0]['id']}")) == 1


class MisreportingApi(PreviousReleaseApi):
    """The previous release's delivery checks behind an answer to validate that names the
    lease (a worker that misreports, or an image swapped under a running pod)."""

    def handle(
        self, method: str, path: str, authorization: str, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        status, answer = super().handle(method, path, authorization, body)
        if path == "/v1/validate":
            answer["features"] = ["lease"]
        return status, answer


async def test_a_delivery_the_worker_cannot_read_ends_the_attempt_at_once() -> None:
    """A worker that answers a delivery 400 did not take it, and would answer every re-delivery
    (the same bytes) the same: the attempt ends Failed (Retryable) with the worker's words at
    once, rather than stay Running, re-delivered on every poll, until its deadline."""
    world = World()
    api = world.workers.at[OLD]
    world.workers.at[OLD] = MisreportingApi(api.desk, api._token)

    await world.run_pass()

    status = world.status()
    attempt = status["attempts"][0]
    assert (attempt["outcome"], attempt["errorClass"]) == ("Failed", "Retryable")
    assert "answered 400: leaseSeconds: Extra inputs are not permitted" in attempt["message"]
    assert status["reason"] == "RetryBackoff"
    assert world.desks[OLD].lookup(attempt["id"]) is None


async def test_the_binding_shows_an_old_worker_image_until_a_current_worker_answers() -> None:
    """An old worker's binding gets ``WorkerImageCurrent=False`` (reason OldWorkerImage, the
    Event's words), beside its other conditions; once the pod is replaced by one whose worker
    takes leases, the next job's validate turns it True (TakesLeases)."""
    world = OldWorldInProcess()
    task = await started(world)

    _, conditions = world.api.conditions[-1]
    old = {item["type"]: item for item in conditions}["WorkerImageCurrent"]
    assert (old["status"], old["reason"]) == ("False", "OldWorkerImage")
    assert old["message"].startswith("The worker of pod alpha-worker runs an image older")
    world.binding["status"]["conditions"] = conditions  # as the watch then shows it
    written = len(world.api.conditions)
    await world.run_pass()
    assert len(world.api.conditions) == written  # nothing new to say

    attempt_id = task.record.request.id  # type: ignore[attr-defined]
    world.desks[OLD].report(
        TaskResult(task.name, ok=True, detail={"attemptId": attempt_id, "state": "Succeeded"}),
        0.0,
    )
    await world.run_pass()
    assert world.status()["phase"] == "Succeeded"
    world.force_delete()  # a rebuilt image: pod-2's worker takes leases
    world.service.saw("ADDED", world.add_job("post-2"))
    await world.run_pass()

    _, conditions = world.api.conditions[-1]
    current = {item["type"]: item for item in conditions}["WorkerImageCurrent"]
    assert (current["status"], current["reason"]) == ("True", "TakesLeases")
    assert world.api.jobs["ns", "post-2"]["status"]["attempts"][0]["leaseSeconds"] == LEASE
