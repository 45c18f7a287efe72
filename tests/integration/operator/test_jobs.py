"""PhoneJobs on a real control plane: scheduling, the ledger, fencing, caps, retries, restarts.

The operator runs in-process against the real API server, as in the other scenarios. Its worker
pods are KWOK pods that do not run, so each binding's job endpoint is the real worker job server
(phonefleet_worker.job_server and job_desk) in a process of its own on loopback
(phonefleet_testbed.job_worker), reached through the test-only PHONEFLEET_JOBS_ENDPOINT_OVERRIDES
setting. The token is the one the operator wrote into the binding's Secret, "mounted" by the
test. What needs a live worker pod (the pod's own address, Appium under a job) is left to the
real-node tests.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.job_worker import StandInWorker
from phonefleet_testbed.jobs import JOB_ENV, make_job
from phonefleet_testbed.processes import free_port
from phonefleet_testbed.scenarios import (
    Fleet,
    Operator,
    condition,
    make_binding,
    posted,
    wait_job_token,
    wait_phase,
)
from phonefleet_testbed.waiting import wait_for
from phonefleet_testbed.watching import Watched

pytestmark = pytest.mark.integration


def get_job(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    """The job as the API server has it."""
    found = kubectl.get("phonejob", name, namespace)
    assert found is not None, f"PhoneJob {namespace}/{name} is gone"
    return found


def phase_is(phase: str) -> Callable[[dict[str, Any]], bool]:
    """A check of a job's status, for ``JobBed.wait``."""
    return lambda status: status.get("phase") == phase


def reason_is(reason: str) -> Callable[[dict[str, Any]], bool]:
    """A check of a job's status, for ``JobBed.wait``."""
    return lambda status: status.get("reason") == reason


class JobBed:
    """Stand-in workers for the bindings of one test, the operator pointed at them, and a watch
    of the test's PhoneJobs (from the first one applied): every status a job passes through is
    seen, even one that lasts a second (a retry's backoff, a short attempt)."""

    def __init__(
        self,
        kubectl: Kubectl,
        namespace: str,
        fleet: Fleet,
        operator_factory: Callable[..., Operator],
        folder: Path,
        *,
        watched: Watched,
    ) -> None:
        self.kubectl = kubectl
        self.namespace = namespace
        self.fleet = fleet
        self._start_operator = operator_factory
        self._folder = folder
        self._watched = watched
        self.workers: dict[str, StandInWorker] = {}
        self.tokens: dict[str, str] = {}

    def worker(self, binding: str) -> StandInWorker:
        """The stand-in worker of ``binding`` (made, not started, on first use)."""
        if binding not in self.workers:
            folder = self._folder / binding
            folder.mkdir()
            self.workers[binding] = StandInWorker(binding, free_port(), folder)
        return self.workers[binding]

    def operator(self, **env: str) -> Operator:
        """Start an operator whose job endpoints are this test's stand-ins."""
        overrides = {f"{self.namespace}/{name}": w.url for name, w in self.workers.items()}
        return self._start_operator(
            PHONEFLEET_JOBS_ENDPOINT_OVERRIDES=json.dumps(overrides), **JOB_ENV, **env
        )

    def stop_operator(self, operator: Operator) -> None:
        """Stop an operator started by ``operator()``."""
        self._start_operator.stop(operator)  # type: ignore[attr-defined]

    def binding(self, name: str, **spec: Any) -> None:
        """Apply a binding on a new phone (without waiting)."""
        self.kubectl.apply(make_binding(name, self.fleet.add_phone(), self.namespace, **spec))

    def running(self, name: str) -> None:
        """Wait until the binding runs, then mount its job token into its stand-in worker."""
        wait_phase(self.kubectl, self.namespace, name, "Running")
        token = wait_job_token(self.kubectl, self.namespace, name)
        self.tokens[name] = token
        self.worker(name).mount_token(token)

    def job(self, name: str, binding: str, **spec: Any) -> None:
        """Apply a job (the first one starts the watch of the namespace's jobs)."""
        self.kubectl.apply(make_job(name, binding, self.namespace, **spec))
        self._watched.start("phonejobs")

    def statuses(self, name: str) -> list[dict[str, Any]]:
        """Every status the job has had since the watch began, in order."""
        return [job.get("status") or {} for job in self._watched.states("phonejobs", name)]

    def wait(
        self, name: str, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60
    ) -> dict[str, Any]:
        """Wait until the job's status has passed ``check``; the job as it was then. (A job
        applied otherwise than by ``job`` is watched from here on.)"""
        self._watched.start("phonejobs")
        return self._watched.first(
            "phonejobs", name, lambda job: check(job.get("status") or {}), f"{name} {what}", timeout
        )


