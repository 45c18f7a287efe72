"""Specifications of object names, label values and owner references."""

from __future__ import annotations

import re

import pytest

from phonefleet_operator.render import (
    adb_secret_name,
    claim_name,
    label_value,
    owner_reference,
    pod_name,
)

from .factories import make_binding

SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_names_follow_the_binding() -> None:
    """Pod <binding>-worker, Secret <binding>-adb, claim = the canonical phone id."""
    assert pod_name("checkout-phone") == "checkout-phone-worker"
    assert adb_secret_name("checkout-phone") == "checkout-phone-adb"
    assert claim_name("526209711930868736") == "526209711930868736"


@pytest.mark.parametrize("length", [246, 247, 253])
def test_long_binding_names_are_shortened_uniquely(length: int) -> None:
    """Names that would pass 253 characters are cut and get a digest; two such names differ."""
    first, second = "a" * length, "a" * (length - 1) + "b"

    for name in (pod_name(first), adb_secret_name(first)):
        assert len(name) <= 253
        assert SUBDOMAIN.match(name)
    assert pod_name(first) != pod_name(second)


@pytest.mark.parametrize("phone_id", ["Phone_One", "a b", "-x-", "É", "x" * 300])
def test_claim_names_are_valid_for_any_id(phone_id: str) -> None:
    """An id that is no valid object name still gives a valid, distinct claim name."""
    name = claim_name(phone_id)

    assert len(name) <= 253
    assert SUBDOMAIN.match(name)
    assert name != claim_name(phone_id + "2")


@pytest.mark.parametrize(
    "value", ["checkout-phone", "526209711930868736", "A.b_c-9", "x" * 64, "a b", "-x", "ä", ""]
)
def test_label_values_are_always_valid(value: str) -> None:
    """A valid label value is kept; anything else becomes a valid value of at most 63 characters."""
    result = label_value(value)

    assert len(result) <= 63
    assert LABEL_VALUE.match(result)
    if len(value) <= 63 and LABEL_VALUE.match(value):
        assert result == value


def test_owner_reference_makes_the_binding_controller() -> None:
    """The owner reference names the binding by uid, as controller, blocking owner deletion."""
    assert owner_reference(make_binding(name="x", uid="u-9")) == {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneBinding",
        "name": "x",
        "uid": "u-9",
        "controller": True,
        "blockOwnerDeletion": True,
    }
