"""``python -m bench.pass_cpu``: the CPU one reconcile pass of a Running binding costs.

A micro-benchmark of the pass alone (docs/scale.md, "Round 4b"): the binding, its claim, its
phone and its ready pod live in the service tests' in-memory fakes (tests/unit/services/fakes.py),
so no API server, network or event loop scheduling is timed; only what the operator's own code
spends: parsing the body, the steps, the status memo and the patch. Prints microseconds per pass.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from pathlib import Path
from typing import Any

import click

from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.services.claims import ClaimService
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.settings import OperatorSettings

_FAKES = Path(__file__).resolve().parent.parent / "tests" / "unit" / "services"


def _fakes() -> Any:
    """tests/unit/services/fakes.py (not a package: put on the path as pytest does)."""
    if str(_FAKES) not in sys.path:
        sys.path.insert(0, str(_FAKES))
    return importlib.import_module("fakes")


def _body() -> dict[str, Any]:
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneBinding",
        "metadata": {
            "name": "alpha",
            "namespace": "ns",
            "uid": "uid-alpha",
            "generation": 1,
            "resourceVersion": "1",
            "creationTimestamp": "2026-11-28T10:00:00Z",
            "finalizers": ["phonefleet.dev/release"],
        },
        "spec": {"phoneId": "phone-a"},
    }


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = _merge(result.get(key) or {}, value)
        else:
            result[key] = value
    return result


async def _measure(passes: int) -> float:
    fakes = _fakes()
    kube, phones = fakes.FakeKube(), fakes.FakePhones()
    phones.add("100", "phone-a")
    phones.power["100"] = PhoneStatus.RUNNING
    phones.adb_on.add("100")
    pods = ObservedPods()
    reconciler = BindingReconciler(
        directory=phones,
        power=phones,
        kube=kube,
        claims=ClaimService(kube),
        settings=OperatorSettings(),
        pods=pods,
    )
    body = _body()
    kube.bindings[("ns", "alpha")] = {"metadata": {"uid": "uid-alpha"}}
    for _ in range(4):  # claim, ADB, pod created, pod ready: the binding is Running
        report, _ = await reconciler.reconcile(PhoneBinding.from_body(body), {})
        patch = report.status_patch()
        if patch is not None:
            body["status"] = _merge(body.get("status") or {}, patch)
        for pod in kube.pods.values():
            pod["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
            pods.saw(pod)
    if body.get("status", {}).get("phase") != "Running":
        raise SystemExit(f"the binding is not Running: {body.get('status')}")
    started = time.perf_counter()
    for _ in range(passes):  # as Runtime.reconcile: parse the body, pass, compute the patch
        report, _ = await reconciler.reconcile(PhoneBinding.from_body(body), {})
        if report.status_patch() is not None:
            raise SystemExit("a pass at rest wrote a status")
    return (time.perf_counter() - started) / passes * 1e6


@click.command()
@click.option("--passes", default=5000, show_default=True, help="Passes timed per round.")
@click.option("--rounds", default=5, show_default=True, help="Rounds; the best is printed.")
def main(passes: int, rounds: int) -> None:
    """Print the microseconds one pass of a Running binding costs (best of the rounds)."""
    figures = [asyncio.run(_measure(passes)) for _ in range(rounds)]
    shown = ", ".join(f"{x:.1f}" for x in figures)
    click.echo(f"pass of a Running binding: {min(figures):.1f} us (best of {shown})")


if __name__ == "__main__":
    main()
