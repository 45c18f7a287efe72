"""A worker pod force-deleted mid-attempt: the next attempt starts only once the old one stopped.

`kubectl delete pod --force --grace-period=0` removes the pod from the API server at once while
its containers (the old worker) may still run and drive the phone. The operator, on the real
control plane, must not start another attempt on the replacement pod until the old one is fenced:
the old worker said it stopped (it is told to), or its lease ran out (it could not be reached).

KWOK pods do not run, so each pod's worker is a stand-in process with the worker's real job
server and desk (phonefleet_testbed.job_worker): ``old`` for the pod that is force-deleted and
``new`` for its replacement. The operator reaches a binding's job endpoint at one URL (the
test-only endpoint override), so a small router on that URL plays the network: requests about
the attempts of the old pod go to the old worker (or nowhere, when it is cut off), every other
request to the pod of the moment. Both workers log each run's start and end on one monotonic
clock, which is what "the next attempt started after the old one stopped" is checked against.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from phonefleet_operator.errors import KubernetesUnavailable
from phonefleet_operator.k8s.jobs import JobGateway
from phonefleet_operator.services.jobs.service import JobService
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.job_worker import StandInWorker
from phonefleet_testbed.jobs import JOB_ENV, make_job
from phonefleet_testbed.processes import free_port
from phonefleet_testbed.scenarios import (
    Fleet,
    Operator,
    binding,
    condition,
    make_binding,
    wait_job_token,
    wait_phase,
)
from phonefleet_testbed.waiting import wait_for
from phonefleet_testbed.watching import Watched

pytestmark = pytest.mark.integration

NAME = "fence"
LEASE_SECONDS = "4"


class Router:
    """One URL for the binding's job endpoint; it forwards each request to the pod it is for."""

    def __init__(self, current: str) -> None:
        self.current = current
        self.old = ""
        self.old_attempts: set[str] = set()
        self.cut = False
        """The old pod is out of reach: its requests get no answer (the connection drops)."""
        router = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                router.forward(self, "GET")

            def do_POST(self) -> None:
                router.forward(self, "POST")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Router:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def forward(self, request: BaseHTTPRequestHandler, method: str) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        parts = request.path.split("/")
        named = parts[3] if len(parts) > 3 and parts[2] == "attempts" else ""
        if not named and body:
            named = str(json.loads(body).get("id", ""))
        target = self.current
        if named in self.old_attempts:
            if self.cut:
                request.close_connection = True
                return
            target = self.old
        try:
            answer = requests.request(
                method,
                target + request.path,
                data=body if method == "POST" else None,
                headers={
                    "Authorization": request.headers.get("Authorization", ""),
                    "Content-Type": "application/json",
                },
                timeout=10,
            )
        except requests.RequestException:
            request.close_connection = True  # the worker did not answer: neither do we
            return
        status, reply = answer.status_code, answer.content
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(reply)))
        request.end_headers()
        request.wfile.write(reply)

    def replace_pod(self, attempt_id: str, new: str) -> None:
        """The pod was replaced: the attempt stays on the old pod's worker, the rest goes new."""
        self.old, self.old_attempts = self.current, {attempt_id}
        self.current = new


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[dict[str, StandInWorker]]:
    """The old pod's worker and the new pod's, started."""
    made = {}
    for which in ("old", "new"):
        folder = tmp_path / which
        folder.mkdir()
        made[which] = StandInWorker(f"{NAME}-{which}", free_port(), folder)
        made[which].start()
    yield made
    for worker in made.values():
        worker.stop()