@pytest.fixture
def bed(
    *,
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
    tmp_path: Path,
    watched: Watched,
) -> Iterator[JobBed]:
    """The job test bed of one test; its stand-in workers are stopped afterwards."""
    state = JobBed(kubectl, namespace, fleet, operator_factory, tmp_path, watched=watched)
    yield state
    for worker in state.workers.values():
        worker.stop()


def runs_of(worker: StandInWorker) -> dict[str, int]:
    """How often each attempt's task was started on the worker."""
    counts: dict[str, int] = {}
    for line in worker.runs():
        if line["event"] == "start":
            counts[line["attempt"]] = counts.get(line["attempt"], 0) + 1
    return counts


def no_overlap(worker: StandInWorker) -> bool:
    """Every run ended before the next began (one attempt at a time on the worker)."""
    open_runs = 0
    for line in worker.runs():
        open_runs += 1 if line["event"] == "start" else -1
        if open_runs > 1:
            return False
    return True


# ---------------------------------------------------------------------------------- scenarios


def test_jobs_run_one_at_a_time_in_creation_order_and_the_ledger_records_each(
    bed: JobBed, kubectl: Kubectl, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Three jobs on one binding run in order, never two at once; each status holds its attempt
    with start, end, outcome and the task's result; `kubectl get pj` shows the columns. The job
    token is in no Event, pod spec, job status or operator log line."""
    caplog.set_level(logging.INFO)  # what the operator logs in production
    worker = bed.worker("alpha")
    worker.start()
    bed.operator()
    bed.binding("alpha")
    for name in ("post-1", "post-2", "post-3"):
        bed.job(name, "alpha", params={"caption": name, "seconds": 0.5})
    bed.running("alpha")

    done = [
        bed.wait(name, phase_is("Succeeded"), "to succeed")
        for name in ("post-1", "post-2", "post-3")
    ]

    attempts = [job["status"]["attempts"] for job in done]
    assert [len(a) for a in attempts] == [1, 1, 1]
    starts = [a[0]["startTime"] for a in attempts]
    assert starts == sorted(starts)
    first = attempts[0][0]
    assert first["outcome"] == "Succeeded"
    assert first["result"] == {"url": f"https://posts.invalid/{done[0]['metadata']['uid']}"}
    assert first["endTime"] >= first["startTime"]
    assert [a[0]["id"] for a in attempts] == [
        line["attempt"] for line in worker.runs() if line["event"] == "start"
    ]
    assert no_overlap(worker)
    assert set(runs_of(worker).values()) == {1}
    table = kubectl("get", "pj", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "BINDING", "TASK", "PHASE", "ATTEMPTS", "AGE", "REASON"]
    assert table[1].split()[:5] == ["post-1", "alpha", "probe-post", "Succeeded", "1"]
    posted(kubectl, namespace, "involvedObject.name=post-3,reason=AttemptSucceeded")
    events = kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    assert "StartedAttempt" in events
    token = bed.tokens["alpha"]
    pod = kubectl("get", "pod", "alpha-worker", "-n", namespace, "-o", "json").stdout
    statuses = kubectl("get", "pj", "-n", namespace, "-o", "json").stdout
    assert "StartedAttempt PhoneJob" in caplog.text  # the operator's lines are in there
    assert all(token not in text for text in (events, pod, statuses, caplog.text))


def test_bad_input_gets_a_clear_error_and_nothing_runs(
    bed: JobBed, kubectl: Kubectl, namespace: str
) -> None:
    """Unknown task and params failing its schema fail the job without an attempt; a missing
    binding waits visibly, saying what to do (a job's spec cannot change); a binding in another
    namespace is refused by the API server."""
    worker = bed.worker("bravo")
    worker.start()
    bed.operator()
    bed.binding("bravo")
    bed.job("unknown", "bravo", task="post-video")
    bed.job("bad-params", "bravo", params={"caption": "x", "colour": "red"})
    bed.job("orphan", "nobody")
    bed.running("bravo")

    unknown = bed.wait("unknown", phase_is("Failed"), "to fail")["status"]
    bad = bed.wait("bad-params", phase_is("Failed"), "to fail")["status"]
    orphan = bed.wait("orphan", reason_is("BindingNotFound"), "to wait for its binding")["status"]

    assert (unknown["reason"], unknown["attemptCount"]) == ("UnknownTask", 0)
    assert "unknown task 'post-video'" in unknown["message"]
    assert (bad["reason"], bad["attemptCount"]) == ("InvalidParams", 0)
    assert "colour" in bad["message"]
    assert orphan["phase"] == "Pending"
    assert orphan["message"] == (
        f"PhoneBinding nobody not found in namespace {namespace}: create it, or delete this job "
        "and create it naming another (a job's spec cannot change); the job runs once its "
        "binding exists"
    )
    assert worker.runs() == []
    refused = kubectl(
        "apply",
        "-f",
        "-",
        input_text=json.dumps(make_job("elsewhere", "farm/bravo", namespace)),
        check=False,
    )
    assert refused.returncode != 0
    assert "spec.bindingName" in refused.stderr


def test_a_retryable_error_retries_when_due_and_a_permanent_one_fails_at_once(
    bed: JobBed, kubectl: Kubectl, namespace: str
) -> None:
    """retry-once fails attempt 1, waits its backoff visibly and succeeds on attempt 2; a
    permanent error fails with one attempt although more were allowed, and its message and
    Event say it is not retried (the Event without the attempt said twice)."""
    worker = bed.worker("charlie")
    worker.start()
    bed.operator()
    bed.binding("charlie")
    bed.job("flaky", "charlie", params={"caption": "x", "mode": "retry-once"}, retryDelaySeconds=2)
    bed.job("blocked", "charlie", params={"caption": "x", "mode": "permanent"}, maxAttempts=3)
    bed.running("charlie")

    waiting = bed.wait("flaky", reason_is("RetryBackoff"), "to wait for its retry")["status"]
    flaky = bed.wait("flaky", phase_is("Succeeded"), "to succeed on its retry")["status"]
    blocked = bed.wait("blocked", phase_is("Failed"), "to fail")["status"]

    assert waiting["nextAttemptTime"]
    assert "attempt 2/3 at" in waiting["message"]
    assert [a["outcome"] for a in flaky["attempts"]] == ["Failed", "Succeeded"]
    assert flaky["attempts"][0]["errorClass"] == "Retryable"
    assert (blocked["reason"], blocked["attemptCount"]) == ("PermanentError", 1)
    assert blocked["attempts"][0]["message"] == "action blocked"
    assert blocked["message"] == "attempt 1 Failed: action blocked (a permanent error: not retried)"
    (event,) = posted(kubectl, namespace, "involvedObject.name=blocked,reason=AttemptFailed")
    assert event["message"] == f"PhoneJob blocked: {blocked['message']}"


def test_an_account_error_holds_the_bindings_jobs_until_a_person_clears_it(
    bed: JobBed, kubectl: Kubectl, namespace: str
) -> None:
    """An Account error fails its job, sets AccountHealthy=False and holds the next job;
    removing the annotation lets it run."""
    worker = bed.worker("delta")
    worker.start()
    bed.operator()
    bed.binding("delta")
    bed.job("banned", "delta", params={"caption": "x", "mode": "account"})
    bed.running("delta")
    bed.wait("banned", phase_is("Failed"), "to fail")
    bed.job("next", "delta")

    held = bed.wait("next", reason_is("AccountHeld"), "to be held")["status"]
    binding = wait_for(
        lambda: (
            (b := kubectl.get("pb", "delta", namespace)) and condition(b, "AccountHealthy") and b
        ),
        30,
        message="AccountHealthy on the binding",
    )
    assert condition(binding, "AccountHealthy")["status"] == "False"  # type: ignore[index]
    assert "account suspended" in binding["metadata"]["annotations"]["phonefleet.dev/account-hold"]
    assert "kubectl annotate pb delta phonefleet.dev/account-hold-" in held["message"]

    kubectl("annotate", "pb", "delta", "-n", namespace, "phonefleet.dev/account-hold-")

    bed.wait("next", phase_is("Succeeded"), "to run once the hold is cleared")
    cleared = wait_for(
        lambda: (
            (b := kubectl.get("pb", "delta", namespace))
            and (condition(b, "AccountHealthy") or {}).get("status") == "True"
            and b
        ),
        30,
        message="AccountHealthy=True",
    )
    assert condition(cleared, "AccountHealthy")["reason"] == "Cleared"  # type: ignore[index]


def test_the_daily_cap_and_a_suspended_binding_make_jobs_wait_visibly(
    bed: JobBed, kubectl: Kubectl, namespace: str
) -> None:
    """With maxPerDay 1 the second job waits 'daily cap reached', naming the binding and its cap;
    a suspended binding's job waits naming the binding, its phase and how to resume it, and
    runs after resume. -o wide shows the cap's end in NEXT."""
    for name in ("echo", "foxtrot"):
        bed.worker(name).start()
    bed.operator()
    bed.binding("echo", jobs={"maxPerDay": 1})
    bed.binding("foxtrot", suspend=True)
    bed.job("first", "echo")
    bed.job("second", "echo")
    bed.job("later", "foxtrot")
    bed.running("echo")

    bed.wait("first", phase_is("Succeeded"), "to succeed")
    capped = bed.wait("second", reason_is("DailyCapReached"), "to hit the cap")["status"]
    # Until the binding's own status says Suspended, its job says "(phase Pending)".
    suspended = bed.wait(
        "later",
        lambda status: (
            status.get("message")
            == "PhoneBinding foxtrot is not Running (phase Suspended: resume it with "
            "spec.suspend: false); the job starts once it is"
        ),
        "to wait for its suspended binding",
    )["status"]

    assert capped["message"] == (
        "daily cap reached: 1 job of PhoneBinding echo started today (spec.jobs.maxPerDay 1); "
        "the next may start at 00:00 UTC"
    )
    assert capped["nextAttemptTime"].endswith("T00:00:00Z")
    # -o wide's NEXT prints the time to come (a date column printed it as <invalid>).
    wide = kubectl("get", "pj", "second", "-n", namespace, "-o", "wide").stdout
    assert capped["nextAttemptTime"] in wide
    assert "<invalid>" not in wide
    assert suspended["reason"] == "BindingNotRunning"
    assert bed.workers["foxtrot"].runs() == []

    kubectl(
        "patch",
        "pb",
        "foxtrot",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"suspend":false}}',
    )
    bed.running("foxtrot")
    bed.wait("later", phase_is("Succeeded"), "to run after resume")


