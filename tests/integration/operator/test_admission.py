"""The validating webhook: early, clear refusals at `kubectl apply`; the claim still decides."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.rbac import webhook_configuration
from phonefleet_testbed.scenarios import Fleet, Operator, make_binding, wait_phase
from phonefleet_testbed.waiting import wait_for

CONFIGURATION = "phonefleet.dev"


def test_apply_is_refused_for_a_phone_another_binding_holds_even_by_alias(
    kubectl: Kubectl, namespace: str, fleet: Fleet, webhook_operator: Callable[[], Operator]
) -> None:
    """The API server calls the webhook over TLS and refuses the alias, naming the holder."""
    webhook_operator()
    phone_id = fleet.add_phone("guarded")
    kubectl.apply(make_binding("owner", "guarded", namespace))
    wait_phase(kubectl, namespace, "owner", "Running")

    refused = kubectl(
        "apply",
        "-f",
        "-",
        check=False,
        input_text=json.dumps(make_binding("intruder", phone_id, namespace)),
    )
    assert refused.returncode != 0
    assert "denied the request" in refused.stderr
    assert f"already held by binding {namespace}/owner" in refused.stderr
    assert kubectl.get("phonebinding", "intruder", namespace) is None

    # The holder itself may still be updated.
    kubectl.apply(make_binding("owner", "guarded", namespace, worker={"args": ["--verbose"]}))


def test_apply_is_refused_for_worker_args_that_would_point_at_another_phone(
    kubectl: Kubectl, namespace: str, fleet: Fleet, webhook_operator: Callable[[], Operator]
) -> None:
    """A binding overriding --phone-id in its worker args is refused (invariant 3)."""
    webhook_operator()
    fleet.add_phone("honest")
    manifest = make_binding("sneaky", "honest", namespace, worker={"args": ["--phone-id", "42"]})
    refused = kubectl("apply", "-f", "-", check=False, input_text=json.dumps(manifest))
    assert refused.returncode != 0
    assert "spec.worker.args must not set --phone-id" in refused.stderr


def test_with_the_webhook_unreachable_duplicates_are_admitted_but_never_both_hold_the_phone(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
    webhook_operator: Callable[[], Operator],
) -> None:
    """failurePolicy Ignore: applies pass while the webhook is down; the claim still decides."""
    first = webhook_operator()
    operator_factory.stop(first)  # type: ignore[attr-defined]
    phone_id = fleet.add_phone("unguarded")

    kubectl.apply(make_binding("one", "unguarded", namespace))
    kubectl.apply(make_binding("two", phone_id, namespace))

    operator_factory(PHONEFLEET_WEBHOOK_ENABLED="false")

    def settled() -> list[str] | None:
        phases = sorted(
            (b.get("status") or {}).get("phase") or ""
            for b in kubectl.list("phonebindings", namespace)
        )
        return phases if phases == ["Conflict", "Running"] else None

    wait_for(settled, 60, message="one Running and one Conflict")
    assert len(kubectl.list("pods", namespace)) == 1


# ------------------------------------------------------------------ an older release's leftover


@pytest.fixture
def mutating(kubectl: Kubectl) -> Iterator[Callable[..., dict[str, Any]]]:
    """Create the MutatingWebhookConfiguration phonefleet.dev as an administrator: as kopf
    left it (no ``groups``: no webhook), or filled by someone else; deleted after the test."""

    def create(*groups: str) -> dict[str, Any]:
        manifest = webhook_configuration("MutatingWebhookConfiguration", CONFIGURATION, *groups)
        kubectl("create", "-f", "-", input_text=json.dumps(manifest))
        created = kubectl.get("mutatingwebhookconfiguration", CONFIGURATION)
        assert created is not None
        return created

    yield create
    kubectl("delete", "mutatingwebhookconfiguration", CONFIGURATION, "--ignore-not-found")


def test_the_empty_mutating_configuration_an_older_release_left_is_deleted_at_start(
    kubectl: Kubectl,
    operator_factory: Callable[..., Operator],
    webhook_env: dict[str, str],
    mutating: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Releases that served admission through kopf left an empty MutatingWebhookConfiguration
    phonefleet.dev; a replica of this release, under its own ServiceAccount, deletes it when it
    starts."""
    caplog.set_level(logging.INFO, logger="phonefleet_operator")
    mutating()  # what kopf made: the name, and no webhook
    operator_factory(**webhook_env)
    wait_for(
        lambda: kubectl.get("mutatingwebhookconfiguration", CONFIGURATION) is None,
        60,
        message="the leftover MutatingWebhookConfiguration to be deleted",
    )
    wait_for(
        lambda: f"Deleted MutatingWebhookConfiguration {CONFIGURATION}" in caplog.text,
        30,
        message="the operator's log line about the deletion",
    )


def test_a_mutating_configuration_of_that_name_with_webhooks_is_left_alone(
    kubectl: Kubectl,
    operator_factory: Callable[..., Operator],
    mutating: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A configuration of the same name that holds webhooks phonefleet did not make is someone
    else's: the operator looks at it and keeps it, unchanged (webhook on or off, it looks)."""
    caplog.set_level(logging.INFO, logger="phonefleet_operator")
    before = mutating("example.com")
    operator_factory()
    wait_for(
        lambda: f"Kept MutatingWebhookConfiguration {CONFIGURATION}" in caplog.text,
        60,
        message="the operator to have looked at the configuration",
    )
    after = kubectl.get("mutatingwebhookconfiguration", CONFIGURATION)
    assert after is not None
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["webhooks"] == before["webhooks"]
