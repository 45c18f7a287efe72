"""Specifications of claims under several Geelark accounts: an operator releases, stops and
adopts only claims of its own account, and a claim keeps its holder's current releasePolicy."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import FakeKube, FakePhones

from conftest import make_binding, step
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.render import build_claim
from phonefleet_operator.services.accounts import AccountScope
from phonefleet_operator.services.claims import ClaimService, binding_ref
from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_operator.services.reconcile import BindingReconciler

ACCOUNT = "phonefleet.dev/account"


def binding_in(namespace: str, name: str = "alpha", **spec: Any) -> PhoneBinding:
    """A binding like conftest's, in ``namespace``."""
    body = make_binding(name, **spec).to_dict()
    body["metadata"]["namespace"] = namespace
    return PhoneBinding.from_body(body)


def unlabelled(claim: dict[str, Any]) -> dict[str, Any]:
    """``claim`` as an older version made it: no account label."""
    labels = {k: v for k, v in claim["metadata"]["labels"].items() if k != ACCOUNT}
    return {**claim, "metadata": {**claim["metadata"], "labels": labels}}


@pytest.mark.parametrize(
    ("labels", "holder_namespace", "scope", "owned"),
    [
        ({ACCOUNT: "a"}, "team-a", AccountScope.of("a", ["team-a"]), True),
        ({ACCOUNT: "b"}, "team-a", AccountScope.of("a", ["team-a"]), False),
        ({ACCOUNT: "b"}, "team-b", AccountScope.of("a"), False),
        ({}, "team-a", AccountScope.of("a", ["team-a"]), True),
        ({}, "team-b", AccountScope.of("a", ["team-a"]), False),
        ({}, "team-b", AccountScope.of("a"), True),
    ],
    ids=[
        "its-account",
        "another-account-in-its-namespace",
        "another-account-cluster-wide",
        "unlabelled-holder-in-its-namespace",
        "unlabelled-holder-elsewhere",
        "unlabelled-cluster-wide",
    ],
)
def test_an_operator_owns_its_accounts_claims_and_unlabelled_ones_of_its_namespaces(
    labels: dict[str, str], holder_namespace: str, scope: AccountScope, owned: bool
) -> None:
    """The label decides; without one, the holder's namespace does (every one, unrestricted)."""
    claim = {
        "metadata": {"name": "100", "labels": labels},
        "spec": {"holder": {"namespace": holder_namespace, "name": "x", "uid": "u"}},
    }
    assert scope.owns(claim) is owned


async def test_the_sweep_leaves_another_accounts_orphaned_claim_and_phone_alone(
    kube: FakeKube, phones: FakePhones
) -> None:
    """A claim of account b whose holder is gone: a's sweep neither stops the phone (a's
    Geelark does not know it) nor deletes the claim (b's operator must stop the phone first)."""
    gone = binding_in("team-b")
    await kube.create_claim(build_claim(gone, "200", "phone-b", account="b"))
    sweeper = ClaimService(kube, power=phones, scope=AccountScope.of("a", ["team-a"]))

    assert await sweeper.release_orphans() == []

    assert "200" in kube.claims
    assert ("stop", "200") not in phones.calls


async def test_the_sweep_releases_its_own_accounts_orphan_and_stops_its_phone(
    kube: FakeKube, phones: FakePhones
) -> None:
    """Its own account's orphan goes as before: phone stopped, claim deleted."""
    gone = binding_in("team-a")
    await kube.create_claim(build_claim(gone, "100", "phone-a", account="a"))
    sweeper = ClaimService(kube, power=phones, scope=AccountScope.of("a", ["team-a"]))

    assert await sweeper.release_orphans() == ["100"]

    assert phones.calls == [("stop", "100")]
    assert not kube.claims