# ------------------------------------------------------------ the old ledger's three failures


def test_a_long_running_claim_never_returns_to_pending_and_never_runs_twice(
    bed: JobBed, kubectl: Kubectl, namespace: str
) -> None:
    """The CSV era put a claim older than 10 minutes back to pending while it still ran. Here a
    running attempt stays the job's one attempt through every pass until the worker answers,
    and a second delivery of another attempt to a busy worker is refused: one run, one post."""
    worker = bed.worker("golf")
    worker.start()
    bed.operator()
    bed.binding("golf")
    bed.job("long", "golf", params={"caption": "x", "seconds": 6})
    bed.running("golf")
    bed.wait("long", phase_is("Running"), "to start")
    bed.wait("long", lambda status: status.get("phase") in {"Succeeded", "Failed"}, "to end")

    # Every status the watch saw, from the attempt's start to the first that is not Running.
    seen = [(s.get("phase"), s.get("attemptCount")) for s in bed.statuses("long")]
    start = next(i for i, (phase, _) in enumerate(seen) if phase == "Running")
    end = next(i for i, (phase, _) in enumerate(seen) if i > start and phase != "Running")
    assert seen[end][0] == "Succeeded", seen
    assert {count for _, count in seen[start : end + 1]} == {1}, seen
    assert list(runs_of(worker).values()) == [1]


