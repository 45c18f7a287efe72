"""A worker's job side as a process of its own, for control-plane tests of PhoneJobs.

KWOK pods do not run, so the tests start this beside them: the real job endpoint and job desk of
the worker (``phonefleet_worker.job_server``, ``job_desk``) on a loopback port, with the
built-in tasks plus ``probe-post``, a posting task whose behaviour its params choose. Instead of
a device session, a small loop runs the desk's attempts under their deadlines (with the real
``Lifecycle.call``), as the session does; the driver is a stand-in that answers the heartbeat.

It writes, under ``--state-dir``:

- ``runs.jsonl``: one line per task start and end (attempt id, job uid, monotonic time), which
  tests read to prove "one run at a time" and "no double run";
- ``posted/<job uid>``: the "post" a ``probe-post`` made; ``is_done`` reads it, so a new worker
  process (a replaced pod) still knows the post exists, as Instagram would.

    python -m phonefleet_testbed.job_worker --port 18090 --token-file t --state-dir s
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from phonefleet_testbed.processes import ManagedProcess
from phonefleet_worker.job_desk import JobDesk
from phonefleet_worker.job_server import JobServer, token_from_file
from phonefleet_worker.lifecycle import CallTimedOut, Lifecycle, StopRequested
from phonefleet_worker.registry import TaskRegistry
from phonefleet_worker.task_api import (
    AccountTaskError,
    JobContext,
    JobTask,
    PermanentTaskError,
    TaskError,
)
from phonefleet_worker.tasks import Device, TaskContext, TaskResult

__all__ = ["ProbePost", "StandInWorker", "main", "read_runs", "serve"]

log = logging.getLogger("job-worker")


class ProbeParams(BaseModel):
    """How ``probe-post`` behaves."""

    model_config = ConfigDict(extra="forbid")
    caption: str
    mode: Literal["ok", "permanent", "account", "retry-once", "hang", "post-then-hang"] = "ok"
    seconds: float = 0.0
    """How long the "post" takes."""


class ProbePost(JobTask[ProbeParams]):
    """A post whose outcome the test chooses; it leaves a marker file when it "posted"."""

    Params = ProbeParams
    description = "A test post: succeeds, fails (permanent, account, once), or hangs."
    deadline_seconds = 600.0

    def __init__(self, state: Path) -> None:
        self._posted = state / "posted"
        self._posted.mkdir(parents=True, exist_ok=True)

    def is_done(self, context: JobContext, params: ProbeParams) -> Mapping[str, Any] | None:
        marker = self._posted / context.attempt.job_uid
        return {"url": marker.read_text()} if marker.exists() else None

    def run(self, context: JobContext, params: ProbeParams) -> Mapping[str, Any]:
        if params.mode == "permanent":
            raise PermanentTaskError("action blocked")
        if params.mode == "account":
            raise AccountTaskError("account suspended")
        if params.mode == "retry-once" and context.attempt.number == 1:
            raise TaskError("the upload stalled")
        if params.mode in ("hang", "post-then-hang"):
            if params.mode == "post-then-hang":
                self._post(context)
            context.cancel.wait(3600)
            raise TaskError("cancelled")
        if context.cancel.wait(params.seconds):
            raise TaskError("cancelled")
        return {"url": self._post(context)}

    def _post(self, context: JobContext) -> str:
        url = f"https://posts.invalid/{context.attempt.job_uid}"
        (self._posted / context.attempt.job_uid).write_text(url)
        with (self._posted.parent / "posts.jsonl").open("a") as out:
            out.write(json.dumps({"attempt": context.attempt.id, "url": url}) + "\n")
        return url


class _Driver:
    """Stands in for the Appium driver: answers the heartbeat."""

    session_id = "stand-in"

    def get_window_size(self) -> dict[str, int]:
        return {"width": 720, "height": 1280}


def serve(port: int, token_file: Path, state: Path, lifecycle: Lifecycle) -> None:
    """Serve the job endpoint and run delivered attempts until the lifecycle is stopped."""
    stop = lifecycle.stop_event
    builtins = TaskRegistry.from_entry_points()
    registry = TaskRegistry({**builtins.tasks, "probe-post": ProbePost(state)})
    desk = JobDesk(registry)
    server = JobServer(host="127.0.0.1", port=port, desk=desk, token=token_from_file(token_file))
    server.start()
    context = TaskContext(
        driver=_Driver(),  # type: ignore[arg-type]
        device=Device("stand-in", "127.0.0.1:5555"),
        stop=stop,
    )
    runs = state / "runs.jsonl"
    try:
        while not stop.is_set():
            job = desk.next_job(time.monotonic())
            if job is None:
                stop.wait(0.05)
                continue
            attempt = getattr(job, "record", None)
            attempt_id = attempt.request.id if attempt is not None else job.name
            _log_run(runs, attempt_id, "start")
            deadline = getattr(job, "deadline_seconds", None)
            try:
                result = lifecycle.call(
                    functools.partial(job.run, context),
                    name=f"task {job.name}",  # the real session's words (session.py)
                    deadline=deadline,
                    abandon=getattr(job, "abandon_reason", None),
                )
            except StopRequested:
                return
            except CallTimedOut as exc:
                getattr(job, "cancel", lambda: None)()
                result = TaskResult(
                    job.name, ok=False, detail={"error": str(exc), "timedOut": True}
                )
            except Exception as exc:
                result = TaskResult(job.name, ok=False, detail={"error": str(exc)})
            _log_run(runs, attempt_id, "end")
            desk.report(result, time.monotonic())
    finally:
        server.close()


def _log_run(path: Path, attempt_id: str, event: str) -> None:
    with path.open("a") as out:
        out.write(json.dumps({"attempt": attempt_id, "event": event, "t": time.monotonic()}) + "\n")


def read_runs(state: Path) -> list[dict[str, Any]]:
    """The run log a worker wrote: one dict per task start and end."""
    path = state / "runs.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class StandInWorker:
    """One stand-in worker process for one binding: start, kill, restart, read what it ran."""

    def __init__(self, binding: str, port: int, folder: Path) -> None:
        self.binding = binding
        self.port = port
        self.state = folder / "state"
        self.token_file = folder / "jobToken"
        self._process = ManagedProcess(
            f"job-worker-{binding}",
            [
                sys.executable,
                "-m",
                "phonefleet_testbed.job_worker",
                "--port",
                str(port),
                "--token-file",
                str(self.token_file),
                "--state-dir",
                str(self.state),
            ],
            folder,
        )

    @property
    def url(self) -> str:
        """The base URL of its job endpoint."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the process (its run log and posts survive restarts)."""
        self._process.start()

    def stop(self) -> None:
        """Stop it (SIGTERM; killed when it hangs): a worker exiting or its pod going."""
        self._process.stop(timeout=5)

    def mount_token(self, token: str) -> None:
        """Put the binding's job token where the worker reads it (the Secret's mount)."""
        self.token_file.write_text(token)

    def runs(self) -> list[dict[str, Any]]:
        """Its run log."""
        return read_runs(self.state)

    def posts(self) -> list[dict[str, Any]]:
        """Every post ``probe-post`` made (attempt id and URL), across restarts."""
        path = self.state / "posts.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def log_tail(self) -> str:
        """The end of its log, for failure messages."""
        return self._process.log_tail()


def main() -> None:
    """Run the stand-in until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    lifecycle = Lifecycle(slice_seconds=0.05)
    signal.signal(signal.SIGTERM, lambda *_: lifecycle.request_stop("SIGTERM"))
    args.state_dir.mkdir(parents=True, exist_ok=True)
    serve(args.port, args.token_file, args.state_dir, lifecycle)


if __name__ == "__main__":
    main()
