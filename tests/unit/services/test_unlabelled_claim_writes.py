"""Claims made before claims carried their account, under the account policy: an operator may
write an unlabelled claim only by labelling it with its own account, alone (no other change),
and never delete it unlabelled. The operator labels first, then changes or releases.

The fake API server here adds that rule of ``manifests/rbac/operator_account_policy.yaml`` to
the unit fake (its words as the real policy's), so an operator that wrote an unlabelled claim
any other way would be refused as on a real cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from fakes import FakeKube, FakePhones

from conftest import make_binding
from phonefleet_operator.errors import KubernetesRefused
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.render import build_claim
from phonefleet_operator.services.accounts import AccountScope, account_of
from phonefleet_operator.services.claims import ClaimService, binding_ref

ACCOUNT = "phonefleet.dev/account"


def refusal(phone_id: str, what: str) -> KubernetesRefused:
    """The policy's denial as the real gateway raises it."""
    return KubernetesRefused(
        f'Kubernetes refused to {what}: 403 phoneclaims.phonefleet.dev "{phone_id}" is '
        "forbidden: ValidatingAdmissionPolicy 'phonefleet-operator-account' with binding "
        f"'phonefleet-operator-account' denied request: PhoneClaim {phone_id} has no account",
        status=403,
    )


@dataclass
class PolicyKube(FakeKube):
    """FakeKube behind the account policy for an operator of account ``account``."""

    account: str = "a"
    writes: list[tuple[str, str]] = field(default_factory=list)

    def _unlabelled(self, phone_id: str) -> bool:
        stored = self.claims.get(phone_id)
        return stored is not None and account_of(stored) is None

    async def patch_claim(self, claim: Mapping[str, Any], changes: Mapping[str, Any]) -> bool:
        phone_id = claim["metadata"]["name"]
        if self._unlabelled(phone_id):
            labels = (changes.get("metadata") or {}).get("labels") or {}
            alone = set(changes) == {"metadata"} and set(changes["metadata"]) == {"labels"}
            if labels.get(ACCOUNT) != self.account or not alone:
                raise refusal(phone_id, f"patch phoneclaims {phone_id}")
        self.writes.append(("patch", phone_id))
        return await super().patch_claim(claim, changes)

    async def drop_claim_finalizer(self, claim: Mapping[str, Any]) -> bool:
        phone_id = claim["metadata"]["name"]
        if self._unlabelled(phone_id):
            raise refusal(phone_id, f"patch phoneclaims {phone_id}")
        self.writes.append(("drop-finalizer", phone_id))
        return await super().drop_claim_finalizer(claim)

    async def delete_claim(self, phone_id: str, uid: str) -> bool:
        if self._unlabelled(phone_id):
            raise refusal(phone_id, f"delete phoneclaims {phone_id}")
        self.writes.append(("delete", phone_id))
        return await super().delete_claim(phone_id, uid)


def binding_in(namespace: str, name: str) -> PhoneBinding:
    """A binding like conftest's, in ``namespace``."""
    body = make_binding(name).to_dict()
    body["metadata"]["namespace"] = namespace
    return PhoneBinding.from_body(body)


def older(claim: dict[str, Any]) -> dict[str, Any]:
    """``claim`` as a version before accounts made it: no account label."""
    labels = {k: v for k, v in claim["metadata"]["labels"].items() if k != ACCOUNT}
    return {**claim, "metadata": {**claim["metadata"], "labels": labels}}


@pytest.fixture
def policed() -> PolicyKube:
    """The account policy's API server, for an operator of account a."""
    return PolicyKube()


async def test_an_unlabelled_orphan_is_labelled_then_stopped_and_released(
    policed: PolicyKube, phones: FakePhones
) -> None:
    """Its holder is gone: the sweep stops its phone, labels the claim with account a, then
    removes the finalizer and deletes it; each write is one the policy allows."""
    gone = binding_in("team-a", "gone")
    await policed.create_claim(older(build_claim(gone, "100", "phone-a")))
    sweeper = ClaimService(policed, power=phones, scope=AccountScope.of("a", ["team-a"]))

    assert await sweeper.release_orphans() == ["100"]

    assert phones.calls == [("stop", "100")]
    assert "100" not in policed.claims
    assert policed.writes == [("patch", "100"), ("drop-finalizer", "100"), ("delete", "100")]


async def test_a_holders_unlabelled_claim_is_labelled_before_its_release_policy_changes(
    policed: PolicyKube,
) -> None:
    """A binding holding an unlabelled claim switches to Keep: its first pass only labels the
    claim (the policy allows no other change of an unlabelled claim), its next writes Keep."""
    holder = binding_in("team-a", "alpha")
    await policed.create_claim(older(build_claim(holder, "100", "phone-a")))
    claims = ClaimService(policed, scope=AccountScope.of("a", ["team-a"]))
    keep = build_claim(holder, "100", "phone-a")
    keep["spec"]["releasePolicy"] = "Keep"

    assert (await claims.acquire(binding_ref(holder), "100", keep, ())).held
    assert policed.claims["100"]["metadata"]["labels"][ACCOUNT] == "a"
    assert policed.claims["100"]["spec"]["releasePolicy"] == "Stop"

    assert (await claims.acquire(binding_ref(holder), "100", keep, ())).held
    assert policed.claims["100"]["spec"]["releasePolicy"] == "Keep"
    assert policed.writes == [("patch", "100"), ("patch", "100")]


async def test_a_binding_takes_over_an_unlabelled_orphan_by_labelling_it_first(
    policed: PolicyKube, phones: FakePhones
) -> None:
    """The phone's unlabelled claim names a holder that no longer exists: a new binding of a
    served namespace labels it, releases it (taking over keeps the phone on) and claims the
    phone itself."""
    gone = binding_in("team-a", "gone")
    await policed.create_claim(older(build_claim(gone, "100", "phone-a")))
    me = binding_in("team-a", "alpha")
    claims = ClaimService(policed, power=phones, scope=AccountScope.of("a", ["team-a"]))

    result = await claims.acquire(
        binding_ref(me), "100", build_claim(me, "100", "phone-a", account="a"), ()
    )

    assert result.created
    assert policed.claims["100"]["spec"]["holder"]["uid"] == me.uid
    assert policed.claims["100"]["metadata"]["labels"][ACCOUNT] == "a"
    assert policed.writes[:2] == [("patch", "100"), ("drop-finalizer", "100")]
    assert phones.calls == []