def test_no_reader_ever_sees_a_job_missing_while_the_ledger_is_written(
    bed: JobBed, kubectl: Kubectl, namespace: str, control_plane: Any
) -> None:
    """The CSV was rewritten whole, so a reader in the gap saw no jobs. Here every list of the
    namespace's jobs, taken as fast as possible while ten jobs run, holds all ten."""
    worker = bed.worker("hotel")
    worker.start()
    bed.operator()
    bed.binding("hotel")
    names = [f"job-{i}" for i in range(10)]
    for name in names:
        bed.job(name, "hotel")
    stop = threading.Event()
    listings: list[set[str]] = []

    def read_continuously() -> None:
        while not stop.is_set():
            items = kubectl.list("phonejobs", namespace)
            listings.append({item["metadata"]["name"] for item in items})

    reader = threading.Thread(target=read_continuously, daemon=True)
    reader.start()
    try:
        bed.running("hotel")
        for name in names:
            bed.wait(name, phase_is("Succeeded"), "to succeed", timeout=90)
    finally:
        stop.set()
        reader.join(timeout=30)

    assert len(listings) > 5
    assert all(listing == set(names) for listing in listings)


def test_jobs_waiting_for_a_retry_survive_the_worker_exiting_and_the_operator_restarting(
    bed: JobBed, kubectl: Kubectl, namespace: str
) -> None:
    """The CSV era's workers exited and forgot the jobs waiting to retry. Here the retry lives in
    the job's status: with the worker gone and the operator restarted, it still runs when due."""
    worker = bed.worker("india")
    worker.start()
    operator = bed.operator()
    bed.binding("india")
    bed.job("retry", "india", params={"caption": "x", "mode": "retry-once"}, retryDelaySeconds=4)
    bed.running("india")
    bed.wait("retry", reason_is("RetryBackoff"), "to wait for its retry")

    # The operator goes first: a retry that comes due before it stopped runs on a live worker
    # (the job still ends [1, 2]), never on a worker that is down.
    bed.stop_operator(operator)
    worker.stop()
    worker.start()
    bed.operator()

    done = bed.wait("retry", phase_is("Succeeded"), "to succeed on its retry")["status"]
    assert [a["number"] for a in done["attempts"]] == [1, 2]
    assert set(runs_of(worker).values()) == {1}


