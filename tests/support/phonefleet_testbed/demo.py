"""``make demo``: the operator on the embedded default, showing Running, Conflict, PhoneNotFound,
then a few PhoneJobs on the Running bindings (demo_jobs.py)."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phonefleet_testbed.demo_jobs import play_jobs, stand_in_workers
from phonefleet_testbed.devenv import DevEnvironment
from phonefleet_testbed.geelark_sim import seed_id
from phonefleet_testbed.job_worker import StandInWorker
from phonefleet_testbed.node.devenv import RealNodeEnvironment, dev_environment
from phonefleet_testbed.processes import ManagedProcess, ProcessExited, free_port
from phonefleet_testbed.waiting import WaitTimeout, wait_for

__all__ = ["dockerd_alive", "dockerd_note", "run_demo", "start_operator"]

NAMESPACE = "demo"
DOCKERD_PIDFILE = Path("/var/run/docker.pid")  # hack/images/dockerd.sh's

# name -> (spec.phoneId, the phase it must reach)
BINDINGS: dict[str, tuple[str, str]] = {
    "alpha": ("phone-001", "Running"),
    "bravo": (seed_id(2), "Running"),
    "charlie-duplicate": ("phone-001", "Conflict"),
    "delta-alias": (seed_id(1), "Conflict"),
    "echo-missing": ("phone-404", "PhoneNotFound"),
}

# Short rechecks so the demo settles in seconds; production defaults are in settings.py.
DEMO_SETTINGS = {
    "PHONEFLEET_CONFLICT_RECHECK_SECONDS": "2",
    "PHONEFLEET_NOT_FOUND_RECHECK_SECONDS": "5",
    "PHONEFLEET_BOOT_POLL_SECONDS": "1",
}


def start_operator(env: DevEnvironment, log_dir: Path, extra: dict[str, str]) -> ManagedProcess:
    """Run ``phonefleet-operator`` (the console script, as in production) against ``env``."""
    script = Path(sys.executable).parent / "phonefleet-operator"
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    process = ManagedProcess(
        "phonefleet-operator",
        [str(script), "--liveness", liveness],
        log_dir,
        env={**env.operator_env(), **extra},
    )
    process.start()
    return process


def _metrics_env(url: str) -> dict[str, str]:
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    return {"PHONEFLEET_METRICS_PORT": port, "PHONEFLEET_METRICS_ADDR": "127.0.0.1"}


def _bindings_by_phase(url: str) -> str:
    """The ``phonefleet_bindings`` lines of the operator's /metrics, as curl | grep shows them."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own loopback URL
        text: str = response.read().decode()
    return "\n".join(line for line in text.splitlines() if line.startswith("phonefleet_bindings{"))


def _manifest(name: str, phone: str, extra: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhoneBinding",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"phoneId": phone, **extra},
        }
    )


def dockerd_alive(pidfile: Path = DOCKERD_PIDFILE) -> bool:
    """Whether the dockerd of ``pidfile`` runs (/proc: it also sees root's from another user)."""
    try:
        pid = pidfile.read_text().strip()
    except OSError:
        return False
    return pid.isdigit() and Path(f"/proc/{pid}").is_dir()


def dockerd_note(was_alive: bool, pidfile: Path = DOCKERD_PIDFILE) -> str | None:
    """What to tell when dockerd runs now and did not before the demo (the real node's image
    builds start it, and it outlives them): the one process a demo may leave behind."""
    if was_alive or not dockerd_alive(pidfile):
        return None
    return (
        "dockerd was not running before the demo and runs now (the image builds started it): "
        f"stop it with `kill $(cat {pidfile})` unless something else uses it."
    )


def run_demo(*, keep: bool, echo: Callable[[str], None], real_node: bool = False) -> int:
    """Run the demo; 0 when every binding reached its expected phase and nothing was left on.

    ``real_node``: the worker pods really run, on a real node, where the machine allows it."""
    began = time.monotonic()
    docker_before = dockerd_alive()
    try:
        return _run(keep=keep, echo=echo, real_node=real_node, began=began)
    finally:
        note = dockerd_note(docker_before)
        if note:
            echo(note)


