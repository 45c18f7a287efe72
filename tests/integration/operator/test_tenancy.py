"""Tenancy on the real control plane: PhonePools decide who may bind which phone, with which
images; refusals tell another tenant nothing; a changed pool is judged again."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import Fleet, Operator, condition, make_binding, wait_phase
from phonefleet_testbed.tenants import CLIENT_LABEL, Tenancy, Tenant
from phonefleet_testbed.waiting import wait_for

ANOTHER = "a binding in another namespace"


def for_client(client: str) -> dict[str, Any]:
    """A pool's namespaces: those labelled as this client's."""
    return {"selector": {"matchLabels": {CLIENT_LABEL: client}}}


def events(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    """Every Event in the namespace, as the given user reads them."""
    items: list[dict[str, Any]] = json.loads(
        kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    )["items"]
    return items


def reasons(kubectl: Kubectl, namespace: str, name: str) -> set[str]:
    """Reasons of the Events of one binding."""
    return {e["reason"] for e in events(kubectl, namespace) if e["involvedObject"]["name"] == name}


def everything_readable(tenant: Tenant) -> str:
    """All a tenant's user can read about bindings: their bodies and every Event, as text."""
    bindings = tenant.kubectl("get", "phonebindings", "-n", tenant.namespace, "-o", "json").stdout
    return bindings + json.dumps(events(tenant.kubectl, tenant.namespace))