def test_an_operator_restart_mid_attempt_neither_loses_nor_repeats_it(
    bed: JobBed, kubectl: Kubectl, namespace: str
) -> None:
    """The operator stops while an attempt runs; the new one follows the same attempt to its end."""
    worker = bed.worker("juliet")
    worker.start()
    operator = bed.operator()
    bed.binding("juliet")
    bed.job("slow", "juliet", params={"caption": "x", "seconds": 5})
    bed.running("juliet")
    started = bed.wait("slow", phase_is("Running"), "to start")["status"]

    bed.stop_operator(operator)
    bed.operator()

    done = bed.wait("slow", phase_is("Succeeded"), "to succeed")["status"]
    assert [a["id"] for a in done["attempts"]] == [started["attempts"][0]["id"]]
    assert list(runs_of(worker).values()) == [1]


def test_a_binding_whose_secret_predates_the_job_token_gets_it_without_new_adb_or_pod(
    bed: JobBed, kubectl: Kubectl, namespace: str, fleet: Fleet
) -> None:
    """A binding provisioned before PhoneJobs existed (its ADB Secret has no jobToken; its
    worker answers 503): its first job makes the operator write the token into that Secret,
    with the same ADB data, without switching ADB on again, restarting the phone or replacing
    the pod. Once the worker reads it (the kubelet's update of the mounted file), the job runs."""
    worker = bed.worker("lima")
    worker.start()
    bed.operator()
    bed.binding("lima")
    bed.running("lima")
    phone_id = kubectl.get("phonebinding", "lima", namespace)["status"]["phone"]["id"]  # type: ignore[index]
    starts = fleet.simulator.admin.phone(phone_id).start_count
    binding = kubectl.get("phonebinding", "lima", namespace)
    assert binding is not None
    provisioned = binding["status"]["phone"]["adbProvisionedAt"]
    pod_uid = (kubectl.get("pod", "lima-worker", namespace) or {})["metadata"]["uid"]
    # The Secret as a release before PhoneJobs wrote it, and its worker without a token file.
    remove = json.dumps([{"op": "remove", "path": "/data/jobToken"}])
    kubectl("patch", "secret", "lima-adb", "-n", namespace, "--type=json", "-p", remove)
    old = (kubectl.get("secret", "lima-adb", namespace) or {})["data"]
    worker.token_file.unlink()

    bed.job("first", "lima")
    waiting = bed.wait("first", reason_is("WorkerRefused"), "to wait for the worker's token")
    secret = wait_for(
        lambda: (
            (s := kubectl.get("secret", "lima-adb", namespace)) and "jobToken" in s["data"] and s
        ),
        30,
        message="the operator to write the job token into Secret lima-adb",
    )
    token = base64.b64decode(secret["data"]["jobToken"]).decode()
    assert token == bed.tokens["lima"]
    assert {k: v for k, v in secret["data"].items() if k != "jobToken"} == old
    assert "lima-adb" in waiting["status"]["message"]
    assert token not in json.dumps(waiting["status"])
    worker.mount_token(token)

    done = bed.wait("first", phase_is("Succeeded"), "to run once the worker has the token")
    assert done["status"]["attemptCount"] == 1
    binding = kubectl.get("phonebinding", "lima", namespace)
    assert binding is not None
    assert binding["status"]["phone"]["adbProvisionedAt"] == provisioned
    assert (kubectl.get("pod", "lima-worker", namespace) or {})["metadata"]["uid"] == pod_uid
    assert fleet.simulator.admin.phone(phone_id).start_count == starts


