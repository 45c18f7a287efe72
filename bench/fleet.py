"""The operator's run: apply N PhoneBindings at once and follow them until every one is Ready.

The operator is started as in production (its console script and its settings, pointed at the
control plane and the simulator); only ``extra_env`` changes a setting, for experiments.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.churn import CHURN_LABEL, run_churn
from bench.kube import KubeApi, run_parallel, writes_in
from bench.pipeline import adb_reads, pipeline
from bench.process_stats import CpuClock, ProcessSampler
from bench.tracking import Tracker, percentiles, wait_done, watch_into
from phonefleet_operator import constants as c
from phonefleet_operator.render import pod_name
from phonefleet_testbed.demo import start_operator
from phonefleet_testbed.devenv import DevEnvironment
from phonefleet_testbed.geelark_sim import CounterSnapshot, SimulatorAdmin
from phonefleet_testbed.processes import free_port

__all__ = ["OperatorResult", "counters_json", "run_operator"]

Obj = dict[str, Any]
RATE_LIMITED = 40007


def counters_json(snapshot: CounterSnapshot, before: CounterSnapshot | None = None) -> Obj:
    """Calls per endpoint (short names), total and replies per code, minus ``before``."""
    requests_by = Counter({k.rsplit("/v1/", 1)[-1]: v for k, v in snapshot.requests.items()})
    ids_by = Counter({k.rsplit("/v1/", 1)[-1]: v for k, v in snapshot.ids.items()})
    codes = Counter(snapshot.codes)
    if before is not None:
        requests_by.subtract({k.rsplit("/v1/", 1)[-1]: v for k, v in before.requests.items()})
        ids_by.subtract({k.rsplit("/v1/", 1)[-1]: v for k, v in before.ids.items()})
        codes.subtract(before.codes)
    return {
        "total": sum(requests_by.values()),
        "byEndpoint": {k: v for k, v in sorted(requests_by.items()) if v},
        "idsByEndpoint": {k: v for k, v in sorted(ids_by.items()) if v},
        "byCode": {str(k): v for k, v in sorted(codes.items()) if v},
        "rateLimited40007": codes.get(RATE_LIMITED, 0),
    }


@dataclass
class OperatorResult:
    """Everything measured of the operator's run."""

    bindings: int
    converged: int
    apply_seconds: float
    converge_seconds: float
    latency: dict[str, float | None]
    convergence_latency: dict[str, float | None]
    milestones: dict[str, float | None]
    geelark_convergence: Obj
    geelark_steady: Obj
    max_calls_per_minute: int
    rate_limited_total: int
    steady_seconds: float
    steady_calls_per_minute: float
    peak_rss_mib: float
    cpu_seconds_convergence: float
    cpu_seconds_total: float
    control_plane_cpu_convergence: dict[str, float]
    api_requests: dict[str, int]
    #: How long after convergence the operator's deferred Events were still being posted.
    events_trailing_seconds: float = 0.0
    api_requests_steady: dict[str, int] = field(default_factory=dict)
    steady_requests_per_binding_minute: dict[str, float] = field(default_factory=dict)
    timeline: list[Obj] = field(default_factory=list)
    log_summary: Obj = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    churn: Obj = field(default_factory=dict)
    reconcile_passes: dict[str, float] = field(default_factory=dict)
    pod_pipeline: Obj = field(default_factory=dict)
    """Each binding's way from its ADB read to Ready, step by step (bench.pipeline)."""
    geelark_calls: list[list[Any]] = field(default_factory=list)
    """The simulator's log of the calls served up to convergence: [seconds after the apply
    began, endpoint, phones named], one per call (the timeline's 1 s samples stretch under load;
    the simulator's clock is the same monotonic clock as the bench's)."""

    def to_json(self) -> Obj:
        """The figures as JSON."""
        return {
            "bindings": self.bindings,
            "converged": self.converged,
            "applySeconds": round(self.apply_seconds, 2),
            "convergeSeconds": round(self.converge_seconds, 2),
            "bindingsPerSecond": round(self.converged / self.converge_seconds, 2)
            if self.converge_seconds
            else None,
            "latencySeconds": self.latency,
            "convergenceLatencySeconds": self.convergence_latency,
            "milestones": self.milestones,
            "geelarkConvergence": self.geelark_convergence,
            "geelarkSteady": self.geelark_steady,
            "maxCallsPerMinute": self.max_calls_per_minute,
            "rateLimited40007": self.rate_limited_total,
            "steadySeconds": self.steady_seconds,
            "steadyCallsPerMinute": round(self.steady_calls_per_minute, 1),
            "peakRssMiB": round(self.peak_rss_mib, 1),
            "cpuSecondsConvergence": self.cpu_seconds_convergence,
            "cpuSecondsTotal": self.cpu_seconds_total,
            "controlPlaneCpuSecondsConvergence": self.control_plane_cpu_convergence,
            "apiRequestsConvergence": self.api_requests,
            "eventsTrailingSeconds": round(self.events_trailing_seconds, 1),
            "apiRequestsSteady": self.api_requests_steady,
            "steadyRequestsPerBindingMinute": self.steady_requests_per_binding_minute,
            "operatorSettings": self.settings,
            "operatorLog": self.log_summary,
            "reconcilePassesConvergence": self.reconcile_passes,
            "timeline": self.timeline,
            "geelarkCalls": self.geelark_calls,
            "podPipeline": self.pod_pipeline,
            "churn": self.churn,
        }


