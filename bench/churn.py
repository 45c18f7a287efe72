"""The churn phase: delete every binding and apply them again, a few times, and see whether the
operator's memory comes back to where it was (a per-binding leak grows it cycle after cycle).

Figures: the operator's RSS before the first cycle and after each one (all bindings Ready again
each time), and the in-memory entries it reports on /healthz (``background.tracked``) while no
binding exists: all zero unless something leaks.
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

__all__ = ["run_churn"]

Obj = dict[str, Any]


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


async def _wait_empty(api: KubeApi, path: str, wait_seconds: float) -> float:
    began = time.monotonic()
    while (await api.list(path)).get("items"):
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
) -> Obj:
    """Delete and re-apply every binding ``cycles`` times; RSS before and after each cycle."""
    before = _rss_mib(pid)
    per_cycle = []
    for _ in range(cycles):
        await api.delete_collection(bindings_path)
        released = await _wait_empty(api, bindings_path, wait_seconds)
        tracked = await _settled_tracked(liveness, 30.0)
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
    return {
        "cycles": cycles,
        "rssBeforeMiB": before,
        "rssAfterMiB": per_cycle[-1]["rssMiB"] if per_cycle else before,
        "perCycle": per_cycle,
    }