def test_a_post_whose_answer_was_lost_is_not_posted_again(
    bed: JobBed, kubectl: Kubectl, namespace: str
) -> None:
    """The worker posts, then its pod goes before it answers: attempt 1 ends Lost, attempt 2
    asks the task first and ends AlreadyDone with the post's URL. One post, one run."""
    worker = bed.worker("kilo")
    worker.start()
    bed.operator()
    bed.binding("kilo")
    bed.job("post", "kilo", params={"caption": "x", "mode": "post-then-hang"}, retryDelaySeconds=1)
    bed.running("kilo")
    bed.wait("post", phase_is("Running"), "to start")
    wait_for(lambda: runs_of(worker), 30, message="the worker to start the post")

    worker.stop()  # the pod dies with the post made and the answer not given
    kubectl("delete", "pod", "kilo-worker", "-n", namespace, "--wait=false")
    worker.start()
    bed.running("kilo")

    done = bed.wait("post", phase_is("Succeeded"), "to succeed")["status"]
    assert [a["outcome"] for a in done["attempts"]] == ["Lost", "AlreadyDone"]
    uid = get_job(kubectl, namespace, "post")["metadata"]["uid"]
    assert done["attempts"][1]["result"] == {"url": f"https://posts.invalid/{uid}"}
    assert len(worker.posts()) == 1


