"""``python -m bench.jobs --bindings N``: drain N x 5 PhoneJobs through the real operator.

The control plane, the API server and the operator are the real ones (the operator as its
console script, production settings). A thousand worker pods do not fit on 2 cores, so the
workers are a stand-in: one process serving every binding's job endpoint on one port, each
binding with the worker's own ``JobApi`` and ``JobDesk`` (the real protocol, token checks and
fencing), reached through the test-only endpoint override. The stand-in counts a run per
attempt id and a post per job, so a double run cannot hide.

Each binding gets ``--jobs-per-binding`` jobs; one of them fails its first attempt (a forced
retry, 1 s backoff). Printed: seconds to drain, jobs/s, API requests per job (the API server's
own counters), operator peak RSS and CPU, and the double runs (must be 0).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import secrets
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import click
from pydantic import BaseModel, ConfigDict

from bench.kube import KubeApi, run_parallel
from bench.process_stats import ProcessSampler
from phonefleet_testbed.demo import start_operator
from phonefleet_testbed.devenv import DevEnvironment
from phonefleet_testbed.geelark_sim import seed_name
from phonefleet_testbed.processes import free_port
from phonefleet_worker.job_desk import JobDesk
from phonefleet_worker.job_server import JobApi, serve_request
from phonefleet_worker.registry import TaskRegistry
from phonefleet_worker.task_api import JobContext, JobTask, TaskError
from phonefleet_worker.tasks import Device, TaskContext, TaskResult

__all__ = ["drained_cleanly", "jobs_table", "main", "run_jobs"]

Obj = dict[str, Any]
NAMESPACE = "bench-jobs"
GROUP_PATH = f"/apis/phonefleet.dev/v1alpha1/namespaces/{NAMESPACE}"


class BenchParams(BaseModel):
    """The bench task's params."""

    model_config = ConfigDict(extra="forbid")
    caption: str
    mode: Literal["ok", "retry-once"] = "ok"


class BenchPost(JobTask[BenchParams]):
    """Posts at once, counting each post per job; ``retry-once`` fails its first attempt."""

    Params = BenchParams
    description = "A bench post."

    def __init__(self) -> None:
        self.posts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def is_done(self, context: JobContext, params: BenchParams) -> Mapping[str, Any] | None:
        with self._lock:
            return {"url": "done"} if self.posts[context.attempt.job_uid] else None

    def run(self, context: JobContext, params: BenchParams) -> Mapping[str, Any]:
        if params.mode == "retry-once" and context.attempt.number == 1:
            raise TaskError("forced retry")
        with self._lock:
            self.posts[context.attempt.job_uid] += 1
        return {"url": f"https://posts.invalid/{context.attempt.job_uid}"}


class _Driver:
    session_id = "bench"

    def get_window_size(self) -> dict[str, int]:
        return {"width": 720, "height": 1280}