def job_status(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    job = kubectl.get("phonejob", "post", namespace)
    assert job is not None
    return dict(job.get("status") or {})


def wait_status(
    watched: Watched, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """The job's first status that passed ``check``: watched, since a status such as Fencing
    lasts only the lease and the grace (6 s), which a poll on a loaded machine can miss."""
    job = watched.first(
        "phonejobs", "post", lambda job: check(job.get("status") or {}), f"the job {what}", 90
    )
    return dict(job.get("status") or {})


def first_binding_state(
    watched: Watched, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """The binding as it was when it first passed ``check`` (watched, as above)."""
    return watched.first("phonebindings", NAME, check, what, 60)


def run_times(worker: StandInWorker, attempt_id: str) -> dict[str, float]:
    """When the worker started and ended its run of the attempt (monotonic, machine-wide)."""
    return {line["event"]: line["t"] for line in worker.runs() if line["attempt"] == attempt_id}


def run_long_job(
    kubectl: Kubectl, namespace: str, workers: dict[str, StandInWorker], watched: Watched
) -> str:
    """Apply PhoneJob ``post`` on the binding and wait until the old worker runs attempt 1;
    its id."""
    kubectl.apply(
        make_job(
            "post",
            NAME,
            namespace,
            # Long enough to be running still when the pod goes; the new worker's attempt
            # (the same params) is only waited for until it starts.
            params={"caption": "x", "seconds": 120},
            retryDelaySeconds=1,
            activeDeadlineSeconds=600,
        )
    )
    watched.start("phonejobs")
    running = wait_status(watched, lambda s: s.get("phase") == "Running", "to run")
    first = str(running["attempts"][0]["id"])
    wait_for(lambda: "start" in run_times(workers["old"], first), 30, message="attempt 1 to run")
    return first


def force_delete_pod(kubectl: Kubectl, namespace: str) -> None:
    """``kubectl delete pod --force --grace-period=0`` on the binding's worker pod, and wait
    until the API server no longer has it (a replacement may already be there)."""
    old_uid = (kubectl.get("pod", f"{NAME}-worker", namespace) or {})["metadata"]["uid"]
    kubectl("delete", "pod", f"{NAME}-worker", "-n", namespace, "--force", "--grace-period=0")
    wait_for(
        lambda: (
            (p := kubectl.get("pod", f"{NAME}-worker", namespace)) is None
            or p["metadata"]["uid"] != old_uid
        ),
        60,
        message="the old pod to leave the API server",
    )


def start_attempt_then_force_delete(
    *,
    kubectl: Kubectl,
    namespace: str,
    job_binding: Callable[..., str],
    router: Router,
    workers: dict[str, StandInWorker],
    watched: Watched,
) -> str:
    """Binding and job running on the old pod's worker; then the pod force-deleted. Returns
    attempt 1's id."""
    token = job_binding(NAME, router.url, PHONEFLEET_JOBS_LEASE_SECONDS=LEASE_SECONDS)
    watched.start("phonebindings")
    for worker in workers.values():
        worker.mount_token(token)
    first = run_long_job(kubectl, namespace, workers, watched)
    router.replace_pod(first, workers["new"].url)
    force_delete_pod(kubectl, namespace)
    return first


def replacement_pod(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    """The binding's new worker pod, once it exists."""
    return wait_for(
        lambda: kubectl.get("pod", f"{NAME}-worker", namespace),
        60,
        message="the replacement pod",
    )


@pytest.fixture
def attempt_then_force_delete(
    *,
    kubectl: Kubectl,
    namespace: str,
    job_binding: Callable[..., str],
    workers: dict[str, StandInWorker],
    watched: Watched,
) -> Callable[[Router], str]:
    """``attempt_then_force_delete(router)``: :func:`start_attempt_then_force_delete` on this
    test's parts."""

    def start(router: Router) -> str:
        return start_attempt_then_force_delete(
            kubectl=kubectl,
            namespace=namespace,
            job_binding=job_binding,
            router=router,
            workers=workers,
            watched=watched,
        )

    return start


def test_a_force_deleted_pods_worker_is_told_to_stop_before_the_next_attempt_starts(
    kubectl: Kubectl,
    namespace: str,
    attempt_then_force_delete: Callable[[Router], str],
    workers: dict[str, StandInWorker],
    watched: Watched,
) -> None:
    """The pod is force-deleted while its worker still runs attempt 1. The operator tells that
    worker to stop (at the old pod's address) and records its answer as attempt 1's end; only
    then does attempt 2 start, on the new pod's worker. Before, attempt 1 ended Lost at once and
    attempt 2 ran on the new pod while the old worker still ran attempt 1: two workers on one
    phone."""
    with Router(workers["old"].url) as router:
        first = attempt_then_force_delete(router)
        status = wait_status(watched, lambda s: s.get("attemptCount", 0) >= 2, "to start attempt 2")
        second = status["attempts"][1]["id"]
        wait_for(lambda: run_times(workers["new"], second), 30, message="attempt 2 to run")
        pod = replacement_pod(kubectl, namespace)

    old_run, new_run = run_times(workers["old"], first), run_times(workers["new"], second)
    assert "end" in old_run, "the old worker still runs attempt 1"
    assert old_run["end"] < new_run["start"]
    ended = status["attempts"][0]
    # The replacement pod was created only once attempt 1 had ended (RFC 3339 seconds).
    assert pod["metadata"]["creationTimestamp"] >= ended["endTime"]
    # The task returned on its cancel event (Failed), or was abandoned (TimedOut): either way,
    # in the old worker's own words.
    assert (ended["outcome"], ended["message"]) in {
        ("Failed", "cancelled"),
        ("TimedOut", "task probe-post was stopped: cancelled by the operator"),
    }
    assert ended["endTime"] <= status["attempts"][1]["startTime"]
    assert run_times(workers["new"], first) == {}


def test_a_force_deleted_pods_worker_out_of_reach_stops_at_its_lease_before_the_next_starts(
    kubectl: Kubectl,
    namespace: str,
    attempt_then_force_delete: Callable[[Router], str],
    workers: dict[str, StandInWorker],
    watched: Watched,
) -> None:
    """As above, but the old pod is out of reach (its node cut off): the job waits, Fencing,
    while the old worker, no longer asked about its attempt, stops it when its 4 s lease runs
    out; the operator ends attempt 1 Lost after the lease plus the grace, and attempt 2 starts
    on the new pod after the old worker stopped."""
    with Router(workers["old"].url) as router:
        router.cut = True  # takes effect with replace_pod: only the old pod's attempt is cut
        first = attempt_then_force_delete(router)
        fencing = wait_status(watched, lambda s: s.get("reason") == "Fencing", "to wait, Fencing")
        # Meanwhile the binding has no pod: its worker would open ADB and Appium on the phone.
        held = first_binding_state(
            watched,
            lambda b: (condition(b, "WorkerReady") or {}).get("reason") == "FencingAttempt",
            "the binding to hold its new pod back",
        )
        status = wait_status(watched, lambda s: s.get("attemptCount", 0) >= 2, "to start attempt 2")
        second = status["attempts"][1]["id"]
        wait_for(lambda: run_times(workers["new"], second), 30, message="attempt 2 to run")
        pod = replacement_pod(kubectl, namespace)

    assert "went away while it ran" in fencing["message"]
    assert held["status"]["phase"] == "Bound"
    assert (
        "attempt 1 of PhoneJob post ran on a worker pod that went away"
        in (held["status"]["message"])
    )
    old_run, new_run = run_times(workers["old"], first), run_times(workers["new"], second)
    assert "end" in old_run, "the old worker still runs attempt 1"
    assert old_run["end"] < new_run["start"]
    ended = status["attempts"][0]
    assert ended["outcome"] == "Lost"
    assert pod["metadata"]["creationTimestamp"] >= ended["endTime"]
    assert "lease or deadline has run out" in ended["message"]
    assert "lease ran out" in workers["old"].log_tail()


def job_gone(kubectl: Kubectl, namespace: str) -> bool:
    """Whether job ``post`` has left the API server."""
    return kubectl.get("phonejob", "post", namespace) is None


def assert_old_worker_stopped_alone(workers: dict[str, StandInWorker], first: str) -> None:
    """The old worker stopped attempt 1 at its lease, and the new one never ran it."""
    assert "lease ran out" in workers["old"].log_tail()
    assert run_times(workers["new"], first) == {}


def test_a_job_deleted_while_its_worker_is_cut_off_holds_the_new_pod_until_the_fence(
    kubectl: Kubectl,
    namespace: str,
    job_binding: Callable[..., str],
    workers: dict[str, StandInWorker],
    watched: Watched,
) -> None:
    """The old pod's worker, running attempt 1, is cut off (its node partitioned); the job is
    deleted (kubectl delete pj), then the pod force-deleted. The job stays, deleting, on its
    finalizer (Cancelling, then Fencing), so the binding creates no replacement pod until the
    old worker's run ended at its lease (15 s here); then the job goes. Before, the deleted job
    left the operator's view at once, and the replacement pod was created at the force delete
    while the old worker still ran attempt 1: two workers on one phone."""
    with Router(workers["old"].url) as router:
        token = job_binding(NAME, router.url, PHONEFLEET_JOBS_LEASE_SECONDS="15")
        watched.start("phonebindings")
        for worker in workers.values():
            worker.mount_token(token)
        first = run_long_job(kubectl, namespace, workers, watched)
        router.old, router.old_attempts, router.cut = router.current, {first}, True
        kubectl("delete", "phonejob", "post", "-n", namespace, "--wait=false")
        wait_for(
            lambda: (
                (job := kubectl.get("phonejob", "post", namespace)) is None
                or (job.get("status") or {}).get("reason") == "Cancelling"
            ),
            30,
            message="the operator to see the deletion",
        )
        router.current = workers["new"].url
        force_delete_pod(kubectl, namespace)
        replacement_pod(kubectl, namespace)
        # The replacement pod exists only once the old worker's run ended, never before.
        old_run = run_times(workers["old"], first)
        assert "end" in old_run, "the new pod was created while the old worker ran attempt 1"
        fencing = wait_status(
            watched, lambda s: s.get("reason") == "Fencing", "to wait for the fence, Fencing"
        )
        wait_for(lambda: job_gone(kubectl, namespace), 60, message="the job to go")

    assert fencing["message"].startswith("the job was deleted; attempt 1/3: pod fence-worker")
    assert_old_worker_stopped_alone(workers, first)


def test_a_job_deleted_after_its_pod_was_force_deleted_holds_the_new_pod_until_the_fence(
    kubectl: Kubectl,
    namespace: str,
    attempt_then_force_delete: Callable[[Router], str],
    workers: dict[str, StandInWorker],
    watched: Watched,
) -> None:
    """The other order: the pod is force-deleted while its worker, out of reach, runs attempt 1,
    and then the job is deleted. The job stays, deleting, on its finalizer (Fencing, "the job
    was deleted"), and the binding creates its replacement pod once the old worker's run ended
    at its lease; then the job goes. On the code before, the binding, held while the job ran,
    was not woken once the job was gone: no replacement pod came within the 60 s waited."""
    with Router(workers["old"].url) as router:
        router.cut = True  # takes effect with replace_pod: only the old pod's attempt is cut
        first = attempt_then_force_delete(router)
        kubectl("delete", "phonejob", "post", "-n", namespace, "--wait=false")
        replacement_pod(kubectl, namespace)
        old_run = run_times(workers["old"], first)
        fencing = wait_status(
            watched, lambda s: "the job was deleted" in s.get("message", ""), "to say so"
        )
        wait_for(lambda: job_gone(kubectl, namespace), 60, message="the job to go")

    assert "end" in old_run, "the new pod was created while the old worker ran attempt 1"
    assert (fencing["phase"], fencing["reason"]) == ("Running", "Fencing")
    assert_old_worker_stopped_alone(workers, first)


def start_attempt_out_of_reach(
    *,
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
    router: Router,
    workers: dict[str, StandInWorker],
    watched: Watched,
    **env: str,
) -> tuple[str, str]:
    """Binding and job running on the old worker, which is then cut off (its attempt's requests
    get no answer); ``env``: more operator settings. Returns the phone's id and attempt 1's id."""
    operator_factory(
        PHONEFLEET_JOBS_ENDPOINT_OVERRIDES=json.dumps({f"{namespace}/{NAME}": router.url}),
        **JOB_ENV,
        PHONEFLEET_JOBS_LEASE_SECONDS=LEASE_SECONDS,
        **env,
    )
    phone = fleet.add_phone()
    kubectl.apply(make_binding(NAME, phone, namespace))
    watched.start("phonebindings")
    wait_phase(kubectl, namespace, NAME, "Running")
    workers["old"].mount_token(wait_job_token(kubectl, namespace, NAME))
    kubectl.apply(
        {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhoneJob",
            "metadata": {"name": "post", "namespace": namespace},
            "spec": {
                "bindingName": NAME,
                "task": "probe-post",
                "params": {"caption": "x", "seconds": 120},
                "activeDeadlineSeconds": 600,
            },
        }
    )
    watched.start("phonejobs")
    running = wait_status(watched, lambda s: s.get("phase") == "Running", "to run")
    first = str(running["attempts"][0]["id"])
    wait_for(lambda: "start" in run_times(workers["old"], first), 30, message="attempt 1 to run")
    router.cut = True
    router.replace_pod(first, workers["new"].url)
    return phone, first


@pytest.fixture
def attempt_out_of_reach(
    *,
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
    workers: dict[str, StandInWorker],
    watched: Watched,
) -> Callable[..., tuple[str, str]]:
    """``attempt_out_of_reach(router, **env)``: :func:`start_attempt_out_of_reach` on this
    test's parts."""

    def start(router: Router, **env: str) -> tuple[str, str]:
        return start_attempt_out_of_reach(
            kubectl=kubectl,
            namespace=namespace,
            fleet=fleet,
            operator_factory=operator_factory,
            router=router,
            workers=workers,
            watched=watched,
            **env,
        )

    return start


def test_a_binding_deleted_mid_attempt_stops_its_phone_only_after_the_attempt_is_fenced(
    *,
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    attempt_out_of_reach: Callable[..., tuple[str, str]],
    workers: dict[str, StandInWorker],
) -> None:
    """The binding is deleted while its worker, now out of reach, runs attempt 1. The release
    removes the pod but keeps the claim and the phone (the finalizer stays) until the attempt
    is fenced: the worker stops it at its lease, the operator ends it Lost after the lease and
    the grace, and only then is the phone stopped and the binding gone. Before, the phone was
    stopped as soon as the pod was gone, with the attempt still running on the old worker, and
    the attempt ended Lost "the binding and its pod are gone"."""
    with Router(workers["old"].url) as router:
        phone, first = attempt_out_of_reach(router)
        kubectl("delete", "phonebinding", NAME, "-n", namespace, "--wait=false")
        wait_for(lambda: phone not in fleet.running(), 90, message="the phone to be stopped")
        # The phone stops after the old worker's run ended (at its lease), never before.
        old_run = run_times(workers["old"], first)
        wait_for(lambda: binding(kubectl, namespace, NAME) is None, 60, message="the binding to go")

    assert "end" in old_run, "the phone was stopped while the old worker still ran attempt 1"
    ended = job_status(kubectl, namespace)["attempts"][0]
    assert ended["outcome"] == "Lost"
    assert "lease or deadline has run out" in ended["message"]


def test_a_binding_suspended_mid_attempt_stops_its_phone_only_after_the_attempt_is_fenced(
    *,
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    attempt_out_of_reach: Callable[..., tuple[str, str]],
    workers: dict[str, StandInWorker],
    watched: Watched,
) -> None:
    """The binding is suspended while its worker, now out of reach, runs attempt 1. Its pod
    goes, but its phone keeps running, the binding saying why (Suspended; Ready and PhoneReady
    with reason FencingAttempt, naming the attempt), until the attempt is fenced at its lease;
    then the phone is stopped, after the old worker's run ended. Before, the phone was stopped
    at the first suspended pass, with the attempt still running on the old worker."""
    with Router(workers["old"].url) as router:
        phone, first = attempt_out_of_reach(router)
        kubectl(
            "patch", "phonebinding", NAME, "-n", namespace, "--type=merge",
            "-p", '{"spec":{"suspend":true}}',
        )  # fmt: skip
        waiting = first_binding_state(
            watched,
            lambda b: (condition(b, "Ready") or {}).get("reason") == "FencingAttempt",
            "the binding to wait for the fence",
        )
        wait_for(lambda: phone not in fleet.running(), 90, message="the phone to be stopped")
        old_run = run_times(workers["old"], first)

    assert "end" in old_run, "the phone was stopped while the old worker still ran attempt 1"
    assert waiting["status"]["phase"] == "Suspended"
    phone_ready = condition(waiting, "PhoneReady") or {}
    assert (phone_ready.get("status"), phone_ready.get("reason")) == ("False", "FencingAttempt")
    assert "attempt 1 of PhoneJob post" in phone_ready.get("message", "")
    assert job_status(kubectl, namespace)["attempts"][0]["outcome"] == "Lost"
    wait_phase(kubectl, namespace, NAME, "Suspended")


def test_a_job_whose_binding_vanished_mid_attempt_is_fenced_not_ended_at_once(
    *,
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    attempt_out_of_reach: Callable[..., tuple[str, str]],
    workers: dict[str, StandInWorker],
    watched: Watched,
) -> None:
    """The binding leaves the API server while its worker, out of reach, runs attempt 1 (its
    finalizer removed by hand): the job stays Running (Fencing, naming the deleted binding)
    until the attempt's lease and the grace ran out, then attempt 1 ends Lost, after the old
    worker stopped it. Before, it ended Lost at once ("the binding and its pod are gone").
    The sweep of orphaned claims (every second here) stops the phone and deletes the claim only
    after that; before, it stopped the phone as soon as the binding and its pod were gone."""
    with Router(workers["old"].url) as router:
        phone, first = attempt_out_of_reach(router, PHONEFLEET_ORPHAN_SWEEP_SECONDS="1")
        kubectl("delete", "phonebinding", NAME, "-n", namespace, "--wait=false")
        kubectl(
            "patch", "phonebinding", NAME, "-n", namespace, "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}',
        )  # fmt: skip
        wait_for(lambda: binding(kubectl, namespace, NAME) is None, 30, message="the binding")
        fencing = wait_status(
            watched,
            lambda s: str(s.get("message", "")).startswith(f"PhoneBinding {NAME} was deleted"),
            "to be fenced as its binding's",
        )
        wait_for(lambda: phone not in fleet.running(), 60, message="the sweep to stop the phone")
        # The phone stops after the old worker's run ended (at its lease), never before.
        stopped_run = run_times(workers["old"], first)
        status = wait_status(
            watched,
            lambda s: s["attempts"][0]["outcome"] != "Running",
            "to end attempt 1",
        )
        old_run = run_times(workers["old"], first)
        wait_for(lambda: kubectl.get("phoneclaim", phone) is None, 30, message="the claim to go")

    assert "end" in stopped_run, "the sweep stopped the phone while the old worker still ran"
    assert (fencing["phase"], fencing["reason"]) == ("Running", "Fencing")
    assert "its phone is stopped (or handed on)" in fencing["message"]
    ended = status["attempts"][0]
    assert ended["outcome"] == "Lost"
    assert "lease or deadline has run out" in ended["message"]
    assert "end" in old_run, "attempt 1 ended in the ledger while the old worker still ran it"


class UnreadableJobs:
    """PhoneJobs the in-process operator cannot read until :meth:`lift`: its list answers as an
    API server that does not answer, and its jobs watch's events do not reach the jobs view (as
    if the watch had not listed yet). Everything else goes to the real API server."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.blocked = threading.Event()
        self.blocked.set()
        self.lists_refused = 0
        real_list, real_saw = JobGateway.list_served_jobs, JobService.saw
        unreadable = self

        async def list_served_jobs(gateway: JobGateway, namespaces: tuple[str, ...]) -> Any:
            if unreadable.blocked.is_set():
                unreadable.lists_refused += 1
                raise KubernetesUnavailable("injected: the API server did not answer")
            return await real_list(gateway, namespaces)

        def saw(service: JobService, event_type: str, job: Any) -> None:
            if not unreadable.blocked.is_set():
                real_saw(service, event_type, job)

        monkeypatch.setattr(JobGateway, "list_served_jobs", list_served_jobs)
        monkeypatch.setattr(JobService, "saw", saw)

    def lift(self) -> None:
        self.blocked.clear()


@pytest.fixture
def unreadable_jobs(monkeypatch: pytest.MonkeyPatch) -> Callable[[], UnreadableJobs]:
    """Make the PhoneJobs unreadable to the in-process operator from now on (until lifted)."""
    return lambda: UnreadableJobs(monkeypatch)


def worker_ready_saying(kubectl: Kubectl, namespace: str, words: str) -> dict[str, Any]:
    """The binding, once its WorkerReady condition's message says ``words``."""
    return wait_for(
        lambda: (
            (b := binding(kubectl, namespace, NAME))
            and words in (condition(b, "WorkerReady") or {}).get("message", "")
            and b
        ),
        60,
        message=lambda: f"WorkerReady to say {words!r}: {binding(kubectl, namespace, NAME)}",
    )


def test_a_pod_force_deleted_before_the_operators_first_read_of_the_jobs_waits_for_the_fence(  # noqa: PLR0917 - fixtures arrive as arguments
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
    workers: dict[str, StandInWorker],
    unreadable_jobs: Callable[[], UnreadableJobs],
    watched: Watched,
) -> None:
    """The start-up race: the operator stops while attempt 1 runs, the worker pod is
    force-deleted (its worker cut off) while it is down, and the restarted operator cannot
    read the PhoneJobs at first (its list fails and is retried every 5 s; its watch has said
    nothing yet). What it sees is a Running binding without a pod and no job: it must not
    create the replacement pod from that. The binding waits (Bound, WorkerReady False,
    FencingAttempt: the operator has not read the PhoneJobs since it started); once the read
    succeeds it waits on for attempt 1's fence, and the pod is created only after attempt 1
    ended, after the old worker's run. Without the gate the pod is created at the first pass."""
    with Router(workers["old"].url) as router:
        env = {
            "PHONEFLEET_JOBS_ENDPOINT_OVERRIDES": json.dumps({f"{namespace}/{NAME}": router.url}),
            **JOB_ENV,
            "PHONEFLEET_JOBS_LEASE_SECONDS": LEASE_SECONDS,
        }
        first_operator = operator_factory(**env)
        kubectl.apply(make_binding(NAME, fleet.add_phone(), namespace))
        wait_phase(kubectl, namespace, NAME, "Running")
        token = wait_job_token(kubectl, namespace, NAME)
        for worker in workers.values():
            worker.mount_token(token)
        first = run_long_job(kubectl, namespace, workers, watched)

        operator_factory.stop(first_operator)  # type: ignore[attr-defined]
        router.cut = True
        router.replace_pod(first, workers["new"].url)
        force_delete_pod(kubectl, namespace)
        assert kubectl.get("pod", f"{NAME}-worker", namespace) is None  # nobody replaced it

        unreadable = unreadable_jobs()
        operator_factory(**env)
        held = worker_ready_saying(kubectl, namespace, "has not read the PhoneJobs")
        assert kubectl.get("pod", f"{NAME}-worker", namespace) is None
        wait_for(lambda: unreadable.lists_refused >= 2, 30, message="the list to be retried")
        assert kubectl.get("pod", f"{NAME}-worker", namespace) is None
        unreadable.lift()
        fencing = worker_ready_saying(kubectl, namespace, "attempt 1 of PhoneJob post")
        status = wait_status(watched, lambda s: s.get("attemptCount", 0) >= 2, "to start attempt 2")
        second = status["attempts"][1]["id"]
        wait_for(lambda: run_times(workers["new"], second), 30, message="attempt 2 to run")
        pod = replacement_pod(kubectl, namespace)

    assert held["status"]["phase"] == "Bound"
    assert (condition(held, "WorkerReady") or {}).get("reason") == "FencingAttempt"
    assert (condition(fencing, "WorkerReady") or {}).get("reason") == "FencingAttempt"
    ended = status["attempts"][0]
    assert ended["outcome"] == "Lost"
    assert pod["metadata"]["creationTimestamp"] >= ended["endTime"]
    old_run, new_run = run_times(workers["old"], first), run_times(workers["new"], second)
    assert "end" in old_run, "the old worker still runs attempt 1"
    assert old_run["end"] < new_run["start"]


STOP = "/open/v1/phone/stop"


def test_the_orphan_sweep_goes_by_the_holders_uid_not_a_new_binding_of_its_name(  # noqa: PLR0917 - fixtures arrive as arguments
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
    workers: dict[str, StandInWorker],
    watched: Watched,
) -> None:
    """Binding ``fence`` (the first, on phone 1) vanishes mid-attempt (its finalizer removed by
    hand); its attempt is fenced (its worker told, in its words) while Geelark refuses to stop
    phones, so the sweep keeps its orphaned claim. A new binding of the same name, on phone 2,
    runs a job of its own. With stops working again and the operator restarted, the sweep stops
    phone 1 and deletes its claim while the new binding's attempt still runs: that attempt
    records the new binding's uid, the claim the old one's. Before, the sweep matched the holder
    by name and kept the claim, and phone 1 running and billed, for as long as the new binding
    ran jobs. (A 30 s lease: the new binding's attempt outlives the restart.)"""
    with Router(workers["old"].url) as router:
        env = {
            "PHONEFLEET_JOBS_ENDPOINT_OVERRIDES": json.dumps({f"{namespace}/{NAME}": router.url}),
            **JOB_ENV,
            "PHONEFLEET_JOBS_LEASE_SECONDS": "30",
            "PHONEFLEET_ORPHAN_SWEEP_SECONDS": "1",
        }
        operator = operator_factory(**env)
        old_phone, new_phone = fleet.add_phone(), fleet.add_phone()
        kubectl.apply(make_binding(NAME, old_phone, namespace))
        wait_phase(kubectl, namespace, NAME, "Running")
        old_uid = (binding(kubectl, namespace, NAME) or {})["metadata"]["uid"]
        workers["old"].mount_token(wait_job_token(kubectl, namespace, NAME))
        kubectl.apply(
            make_job(
                "post", NAME, namespace, params={"caption": "x", "seconds": 120}, maxAttempts=1
            )
        )
        watched.start("phonejobs")
        running = wait_status(watched, lambda s: s.get("phase") == "Running", "to run")
        first = str(running["attempts"][0]["id"])
        assert running["attempts"][0]["bindingUid"] == old_uid
        wait_for(lambda: "start" in run_times(workers["old"], first), 30, message="attempt 1")
        router.replace_pod(first, workers["new"].url)

        simulator = fleet.simulator.admin
        simulator.set_faults(STOP, http_status=500)
        try:
            kubectl("delete", "phonebinding", NAME, "-n", namespace, "--wait=false")
            kubectl(
                "patch", "phonebinding", NAME, "-n", namespace, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}',
            )  # fmt: skip
            wait_for(lambda: binding(kubectl, namespace, NAME) is None, 30, message="it to go")
            wait_status(
                watched,
                lambda s: s["attempts"][0]["outcome"] != "Running",
                "to end attempt 1 in the old worker's words",
            )

            kubectl.apply(make_binding(NAME, new_phone, namespace))
            wait_phase(kubectl, namespace, NAME, "Running")
            new_uid = (binding(kubectl, namespace, NAME) or {})["metadata"]["uid"]
            workers["new"].mount_token(wait_job_token(kubectl, namespace, NAME))
            kubectl.apply(
                make_job("post-2", NAME, namespace, params={"caption": "y", "seconds": 120})
            )
            second = wait_for(
                lambda: (
                    (j := kubectl.get("phonejob", "post-2", namespace))
                    and (j.get("status") or {}).get("phase") == "Running"
                    and j["status"]["attempts"][0]
                ),
                90,
                message="the new binding's job to run",
            )
            wait_for(lambda: run_times(workers["new"], second["id"]), 30, message="it to run")
            assert old_phone in fleet.running()  # kept so far: Geelark refused every stop
            assert kubectl.get("phoneclaim", old_phone) is not None
            # A new process, so that nothing of the old binding is left in memory: its
            # first sweeps judge the claim by what the API server holds.
            operator_factory.stop(operator)  # type: ignore[attr-defined]
        finally:
            simulator.clear_faults(STOP)
        operator_factory(**env)

        wait_for(lambda: old_phone not in fleet.running(), 60, message="the sweep to stop phone 1")
        wait_for(lambda: kubectl.get("phoneclaim", old_phone) is None, 30, message="its claim")
        still = (kubectl.get("phonejob", "post-2", namespace) or {})["status"]["attempts"][0]

    assert second["bindingUid"] == new_uid != old_uid
    assert (still["id"], still["outcome"]) == (second["id"], "Running")
    assert "end" not in run_times(workers["new"], second["id"])
    assert new_phone in fleet.running()