async def test_an_unlabelled_orphan_is_released_only_by_the_operator_of_its_namespace(
    kube: FakeKube, phones: FakePhones
) -> None:
    """A claim an older version made, whose holder is gone: the operator serving team-b leaves
    it; the one serving team-a, where its holder was, releases it as the old version would."""
    gone = binding_in("team-a")
    await kube.create_claim(unlabelled(build_claim(gone, "100", "phone-a")))

    other = ClaimService(kube, power=phones, scope=AccountScope.of("b", ["team-b"]))
    assert await other.release_orphans() == []
    assert "100" in kube.claims
    assert phones.calls == []

    own = ClaimService(kube, power=phones, scope=AccountScope.of("a", ["team-a"]))
    assert await own.release_orphans() == ["100"]
    assert phones.calls == [("stop", "100")]


async def test_an_unlabelled_claim_of_a_live_binding_is_labelled_and_kept(
    kube: FakeKube, phones: FakePhones
) -> None:
    """Upgrade: the claim stays, its phone runs on, and it gets its operator's account label
    (so that the claims watch, which selects by label, reports it); its spec is unchanged."""
    holder = binding_in("team-a")
    await kube.create_claim(unlabelled(build_claim(holder, "100", "phone-a")))
    kube.bindings[("team-a", "alpha")] = {"metadata": {"uid": holder.uid}}
    before = kube.claims["100"]["spec"]
    sweeper = ClaimService(kube, power=phones, scope=AccountScope.of("a", ["team-a"]))

    assert await sweeper.release_orphans() == []

    assert kube.claims["100"]["metadata"]["labels"][ACCOUNT] == "a"
    assert kube.claims["100"]["spec"] == before
    assert phones.calls == []


async def test_a_phone_claimed_under_another_account_is_a_conflict_never_released(
    kube: FakeKube, phones: FakePhones
) -> None:
    """Account b holds a claim on phone id 100 (ids are unique per account only) and its holder
    is gone: a binding of account a waits behind it; the claim is b's operator's to release."""
    gone = binding_in("team-b", "beta")
    await kube.create_claim(build_claim(gone, "100", "phone-b", account="b"))
    me = binding_in("team-a")
    claims = ClaimService(kube, power=phones, scope=AccountScope.of("a", ["team-a"]))

    result = await claims.acquire(
        binding_ref(me), "100", build_claim(me, "100", "phone-a", account="a"), ()
    )

    assert not result.held
    assert result.holder == "team-b/beta"
    assert kube.claims["100"]["spec"]["holder"]["uid"] == gone.uid
    assert phones.calls == []


async def test_a_changed_release_policy_reaches_the_claim_so_the_sweep_keeps_the_phone(
    kube: FakeKube, phones: FakePhones, reconciler: BindingReconciler
) -> None:
    """A binding claimed its phone with Stop, then changed to Keep: its next pass writes Keep
    into the claim, so when the binding vanishes without its own release (its finalizer removed
    by hand), the orphan sweep leaves the phone running as the binding last asked."""
    binding = make_binding()
    binding, _, _ = await step(reconciler, binding)
    assert kube.claims["100"]["spec"]["releasePolicy"] == "Stop"

    body = binding.to_dict()
    body["spec"]["releasePolicy"] = "Keep"
    body["metadata"]["generation"] = 2
    await step(reconciler, PhoneBinding.from_body(body))

    assert kube.claims["100"]["spec"]["releasePolicy"] == "Keep"
    phones.calls.clear()
    assert await ClaimService(kube, power=phones).release_orphans() == ["100"]
    assert ("stop", "100") not in phones.calls


async def test_a_claim_seen_with_a_stale_policy_is_read_before_it_is_written(
    kube: FakeKube,
) -> None:
    """The view is only a hint: the policy is written on the claim a read returned (its
    resourceVersion the precondition), and only while the binding still holds it."""
    holder = make_binding()
    observed = ObservedClaims()
    claims = ClaimService(kube, observed)
    stop = build_claim(holder, "100", "phone-a")
    assert (await claims.acquire(binding_ref(holder), "100", stop, ())).created

    keep = build_claim(holder, "100", "phone-a")
    keep["spec"]["releasePolicy"] = "Keep"
    reads = kube.reads["claim"]
    assert (await claims.acquire(binding_ref(holder), "100", keep, ())).held

    assert kube.reads["claim"] == reads + 1
    assert kube.claims["100"]["spec"]["releasePolicy"] == "Keep"
    assert observed.release_policy("100") == "Keep"
    assert (await claims.acquire(binding_ref(holder), "100", keep, ())).held
    assert kube.reads["claim"] == reads + 1  # current now: no read


