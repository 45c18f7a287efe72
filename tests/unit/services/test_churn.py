"""Bindings that come and go leave nothing behind in the operator's memory (issue 10, defect 9).

2,000 bindings are created and deleted in four waves through the runtime, as the operator drives
it: the loop registers and runs passes, the release, then the watches report the pod, the claim
and the binding DELETED (through the real handlers). The API server and Geelark
are the in-memory fakes; tests/integration/operator/test_health_endpoint.py churns bindings on
the real control plane and reads the same counts from /healthz.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from clocks import Clock
from fakes import FakeKube, FakePhones
from loop_order import until

from conftest import memo_of
from phonefleet_operator.constants import FINALIZER
from phonefleet_operator.errors import TemporaryFault
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.handlers import claims, pods
from phonefleet_operator.handlers.binding_watch import BindingEvents, binding_kept
from phonefleet_operator.k8s.watch import KeptState
from phonefleet_operator.services.binding_loops import BindingLoops
from phonefleet_operator.services.claims import ClaimService
from phonefleet_operator.services.coordination import Wakeups
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.services.runtime import Runtime
from phonefleet_operator.settings import GeelarkSettings, OperatorSettings

WAVES, PER_WAVE = 4, 500
_uids = itertools.count(1)


@pytest.fixture
async def runtime(kubeconfig: Path, kube: FakeKube, phones: FakePhones) -> AsyncIterator[Runtime]:
    """The operator's runtime with its API server and Geelark replaced by the fakes."""
    settings = OperatorSettings(kubeconfig=str(kubeconfig))
    built = Runtime.create(settings, GeelarkSettings(url="http://127.0.0.1:9", token="t"))
    built.kube = kube  # type: ignore[assignment]
    built.claims = ClaimService(kube, built.observed_claims)
    built.reconciler = BindingReconciler(
        directory=phones,
        power=phones,
        kube=kube,
        claims=built.claims,
        settings=settings,
        pods=built.observed_pods,
        clock=Clock(),
    )
    yield built
    await built.close()


def new_binding(kube: FakeKube, n: int) -> dict[str, Any]:
    """A binding stored in the fake API server; the dict is kopf's live body of it."""
    body: dict[str, Any] = {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneBinding",
        "metadata": {
            "name": f"b{n}",
            "namespace": "ns",
            "uid": f"uid-churn-{next(_uids)}",
            "generation": 1,
            "creationTimestamp": "2026-11-28T10:00:00Z",
        },
        "spec": {"phoneId": f"p{n}", "releasePolicy": "Keep" if n % 4 == 1 else "Stop"},
    }
    kube.bindings[("ns", f"b{n}")] = body
    return body


async def come_up(runtime: Runtime, kube: FakeKube, phones: FakePhones, n: int) -> dict[str, Any]:
    """Create binding n and take it as far as its kind goes: Running (n % 4 in 0, 1), deleted
    while its phone boots (2), or while ADB comes up (3)."""
    phone_id = f"p{n}"
    phones.add(phone_id, phone_id, PhoneStatus.SHUT_DOWN if n % 4 == 2 else PhoneStatus.RUNNING)
    if n % 4 in (0, 1):
        phones.adb_on.add(phone_id)
    body = new_binding(kube, n)
    runtime.wakeups.register(body["metadata"]["uid"])
    await runtime.reconcile(body, {})
    pod = kube.pods.get(("ns", f"b{n}-worker"))
    if pod is not None:
        pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        pods.worker_pod_seen(event={"type": "ADDED", "object": pod}, memo=memo_of(runtime))
        await runtime.reconcile(body, {})
        assert body["status"]["phase"] == "Running"
    claims.claim_seen(
        event={"type": "ADDED", "object": kube.claims[phone_id]},
        memo=memo_of(runtime),
        phone_waiters={},
    )
    return body


