"""A claim patch the real API server refuses, made by the operator's own ServiceAccount: the
gateway reports the refusal as such (403 from an admission policy, 422 from the CRD), with the
API server's words, and a binding whose releasePolicy write is refused keeps its phone.

Before, every refusal became "Kubernetes unavailable" (retried every 5 s for ever) and the pass
of a holder whose claim could not record its releasePolicy failed.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from phonefleet_operator.errors import KubernetesRefused
from phonefleet_operator.k8s import ApiCaller, load_api_client
from phonefleet_operator.k8s.gateway import KubeGateway
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.render import build_claim
from phonefleet_operator.services.claims import ClaimService, binding_ref
from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.rbac import (
    ACCOUNT_POLICY,
    SCOPE_POLICY,
    claim_policy,
    install_operator_rbac,
)
from phonefleet_testbed.waiting import wait_for

ACCOUNT = "phonefleet.dev/account"
#: A policy of this test standing in for a scope policy older than the operator: it refuses
#: every change of a claim's spec (releasePolicy included), on the claims labelled for it only.
OLDER_POLICY = "phonefleet-test-older-claim-policy"
REFUSE_LABEL = "phonefleet-test/refuse"


def binding(name: str) -> PhoneBinding:
    """A binding as the API server returns it (the claim only names it)."""
    return PhoneBinding.from_body(
        {
            "metadata": {
                "name": name,
                "namespace": "some-team",
                "uid": f"uid-{name}",
                "generation": 1,
                "creationTimestamp": "2026-11-29T10:00:00Z",
            },
            "spec": {"phoneId": name},
        }
    )


@pytest.fixture(scope="module")
def operator_kubeconfig(control_plane: ControlPlane) -> Path:
    """The CRDs and manifests/rbac (scope policy in force); the operator's kubeconfig."""
    install_crds(control_plane)
    return install_operator_rbac(control_plane)


@pytest.fixture
async def as_operator(operator_kubeconfig: Path) -> AsyncIterator[KubeGateway]:
    """The operator's real gateway, with the operator's ServiceAccount token."""
    caller = ApiCaller(load_api_client(2, str(operator_kubeconfig)), 2)
    yield KubeGateway(caller)
    caller.close()


@pytest.fixture
def claims(kubectl: Kubectl) -> Iterator[list[str]]:
    """Names of the claims a test makes: their finalizers removed and deleted after it."""
    names: list[str] = []
    yield names
    for name in names:
        kubectl("patch", "phoneclaim", name, "--type=merge", "-p",
                '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip
        kubectl("delete", "phoneclaim", name, "--ignore-not-found")


def create_claim(kubectl: Kubectl, claims: list[str], claim: dict[str, Any]) -> None:
    """Create ``claim`` as the cluster's admin."""
    kubectl("create", "-f", "-", input_text=json.dumps(claim))
    claims.append(claim["metadata"]["name"])


async def test_the_admission_policies_and_the_crd_refusals_reach_the_caller_as_refusals(
    kubectl: Kubectl, as_operator: KubeGateway, claims: list[str]
) -> None:
    """A claim of account b: moving it to account a is refused by an admission policy (403: the
    scope policy and the account policy both refuse it, and the API server names the one it
    evaluated first), handing it to another binding by the CRD (422); each raises
    KubernetesRefused with its status and the API server's reason. A patch of a claim that
    changed since it was read is False (409)."""
    create_claim(kubectl, claims, build_claim(binding("refusal-a"), "refusal-a", "s", account="b"))
    claim = await as_operator.get_claim("refusal-a")
    assert claim is not None

    with pytest.raises(KubernetesRefused) as forbidden:
        await as_operator.patch_claim(claim, {"metadata": {"labels": {ACCOUNT: "a"}}})
    assert forbidden.value.status == 403
    assert any(policy in str(forbidden.value) for policy in (SCOPE_POLICY, ACCOUNT_POLICY))

    thief = {"namespace": "some-team", "name": "thief", "uid": "uid-thief"}
    with pytest.raises(KubernetesRefused) as invalid:
        await as_operator.patch_claim(claim, {"spec": {"holder": thief}})
    assert invalid.value.status == 422
    assert "immutable" in str(invalid.value)

    stale = copy.deepcopy(claim)
    stale["metadata"]["resourceVersion"] = "1"
    assert await as_operator.patch_claim(stale, {"spec": {"releasePolicy": "Keep"}}) is False
    assert kubectl.get("phoneclaim", "refusal-a")["spec"]["holder"]["name"] == "refusal-a"  # type: ignore[index]


@pytest.fixture
def older_policy(kubectl: Kubectl) -> Iterator[None]:
    """The stand-in for an older scope policy, bound to the claims labelled REFUSE_LABEL."""
    refusal = {
        "expression": "object.spec == oldObject.spec",
        "message": "the operator may not change a PhoneClaim's spec",
        "reason": "Forbidden",
    }
    kubectl.apply(
        claim_policy(OLDER_POLICY, "UPDATE", refusal, match_labels={REFUSE_LABEL: "spec"})
    )
    yield
    kubectl("delete", "validatingadmissionpolicybinding", OLDER_POLICY, "--ignore-not-found")
    kubectl("delete", "validatingadmissionpolicy", OLDER_POLICY, "--ignore-not-found")


async def test_a_holder_whose_policy_write_is_refused_keeps_its_phone(
    kubectl: Kubectl,
    as_operator: KubeGateway,
    claims: list[str],
    older_policy: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The holder's releasePolicy changes to Keep, and an older scope policy refuses the claim
    patch (403): the pass still holds its phone, the claim keeps Stop, and the warning quotes
    the API server (never "unavailable")."""
    holder = binding("refusal-b")
    service = ClaimService(as_operator, ObservedClaims())
    manifest = build_claim(holder, "refusal-b", "s")
    manifest["metadata"]["labels"][REFUSE_LABEL] = "spec"
    claims.append("refusal-b")
    assert (await service.acquire(binding_ref(holder), "refusal-b", manifest, ())).created

    def refused() -> bool:
        answer = kubectl("patch", "phoneclaim", "refusal-b", "--type=merge", "--dry-run=server",
                         "-p", '{"spec":{"releasePolicy":"Keep"}}', check=False)  # fmt: skip
        return OLDER_POLICY in answer.stderr

    wait_for(refused, 30, message=f"ValidatingAdmissionPolicy {OLDER_POLICY} in force")
    keep = copy.deepcopy(manifest)
    keep["spec"]["releasePolicy"] = "Keep"
    with caplog.at_level(logging.WARNING, logger="phonefleet_operator.services.claims"):
        result = await service.acquire(binding_ref(holder), "refusal-b", keep, ())

    assert result.held
    assert kubectl.get("phoneclaim", "refusal-b")["spec"]["releasePolicy"] == "Stop"  # type: ignore[index]
    warnings = [
        r.getMessage()
        for r in caplog.records
        if "Could not update the releasePolicy" in r.getMessage()
    ]
    assert warnings
    assert OLDER_POLICY in warnings[0]
    assert "403" in warnings[0]
    assert "unavailable" not in warnings[0].lower()