@pytest.mark.parametrize("status", [403, 422], ids=["older-scope-policy", "older-crd"])
async def test_a_refused_policy_write_leaves_the_pass_holding_its_phone(
    kube: FakeKube, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    """An API server with an older CRD (422) or scope policy (403) refuses the write: the
    binding still holds its phone, the operator says what the API server said and what to
    apply, and the next pass tries again."""
    holder = make_binding()
    claims = ClaimService(kube, ObservedClaims())
    await claims.acquire(binding_ref(holder), "100", build_claim(holder, "100", "phone-a"), ())
    kube.refuse_claim_patches = status
    keep = build_claim(holder, "100", "phone-a")
    keep["spec"]["releasePolicy"] = "Keep"

    for _ in range(2):
        assert (await claims.acquire(binding_ref(holder), "100", keep, ())).held

    assert kube.claims["100"]["spec"]["releasePolicy"] == "Stop"
    refused = [r for r in caplog.records if "Could not update the releasePolicy" in r.message]
    assert len(refused) == 2
    assert f"refused (Kubernetes refused to patch phoneclaims 100: {status} " in (
        refused[0].message
    )
    assert "Apply this version's CRDs" in refused[0].message
    assert "Unavailable" not in refused[0].message


async def test_a_refused_account_label_keeps_the_sweep_going_and_the_orphan_until_labelled(
    kube: FakeKube, phones: FakePhones, caplog: pytest.LogCaptureFixture
) -> None:
    """An older scope policy refuses the account label (403). The live binding's unlabelled
    claim is kept as it is; the orphan listed after it still has its phone stopped, but is
    released only as its account (the account policy refuses writes of an unlabelled claim but
    the one labelling it), so it is kept too. Once labelling is allowed, the next sweep labels
    the first and releases the orphan."""
    holder = binding_in("team-a")
    await kube.create_claim(unlabelled(build_claim(holder, "100", "phone-a")))
    kube.bindings[("team-a", "alpha")] = {"metadata": {"uid": holder.uid}}
    gone = binding_in("team-a", "beta")
    await kube.create_claim(unlabelled(build_claim(gone, "101", "phone-b")))
    kube.refuse_claim_patches = 403
    sweeper = ClaimService(kube, power=phones, scope=AccountScope.of("a", ["team-a"]))

    assert await sweeper.release_orphans() == []

    assert phones.calls == [("stop", "101")]
    assert ACCOUNT not in kube.claims["100"]["metadata"]["labels"]
    assert "101" in kube.claims
    for phone_id in ("100", "101"):
        assert any(f"Could not label PhoneClaim {phone_id}" in r.message for r in caplog.records)

    kube.refuse_claim_patches = 0
    assert await sweeper.release_orphans() == ["101"]
    assert kube.claims["100"]["metadata"]["labels"][ACCOUNT] == "a"


async def test_an_orphan_whose_release_is_refused_is_kept_and_the_refusal_named(
    kube: FakeKube, phones: FakePhones, caplog: pytest.LogCaptureFixture
) -> None:
    """RBAC without ``patch`` on PhoneClaims refuses the finalizer's removal: the orphan stays
    for the next sweep, and the warning names the refusal, not a failed stop."""
    gone = binding_in("team-a")
    await kube.create_claim(build_claim(gone, "100", "phone-a", account="a"))
    kube.refuse_finalizer_drops = True
    sweeper = ClaimService(kube, power=phones, scope=AccountScope.of("a", ["team-a"]))

    assert await sweeper.release_orphans() == []

    assert "100" in kube.claims
    kept = [r.getMessage() for r in caplog.records if "Kept PhoneClaim 100" in r.getMessage()]
    assert len(kept) == 1
    assert "the API server refused to let it go" in kept[0]
    assert 'cannot patch resource "phoneclaims"' in kept[0]