def _difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Requests between two counts, largest first (the bench's own watches and lists included)."""
    diff = {k: v - before.get(k, 0) for k, v in after.items()}
    return dict(sorted(((k, v) for k, v in diff.items() if v > 0), key=lambda kv: -kv[1]))


def _per_binding_minute(
    requests: dict[str, int], bindings: int, seconds: float
) -> dict[str, float]:
    """API requests per binding per minute, by verb and in all ("total"), over ``seconds``.

    The API server counts every client's requests: the bench's own two watches are in them
    (a WATCH is counted when it ends), so the figure is an upper bound of the operator's.
    """
    if not bindings or seconds <= 0:
        return {}
    by_verb: Counter[str] = Counter()
    for key, count in requests.items():
        if not key.startswith("failed "):  # counted under their verb too
            by_verb[key.split(" ", 1)[0]] += count
    failed = sum(v for k, v in requests.items() if k.startswith("failed "))
    scale = 60.0 / seconds / bindings
    out = {verb: round(count * scale, 4) for verb, count in sorted(by_verb.items())}
    out["total"] = round(sum(by_verb.values()) * scale, 4)
    out["failedWrites"] = failed
    return out


#: Longest wait for the operator's Events to stop after convergence (k8s/events.py defers a
#: Normal Event at most 30 s while its passes' API calls have a backlog).
SETTLE_LIMIT_SECONDS = 45.0
#: How long the Events count must stay the same for the operator to be at rest.
SETTLE_QUIET_SECONDS = 2.0


async def _settle(
    api: KubeApi, after: dict[str, int], *, wait: bool
) -> tuple[dict[str, int], float]:
    """Wait, after convergence, until the operator's deferred Events are posted; the API
    server's counts then, and how long that took. Those Events are the convergence's writes
    (counted with them), not the fleet at rest's: the steady window starts after them."""
    clock = asyncio.get_running_loop().time
    began = clock()
    counts, quiet_since = after, began
    while wait and clock() - began < SETTLE_LIMIT_SECONDS:
        await asyncio.sleep(0.5)  # a poll of the API server's counters, bounded above
        now = await api.request_counts()
        if now.get("POST events", 0) != counts.get("POST events", 0):
            quiet_since = clock()
        counts = now
        if clock() - quiet_since >= SETTLE_QUIET_SECONDS:
            break
    return counts, max(0.0, quiet_since - began)


async def _steady(
    api: KubeApi, seconds: float, before: dict[str, int]
) -> tuple[dict[str, int], float]:
    """Wait out the steady state: the API server's requests in it, and its length."""
    began = time.monotonic()
    if seconds > 0:
        await asyncio.sleep(seconds)
    return _difference(await api.request_counts(), before), time.monotonic() - began


def _with_metrics(url: str, extra_env: dict[str, str]) -> dict[str, str]:
    """The operator's environment with its metrics server at ``url`` (loopback), read at
    convergence for the reconcile passes."""
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    env = {"PHONEFLEET_METRICS_PORT": port, "PHONEFLEET_METRICS_ADDR": "127.0.0.1"}
    return {**env, **extra_env}


def _reconcile_passes(url: str) -> dict[str, float]:
    """The operator's reconcile passes so far, by outcome, from its own /metrics."""
    try:
        text = requests.get(url, timeout=10).text
    except requests.RequestException:
        return {}
    passes: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "phonefleet_reconcile_passes_total":
                outcome = sample.labels.get("outcome", "")
                passes[outcome] = passes.get(outcome, 0.0) + sample.value
    return passes


def _wait_healthy(url: str, operator: Any, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        operator.check_running()
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the operator did not answer {url} within {wait_seconds} s")
        time.sleep(0.2)


def _totals(sampler: ProcessSampler) -> tuple[float, int]:
    """CPU seconds used and peak RSS (KiB) of the operator so far."""
    sampler.sample()
    return (sampler.samples[-1][2] if sampler.samples else 0.0), sampler.peak_hwm_kib


def _log_summary(path: Path) -> Obj:
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = text.splitlines()
    return {
        "path": str(path),
        "lines": len(lines),
        "errors": sum(" ERROR " in line for line in lines),
        "warnings": sum(" WARNING " in line for line in lines),
        "geelarkRetries": sum("Retrying a Geelark call" in line for line in lines),
        "geelarkUnavailable": sum("Geelark unavailable" in line for line in lines),
        "kubernetesUnavailable": sum("Kubernetes API unavailable" in line for line in lines),
    }


def _binding(name: str, namespace: str, phone: str, *, churned: bool = True) -> Obj:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.BINDING_KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {CHURN_LABEL: "true" if churned else "false"},
        },
        "spec": {"phoneId": phone},
    }