class Fleet:
    """Every binding's job endpoint on one port, and one thread running their attempts."""

    def __init__(self) -> None:
        self.task = BenchPost()
        builtins = TaskRegistry.from_entry_points()
        self.registry = TaskRegistry({**builtins.tasks, "bench-post": self.task})
        self.apis: dict[str, JobApi] = {}
        self.port = free_port()
        fleet = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the operator's client pools connections

            def do_GET(self) -> None:
                fleet._serve(self, "GET")

            def do_POST(self) -> None:
                fleet._serve(self, "POST")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._server.serve_forever, daemon=True),
            threading.Thread(target=self._run_attempts, daemon=True),
        ]

    def url(self, binding: str) -> str:
        """The base URL of one binding's endpoint."""
        return f"http://127.0.0.1:{self.port}/w/{binding}"

    def add(self, binding: str, token: str) -> None:
        """Serve ``binding`` with this token."""
        self.apis[binding] = JobApi(JobDesk(self.registry), lambda: token)

    def start(self) -> None:
        """Serve and run."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def runs_per_attempt(self) -> Counter[str]:
        """How often each attempt id was started, over every desk."""
        return Counter(run for api in self.apis.values() for run in api.desk.runs)

    def _serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = request.path.split("/", 3)  # "", "w", binding, rest
        api = self.apis.get(parts[2]) if len(parts) == 4 else None
        if api is None:
            request.send_error(404)
            return
        serve_request(request, method, api, "/" + parts[3])

    def _run_attempts(self) -> None:
        context = TaskContext(_Driver(), Device("bench", "bench:5555"), threading.Event())  # type: ignore[arg-type]
        while not self._stop.is_set():
            ran = False
            for api in list(self.apis.values()):
                job = api.desk.next_job(time.monotonic())
                if job is None:
                    continue
                ran = True
                try:
                    result = job.run(context)
                except Exception as exc:
                    result = TaskResult(job.name, ok=False, detail={"error": str(exc)})
                api.desk.report(result, time.monotonic())
            if not ran:
                self._stop.wait(0.02)


def _say(text: str) -> None:
    print(f"[bench-jobs {time.strftime('%H:%M:%S')}] {text}", flush=True)


async def _wait(api: KubeApi, path: str, done: Any, wait_seconds: float, what: str) -> list[Obj]:
    deadline = time.monotonic() + wait_seconds
    while True:
        items: list[Obj] = (await api.list(path))["items"]
        if done(items):
            return items
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {wait_seconds:.0f} s")
        await asyncio.sleep(1.0)


def _job(name: str, binding: str, mode: str) -> Obj:
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "bindingName": binding,
            "task": "bench-post",
            "params": {"caption": name, "mode": mode},
            "retryDelaySeconds": 1,
        },
    }


async def _create_all(api: KubeApi, path: str, bodies: list[Obj]) -> None:
    async def create(body: Obj) -> None:
        await api.create(path, body)

    errors = await run_parallel((functools.partial(create, body) for body in bodies), 32)
    if errors:
        raise errors[0]


async def _drain(env: DevEnvironment, n: int, per: int, work: Path, wait_seconds: float) -> Obj:
    key = secrets.token_hex(32)
    fleet = Fleet()
    names = [f"pb-{i:04d}" for i in range(1, n + 1)]
    overrides = {f"{NAMESPACE}/{name}": fleet.url(name) for name in names}
    operator = start_operator(
        env,
        work,
        {
            "PHONEFLEET_JOBS_TOKEN_KEY": key,
            "PHONEFLEET_JOBS_ENDPOINT_OVERRIDES": json.dumps(overrides),
        },
    )
    sampler = ProcessSampler(operator.pid or 0)
    sampler.start()
    fleet.start()
    try:
        async with KubeApi(env.plane.server, env.plane.pki_dir) as api:
            await api.create_namespace(NAMESPACE)
            manifests = [
                {
                    "apiVersion": "phonefleet.dev/v1alpha1",
                    "kind": "PhoneBinding",
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": {"phoneId": seed_name(i)},
                }
                for i, name in enumerate(names, start=1)
            ]
            # One binding first, until the operator has given it a phase: an operator that
            # starts with more than kopf's worker limit (100) of bindings already there never
            # handles any (main's too: kopf's index waits for objects the limit keeps out), so
            # the fleet is created once the operator is past its initial listing.
            await _create_all(api, f"{GROUP_PATH}/phonebindings", manifests[:1])
            await _wait(
                api,
                f"{GROUP_PATH}/phonebindings",
                lambda items: all((i.get("status") or {}).get("phase") for i in items),
                wait_seconds,
                "the operator to handle its first binding",
            )
            _say(f"applying {n} PhoneBindings")
            await _create_all(api, f"{GROUP_PATH}/phonebindings", manifests[1:])
            running = await _wait(
                api,
                f"{GROUP_PATH}/phonebindings",
                lambda items: (
                    sum((i.get("status") or {}).get("phase") == "Running" for i in items) == n
                ),
                wait_seconds,
                "bindings Running",
            )
            for item in running:
                meta = item["metadata"]
                message = f"{NAMESPACE}/{meta['name']}/{meta['uid']}".encode()
                token = hmac.new(bytes.fromhex(key), message, hashlib.sha256).hexdigest()
                fleet.add(meta["name"], token)
            _say(f"{n} bindings Running; creating {n * per} PhoneJobs (one retry each binding)")
            before = await api.request_counts()
            began = time.monotonic()
            jobs = [
                _job(f"{name}-{k}", name, "retry-once" if k == 0 else "ok")
                for k in range(per)
                for name in names
            ]
            await _create_all(api, f"{GROUP_PATH}/phonejobs", jobs)
            created = time.monotonic() - began
            finished = await _wait(
                api,
                f"{GROUP_PATH}/phonejobs",
                lambda items: (
                    len(items) == len(jobs)
                    and all((i.get("status") or {}).get("phase") == "Succeeded" for i in items)
                ),
                wait_seconds,
                "jobs Succeeded",
            )
            drained = time.monotonic() - began
            after = await api.request_counts()
    finally:
        sampler.stop()
        operator.stop()
        fleet.stop()
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    delta = {k: v for k, v in sorted(delta.items()) if v > 0}
    runs = fleet.runs_per_attempt()
    attempts = sum(len((i.get("status") or {}).get("attempts", [])) for i in finished)
    return {
        "bindings": n,
        "jobs": len(jobs),
        "createSeconds": round(created, 1),
        "drainSeconds": round(drained, 1),
        "jobsPerSecond": round(len(jobs) / drained, 1),
        "attempts": attempts,
        "apiRequestsTotal": sum(delta.values()),
        "apiRequestsPerJob": round(sum(delta.values()) / len(jobs), 2),
        "apiRequests": delta,
        "operatorPeakRssMiB": round(sampler.peak_hwm_kib / 1024, 1),
        "operatorCpuSeconds": sampler.cpu_between(began, began + drained),
        "attemptsStartedOnWorkers": len(runs),
        "doubleRuns": sum(1 for count in runs.values() if count > 1),
        "doublePosts": sum(1 for count in fleet.task.posts.values() if count > 1),
        "posts": sum(fleet.task.posts.values()),
    }


def run_jobs(bindings: int, jobs_per_binding: int = 5, timeout: float = 900.0) -> Obj:
    """Drain ``bindings`` x ``jobs_per_binding`` PhoneJobs on a control plane of their own."""
    work = Path(tempfile.mkdtemp(prefix="phonefleet-bench-jobs-"))
    _say(f"starting a control plane and a simulator with {bindings} phones (logs in {work})")
    with DevEnvironment(
        phones=bindings, boot_seconds=1.0, latency_ms=10.0, rate_limit_per_minute=None
    ) as env:
        env.simulator.admin.update_settings(adb_enable_seconds=0.5)
        return asyncio.run(_drain(env, bindings, jobs_per_binding, work, timeout))


def jobs_table(result: Mapping[str, Any]) -> str:
    """The figures, one per line, then the API requests of the drain by verb and resource."""
    figures = {k: v for k, v in result.items() if k != "apiRequests"}
    width = max(len(k) for k in figures)
    lines = ["PhoneJobs (python -m bench.jobs; stand-in workers, docs/jobs.md):"]
    lines += [f"  {key:<{width}}  {value}" for key, value in figures.items()]
    lines.append("  API requests during the drain, by verb and resource:")
    lines += [
        f"    {key:<40} {value:>7}  ({value / result['jobs']:.2f} per job)"
        for key, value in result["apiRequests"].items()
    ]
    return "\n".join(lines)


def drained_cleanly(result: Mapping[str, Any]) -> bool:
    """Every job ran, none twice."""
    return bool(
        result["posts"] == result["jobs"] and result["doubleRuns"] == result["doublePosts"] == 0
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--bindings", "-n", default=100, show_default=True, help="PhoneBindings.")
@click.option("--jobs-per-binding", default=5, show_default=True, help="PhoneJobs per binding.")
@click.option("--timeout", default=900.0, show_default=True, help="Give up after this.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="JSON file to write.")
def main(bindings: int, jobs_per_binding: int, timeout: float, out: Path | None) -> None:
    """Drain PhoneJobs through the real operator and API server; print the figures."""
    result = run_jobs(bindings, jobs_per_binding, timeout)
    print(jobs_table(result))
    target = out or Path("bench/results") / f"jobs-N{bindings}.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    _say(f"wrote {target}")


if __name__ == "__main__":
    main()