# ------------------------------------------------------------ the admission webhook


def test_the_webhook_refuses_bad_jobs_at_apply_time(
    bed: JobBed, kubectl: Kubectl, namespace: str, webhook_env: dict[str, str]
) -> None:
    """With the webhook on, kubectl apply refuses a job for a missing binding, an unknown task
    (asked of the binding's own worker) and params failing the task's schema; a good one runs."""
    bed.worker("lima").start()
    bed.operator(**webhook_env)

    def webhook_for_jobs() -> bool:
        config = kubectl.get("validatingwebhookconfiguration", "phonefleet.dev")
        return (
            bool(config)
            and any(
                "phonejobs" in rule["resources"]
                for hook in config["webhooks"]
                for rule in hook.get("rules", [])
            )
            and all(hook["clientConfig"].get("caBundle") for hook in config["webhooks"])
        )

    wait_for(webhook_for_jobs, 60, message="the webhook configuration for PhoneJobs")
    bed.binding("lima")
    bed.running("lima")

    def apply(name: str, binding: str, **spec: Any) -> str:
        result = kubectl(
            "apply",
            "-f",
            "-",
            input_text=json.dumps(make_job(name, binding, namespace, **spec)),
            check=False,
        )
        return result.stderr if result.returncode else ""

    assert f"PhoneBinding nobody not found in namespace {namespace}" in apply("orphan", "nobody")
    assert "unknown task 'post-video'" in apply("unknown", "lima", task="post-video")
    assert "caption: Field required" in apply("bad", "lima", params={"mode": "ok"})
    assert apply("good", "lima") == ""
    bed.wait("good", phase_is("Succeeded"), "to succeed")


def test_deleting_a_running_job_cancels_its_attempt_and_the_next_job_runs(
    bed: JobBed, kubectl: Kubectl, namespace: str
) -> None:
    """kubectl delete pj while its attempt runs (the way to cancel a job): the operator cancels
    the attempt on the worker, says so in a CancelledAttempt Event on the binding, and the
    binding's next job runs. With a lease of ten minutes, on the code before the next job could
    not start within the wait: the deleted job's attempt ran on until its lease lapsed, and the
    next job, refused by the busy worker, was said to be Running meanwhile."""
    worker = bed.worker("golf")
    worker.start()
    bed.operator(PHONEFLEET_JOBS_LEASE_SECONDS="600")
    bed.binding("golf")
    bed.job("hung", "golf", params={"caption": "x", "mode": "hang"})
    bed.running("golf")
    hung = bed.wait("hung", phase_is("Running"), "to run")["status"]["attempts"][0]["id"]
    wait_for(lambda: runs_of(worker).get(hung), 60, message="the worker to start the attempt")

    kubectl("delete", "pj", "hung", "-n", namespace)
    bed.job("next", "golf")

    (event,) = posted(kubectl, namespace, "involvedObject.name=golf,reason=CancelledAttempt")
    assert event["message"] == (
        "Cancelled attempt 1 of PhoneJob hung on pod golf-worker: the job was deleted"
    )
    bed.wait("next", phase_is("Succeeded"), "to run once the deleted job's attempt stopped")
    assert [line["event"] for line in worker.runs() if line["attempt"] == hung] == ["start", "end"]
    assert no_overlap(worker)
