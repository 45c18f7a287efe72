"""Factories of the service tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import clocks
import kopf
import pytest
from fakes import FakeKube, FakePhones

from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.services.claims import BindingRef, ClaimService
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.services.report import Report
from phonefleet_operator.services.runtime import Runtime
from phonefleet_operator.settings import OperatorSettings

#: When every service test starts (clocks.py owns it; the tests import it from here).
NOW = clocks.NOW
_counter = itertools.count(1)


def make_binding(name: str = "alpha", phone: str = "phone-a", **spec: Any) -> PhoneBinding:
    """A PhoneBinding body as the API server would return it (each one a little younger)."""
    n = next(_counter)
    return PhoneBinding.from_body(
        {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "uid": f"uid-{name}-{n}",
                "generation": 1,
                "creationTimestamp": f"2026-11-28T10:{n // 60 % 60:02d}:{n % 60:02d}Z",
            },
            "spec": {"phoneId": phone, **spec},
        }
    )


async def step(
    reconciler: BindingReconciler,
    binding: PhoneBinding,
    waiters: Mapping[str, Iterable[BindingRef]] | None = None,
) -> tuple[PhoneBinding, Report, float]:
    """One reconcile pass (``waiters``: the bindings in Conflict by phone id, as the index has
    them), as the runtime runs it: its status written, then what follows the write (a pool slot
    freed). The binding comes back as the API server would store it after the pass's status
    merge patch (so a field the pass clears but does not send would survive)."""
    report, delay = await reconciler.reconcile(binding, waiters or {})
    body = binding.to_dict()
    patch = report.status_patch()
    if patch is not None:
        body["status"] = apply_merge_patch(body.get("status") or {}, patch)
    await reconciler.status_written(binding, report)
    return PhoneBinding.from_body(body), report, delay


def ready(pod: dict[str, object]) -> None:
    """Mark a fake pod Ready, as KWOK or a kubelet would."""
    pod["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}


async def bring_up(reconciler: BindingReconciler, phones: FakePhones) -> PhoneBinding:
    """A new binding whose phone runs with ADB on, after one pass: claimed, ADB data written,
    pod created (not ready yet)."""
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    binding, _, _ = await step(reconciler, make_binding())
    return binding


def apply_merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a JSON merge patch (RFC 7386), as the API server does for status patches."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = apply_merge_patch(result.get(key) or {}, value)
        else:
            result[key] = value
    return result


def memo_of(runtime: Runtime) -> kopf.Memo:
    """kopf's memo, as main.py fills it."""
    memo = kopf.Memo()
    memo.runtime = runtime
    return memo


@pytest.fixture
def kube() -> FakeKube:
    """Kubernetes objects in memory."""
    return FakeKube()


@pytest.fixture
def phones() -> FakePhones:
    """One stopped phone, id 100, serialName phone-a."""
    fake = FakePhones()
    fake.add("100", "phone-a")
    return fake


@pytest.fixture
def clock() -> clocks.Clock:
    """Time starts at NOW and moves only when the test says so."""
    return clocks.Clock()


@pytest.fixture
def pods(clock: clocks.Clock) -> ObservedPods:
    """A pods view the test feeds as the pods watch would."""
    return ObservedPods(clock=clock.timestamp)


def make_reconciler(
    kube: FakeKube,
    phones: FakePhones,
    clock: clocks.Clock,
    *,
    pods: ObservedPods | None = None,
    settings: OperatorSettings | None = None,
) -> BindingReconciler:
    """A reconciler wired to the fakes and the hand-moved clock (and a pods view the test feeds
    as the pods watch would, when given)."""
    return BindingReconciler(
        directory=phones,
        power=phones,
        kube=kube,
        claims=ClaimService(kube),
        settings=settings if settings is not None else OperatorSettings(),
        pods=pods,
        clock=clock,
    )


@pytest.fixture
def reconciler(kube: FakeKube, phones: FakePhones, clock: clocks.Clock) -> BindingReconciler:
    """The reconciler wired to the fakes and the hand-moved clock."""
    return make_reconciler(kube, phones, clock)