def test_without_any_pool_tenancy_is_off(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator: Operator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Today's behaviour: any namespace binds any phone; the operator says once that it is off."""
    fleet.add_phone("free-for-all", group_name="anyone")
    kubectl.apply(make_binding("free", "free-for-all", namespace))

    body = wait_phase(kubectl, namespace, "free", "Running")

    assert "pool" not in body["status"]
    assert condition(body, "Admitted") is None
    assert caplog.text.count("Tenancy is off") == 1


def test_with_the_webhook_on_tenancy_off_is_still_said_once(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    webhook_operator: Callable[[], Operator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The webhook judges each binding by a Tenancy of its own: only the reconcile pass's,
    which owns the decision, says that tenancy is off (before, both did)."""
    webhook_operator()
    fleet.add_phone("free-reviewed", group_name="anyone")
    kubectl.apply(make_binding("free", "free-reviewed", namespace))  # reviewed by the webhook

    wait_phase(kubectl, namespace, "free", "Running")

    assert caplog.text.count("Tenancy is off") == 1


def test_a_tenant_cannot_bind_another_tenants_phone_nor_learn_that_it_exists(
    kubectl: Kubectl, tenancy: Tenancy
) -> None:
    """globex asking for acme's phone gets exactly the answer it gets for a phone that does not
    exist; no claim is taken; nothing globex can read names the phone's id, pool or holder."""
    acme, globex = tenancy.tenants
    phone_id = tenancy.fleet.add_phone("p-7001", group_name="grp-a")
    pool = tenancy.pools("pool", phones={"groups": ["grp-a"]}, namespaces=for_client("acme"))
    acme.kubectl.apply(make_binding("mine", "p-7001", acme.namespace))
    mine = wait_phase(kubectl, acme.namespace, "mine", "Running")
    assert mine["status"]["pool"] == pool

    globex.kubectl.apply(make_binding("theirs", "p-7001", globex.namespace))
    globex.kubectl.apply(make_binding("ghost", "p-9999", globex.namespace))
    theirs = wait_phase(kubectl, globex.namespace, "theirs", "Forbidden")
    ghost = wait_phase(kubectl, globex.namespace, "ghost", "Forbidden")

    def told(body: dict[str, Any], ref: str) -> Any:
        status = body["status"]
        return (
            status["message"].replace(ref, "REF"),
            [
                (c["type"], c["status"], c["reason"], c["message"].replace(ref, "REF"))
                for c in status["conditions"]
                if c["type"] != "GeelarkReachable"
            ],
            sorted(k for k in status if k not in ("conditions", "observedGeneration")),
        )

    assert told(theirs, "p-7001") == told(ghost, "p-9999")
    assert condition(theirs, "Admitted")["reason"] == "PhoneNotAvailable"  # type: ignore[index]
    claim = kubectl.get("phoneclaim", phone_id)
    assert claim is not None
    assert claim["spec"]["holder"]["name"] == "mine"
    assert kubectl.get("pod", "theirs-worker", globex.namespace) is None
    wait_for(
        lambda: "PhoneNotAvailable" in reasons(globex.kubectl, globex.namespace, "theirs"),
        30,
        message="the Forbidden Event",
    )
    readable = everything_readable(globex)
    for secret in (phone_id, pool, "grp-a", acme.namespace, "mine"):
        assert secret not in readable, f"globex can read {secret!r}"
    for kind in ("phonepools", "phoneclaims"):
        denied = globex.kubectl("get", kind, check=False)
        assert denied.returncode != 0
        assert "forbidden" in denied.stderr.lower()


def test_a_conflict_with_another_namespace_does_not_name_the_holder(
    kubectl: Kubectl, tenancy: Tenancy
) -> None:
    """A phone both tenants may use, held by acme: globex waits in Conflict told only that "a
    binding in another namespace" holds it (status, conditions, Events)."""
    acme, globex = tenancy.tenants
    tenancy.fleet.add_phone("p-shared", group_name="grp-shared")
    tenancy.pools(
        "shared",
        phones={"groups": ["grp-shared"]},
        namespaces={"names": [acme.namespace, globex.namespace]},
    )
    acme.kubectl.apply(make_binding("holder-x", "p-shared", acme.namespace))
    wait_phase(kubectl, acme.namespace, "holder-x", "Running")

    globex.kubectl.apply(make_binding("waiter", "p-shared", globex.namespace))
    waiter = wait_phase(kubectl, globex.namespace, "waiter", "Conflict")

    assert waiter["status"]["conflictWith"] == ANOTHER
    assert f"held by {ANOTHER}" in waiter["status"]["message"]
    wait_for(
        lambda: "Conflict" in reasons(globex.kubectl, globex.namespace, "waiter"),
        30,
        message="the Conflict Event",
    )
    readable = everything_readable(globex)
    assert acme.namespace not in readable
    assert "holder-x" not in readable


def test_an_image_override_outside_the_pools_patterns_is_forbidden_and_gets_no_pod(
    kubectl: Kubectl, tenancy: Tenancy
) -> None:
    """No pod (so no ADB data) for an image the pool does not allow; an allowed one runs."""
    acme, _ = tenancy.tenants
    tenancy.fleet.add_phone("p-img-1", tags=["ig"])
    tenancy.fleet.add_phone("p-img-2", tags=["ig"])
    tenancy.pools(
        "images",
        phones={"tags": ["ig"]},
        namespaces=for_client("acme"),
        images={"worker": ["registry.example/acme/*"], "appium": ["appium/appium:*"]},
    )
    refused = make_binding(
        "rogue", "p-img-1", acme.namespace, worker={"image": "evil.example/bot:1"}
    )
    allowed = make_binding(
        "vetted", "p-img-2", acme.namespace, worker={"image": "registry.example/acme/bot:1"}
    )
    acme.kubectl.apply(refused)
    acme.kubectl.apply(allowed)

    rogue = wait_phase(kubectl, acme.namespace, "rogue", "Forbidden")
    wait_phase(kubectl, acme.namespace, "vetted", "Running")

    admitted = condition(rogue, "Admitted")
    assert admitted is not None
    assert admitted["reason"] == "ImageNotAllowed"
    assert "evil.example/bot:1" in admitted["message"]
    assert kubectl.get("pod", "rogue-worker", acme.namespace) is None
    pod = kubectl.get("pod", "vetted-worker", acme.namespace)
    assert pod is not None
    images = {c["name"]: c["image"] for c in pod["spec"]["containers"]}
    assert images["worker"] == "registry.example/acme/bot:1"
    assert [
        c["spec"]["holder"]["name"]
        for c in kubectl.list("phoneclaims")
        if c["spec"]["holder"]["namespace"] == acme.namespace
    ] == ["vetted"]


def test_a_revoked_namespace_keeps_its_running_worker_unless_the_pool_says_stop(
    kubectl: Kubectl, tenancy: Tenancy
) -> None:
    """Losing access: a Warning Event and PoolAccessRevoked, the worker runs on, new bindings
    are Forbidden; once the pool sets onRevoke: Stop, the worker goes and the phone is freed."""
    acme, _ = tenancy.tenants
    phone_id = tenancy.fleet.add_phone("p-rev-1", group_name="grp-rev")
    tenancy.fleet.add_phone("p-rev-2", group_name="grp-rev")
    pool = tenancy.pools("revocable", phones={"groups": ["grp-rev"]}, namespaces=for_client("acme"))
    acme.kubectl.apply(make_binding("veteran", "p-rev-1", acme.namespace))
    wait_phase(kubectl, acme.namespace, "veteran", "Running")

    kubectl("label", "namespace", acme.namespace, f"{CLIENT_LABEL}=former", "--overwrite")

    def revoked() -> dict[str, Any] | None:
        body = kubectl.get("phonebinding", "veteran", acme.namespace)
        found = condition(body, "PoolAccessRevoked") if body else None
        return body if found and found["status"] == "True" else None

    body = wait_for(revoked, 30, message="PoolAccessRevoked on the running binding")
    assert body["status"]["phase"] == "Running"
    assert kubectl.get("pod", "veteran-worker", acme.namespace) is not None
    wait_for(
        lambda: "PoolAccessRevoked" in reasons(kubectl, acme.namespace, "veteran"),
        30,
        message="the PoolAccessRevoked Warning Event",
    )
    acme.kubectl.apply(make_binding("newcomer", "p-rev-2", acme.namespace))
    wait_phase(kubectl, acme.namespace, "newcomer", "Forbidden")

    kubectl("patch", "phonepool", pool, "--type=merge", "-p", '{"spec":{"onRevoke":"Stop"}}')

    stopped = wait_phase(kubectl, acme.namespace, "veteran", "Forbidden")
    assert condition(stopped, "Admitted")["reason"] == "PhoneNotAvailable"  # type: ignore[index]
    wait_for(
        lambda: kubectl.get("pod", "veteran-worker", acme.namespace) is None,
        30,
        message="the revoked worker pod to go",
    )
    wait_for(lambda: kubectl.get("phoneclaim", phone_id) is None, 30, message="the claim to go")
    wait_for(lambda: phone_id not in tenancy.fleet.running(), 30, message="the phone to be stopped")


def test_a_phone_in_two_pools_is_bound_by_nobody_and_reported_on_both(
    kubectl: Kubectl, tenancy: Tenancy, caplog: pytest.LogCaptureFixture
) -> None:
    """No silent precedence: both pools report the phone, the log says so, and the binding waits
    in Forbidden (PoolsOverlap) until one pool lets go of the phone."""
    acme, _ = tenancy.tenants
    phone_id = tenancy.fleet.add_phone("p-both", group_name="grp-o", tags=["tag-o"])
    by_group = tenancy.pools(
        "by-group", phones={"groups": ["grp-o"]}, namespaces=for_client("acme")
    )
    by_tag = tenancy.pools("by-tag", phones={"tags": ["tag-o"]}, namespaces=for_client("acme"))
    acme.kubectl.apply(make_binding("torn", "p-both", acme.namespace))

    torn = wait_phase(kubectl, acme.namespace, "torn", "Forbidden")
    assert condition(torn, "Admitted")["reason"] == "PoolsOverlap"  # type: ignore[index]
    assert kubectl.get("phoneclaim", phone_id) is None
    for pool in (by_group, by_tag):

        def reported(name: str = pool) -> dict[str, Any] | None:
            body = kubectl.get("phonepool", name)
            status = (body or {}).get("status") or {}
            return body if phone_id in status.get("overlapping", []) else None

        body = wait_for(reported, 60, message=f"{pool} to report the overlap")
        overlap = condition(body, "Overlapping")
        assert overlap is not None
        assert overlap["status"] == "True"
    wait_for(lambda: "overlaps PhonePool" in caplog.text, 30, message="the log line")

    kubectl("delete", "phonepool", by_tag)

    fixed = wait_phase(kubectl, acme.namespace, "torn", "Running")
    assert fixed["status"]["pool"] == by_group


def test_with_pools_required_a_phone_in_no_pool_cannot_be_bound(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PHONEFLEET_REQUIRE_POOLS=true and no pool at all: nothing can be bound."""
    fleet.add_phone("p-orphan", group_name="nobodys")
    operator_factory(PHONEFLEET_REQUIRE_POOLS="true")
    kubectl.apply(make_binding("hopeful", "p-orphan", namespace))

    body = wait_phase(kubectl, namespace, "hopeful", "Forbidden")

    assert condition(body, "Admitted")["reason"] == "PhoneNotAvailable"  # type: ignore[index]
    assert "phones in no pool cannot be bound" in caplog.text


def test_the_webhook_refuses_forbidden_bindings_and_names_no_other_tenant(
    kubectl: Kubectl,
    tenants: tuple[Tenant, Tenant],
    pools: Callable[..., str],
    fleet: Fleet,
    webhook_operator: Callable[[], Operator],
) -> None:
    """At apply time: another tenant's phone and a missing phone are refused alike; a phone
    held in another namespace is refused without naming the holder."""
    acme, globex = tenants
    fleet.add_phone("p-wh-a", group_name="grp-wh")
    fleet.add_phone("p-wh-s", group_name="grp-wh-shared")
    pools("wh", phones={"groups": ["grp-wh"]}, namespaces=for_client("acme"))
    pools(
        "wh-shared",
        phones={"groups": ["grp-wh-shared"]},
        namespaces={"names": [acme.namespace, globex.namespace]},
    )
    webhook_operator()
    acme.kubectl.apply(make_binding("owner", "p-wh-s", acme.namespace))
    wait_phase(kubectl, acme.namespace, "owner", "Running")

    def refusal(name: str, ref: str) -> str:
        result = globex.kubectl(
            "create",
            "-f",
            "-",
            check=False,
            input_text=json.dumps(make_binding(name, ref, globex.namespace)),
        )
        assert result.returncode != 0, f"{name} was admitted"
        return result.stderr

    foreign, missing = refusal("foreign", "p-wh-a"), refusal("missing", "p-wh-none")
    held = refusal("second", "p-wh-s")

    assert foreign.replace("p-wh-a", "REF") == missing.replace("p-wh-none", "REF")
    assert "is available to namespace" in foreign
    assert f"already held by {ANOTHER}" in held
    assert acme.namespace not in held
    assert "owner" not in held


@pytest.mark.usefixtures("crds")
def test_the_api_server_refuses_a_pool_that_selects_no_phone(kubectl: Kubectl) -> None:
    """The CRD's CEL rule: a pool names at least one group, tag or serialName pattern."""
    empty = {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhonePool",
        "metadata": {"name": "selects-nothing"},
        "spec": {"phones": {"groups": []}, "namespaces": {"names": ["x"]}},
    }

    refused = kubectl(
        "apply", "--dry-run=server", "-f", "-", input_text=json.dumps(empty), check=False
    )

    assert refused.returncode != 0
    assert "a pool names at least one group, tag or serialName pattern" in refused.stderr