def _run(*, keep: bool, echo: Callable[[str], None], real_node: bool, began: float) -> int:
    with dev_environment(real_node=real_node, echo=echo, phones=5, boot_seconds=2.0) as env:
        plane = env.plane
        echo(
            f"Started a control plane and a Geelark simulator with 5 phones "
            f"in {env.startup_seconds:.1f} s."
        )
        metrics = f"http://127.0.0.1:{free_port()}/metrics"
        with stand_in_workers(NAMESPACE, ["alpha", "bravo"]) as (workers, job_settings):
            extra = {**DEMO_SETTINGS, **_metrics_env(metrics), **job_settings}
            operator = start_operator(env, plane.log_dir, extra)
            echo(f"The operator serves Prometheus metrics at {metrics}")
            try:
                return _play(
                    env,
                    operator,
                    keep=keep,
                    echo=echo,
                    began=began,
                    metrics=metrics,
                    workers=workers,
                )
            finally:
                operator.stop()


def _until_stopped() -> None:
    """Return once SIGINT or SIGTERM came. Handlers, not sigwait(): SIGTERM has no handler of its
    own, and its default action ended the demo on the spot, before it cleaned anything up."""
    stopped = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda _signum, _frame: stopped.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        while not stopped.wait(1.0):  # the timeout lets a handler run however the wait ends
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _phase(env: DevEnvironment, name: str) -> str | None:
    out = env.plane.kubectl(
        "get", "pb", name, "-n", NAMESPACE, "-o", "jsonpath={.status.phase}", check=False
    )
    return out.stdout.strip() or None


def _play(
    env: DevEnvironment,
    operator: ManagedProcess,
    *,
    keep: bool,
    echo: Callable[[str], None],
    began: float,
    metrics: str,
    workers: dict[str, StandInWorker],
) -> int:
    plane = env.plane
    plane.kubectl("create", "namespace", NAMESPACE)
    # alpha first, so that it is the holder its duplicates conflict with.
    extra = env.binding_spec()
    plane.kubectl("apply", "-f", "-", input_text=_manifest("alpha", "phone-001", extra))
    try:

        def holds() -> bool:
            operator.check_running()  # a crashed operator fails the demo at once
            return _phase(env, "alpha") in {"Bound", "Running"}

        wait_for(holds, 60, message="alpha to hold phone-001")
        for name, (phone, _) in BINDINGS.items():
            plane.kubectl("apply", "-f", "-", input_text=_manifest(name, phone, extra))
        for name, (_, phase) in BINDINGS.items():

            def reached(name: str = name, phase: str = phase) -> bool:
                operator.check_running()
                return _phase(env, name) == phase

            wait_for(reached, 90, message=f"{name} to reach {phase}")
    except (WaitTimeout, ProcessExited) as error:
        echo(f"The demo did not settle: {error}\n--- operator log ---\n{operator.log_tail(40)}")
        return 1
    echo(f"\nAll bindings settled {time.monotonic() - began:.1f} s after start.\n")
    echo("$ kubectl get phonebindings -n demo -o wide")
    echo(plane.kubectl("get", "phonebindings", "-n", NAMESPACE, "-o", "wide").stdout)
    echo("$ kubectl get phoneclaims")
    echo(plane.kubectl("get", "phoneclaims").stdout)
    echo("$ kubectl get pods -n demo")
    echo(plane.kubectl("get", "pods", "-n", NAMESPACE).stdout)
    if isinstance(env, RealNodeEnvironment):  # the worker really drives its phone: show it
        echo("$ kubectl logs alpha-worker -c worker -n demo | grep Moved | head -4")
        log = plane.kubectl("logs", "alpha-worker", "-c", "worker", "-n", NAMESPACE).stdout
        echo("\n".join([line for line in log.splitlines() if "Moved" in line][:4]) + "\n")
    counters = env.simulator.admin.counters()
    calls = ", ".join(
        f"{path.rsplit('/v1/', 1)[-1]}={n}" for path, n in sorted(counters.requests.items())
    )
    echo(f"Geelark calls so far: {counters.total} ({calls})")
    echo(f"\n$ curl -s {metrics} | grep '^phonefleet_bindings{{'")
    echo(_bindings_by_phase(metrics))
    echo("")
    jobs_ok = play_jobs(env, NAMESPACE, workers, echo)
    if keep:
        echo(
            "\nEverything keeps running until Ctrl+C. In another shell:\n"
            f"  export KUBECONFIG={plane.kubeconfig}\n"
            f'  export PATH="{plane.binaries.directory}:$PATH"   # this kubectl\n'
            "  kubectl get phonebindings,phonejobs -n demo"
        )
        _until_stopped()
    plane.kubectl("delete", "phonebindings", "--all", "-n", NAMESPACE, "--timeout=60s")
    running = env.simulator.admin.running_phone_ids()
    echo(f"Deleted every binding; phones still running: {len(running)}.")
    return 0 if not running and jobs_ok else 1