def _split(
    bindings: list[tuple[str, str]], churn: int
) -> tuple[list[tuple[str, str]], frozenset[str]]:
    """The bindings the churn deletes and applies again (the first ``churn``; 0: all), and the
    names of the others, which keep running."""
    churned = bindings[:churn] if churn else bindings
    return churned, frozenset(name for name, _ in bindings[len(churned) :])


#: The timeline reads the API server's request counts every this many samples (its /metrics
#: is a few MB: every second would add to the load it measures).
WRITES_EVERY = 5


async def _timeline(
    admin: SimulatorAdmin,
    tracker: Tracker,
    sampler: ProcessSampler,
    start: float,
    into: list[Obj],
    *,
    api: KubeApi,
    writes_before: int,
) -> None:
    while True:
        snapshot = await asyncio.to_thread(admin.counters)
        rss = sampler.samples[-1][1] if sampler.samples else 0
        row: Obj = {
            "t": round(time.monotonic() - start, 1),
            "converged": tracker.converged_count,
            "podsCreated": sum(i.pod_created is not None for i in tracker.items.values()),
            "geelarkCalls": snapshot.total,
            "geelarkCallsByEndpoint": {
                path.rsplit("/v1/", 1)[-1]: count for path, count in snapshot.requests.items()
            },
            "operatorRssMiB": round(rss / 1024),
        }
        if len(into) % WRITES_EVERY == 0:
            # Every client's writes so far (bench.report's "API side" line: writes per second).
            row["apiWrites"] = writes_in(await api.request_counts()) - writes_before
        into.append(row)
        await asyncio.sleep(1.0)


async def _apply(
    api: KubeApi,
    path: str,
    namespace: str,
    bindings: list[tuple[str, str]],
    concurrency: int,
    *,
    kept: frozenset[str] = frozenset(),
) -> None:
    def job(name: str, phone: str) -> Callable[[], Awaitable[None]]:
        async def create() -> None:
            await api.create(path, _binding(name, namespace, phone, churned=name not in kept))

        return create

    errors = await run_parallel((job(n, p) for n, p in bindings), concurrency)
    if errors:
        raise RuntimeError(f"applying the bindings failed: {errors[0]}")