async def go_away(runtime: Runtime, kube: FakeKube, body: dict[str, Any]) -> None:
    """Delete the binding as the operator does: release (retried while the pod terminates),
    the loop's last pass, then the DELETED events of its pod, its claim and itself."""
    memo = memo_of(runtime)
    body["metadata"]["deletionTimestamp"] = "2026-11-28T11:00:00Z"
    pod = kube.pods.get(("ns", f"{body['metadata']['name']}-worker"))
    claim = kube.claims.get(body["spec"]["phoneId"])
    for _ in range(3):
        try:
            await runtime.release(body)
            break
        except TemporaryFault:
            continue
    assert await runtime.reconcile(body, {}) is None
    if pod is not None:
        pods.worker_pod_seen(event={"type": "DELETED", "object": pod}, memo=memo)
    if claim is not None and claim["metadata"]["name"] not in kube.claims:
        claims.claim_seen(event={"type": "DELETED", "object": claim}, memo=memo, phone_waiters={})
    del kube.bindings[("ns", body["metadata"]["name"])]
    runtime.forget(body)  # what the bindings watch does with a DELETED event


async def test_two_thousand_bindings_created_and_deleted_leave_every_map_empty(
    runtime: Runtime, kube: FakeKube, phones: FakePhones
) -> None:
    """After each wave every per-binding and per-phone map of the operator is back to zero:
    locks, wake-ups, written statuses, power and ADB memories, and the watch views."""
    for wave in range(WAVES):
        numbers = range(wave * PER_WAVE, (wave + 1) * PER_WAVE)
        bodies = [await come_up(runtime, kube, phones, n) for n in numbers]
        assert runtime.tracked()["wakeups"] == PER_WAVE
        for body in bodies:
            await go_away(runtime, kube, body)
        assert not kube.pods
        assert not kube.claims
        assert runtime.tracked() == dict.fromkeys(runtime.tracked(), 0), f"after wave {wave}"


async def test_a_wait_after_the_release_does_not_register_the_binding_again() -> None:
    """A daemon still looping after its binding was released waits without an entry."""
    wakeups = Wakeups()
    wakeups.register("uid-1")
    wakeups.forget("uid-1")

    async def stopped(delay: float) -> bool:
        return True

    await wakeups.wait("uid-1", 1.0, stopped)
    assert len(wakeups) == 0


@pytest.mark.looptime  # until's polls and deadline run on the loop's virtual clock
async def test_a_binding_deleted_unseen_ends_its_loop_and_its_phone_is_released(
    runtime: Runtime, kube: FakeKube, phones: FakePhones
) -> None:
    """A binding deleted while the bindings watch was down, its finalizer removed by hand, sends
    no event; the watch's relist reports it DELETED (its list lacks it). Its loop ends and it is
    forgotten; the orphan sweep then stops its phone and drops its claim."""
    runtime.claims = ClaimService(
        kube, runtime.observed_claims, power=phones, known_alive=runtime.wakeups.__contains__
    )
    body = await come_up(runtime, kube, phones, 0)  # Running, releasePolicy Stop
    uid = body["metadata"]["uid"]
    body["metadata"].update(finalizers=[FINALIZER], resourceVersion="1")
    passes: list[str] = []

    async def reconcile(current: dict[str, Any]) -> float | None:
        passes.append(current["metadata"]["uid"])
        return 60.0

    loops = BindingLoops(
        reconcile=reconcile,
        release=runtime.release,
        finalizers=None,  # type: ignore[arg-type]  # never needed: the finalizer is on
        get_binding=kube.get_binding,
        wakeups=runtime.wakeups,
        waiters=runtime.waiters,
    )
    events = BindingEvents(runtime, loops)
    watch = KeptState(keep=binding_kept)
    for change in watch.replace([body]):
        events(change.type, change.object)
    await until(lambda: bool(passes))

    del kube.bindings[("ns", "b0")]  # gone from the API server, and no event came
    pod = kube.pods.pop(("ns", "b0-worker"))  # the garbage collector takes its pod
    pods.worker_pod_seen(event={"type": "DELETED", "object": pod}, memo=memo_of(runtime))
    for change in watch.replace([]):  # the relist after the gap
        events(change.type, change.object)
    await until(lambda: uid not in loops)

    assert uid not in runtime.wakeups
    assert await runtime.claims.release_orphans() == ["p0"]
    assert phones.power["p0"] == PhoneStatus.SHUT_DOWN
    assert runtime.tracked() == dict.fromkeys(runtime.tracked(), 0)
    assert set(passes) == {uid}
    await events.close()
