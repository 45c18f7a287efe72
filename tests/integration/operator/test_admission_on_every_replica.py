"""Admission on every replica: the standby, Ready behind the webhook Service, refuses exactly
what the Lease holder refuses, with a serving certificate from the CA both share."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from phonefleet_operator.handlers.admission import validating_webhooks
from phonefleet_operator.k8s import ApiCaller, load_api_client
from phonefleet_operator.k8s.webhooks import WebhookConfigurations
from phonefleet_operator.settings import OperatorSettings
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.processes import free_port
from phonefleet_testbed.rbac import OPERATOR_NAMESPACE
from phonefleet_testbed.replicas import ReplicaProcess, StartReplica
from phonefleet_testbed.scenarios import Fleet, loopback_webhook_env, make_binding, wait_phase
from phonefleet_testbed.waiting import wait_for

CONFIGURATION = "phonefleet.dev"
CA_SECRET = "phonefleet-webhook-ca"
BINDING_WEBHOOK = "validate-phonebinding"
#: Refusals in a row that must all come from the standby (not one lucky answer).
ATTEMPTS = 5


@dataclass(frozen=True)
class Replica(ReplicaProcess):
    """One `phonefleet-operator` process and its webhook's base URL."""

    webhook: str


def _tls(kubectl: Kubectl) -> ssl.SSLContext:
    """A client context trusting only the operator's webhook CA (from its Secret)."""
    secret = kubectl.get("secret", CA_SECRET, OPERATOR_NAMESPACE)
    assert secret is not None
    return ssl.create_default_context(cadata=base64.b64decode(secret["data"]["ca.crt"]).decode())


def _ready(replica: Replica, tls: ssl.SSLContext) -> int | None:
    """The HTTP status of the replica's /readyz, None while nothing answers."""
    try:
        with urllib.request.urlopen(f"{replica.webhook}/readyz", context=tls, timeout=5) as r:  # noqa: S310
            return int(r.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def _review(
    replica: Replica, tls: ssl.SSLContext, namespace: str, binding: dict[str, Any]
) -> dict[str, Any]:
    """The replica's answer to the AdmissionReview the API server sends for creating
    ``binding``."""
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "phonefleet.dev", "version": "v1alpha1", "kind": "PhoneBinding"},
            "resource": {
                "group": "phonefleet.dev",
                "version": "v1alpha1",
                "resource": "phonebindings",
            },
            "operation": "CREATE",
            "namespace": namespace,
            "name": binding["metadata"]["name"],
            "object": binding,
        },
    }
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{replica.webhook}/{BINDING_WEBHOOK}",
        data=json.dumps(review).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, context=tls, timeout=15) as answer:  # noqa: S310
        body: dict[str, Any] = json.loads(answer.read())
    assert body["response"]["uid"] == review["request"]["uid"]
    return body["response"]  # type: ignore[no-any-return]


@pytest.fixture
def start_replica(operator_replicas: StartReplica) -> Callable[[str], Replica]:
    """Start replicas with leader election and the webhook on loopback (each on its own port,
    no Service)."""

    def start(name: str) -> Replica:
        port = free_port()
        started = operator_replicas(name, **loopback_webhook_env(port))
        return Replica(started.process, started.liveness, f"https://127.0.0.1:{port}")

    return start


def _send_to(kubectl: Kubectl, replica: Replica) -> None:
    """Point the PhoneBinding webhook of the configuration at ``replica`` alone."""
    config = kubectl.get("validatingwebhookconfiguration", CONFIGURATION)
    assert config is not None
    index = next(
        i for i, hook in enumerate(config["webhooks"]) if hook["name"].startswith(BINDING_WEBHOOK)
    )
    patch = [
        {
            "op": "replace",
            "path": f"/webhooks/{index}/clientConfig/url",
            "value": f"{replica.webhook}/{BINDING_WEBHOOK}",
        }
    ]
    kubectl(
        "patch",
        "validatingwebhookconfiguration",
        CONFIGURATION,
        "--type=json",
        "-p",
        json.dumps(patch),
    )


