"""The ceiling: a plain parallel client creating the claims, Secrets and pods itself, no operator.

It renders the very objects the operator would (the operator's own pure builders), creates them
with ``concurrency`` requests in flight (claim, then Secret, then pod per binding) and waits until
every pod runs on the KWOK node. No Geelark, no status writes, no Events: this is what the API
server, the scheduler and KWOK allow on this machine. Owner references are left out, because no
PhoneBinding exists to own the objects (the garbage collector would delete them).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bench.kube import KubeApi, run_parallel, writes_in
from bench.tracking import Tracker, percentiles, wait_done, watch_into
from phonefleet_operator import constants as c
from phonefleet_operator.models import AdbConnection, PhoneBinding
from phonefleet_operator.render import build_adb_secret, build_claim, build_pod, pod_name
from phonefleet_operator.settings import OperatorSettings

__all__ = ["CeilingResult", "run_ceiling"]

Obj = dict[str, Any]
CLAIMS = f"/apis/{c.GROUP}/{c.VERSION}/{c.CLAIM_PLURAL}"
_FAKE_ADB_PASSWORD = "0a1b2c"  # noqa: S105 - a made-up glogin password, as the simulator hands out


@dataclass(frozen=True)
class Item:
    """One binding's worth of objects."""

    name: str
    claim: Obj
    secret: Obj
    pod: Obj


def _strip_owner(obj: Obj) -> Obj:
    obj["metadata"].pop("ownerReferences", None)
    return obj


def _strip_finalizers(obj: Obj) -> Obj:
    # A claim's finalizer is the operator's to remove (once the holder's pod is gone); with no
    # operator in the ceiling run it would keep the claims terminating for ever.
    obj["metadata"].pop("finalizers", None)
    return obj


def render_items(namespace: str, phones: list[tuple[str, str, str]]) -> list[Item]:
    """The claim, Secret and pod of each (binding name, phone id, serialName)."""
    settings = OperatorSettings()
    items = []
    for number, (name, phone_id, serial) in enumerate(phones, start=1):
        binding = PhoneBinding.from_body(
            {
                "apiVersion": c.API_VERSION,
                "kind": c.BINDING_KIND,
                "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())},
                "spec": {"phoneId": serial},
            }
        )
        connection = AdbConnection(
            ip="127.0.0.1",
            port=str(40_000 + number),
            password=_FAKE_ADB_PASSWORD,
            phone_id=phone_id,
        )
        items.append(
            Item(
                name=name,
                claim=_strip_finalizers(build_claim(binding, phone_id, serial)),
                secret=_strip_owner(build_adb_secret(binding, connection)),
                pod=_strip_owner(build_pod(binding, phone_id, settings)),
            )
        )
    return items


@dataclass(frozen=True)
class CeilingResult:
    """What the plain client achieved."""

    converged: int
    seconds: float
    requests: int
    latency: dict[str, float | None]
    convergence_latency: dict[str, float | None]
    milestones: dict[str, float | None]
    errors: list[str]
    cpu_seconds: dict[str, float]
    converged_at: list[float]
    #: Every client's writes until the last pod ran (the scheduler's and KWOK's included).
    api_writes: int = 0

    def to_json(self) -> dict[str, Any]:
        """The figures as JSON."""
        return {
            "converged": self.converged,
            "convergeSeconds": round(self.seconds, 2),
            "requests": self.requests,
            "latencySeconds": self.latency,
            "convergenceLatencySeconds": self.convergence_latency,
            "milestones": self.milestones,
            "errors": self.errors[:10],
            "apiWrites": self.api_writes,
            "cpuSeconds": self.cpu_seconds,
            # Seconds after the start at which each pod ran, in order (bench/plots.py).
            "convergedAtSeconds": self.converged_at,
        }


async def run_ceiling(
    api: KubeApi,
    *,
    namespace: str,
    phones: list[tuple[str, str, str]],
    node: str,
    concurrency: int,
    wait_seconds: float,
    cpu: Any,
) -> CeilingResult:
    """Create every item's objects in parallel and wait until all pods run on ``node``."""
    items = render_items(namespace, phones)
    tracker = Tracker([i.name for i in items], pod_name, node, needs_ready=False)
    pods = f"/api/v1/namespaces/{namespace}/pods"
    secrets = f"/api/v1/namespaces/{namespace}/secrets"

    def job(item: Item) -> Any:
        async def create() -> None:
            tracker.mark_created(item.name, time.monotonic())
            await api.create(CLAIMS, item.claim)
            await api.create(secrets, item.secret)
            await api.create(pods, item.pod)

        return create

    async with watch_into(api, pods, tracker.on_pod) as watch:
        writes_before = writes_in(await api.request_counts())
        cpu.start()
        started = time.monotonic()
        errors = await run_parallel((job(i) for i in items), concurrency)
        if not errors:
            await wait_done(tracker, [watch], wait_seconds)
        ended = tracker.last_converged or time.monotonic()
        used = cpu.read()
        writes = writes_in(await api.request_counts()) - writes_before
    return CeilingResult(
        converged=tracker.converged_count,
        seconds=ended - started,
        requests=3 * len(items),
        latency=percentiles(tracker.latencies()),
        convergence_latency=percentiles(tracker.convergence_latencies()),
        milestones=tracker.milestones(started),
        errors=[str(e) for e in errors],
        cpu_seconds=used,
        api_writes=writes,
        converged_at=sorted(
            round(i.converged - started, 2)
            for i in tracker.items.values()
            if i.converged is not None
        ),
    )


async def clean_up(api: KubeApi, namespace: str, wait_seconds: float = 120.0) -> None:
    """Delete the ceiling's pods, Secrets and claims and wait until the pods are gone."""
    await api.delete_collection(f"/api/v1/namespaces/{namespace}/pods")
    await api.delete_collection(
        f"/api/v1/namespaces/{namespace}/secrets", {"labelSelector": "app.kubernetes.io/name"}
    )
    mine = {"labelSelector": f"{c.LABEL_BINDING_NAMESPACE}={namespace}"}
    await api.delete_collection(CLAIMS, mine)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        left = await api.list(f"/api/v1/namespaces/{namespace}/pods")
        claims = await api.list(CLAIMS, mine)
        if not left["items"] and not claims["items"]:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the ceiling's objects in {namespace} were not deleted in {wait_seconds} s")
