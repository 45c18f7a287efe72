"""The worker's metrics: session state, reconnects, Appium restarts, tasks; served on /metrics."""

from __future__ import annotations

import urllib.request

from prometheus_client import REGISTRY
from worker_fakes import make_world

from phonefleet_worker.metrics import MeteredJobs
from phonefleet_worker.probes import ProbeServer
from phonefleet_worker.states import DeviceState
from phonefleet_worker.tasks import HeartbeatTask, PeriodicJobSource, TaskResult

S = DeviceState


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def counts() -> tuple[float, float, float]:
    return (
        value("phonefleet_worker_recoveries_total"),
        value("phonefleet_worker_adb_reconnects_total"),
        value("phonefleet_worker_appium_session_restarts_total"),
    )


def test_a_lost_device_counts_one_recovery_one_reconnect_and_one_appium_restart() -> None:
    """Idle, device lost, back to idle: each counter moves by one and the state gauge says IDLE."""
    world = make_world()
    world.step_until(S.IDLE)
    before = counts()
    world.pacer.clock += world.timings.device_check_interval
    world.adb.lose()

    world.session.step()
    assert value("phonefleet_worker_session_state", state="RECOVERING") == 1
    world.step_until(S.IDLE)

    assert [a - b for a, b in zip(counts(), before, strict=True)] == [1, 1, 1]
    assert value("phonefleet_worker_session_state", state="IDLE") == 1
    assert value("phonefleet_worker_session_state", state="RECOVERING") == 0


def test_tasks_are_counted_by_outcome_and_timed_from_hand_out_to_report() -> None:
    """A task handed out at 10 s and reported at 12.5 s adds 2.5 s; a failure counts as failed."""
    jobs = MeteredJobs(PeriodicJobSource(HeartbeatTask(), interval=0.0))
    ok = value("phonefleet_worker_tasks_total", task="heartbeat", outcome="ok")
    failed = value("phonefleet_worker_tasks_total", task="heartbeat", outcome="failed")
    seconds = value("phonefleet_worker_task_duration_seconds_sum", task="heartbeat")

    assert jobs.next_job(10.0) is not None
    jobs.report(TaskResult("heartbeat", ok=True), 12.5)
    assert jobs.next_job(20.0) is not None
    jobs.report(TaskResult("heartbeat", ok=False), 21.0)

    assert value("phonefleet_worker_tasks_total", task="heartbeat", outcome="ok") - ok == 1
    assert value("phonefleet_worker_tasks_total", task="heartbeat", outcome="failed") - failed == 1
    assert value("phonefleet_worker_task_duration_seconds_sum", task="heartbeat") - seconds == 3.5


def test_the_probe_port_serves_the_metrics_in_prometheus_text_format() -> None:
    """GET /metrics answers 200 with Prometheus' content type and the worker's metric names."""
    make_world().step_until(S.ADB_CONNECTING)
    server = ProbeServer(
        host="127.0.0.1", port=0, readiness=lambda: (True, ""), liveness=lambda: (True, "")
    )
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            content_type = response.headers["Content-Type"]
            text = response.read().decode()
    finally:
        server.close()

    assert content_type.startswith("text/plain; version=")
    assert "# TYPE phonefleet_worker_session_state gauge" in text
    assert (
        "phonefleet_worker_tasks_total" in text or "# TYPE phonefleet_worker_tasks counter" in text
    )