def test_the_standby_refuses_an_alias_of_a_held_phone_while_the_holder_keeps_the_lease(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    start_replica: Callable[[str], Replica],
) -> None:
    """Two replicas, leader election on: the standby answers /readyz 200 over TLS from the
    shared CA, refuses (422, naming the holder) a binding for a held phone named by its id
    when called directly and when the API server's webhook points at it alone, five applies in
    a row, while the first replica holds the Lease throughout; the holder answers the same."""
    holder = start_replica("operator-a")
    wait_for(lambda: holder.holds_lease(kubectl), 60, message="a to hold the Lease")
    standby = start_replica("operator-b")
    wait_for(
        lambda: "Waiting as standby" in standby.process.log_tail(),
        60,
        message=lambda: f"b to wait as standby\n{standby.process.log_tail()}",
    )
    tls = _tls(kubectl)
    for replica in (holder, standby):
        wait_for(
            lambda r=replica: _ready(r, tls) == 200,  # type: ignore[misc]
            60,
            message=lambda r=replica: f"/readyz of {r.webhook}\n{r.process.log_tail()}",  # type: ignore[misc]
        )

    phone_id = fleet.add_phone("guarded")
    kubectl.apply(make_binding("owner", "guarded", namespace))
    wait_phase(kubectl, namespace, "owner", "Running")
    intruder = make_binding("intruder", phone_id, namespace)

    for replica in (standby, holder):
        answer = _review(replica, tls, namespace, intruder)
        assert answer["allowed"] is False, (replica.webhook, answer)
        assert answer["status"]["code"] == 422
        assert f"already held by binding {namespace}/owner" in answer["status"]["message"]
        # The holder's own binding may still be changed.
        assert _review(replica, tls, namespace, make_binding("owner", "guarded", namespace))[
            "allowed"
        ]

    _send_to(kubectl, standby)
    for attempt in range(ATTEMPTS):
        refused = kubectl("apply", "-f", "-", check=False, input_text=json.dumps(intruder))
        assert refused.returncode != 0, f"apply {attempt + 1} was admitted"
        assert "denied the request" in refused.stderr
        assert f"already held by binding {namespace}/owner" in refused.stderr
    assert kubectl.get("phonebinding", "intruder", namespace) is None
    assert holder.holds_lease(kubectl), "the standby answered only as the holder"
    assert "Waiting as standby" in standby.process.log_tail(200)


async def test_replicas_registering_the_same_configuration_write_it_once(
    kubectl: Kubectl, operator_credentials: Path
) -> None:
    """As the operator's ServiceAccount: the first registration creates the configuration, the
    second replica's identical one leaves it unwritten (same resourceVersion), and a new CA
    bundle replaces the old one in every webhook."""
    kubectl("delete", "validatingwebhookconfiguration", CONFIGURATION, "--ignore-not-found")
    caller = ApiCaller(load_api_client(2, str(operator_credentials)), 2)
    settings = OperatorSettings(operator_namespace=OPERATOR_NAMESPACE)
    old, new = base64.b64encode(b"old CA").decode(), base64.b64encode(b"new CA").decode()
    try:
        configurations = WebhookConfigurations(caller)
        await configurations.ensure_validating(CONFIGURATION, validating_webhooks(settings, old))
        first = kubectl.get("validatingwebhookconfiguration", CONFIGURATION)
        assert first is not None
        await configurations.ensure_validating(CONFIGURATION, validating_webhooks(settings, old))
        second = kubectl.get("validatingwebhookconfiguration", CONFIGURATION)
        assert second is not None
        assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        await configurations.ensure_validating(CONFIGURATION, validating_webhooks(settings, new))
        third = kubectl.get("validatingwebhookconfiguration", CONFIGURATION)
        assert third is not None
        assert [h["clientConfig"]["caBundle"] for h in third["webhooks"]] == [new, new]
        assert [h["clientConfig"]["service"]["name"] for h in third["webhooks"]] == [
            "phonefleet-webhook"
        ] * 2
    finally:
        caller.close()
        kubectl("delete", "validatingwebhookconfiguration", CONFIGURATION, "--ignore-not-found")


def test_a_takeover_keeps_the_same_webhook_server_answering(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    start_replica: Callable[[str], Replica],
) -> None:
    """The holder stops (SIGTERM, as in a rollout); the standby takes the Lease and starts kopf
    without starting a second webhook server: the one it served as standby still answers,
    Ready, refusing the alias of a held phone."""
    holder = start_replica("operator-a")
    wait_for(lambda: holder.holds_lease(kubectl), 60, message="a to hold the Lease")
    standby = start_replica("operator-b")
    tls = _tls(kubectl)
    wait_for(lambda: _ready(standby, tls) == 200, 60, message="b's /readyz")
    phone_id = fleet.add_phone("kept")
    kubectl.apply(make_binding("owner", "kept", namespace))
    wait_phase(kubectl, namespace, "owner", "Running")

    holder.process.stop()
    wait_for(
        lambda: standby.holds_lease(kubectl),
        60,
        message=lambda: f"b to take the Lease\n{standby.process.log_tail()}",
    )
    wait_for(
        lambda: "Activity 'configure' succeeded" in standby.process.log_tail(400),
        60,
        message=lambda: f"b's kopf to start\n{standby.process.log_tail()}",
    )
    assert _ready(standby, tls) == 200
    answer = _review(standby, tls, namespace, make_binding("intruder", phone_id, namespace))
    assert answer["allowed"] is False
    assert f"already held by binding {namespace}/owner" in answer["status"]["message"]
    log = standby.process.log_path.read_text()
    assert log.count("Serving the admission webhook") == 1
    assert "address already in use" not in log.lower()
