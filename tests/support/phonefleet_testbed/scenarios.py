"""Building blocks of the operator scenarios: the fleet, the operator, bindings and waits."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

from kopf.testing import KopfRunner

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import DEFAULT_TOKEN, GeelarkSimulator
from phonefleet_testbed.waiting import wait_for

__all__ = [
    "Fleet",
    "Operator",
    "binding",
    "condition",
    "events",
    "in_process_operator",
    "loopback_webhook_env",
    "make_binding",
    "make_claim",
    "operator_env",
    "run_binding",
    "wait_phase",
]


@dataclass
class Fleet:
    """The simulator plus the expectations a test declares about it."""

    simulator: GeelarkSimulator
    keep_running: set[str] = field(default_factory=set)

    def add_phone(self, serial_name: str | None = None, **fields: Any) -> str:
        """Create a phone (a unique serialName unless given) and return its id."""
        name = serial_name or f"phone-{uuid.uuid4().hex[:8]}"
        return self.simulator.admin.create_phone(name, **fields).id

    def running(self) -> set[str]:
        """Ids of the phones running now."""
        return set(self.simulator.admin.running_phone_ids())


@dataclass
class Operator:
    """The operator running in-process, and what it printed."""

    runner: KopfRunner

    @property
    def output(self) -> str:
        """Everything the operator logged so far."""
        return str(self.runner.output)


def in_process_operator(*args: str, timeout: float = 60) -> KopfRunner:
    """``kopf <args>`` in a thread of this process, for a ``with`` block (or __enter__/__exit__).

    The thread is a daemon: an operator that does not stop fails its test (KopfRunner raises
    "The operator didn't stop") instead of keeping pytest from exiting: a non-daemon thread is
    joined at interpreter exit, and a stuck one once held a CI run for an hour.
    """
    runner = KopfRunner(list(args), timeout=timeout)
    runner._thread.daemon = True  # KopfRunner makes its thread in __init__ and starts it later
    return runner


def operator_env(plane: ControlPlane, simulator: GeelarkSimulator) -> dict[str, str]:
    """Settings of an operator tuned for tests: short rechecks, the simulator, the test bed."""
    return {
        "KUBECONFIG": str(plane.kubeconfig),
        "PHONEFLEET_GEELARK_URL": simulator.base_url,
        "PHONEFLEET_GEELARK_TOKEN": DEFAULT_TOKEN,
        "PHONEFLEET_GEELARK_BATCH_WINDOW_SECONDS": "0.05",
        "PHONEFLEET_GEELARK_INVENTORY_MISS_REFRESH_SECONDS": "1",
        "PHONEFLEET_CONFLICT_RECHECK_SECONDS": "2",
        "PHONEFLEET_NOT_FOUND_RECHECK_SECONDS": "2",
        "PHONEFLEET_RUNNING_RECHECK_SECONDS": "5",
        "PHONEFLEET_BOOT_POLL_SECONDS": "0.3",
        # Longer than any test's deadline: a pod's changes must reach its binding through the
        # pods watch, not through a poll.
        "PHONEFLEET_POD_POLL_SECONDS": "300",
        "PHONEFLEET_GEELARK_RETRY_SECONDS": "1",
    }


def loopback_webhook_env(port: int) -> dict[str, str]:
    """Settings of an operator serving its admission webhook on loopback at ``port``, registered
    by URL (no Service)."""
    return {
        "PHONEFLEET_WEBHOOK_ENABLED": "true",
        "PHONEFLEET_WEBHOOK_ADDR": "127.0.0.1",
        "PHONEFLEET_WEBHOOK_HOST": "127.0.0.1",
        "PHONEFLEET_WEBHOOK_PORT": str(port),
        "PHONEFLEET_WEBHOOK_SERVICE": "",
    }


def make_binding(name: str, phone_id: str, namespace: str, **spec: Any) -> dict[str, Any]:
    """A PhoneBinding manifest; ``spec`` overrides use the CRD's camelCase names."""
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneBinding",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"phoneId": phone_id, **spec},
    }


def make_claim(
    phone_id: str, namespace: str, holder: str, uid: str, *, serial_name: str = "", **spec: Any
) -> dict[str, Any]:
    """A PhoneClaim manifest for ``phone_id`` (and named after it), held by binding
    ``namespace/holder`` of uid ``uid``; ``spec`` adds fields in the CRD's camelCase."""
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneClaim",
        "metadata": {"name": phone_id},
        "spec": {
            "phoneId": phone_id,
            "serialName": serial_name,
            "holder": {"namespace": namespace, "name": holder, "uid": uid},
            **spec,
        },
    }


def binding(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    """The binding as the API server has it now."""
    return kubectl.get("phonebinding", name, namespace)


def wait_phase(
    kubectl: Kubectl, namespace: str, name: str, phase: str, timeout: float = 120
) -> dict[str, Any]:
    """Wait until the binding reports ``phase`` and return it."""

    def reached() -> dict[str, Any] | None:
        found = binding(kubectl, namespace, name)
        return found if found and found.get("status", {}).get("phase") == phase else None

    def describe() -> str:
        found = binding(kubectl, namespace, name)
        return f"{namespace}/{name} to reach {phase}; status now: {(found or {}).get('status')}"

    return wait_for(reached, timeout, message=describe)


def wait_condition(
    kubectl: Kubectl, namespace: str, name: str, *, type_: str, reason: str, timeout: float = 120
) -> dict[str, Any]:
    """Wait until the binding's condition ``type_`` has ``reason``; return the binding."""

    def reached() -> dict[str, Any] | None:
        found = binding(kubectl, namespace, name)
        said = condition(found, type_) if found else None
        return found if said and said["reason"] == reason else None

    def describe() -> str:
        status = (binding(kubectl, namespace, name) or {}).get("status")
        return f"{namespace}/{name}'s {type_} to say {reason}; status now: {status}"

    return wait_for(reached, timeout, message=describe)


def run_binding(
    kubectl: Kubectl, namespace: str, name: str, phone: str, **spec: Any
) -> dict[str, Any]:
    """Apply binding ``name`` for ``phone`` (its id or serialName; ``spec`` in the CRD's
    camelCase) and return it once it is Running."""
    kubectl.apply(make_binding(name, phone, namespace, **spec))
    return wait_phase(kubectl, namespace, name, "Running")


def wait_job_token(kubectl: Kubectl, namespace: str, name: str, timeout: float = 60) -> str:
    """The job token the operator wrote into the binding's ADB Secret, once it is there."""

    def written() -> str | None:
        secret = kubectl.get("secret", f"{name}-adb", namespace)
        return ((secret or {}).get("data") or {}).get("jobToken")

    return base64.b64decode(wait_for(written, timeout, message="the job token")).decode()


def events(kubectl: Kubectl, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    """The namespace's Events, those matching the field ``selector`` when one is given (e.g.
    ``"involvedObject.name=b,type=Warning"``)."""
    return kubectl.list("events", namespace, *(["--field-selector", selector] if selector else []))


def posted(
    kubectl: Kubectl, namespace: str, selector: str, timeout: float = 60
) -> list[dict[str, Any]]:
    """The namespace's Events matching the field ``selector``, once there is one.

    The operator posts its Events in the background after the status write they go with: a
    test that has seen the status must still wait for the Event.
    """
    found: list[dict[str, Any]] = wait_for(
        lambda: events(kubectl, namespace, selector),
        timeout,
        message=f"an Event matching {selector} in namespace {namespace}",
    )
    return found


def condition(body: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """The condition of one type in a binding's status."""
    return next(
        (c for c in body.get("status", {}).get("conditions", []) if c["type"] == type_), None
    )
