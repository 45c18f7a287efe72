"""A pool's maxRunning on the real control plane: never exceeded, even by 50 bindings created
at once; waiters are visible in Queued and promoted oldest first; a lowered limit stops nothing."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import Fleet, Operator, condition, make_binding, wait_phase
from phonefleet_testbed.tenants import MaxWatch, Tenancy, Tenant
from phonefleet_testbed.waiting import wait_for

GROUP, VERSION = "phonefleet.dev", "v1alpha1"


def by_phase(kubectl: Kubectl, namespace: str) -> dict[str, list[dict[str, Any]]]:
    """The namespace's bindings grouped by phase."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for item in kubectl.list("phonebindings", namespace):
        grouped.setdefault((item.get("status") or {}).get("phase") or "", []).append(item)
    return grouped


def age(body: dict[str, Any]) -> tuple[str, str]:
    """The oldest-first order: creationTimestamp, then name (one namespace here)."""
    return body["metadata"]["creationTimestamp"], body["metadata"]["name"]


def watch_holders(kubectl: Kubectl, pool: str) -> MaxWatch:
    """The largest status.holders the pool ever had."""
    return MaxWatch(
        str(kubectl.kubeconfig),
        lambda api: client.CustomObjectsApi(api).list_cluster_custom_object,
        lambda alive: max(
            (len((p.get("status") or {}).get("holders") or []) for p in alive.values()), default=0
        ),
        {
            "group": GROUP,
            "version": VERSION,
            "plural": "phonepools",
            "field_selector": f"metadata.name={pool}",
        },
    )


def test_fifty_bindings_at_once_never_run_more_than_max_running(
    kubectl: Kubectl,
    tenants: tuple[Tenant, Tenant],
    pools: Callable[..., str],
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
) -> None:
    """50 bindings created concurrently against maxRunning 10: at no moment (watches of the
    pool's holders and the worker pods, and of the claims until the first suspension) more than
    10; 10 Running, 40 Queued with positions 1-40; freed slots (3 suspended, 2 deleted) go to
    the oldest waiters, and no more than 10 run meanwhile."""
    acme, _ = tenants
    ns = acme.namespace
    for i in range(50):
        fleet.add_phone(f"q-{i:02d}", group_name="grp-q")
    pool = pools("quota", phones={"groups": ["grp-q"]}, namespaces={"names": [ns]}, maxRunning=10)
    operator_factory()
    claims = MaxWatch(
        str(kubectl.kubeconfig),
        lambda api: client.CustomObjectsApi(api).list_cluster_custom_object,
        kwargs={"group": GROUP, "version": VERSION, "plural": "phoneclaims"},
    )
    # Worker pods not being deleted: a suspended binding's phone is stopped before its slot is
    # freed, and its pod, already told to stop, may take its grace period to go.
    pods = MaxWatch(
        str(kubectl.kubeconfig),
        lambda api: client.CoreV1Api(api).list_namespaced_pod,
        lambda alive: sum(1 for p in alive.values() if not p["metadata"].get("deletionTimestamp")),
        {"namespace": ns},
    )
    holders = watch_holders(kubectl, pool)
    with holders, pods:
        with claims:  # until the first waiters move up (suspended bindings keep their claim)
            names = [f"q-{i:02d}" for i in range(50)]
            with ThreadPoolExecutor(max_workers=10) as threads:
                list(threads.map(lambda n: kubectl.apply(make_binding(n, n, ns)), names))

            def settled() -> dict[str, list[dict[str, Any]]] | None:
                now = by_phase(kubectl, ns)
                positions = sorted(b["status"].get("queuePosition") for b in now.get("Queued", []))
                done = len(now.get("Running", [])) == 10 and positions == list(range(1, 41))
                return now if done else None

            def describe() -> str:
                return str({k: len(v) for k, v in by_phase(kubectl, ns).items()})

            phases = wait_for(settled, 180, message=lambda: f"10 Running, 40 Queued: {describe()}")
            queued = sorted(phases["Queued"], key=age)
            first = queued[0]
            admitted = condition(first, "Admitted")
            assert admitted is not None
            assert admitted["reason"] == "MaxRunningReached"
            assert pool in first["status"]["message"]

        running = sorted(phases["Running"], key=age)
        for body in running[:3]:
            kubectl(
                "patch",
                "pb",
                body["metadata"]["name"],
                "-n",
                ns,
                "--type=merge",
                "-p",
                '{"spec":{"suspend":true}}',
            )
        for body in running[3:5]:
            kubectl("delete", "pb", body["metadata"]["name"], "-n", ns, "--wait=false")
        promoted = {b["metadata"]["name"] for b in queued[:5]}

        def moved_up() -> bool:
            now = by_phase(kubectl, ns)
            return {b["metadata"]["name"] for b in now.get("Running", [])} >= promoted and len(
                now.get("Running", [])
            ) == 10

        wait_for(moved_up, 120, message=lambda: f"the 5 oldest waiters Running: {describe()}")
        assert len(by_phase(kubectl, ns).get("Suspended", [])) == 3

    assert holders.events > 0
    assert claims.events > 0
    assert pods.events > 0
    assert holders.largest == 10, f"the pool counted {holders.largest} holders at once"
    assert claims.largest <= 10, f"{claims.largest} claims existed at once"
    assert pods.largest <= 10, f"{pods.largest} worker pods ran at once"
    table = kubectl("get", "pp", pool).stdout.split()
    assert table[:6] == ["NAME", "PHONES", "BOUND", "RUNNING", "MAX", "NAMESPACES"]


def test_a_freed_slot_promotes_the_waiter_and_a_lowered_limit_stops_nothing(
    kubectl: Kubectl, tenancy: Tenancy
) -> None:
    """maxRunning 2 lowered to 1 with two running: both run on, a third waits in Queued
    (position 1, reason shown) until the count is below the new limit, then runs."""
    acme, _ = tenancy.tenants
    ns = acme.namespace
    for name in ("p-s1", "p-s2", "p-s3"):
        tenancy.fleet.add_phone(name, tags=["slot"])
    pool = tenancy.pools(
        "slots", phones={"tags": ["slot"]}, namespaces={"names": [ns]}, maxRunning=2
    )
    for name in ("first", "second"):
        kubectl.apply(make_binding(name, f"p-s{1 if name == 'first' else 2}", ns))
        wait_phase(kubectl, ns, name, "Running")

    kubectl("patch", "phonepool", pool, "--type=merge", "-p", '{"spec":{"maxRunning":1}}')
    kubectl.apply(make_binding("third", "p-s3", ns))

    third = wait_phase(kubectl, ns, "third", "Queued")
    assert third["status"]["queuePosition"] == 1
    assert condition(third, "Admitted")["reason"] == "MaxRunningReached"  # type: ignore[index]
    assert {b["metadata"]["name"] for b in by_phase(kubectl, ns)["Running"]} == {"first", "second"}
    kubectl("delete", "pb", "first", "-n", ns)
    wait_for(
        lambda: (
            len((kubectl.get("phonepool", pool) or {}).get("status", {}).get("holders", [])) == 1
        ),
        30,
        message="the pool to count one holder",
    )
    assert wait_phase(kubectl, ns, "third", "Queued")["status"]["queuePosition"] == 1

    kubectl("delete", "pb", "second", "-n", ns)

    running = wait_phase(kubectl, ns, "third", "Running")
    assert running["status"]["pool"] == pool
    assert "queuePosition" not in running["status"]
