"""The PhoneJob part of ``make demo``: a few jobs run on the Running bindings' workers.

KWOK pods do not run, so each Running binding's job endpoint is a stand-in worker process on
loopback (``job_worker``: the worker's real job server and desk), reached through the test-only
endpoint override. The demo mounts each binding's job token from its Secret, as the pod would.
"""

from __future__ import annotations

import base64
import functools
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from phonefleet_testbed.devenv import DevEnvironment
from phonefleet_testbed.job_worker import StandInWorker
from phonefleet_testbed.leftovers import make_run_folder
from phonefleet_testbed.processes import free_port
from phonefleet_testbed.waiting import wait_for

__all__ = ["JOBS", "play_jobs", "stand_in_workers"]

# name -> (binding, params): one that succeeds, one that needs a retry, one refused for good.
JOBS: dict[str, tuple[str, dict[str, Any]]] = {
    "post-1": ("alpha", {"caption": "first post", "seconds": 1}),
    "post-2": ("alpha", {"caption": "needs a retry", "mode": "retry-once"}),
    "post-3": ("bravo", {"caption": "blocked", "mode": "permanent"}),
}


@contextmanager
def stand_in_workers(
    namespace: str, bindings: list[str]
) -> Iterator[tuple[dict[str, StandInWorker], dict[str, str]]]:
    """Started stand-in workers for ``bindings``, and the operator settings that reach them."""
    folder = make_run_folder("phonefleet-demo-workers-")  # a killed demo's goes at the next
    workers = {}
    try:
        for name in bindings:
            (folder / name).mkdir()
            workers[name] = StandInWorker(name, free_port(), folder / name)
        overrides = {f"{namespace}/{name}": w.url for name, w in workers.items()}
        settings = {
            "PHONEFLEET_JOBS_ENDPOINT_OVERRIDES": json.dumps(overrides),
            "PHONEFLEET_JOBS_POLL_SECONDS": "0.5",
        }
        for worker in workers.values():
            worker.start()
        yield workers, settings
    finally:
        for worker in workers.values():
            worker.stop()
        shutil.rmtree(folder, ignore_errors=True)  # tokens and run logs: the demo leaves nothing


def play_jobs(
    env: DevEnvironment,
    namespace: str,
    workers: dict[str, StandInWorker],
    echo: Callable[[str], None],
) -> bool:
    """Mount the tokens, apply the jobs, wait until each finished; print them. True when they
    ended as expected (two Succeeded, one Failed)."""
    plane = env.plane
    for name, worker in workers.items():
        token = wait_for(
            functools.partial(_token, env, namespace, name), 30, message=f"{name}'s job token"
        )
        worker.mount_token(token)
    for name, (binding, params) in JOBS.items():
        manifest = {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhoneJob",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "bindingName": binding,
                "task": "probe-post",
                "params": params,
                "retryDelaySeconds": 2,
            },
        }
        plane.kubectl("apply", "-f", "-", input_text=json.dumps(manifest))

    def phases() -> dict[str, str]:
        items = json.loads(plane.kubectl("get", "pj", "-n", namespace, "-o", "json").stdout)
        return {
            i["metadata"]["name"]: (i.get("status") or {}).get("phase", "") for i in items["items"]
        }

    finished = wait_for(
        lambda: (p := phases()) and all(v in ("Succeeded", "Failed") for v in p.values()) and p,
        90,
        message="the demo's jobs to finish",
    )
    echo(f"$ kubectl get phonejobs -n {namespace}")
    echo(plane.kubectl("get", "phonejobs", "-n", namespace).stdout)
    return finished == {"post-1": "Succeeded", "post-2": "Succeeded", "post-3": "Failed"}


def _token(env: DevEnvironment, namespace: str, binding: str) -> str | None:
    out = env.plane.kubectl(
        "get", "secret", f"{binding}-adb", "-n", namespace, "-o", "jsonpath={.data.jobToken}",
        check=False,
    )  # fmt: skip
    value = out.stdout.strip()
    return base64.b64decode(value).decode() if out.returncode == 0 and value else None
