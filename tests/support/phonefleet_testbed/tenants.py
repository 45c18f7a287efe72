"""Tenancy on the test bed: client namespaces with a user bound to `edit` in each, and PhonePools
that are deleted after each test (a pool left behind would turn tenancy on for later tests)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client, config, watch

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import Fleet
from phonefleet_testbed.waiting import wait_for

__all__ = [
    "CLIENT_LABEL",
    "MaxWatch",
    "Tenancy",
    "Tenant",
    "make_pool",
    "make_tenant",
    "pools",
    "tenants",
]

#: The label the tests' pools choose namespaces by.
CLIENT_LABEL = "phonefleet.dev/client"


@dataclass(frozen=True)
class Tenant:
    """A client namespace, its client label, and kubectl as a user of that namespace only."""

    namespace: str
    client: str
    kubectl: Kubectl


@dataclass(frozen=True)
class Tenancy:
    """Where a pool test starts: two client namespaces (acme, globex), pools made on demand
    (``pools(prefix, **spec)``, deleted after the test) and the Geelark fleet; the ``tenancy``
    fixture of the operator scenarios also runs one operator."""

    tenants: tuple[Tenant, Tenant]
    pools: Callable[..., str]
    fleet: Fleet


def make_tenant(kubectl: Kubectl, plane: ControlPlane, client_name: str) -> Tenant:
    """A labelled namespace and a ServiceAccount bound to the built-in `edit` role in it, plus
    what a cluster would add for our CRD: PhoneBindings in that namespace (nothing on pools)."""
    name = f"{client_name}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, f"{CLIENT_LABEL}={client_name}")
    wait_for(lambda: kubectl.get("serviceaccount", "default", name), 30, message="default SA")
    kubectl("create", "serviceaccount", "tenant", "-n", name)
    subject = f"--serviceaccount={name}:tenant"
    kubectl("create", "rolebinding", "tenant-edit", "--clusterrole=edit", subject, "-n", name)
    kubectl.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "phonebindings-edit", "namespace": name},
            "rules": [
                {
                    "apiGroups": ["phonefleet.dev"],
                    "resources": ["phonebindings"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                }
            ],
        }
    )
    kubectl(
        "create", "rolebinding", "tenant-bindings", "--role=phonebindings-edit", subject, "-n", name
    )
    user = kubectl.as_user(plane.mint_service_account_kubeconfig(name, "tenant"))
    wait_for(
        lambda: (
            user(
                "auth", "can-i", "create", "phonebindings.phonefleet.dev", check=False
            ).stdout.strip()
            == "yes"
        ),
        30,
        message=f"the tenant's rights in {name}",
    )
    return Tenant(name, client_name, user)


@pytest.fixture
def tenants(kubectl: Kubectl, control_plane: ControlPlane) -> Iterator[tuple[Tenant, Tenant]]:
    """Two client namespaces, acme and globex, each with its own `edit` user."""
    made = (
        make_tenant(kubectl, control_plane, "acme"),
        make_tenant(kubectl, control_plane, "globex"),
    )
    yield made
    for tenant in made:
        kubectl("delete", "namespace", tenant.namespace, "--wait=false", check=False)


def make_pool(name: str, **spec: Any) -> dict[str, Any]:
    """A PhonePool manifest; ``spec`` in the CRD's camelCase."""
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhonePool",
        "metadata": {"name": name},
        "spec": spec,
    }


@pytest.fixture
def pools(kubectl: Kubectl) -> Iterator[Callable[..., str]]:
    """``pools(prefix, **spec)`` applies a pool with a unique name; all are deleted afterwards."""
    made: list[str] = []

    def apply(prefix: str, **spec: Any) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        kubectl("apply", "-f", "-", input_text=json.dumps(make_pool(name, **spec)))
        made.append(name)
        return name

    yield apply
    for name in made:
        kubectl("delete", "phonepool", name, "--ignore-not-found")


@dataclass
class MaxWatch:
    """Watches a list of objects in a thread and keeps the largest ``measure`` of the objects
    that existed together, over every event.

    A watch delivers every version the API server stored, in order, so the maximum is over
    every moment, not over samples taken now and then.
    """

    kubeconfig: str
    list_call: Callable[[client.ApiClient], Callable[..., Any]]
    measure: Callable[[dict[str, Any]], int] = len
    kwargs: dict[str, Any] = field(default_factory=dict)
    largest: int = 0
    events: int = 0
    _alive: dict[str, Any] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MaxWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise AssertionError("the watch did not start")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        api = config.new_client_from_config(config_file=self.kubeconfig)  # type: ignore[no-untyped-call]
        method = self.list_call(api)
        listing = method(_preload_content=False, **self.kwargs)
        body = json.loads(listing.data)
        for item in body["items"]:
            self._alive[item["metadata"]["name"]] = item
        self.largest = self.measure(self._alive)
        version = body["metadata"]["resourceVersion"]
        self._ready.set()
        while not self._stop.is_set():
            stream = watch.Watch()  # type: ignore[no-untyped-call]
            events = stream.stream(  # type: ignore[no-untyped-call]
                method, resource_version=version, timeout_seconds=2, **self.kwargs
            )
            for event in events:
                item = event["raw_object"]
                version = item["metadata"]["resourceVersion"]
                if event["type"] == "DELETED":
                    self._alive.pop(item["metadata"]["name"], None)
                else:
                    self._alive[item["metadata"]["name"]] = item
                self.events += 1
                self.largest = max(self.largest, self.measure(self._alive))
                if self._stop.is_set():
                    stream.stop()  # type: ignore[no-untyped-call]
                    break
