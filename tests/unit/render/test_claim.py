"""Specifications of the PhoneClaim rendered for a binding."""

from __future__ import annotations

from phonefleet_operator.models import PhoneClaim
from phonefleet_operator.render import build_claim

from .factories import PHONE_ID, assert_matches_golden, make_binding


def test_claim_matches_its_golden_file() -> None:
    """The claim of a binding on PHONE_ID is golden/phone-claim.yaml."""
    assert_matches_golden("phone-claim", build_claim(make_binding(), PHONE_ID, "checkout-01"))


def test_claim_is_named_after_the_phone_and_names_its_holder() -> None:
    """A cluster-scoped claim named after the canonical id, holding namespace, name and uid, and
    the holder's releasePolicy (which the orphan sweep applies)."""
    claim = build_claim(make_binding(), PHONE_ID, "checkout-01")

    assert claim["apiVersion"] == "phonefleet.dev/v1alpha1"
    assert claim["kind"] == "PhoneClaim"
    assert claim["metadata"]["name"] == PHONE_ID
    assert "namespace" not in claim["metadata"]
    assert "ownerReferences" not in claim["metadata"]
    assert claim["spec"] == {
        "phoneId": PHONE_ID,
        "serialName": "checkout-01",
        "holder": {
            "namespace": "team-a",
            "name": "checkout-phone",
            "uid": "7f9c6a8e-0d2b-4a51-9d8e-3c1f2b4a5d6e",
        },
        "releasePolicy": "Stop",
    }


def test_claim_labels_let_kubectl_find_a_bindings_claims() -> None:
    """Labels carry the binding's namespace and name and the phone id."""
    labels = build_claim(make_binding(), PHONE_ID, "checkout-01")["metadata"]["labels"]

    assert labels["phonefleet.dev/binding-namespace"] == "team-a"
    assert labels["phonefleet.dev/binding"] == "checkout-phone"
    assert labels["phonefleet.dev/phone-id"] == PHONE_ID
    assert labels["app.kubernetes.io/component"] == "phone-claim"


def test_claim_reads_back_as_a_phone_claim() -> None:
    """The rendered object parses as a PhoneClaim, so it passes the CRD that matches the model."""
    claim = build_claim(make_binding(), PHONE_ID, "checkout-01")

    parsed = PhoneClaim.from_body({**claim, "metadata": {**claim["metadata"], "uid": "c-1"}})

    assert parsed.spec.holder.namespaced_name == "team-a/checkout-phone"


def test_claim_rendering_is_pure() -> None:
    """Equal inputs give equal claims."""
    first = build_claim(make_binding(), PHONE_ID, "checkout-01")

    assert build_claim(make_binding(), PHONE_ID, "checkout-01") == first


def test_claim_carries_the_account_of_the_operator_that_made_it() -> None:
    """Label phonefleet.dev/account: the operator of that account alone sweeps the claim."""
    labels = build_claim(make_binding(), PHONE_ID, "checkout-01", account="team-b")["metadata"][
        "labels"
    ]

    assert labels["phonefleet.dev/account"] == "team-b"
