"""The webhooks' AdmissionReview answers and the configuration every replica registers."""

from __future__ import annotations

from typing import Any

import pytest

from phonefleet_operator.handlers.admission import (
    BINDING_WEBHOOK,
    JOB_WEBHOOK,
    answer_review,
    validating_webhooks,
)
from phonefleet_operator.settings import OperatorSettings


def make_review(**request: Any) -> dict[str, Any]:
    """An AdmissionReview as the API server sends it for creating a PhoneBinding."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "req-1",
            "operation": "CREATE",
            "namespace": "team-a",
            "name": "pb-1",
            "object": {"metadata": {"name": "pb-1"}, "spec": {"phoneId": "p-1"}},
            **request,
        },
    }


class Recorder:
    """A reviewer that refuses with ``problems`` and records what it was asked."""

    def __init__(self, *problems: str) -> None:
        self.problems = list(problems)
        self.asked: list[tuple[str, str, dict[str, Any]]] = []

    async def __call__(self, namespace: str, name: str, spec: dict[str, Any]) -> list[str]:
        self.asked.append((namespace, name, spec))
        return self.problems


async def test_an_object_without_problems_is_allowed_and_the_uid_is_echoed() -> None:
    """The answer carries the request's uid and allowed: true; the reviewer got the object."""
    reviewer = Recorder()
    answer = await answer_review(make_review(), reviewer)
    assert answer == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "req-1", "allowed": True},
    }
    assert reviewer.asked == [("team-a", "pb-1", {"phoneId": "p-1"})]


async def test_problems_refuse_with_422_and_every_reason() -> None:
    """Each problem is in the message the API server shows the user."""
    answer = await answer_review(make_review(), Recorder("phone is held", "bad flag"))
    assert answer["response"] == {
        "uid": "req-1",
        "allowed": False,
        "status": {"code": 422, "message": "phone is held; bad flag"},
    }


async def test_the_name_comes_from_the_object_when_the_request_has_none() -> None:
    """A create with generateName has no request name yet: the object's metadata is used."""
    reviewer = Recorder()
    review = make_review(name=None, namespace=None)
    review["request"]["object"]["metadata"]["namespace"] = "team-b"
    await answer_review(review, reviewer)
    assert reviewer.asked[0][:2] == ("team-b", "pb-1")


@pytest.mark.parametrize(
    "review",
    [
        pytest.param({"kind": "Pod"}, id="not a review"),
        pytest.param({"kind": "AdmissionReview"}, id="no request"),
        pytest.param(make_review(uid=""), id="no uid"),
        pytest.param(make_review(object=None), id="no object"),
    ],
)
async def test_a_body_that_is_no_review_request_raises_value_error(review: dict[str, Any]) -> None:
    """The server answers such a body 400 without asking the reviewer."""
    reviewer = Recorder()
    with pytest.raises(ValueError, match="AdmissionReview"):
        await answer_review(review, reviewer)
    assert reviewer.asked == []


def test_in_a_cluster_both_webhooks_call_the_service_with_the_shared_ca() -> None:
    """Every replica registers exactly this: Service, path per webhook, the one CA bundle."""
    settings = OperatorSettings(operator_namespace="phonefleet-system")
    hooks = validating_webhooks(settings, "Q0E=")
    assert [h["name"] for h in hooks] == [
        f"{BINDING_WEBHOOK}.phonefleet.dev",
        f"{JOB_WEBHOOK}.phonefleet.dev",
    ]
    assert [h["rules"][0]["resources"] for h in hooks] == [["phonebindings"], ["phonejobs"]]
    for hook, path in zip(hooks, (BINDING_WEBHOOK, JOB_WEBHOOK), strict=True):
        assert hook["clientConfig"] == {
            "service": {
                "namespace": "phonefleet-system",
                "name": "phonefleet-webhook",
                "port": 443,
                "path": f"/{path}",
            },
            "caBundle": "Q0E=",
        }
        assert hook["failurePolicy"] == "Ignore"
        assert hook["sideEffects"] == "None"
        assert hook["rules"][0]["apiGroups"] == ["phonefleet.dev"]
        assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
        assert hook["timeoutSeconds"] <= 30  # the API server's maximum


def test_without_a_service_the_webhooks_call_this_replicas_url() -> None:
    """Tests and a developer's operator: the host and port the server listens on."""
    settings = OperatorSettings(webhook_service="", webhook_host="127.0.0.1", webhook_port=9555)
    (binding, job) = validating_webhooks(settings, "Q0E=")
    assert binding["clientConfig"]["url"] == f"https://127.0.0.1:9555/{BINDING_WEBHOOK}"
    assert job["clientConfig"]["url"] == f"https://127.0.0.1:9555/{JOB_WEBHOOK}"


def test_the_registration_is_the_same_whichever_replica_writes_it() -> None:
    """Two replicas' settings differ only where pods differ; what they register does not."""
    one = OperatorSettings(webhook_addr="10.0.0.1")
    two = OperatorSettings(webhook_addr="10.0.0.2")
    assert validating_webhooks(one, "Q0E=") == validating_webhooks(two, "Q0E=")


def test_updates_that_keep_the_spec_are_not_sent_for_review() -> None:
    """The reviews judge the spec only: both webhooks match creates, and updates whose spec
    changed (tests/integration/operator/test_admission_spec_writes.py runs it on the API server)."""
    for hook in validating_webhooks(OperatorSettings(), "Q0E="):
        (condition,) = hook["matchConditions"]
        assert condition["expression"] == (
            "request.operation != 'UPDATE' || !has(object.spec) || !has(oldObject.spec)"
            " || object.spec != oldObject.spec"
        )
