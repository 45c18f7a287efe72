"""The validating webhooks of PhoneBindings and PhoneJobs: an AdmissionReview answered, and the
configuration that sends reviews to them.

Not kopf handlers: kopf runs only in the Lease holder, and the API server sends reviews to
every Ready replica behind the Service. Every replica answers them (``phonefleet_operator.
webhook`` serves this over HTTPS for the process's whole life; docs/operations.md: Admission on
every replica).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from phonefleet_operator import constants as c
from phonefleet_operator.services.replica import Replica
from phonefleet_operator.settings import OperatorSettings

__all__ = [
    "BINDING_WEBHOOK",
    "CONFIGURATION",
    "JOB_WEBHOOK",
    "Reviewer",
    "answer_review",
    "reviewers",
    "validating_webhooks",
]

#: The ValidatingWebhookConfiguration of the account "default" (the name kopf's managed mode
#: used, so an upgraded cluster keeps its object); OperatorSettings.webhook_configuration_name
#: gives each other account's its own (docs/accounts.md).
CONFIGURATION = c.GROUP
#: Each webhook's path on the server and its name (with the group) in the configuration.
BINDING_WEBHOOK = "validate-phonebinding"
JOB_WEBHOOK = "validate-phonejob"
_PLURALS = {BINDING_WEBHOOK: c.BINDING_PLURAL, JOB_WEBHOOK: c.JOB_PLURAL}

_REFUSED = 422

#: (namespace, name, spec) -> the reasons to refuse the object; empty to admit it.
Reviewer = Callable[[str, str, dict[str, Any]], Awaitable[list[str]]]


def reviewers(replica: Replica) -> dict[str, Reviewer]:
    """The review of each webhook, by its path.

    An object in a namespace this operator does not serve is admitted unreviewed: another
    account's operator serves it (its configuration's namespaceSelector keeps such reviews
    from coming here; this holds if one comes anyway).
    """
    serves = replica.scope.serves

    async def binding(namespace: str, name: str, spec: dict[str, Any]) -> list[str]:
        return await replica.admission.review(namespace, name, spec) if serves(namespace) else []

    async def job(namespace: str, _: str, spec: dict[str, Any]) -> list[str]:
        return await replica.jobs.review(namespace, spec) if serves(namespace) else []

    return {BINDING_WEBHOOK: binding, JOB_WEBHOOK: job}


def validating_webhooks(
    settings: OperatorSettings, ca_bundle: str, namespaces: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The webhooks of the configuration: reviews of creates and updates of both kinds, in
    ``namespaces`` only when given (one operator per Geelark account, docs/accounts.md).

    The same for every replica in a cluster (the Service, and the caBundle of the CA they
    share), so replicas registering it at start-up write the same object. Without a Service
    (tests, a developer's operator) the URL is this replica's own.
    """
    served = sorted(namespaces)
    # The API server sets kubernetes.io/metadata.name on every namespace.
    selector = (
        {"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": served}
        ]}}
        if served
        else {}
    )  # fmt: skip
    return [
        {
            "name": f"{webhook}.{c.GROUP}",
            # Ignore: a webhook that is down must not block every apply; the claim (and the
            # job's status) stays the guarantee (docs/operations.md).
            "failurePolicy": "Ignore",
            "sideEffects": "None",
            "matchPolicy": "Equivalent",
            "rules": [
                {
                    "apiGroups": [c.GROUP],
                    "apiVersions": [c.VERSION],
                    "resources": [plural],
                    "operations": ["CREATE", "UPDATE"],
                    "scope": "Namespaced",
                }
            ],
            "matchConditions": [_SPEC_WRITES],
            "clientConfig": {**_client_config(settings, webhook), "caBundle": ca_bundle},
            # The API server's maximum: a PhoneJob review may wait for the binding's worker
            # (PHONEFLEET_JOBS_REQUEST_TIMEOUT_SECONDS, 10 s) after its reads.
            "timeoutSeconds": 30,
            "admissionReviewVersions": ["v1"],
            **selector,
        }
        for webhook, plural in _PLURALS.items()
    ]


#: The reviews judge the spec alone (with the namespace and name, which no update changes), so
#: an update that leaves the spec as it was is not sent: the operator's finalizer writes, labels
#: and annotations cost the API server no call to the webhook. It also keeps a binding admitted
#: before (or while the webhook was down) from being refused its finalizer's removal on delete
#: because its phone is held by another binding now.
_SPEC_WRITES = {
    "name": "spec-writes-only",
    "expression": (
        "request.operation != 'UPDATE' || !has(object.spec) || !has(oldObject.spec)"
        " || object.spec != oldObject.spec"
    ),
}


def _client_config(settings: OperatorSettings, webhook: str) -> dict[str, Any]:
    if settings.webhook_service:
        return {
            "service": {
                "namespace": settings.operator_namespace,
                "name": settings.webhook_service,
                "port": 443,
                "path": f"/{webhook}",
            }
        }
    host = settings.webhook_host or settings.webhook_addr
    return {"url": f"https://{host}:{settings.webhook_port}/{webhook}"}


async def answer_review(review: Mapping[str, Any], reviewer: Reviewer) -> dict[str, Any]:
    """The AdmissionReview answering ``review``: allowed, or refused with the reasons (422).

    Raises ValueError for a body that is no AdmissionReview request (the server answers 400).
    """
    request = review.get("request")
    if review.get("kind") != "AdmissionReview" or not isinstance(request, Mapping):
        raise ValueError("not an AdmissionReview request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ValueError("the AdmissionReview request has no uid")
    body = request.get("object")
    if not isinstance(body, Mapping):
        raise ValueError("the AdmissionReview request has no object")
    metadata = body.get("metadata") or {}
    problems = await reviewer(
        str(request.get("namespace") or metadata.get("namespace") or ""),
        str(request.get("name") or metadata.get("name") or ""),
        dict(body.get("spec") or {}),
    )
    response: dict[str, Any] = {"uid": uid, "allowed": not problems}
    if problems:
        response["status"] = {"code": _REFUSED, "message": "; ".join(problems)}
    return {
        "apiVersion": str(review.get("apiVersion") or "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": response,
    }