async def run_operator(
    env: DevEnvironment,
    api: KubeApi,
    *,
    namespace: str,
    bindings: list[tuple[str, str]],
    node: str,
    log_dir: Path,
    extra_env: dict[str, str],
    wait_seconds: float,
    steady_seconds: float,
    concurrency: int,
    control_plane: dict[str, int],
    churn_cycles: int = 0,
    churn_bindings: int = 0,
) -> OperatorResult:
    """Start the operator, apply every (name, spec.phoneId) and measure until all are Ready."""
    admin = SimulatorAdmin(env.simulator.base_url)
    sim = env.simulator.admin
    churned, kept = _split(bindings, churn_bindings)
    await api.create_namespace(namespace)
    sim.reset_counters()
    metrics = f"http://127.0.0.1:{free_port()}/metrics"
    operator = start_operator(env, log_dir, _with_metrics(metrics, extra_env))
    assert operator.pid is not None  # noqa: S101 - just started
    sampler = ProcessSampler(operator.pid)
    sampler.start()
    plane_cpu = CpuClock(control_plane)
    try:
        liveness = operator.argv[operator.argv.index("--liveness") + 1]
        await asyncio.to_thread(_wait_healthy, liveness, operator, 60.0)
        tracker = Tracker([name for name, _ in bindings], pod_name, node, needs_ready=True)
        base, pods = (
            f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/phonebindings",
            f"/api/v1/namespaces/{namespace}/pods",
        )
        timeline: list[Obj] = []
        async with (
            watch_into(api, base, tracker.on_binding) as bwatch,
            watch_into(api, pods, tracker.on_pod) as pwatch,
        ):
            requests_before = await api.request_counts()
            sampler.sample()
            plane_cpu.start()
            t0 = time.monotonic()
            sampling = asyncio.create_task(
                _timeline(
                    admin,
                    tracker,
                    sampler,
                    t0,
                    timeline,
                    api=api,
                    writes_before=writes_in(requests_before),
                )
            )
            try:
                await _apply(api, base, namespace, bindings, concurrency, kept=kept)
                applied = time.monotonic() - t0
                converged = await wait_done(tracker, [bwatch, pwatch], wait_seconds)
                t_end = tracker.last_converged if converged else time.monotonic()
                at_convergence, passes, served = await asyncio.to_thread(
                    lambda: (sim.counters(), _reconcile_passes(metrics), sim.served_calls())
                )
                plane_used = plane_cpu.read()
                requests_after, trailing = await _settle(
                    api, await api.request_counts(), wait=converged
                )
                sampler.sample()
                cpu_convergence = sampler.cpu_between(t0, time.monotonic())
                steady_requests, steady_elapsed = await _steady(
                    api, steady_seconds if converged else 0.0, requests_after
                )
                after_steady = await asyncio.to_thread(sim.counters)
            finally:
                sampling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampling
        cpu_total, peak_kib = _totals(sampler)  # before the churn: the figures of one run
        churn = await run_churn(
            api,
            cycles=churn_cycles if converged else 0,
            bindings_path=base,
            pods_path=pods,
            new_tracker=lambda: Tracker([n for n, _ in churned], pod_name, node, needs_ready=True),
            apply=lambda: _apply(api, base, namespace, churned, concurrency),
            pid=operator.pid,
            liveness=liveness,
            wait_seconds=wait_seconds,
            kept=kept,
        )
        operator.check_running()
    finally:
        operator.stop()
        sampler.stop()
        admin.close()
    steady = counters_json(after_steady, at_convergence)
    return OperatorResult(
        api_requests_steady=steady_requests,
        steady_requests_per_binding_minute=_per_binding_minute(
            steady_requests, len(bindings), steady_elapsed
        ),
        bindings=len(bindings),
        converged=tracker.converged_count,
        apply_seconds=applied,
        converge_seconds=(t_end or t0) - t0,
        latency=percentiles(tracker.latencies()),
        convergence_latency=percentiles(tracker.convergence_latencies()),
        milestones=tracker.milestones(t0),
        geelark_convergence=counters_json(at_convergence),
        geelark_steady=steady,
        max_calls_per_minute=after_steady.max_per_minute,
        rate_limited_total=after_steady.codes.get(RATE_LIMITED, 0),
        steady_seconds=steady_seconds if converged else 0.0,
        steady_calls_per_minute=(steady["total"] * 60.0 / steady_seconds)
        if converged and steady_seconds > 0
        else 0.0,
        peak_rss_mib=peak_kib / 1024,
        cpu_seconds_convergence=cpu_convergence,
        cpu_seconds_total=round(cpu_total, 2),
        control_plane_cpu_convergence=plane_used,
        api_requests=_difference(requests_after, requests_before),
        events_trailing_seconds=trailing,
        timeline=timeline,
        log_summary=_log_summary(operator.log_path),
        settings=extra_env,
        churn=churn,
        reconcile_passes=passes,
        geelark_calls=[
            [round(call.at - t0, 2), call.endpoint.removeprefix("/open/v1/"), len(call.ids)]
            for call in served
        ],
        pod_pipeline=pipeline(
            tracker.items.values(),
            adb_reads((call.at, call.endpoint, call.ids) for call in served),
            t0,
            [row["t"] for row in timeline],
        ),
    )
