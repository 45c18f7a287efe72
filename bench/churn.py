"""The churn phase: delete bindings and apply them again, a few times, and see whether the
operator's memory comes back to where it was (a per-binding leak grows it cycle after cycle).

Either every binding is churned, or (issue 14's shape) only some of them while the others run:
then the pods of the running ones must stay the same pods (no restart, no replacement).

Figures: the operator's RSS before the first cycle and after each one (all bindings Ready again
each time), the in-memory entries it reports on /healthz (``background.tracked``) while no
binding exists (all zero unless something leaks; only when every binding is churned), and the
running bindings' pods that were replaced or restarted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import requests

from bench.kube import KubeApi
from bench.process_stats import memory_kib
from bench.tracking import Tracker, wait_done, watch_into

__all__ = ["CHURN_LABEL", "run_churn"]

Obj = dict[str, Any]

#: The label of the bindings a churn cycle deletes and applies again ("true").
CHURN_LABEL = "bench.phonefleet.dev/churned"
_CHURNED = {"labelSelector": f"{CHURN_LABEL}=true"}


async def _running_pods(
    api: KubeApi, pods_path: str, kept: frozenset[str]
) -> dict[str, tuple[str, int]]:
    """uid and container restarts of each pod of a binding that is not churned."""
    pods = {}
    for pod in (await api.list(pods_path)).get("items", []):
        owner: Obj = next(iter(pod["metadata"].get("ownerReferences") or ()), {})
        if owner.get("name") in kept:
            restarts = sum(
                s.get("restartCount", 0)
                for s in (pod.get("status") or {}).get("containerStatuses") or ()
            )
            pods[owner["name"]] = (pod["metadata"]["uid"], restarts)
    return pods


def _rss_mib(pid: int) -> float:
    return round(memory_kib(pid).get("VmRSS", 0) / 1024, 1)


def _tracked(liveness: str) -> dict[str, int]:
    try:
        body = requests.get(liveness, timeout=5).json()
    except (requests.RequestException, ValueError):
        return {}
    background = body.get("background")
    tracked: dict[str, int] = background.get("tracked", {}) if isinstance(background, dict) else {}
    return tracked


async def _settled_tracked(liveness: str, wait_seconds: float) -> dict[str, int]:
    """/healthz's counts once they are all zero, or the last ones after ``wait_seconds`` (kopf
    caches probe results for 10 s)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        tracked = await asyncio.to_thread(_tracked, liveness)
        if (tracked and not any(tracked.values())) or time.monotonic() > deadline:
            return tracked
        await asyncio.sleep(1.0)


async def _wait_empty(
    api: KubeApi, path: str, wait_seconds: float, params: dict[str, str] | None = None
) -> float:
    began = time.monotonic()
    while (await api.list(path, params)).get("items"):
        if time.monotonic() - began > wait_seconds:
            raise TimeoutError(f"{path} still has objects after {wait_seconds} s")
        await asyncio.sleep(0.5)
    return time.monotonic() - began


async def run_churn(
    api: KubeApi,
    *,
    cycles: int,
    bindings_path: str,
    pods_path: str,
    new_tracker: Callable[[], Tracker],
    apply: Callable[[], Awaitable[None]],
    pid: int,
    liveness: str,
    wait_seconds: float,
    kept: frozenset[str] = frozenset(),
) -> Obj:
    """Delete and re-apply the churned bindings ``cycles`` times (every binding not in
    ``kept``); RSS before and after each cycle, and what became of the ``kept`` ones' pods."""
    before = _rss_mib(pid)
    running_before = await _running_pods(api, pods_path, kept)
    per_cycle = []
    for _ in range(cycles):
        await api.delete_collection(bindings_path, _CHURNED)
        released = await _wait_empty(api, bindings_path, wait_seconds, _CHURNED)
        tracked = await _settled_tracked(liveness, 30.0) if not kept else {}
        tracker = new_tracker()
        async with (
            watch_into(api, bindings_path, tracker.on_binding) as bwatch,
            watch_into(api, pods_path, tracker.on_pod) as pwatch,
        ):
            t0 = time.monotonic()
            await apply()
            converged = await wait_done(tracker, [bwatch, pwatch], wait_seconds)
            seconds = time.monotonic() - t0
        per_cycle.append(
            {
                "releaseSeconds": round(released, 1),
                "trackedWithNoBindings": tracked,
                "convergeSeconds": round(seconds, 1) if converged else None,
                "converged": tracker.converged_count,
                "rssMiB": _rss_mib(pid),
            }
        )
    running_after = await _running_pods(api, pods_path, kept)
    return {
        "cycles": cycles,
        "keptRunning": len(kept),
        "keptPodsReplaced": sum(
            1
            for name, (uid, _) in running_before.items()
            if running_after.get(name, ("",))[0] != uid
        ),
        "keptPodRestarts": sum(r for _, r in running_after.values())
        - sum(r for _, r in running_before.values()),
        "rssBeforeMiB": before,
        "rssAfterMiB": per_cycle[-1]["rssMiB"] if per_cycle else before,
        "perCycle": per_cycle,
    }
