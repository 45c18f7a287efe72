"""One bench run: the environment, then the ceiling, the operator and the seed's way on it."""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.apiserver_profile import ProfileCapture, enable_profiling
from bench.ceiling import clean_up, run_ceiling
from bench.fleet import run_operator
from bench.kube import KubeApi
from bench.process_stats import CpuClock, child_processes
from bench.report import geelark_floor, machine_info, targets
from bench.seed_way import run_seed_way
from phonefleet_testbed.controlplane.cluster import KWOK_NODE_NAME
from phonefleet_testbed.devenv import DevEnvironment
from phonefleet_testbed.geelark_sim import seed_id, seed_name

__all__ = ["Options", "run"]

Obj = dict[str, Any]


@dataclass(frozen=True)
class Options:
    """What to run; the defaults are the issue's (100 ms per Geelark call, 10 s boots)."""

    bindings: int = 100
    boot_seconds: float = 10.0
    adb_enable_seconds: float = 3.0
    latency_ms: float = 100.0
    rate_limit_per_minute: int = 200
    steady_seconds: float = 300.0
    timeout: float = 600.0
    apply_concurrency: int = 32
    ceiling_concurrency: int = 64
    seed_sample: int = 10
    operator_env: dict[str, str] = field(default_factory=dict)
    skip: frozenset[str] = frozenset()
    churn_cycles: int = 2
    churn_bindings: int = 0
    apiserver_profile_seconds: int = 0
    apiserver_profile_path: Path | None = None

    def to_json(self) -> Obj:
        """The options as recorded in the results."""
        return {
            "bindings": self.bindings,
            "bootSeconds": self.boot_seconds,
            "adbEnableSeconds": self.adb_enable_seconds,
            "latencyMs": self.latency_ms,
            "rateLimitPerMinute": self.rate_limit_per_minute,
            "steadySeconds": self.steady_seconds,
            "timeoutSeconds": self.timeout,
            "applyConcurrency": self.apply_concurrency,
            "ceilingConcurrency": self.ceiling_concurrency,
            "seedSample": self.seed_sample,
            "operatorEnv": self.operator_env,
            "skipped": sorted(self.skip),
            "churnCycles": self.churn_cycles,
            "churnBindings": self.churn_bindings,
            "apiserverProfileSeconds": self.apiserver_profile_seconds,
        }


def _say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def run(options: Options) -> Obj:
    """Start the environment, run every phase on it and return the figures."""
    n = options.bindings
    work = Path(tempfile.mkdtemp(prefix="phonefleet-bench-"))
    _say(f"starting a control plane and a simulator with {n} phones (logs in {work})")
    if options.apiserver_profile_seconds:
        enable_profiling()
    with DevEnvironment(
        phones=n,
        boot_seconds=options.boot_seconds,
        latency_ms=options.latency_ms,
        rate_limit_per_minute=options.rate_limit_per_minute,
    ) as env:
        env.simulator.admin.update_settings(adb_enable_seconds=options.adb_enable_seconds)
        _say(f"environment up in {env.startup_seconds:.1f} s")
        result: Obj = {
            "bindings": n,
            "startedAt": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "options": options.to_json(),
            "machine": machine_info(env.plane.binaries.directory),
            "environmentStartSeconds": round(env.startup_seconds, 1),
        }
        plane = {k: v for k, v in child_processes().items() if not k.startswith("phonefleet")}
        result.update(asyncio.run(_phases(env, options, plane, work)))
    floor = geelark_floor(n, result["options"], options.operator_env)
    converge = result["operator"].get("convergeSeconds")
    floor["ratio"] = round(converge / floor["seconds"], 2) if converge else None
    documented = floor["documented"]
    documented["ratio"] = round(converge / documented["seconds"], 2) if converge else None
    # The floor bounds the Geelark side: done once the last pod exists (its ADB data was read).
    done = next(
        (row["t"] for row in result["operator"].get("timeline", []) if row["podsCreated"] >= n),
        None,
    )
    floor["geelarkDoneSeconds"] = done
    floor["geelarkDoneRatio"] = round(done / floor["seconds"], 2) if done else None
    result["geelarkFloor"] = floor
    result["targets"] = targets(n, result["operator"], result["ceiling"], floor)
    return result


async def _phases(env: DevEnvironment, options: Options, plane: dict[str, int], work: Path) -> Obj:
    n = options.bindings
    out: Obj = {}
    async with KubeApi(env.plane.server, env.plane.pki_dir) as api:
        if "ceiling" in options.skip:
            out["ceiling"] = {"skipped": True, "convergeSeconds": None, "converged": 0}
        else:
            namespace = "bench-ceiling"
            await api.create_namespace(namespace)
            phones = [(f"pb-{i:04d}", seed_id(i), seed_name(i)) for i in range(1, n + 1)]
            _say(f"ceiling: creating {n} claims, Secrets and pods with a plain parallel client")
            ceiling = await run_ceiling(
                api,
                namespace=namespace,
                phones=phones,
                node=KWOK_NODE_NAME,
                concurrency=options.ceiling_concurrency,
                wait_seconds=options.timeout,
                cpu=CpuClock(plane),
            )
            out["ceiling"] = ceiling.to_json()
            _say(f"ceiling: {ceiling.converged}/{n} pods running in {ceiling.seconds:.1f} s")
            began = time.monotonic()
            await clean_up(api, namespace)
            _say(f"ceiling: cleaned up in {time.monotonic() - began:.1f} s")

        bindings = [(f"pb-{i:04d}", seed_id(i) if i % 2 else seed_name(i)) for i in range(1, n + 1)]
        _say(f"operator: applying {n} PhoneBindings")
        profile = None
        if options.apiserver_profile_seconds and options.apiserver_profile_path:
            profile = ProfileCapture(
                env.plane.server,
                env.plane.pki_dir,
                options.apiserver_profile_seconds,
                options.apiserver_profile_path,
            )
            profile.start()
        operator = await run_operator(
            env,
            api,
            namespace="bench",
            bindings=bindings,
            node=KWOK_NODE_NAME,
            log_dir=work,
            extra_env=options.operator_env,
            wait_seconds=options.timeout,
            steady_seconds=options.steady_seconds,
            concurrency=options.apply_concurrency,
            control_plane=plane,
            churn_cycles=options.churn_cycles,
            churn_bindings=options.churn_bindings,
        )
        out["operator"] = operator.to_json()
        if profile is not None:
            out["apiserverProfile"] = profile.join()
        _say(
            f"operator: {operator.converged}/{n} Ready in {operator.converge_seconds:.1f} s, "
            f"{operator.geelark_convergence['total']} Geelark calls; steady "
            f"{operator.steady_calls_per_minute:.1f}/min"
        )
        churn = operator.churn
        _say(
            f"churn: operator RSS {churn['rssBeforeMiB']} MiB before {churn['cycles']} cycles of "
            f"deleting and re-applying {options.churn_bindings or 'every'} binding(s), "
            f"{churn['rssAfterMiB']} MiB after; pods of the {churn['keptRunning']} running ones "
            f"replaced {churn['keptPodsReplaced']}, restarts {churn['keptPodRestarts']}"
        )

    if "seed" in options.skip:
        out["seedWay"] = None
    else:
        refs = [ref for _, ref in bindings]
        _say(f"seed's way: validating {min(options.seed_sample, n)} of {n} assignments")
        seed = await asyncio.to_thread(
            run_seed_way, env.simulator, env.token, refs, options.seed_sample
        )
        out["seedWay"] = seed.to_json()
    return out
