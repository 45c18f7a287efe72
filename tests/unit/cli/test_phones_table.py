"""Specifications of `phonefleet phones list` output: holders from claims, the table, the JSON."""

from __future__ import annotations

from typing import Any

from phonefleet_operator.cli.phones import holders_by_phone, phone_records, phone_rows, render_table
from phonefleet_operator.geelark import Phone, PhoneStatus
from phonefleet_operator.models import Holder

PHONE_1 = "600000000000000001"
PHONE_2 = "600000000000000002"


def make_claim(phone_id: str, namespace: str = "team-a", name: str = "alpha") -> dict[str, Any]:
    """A PhoneClaim as the API server returns it."""
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneClaim",
        "metadata": {"name": phone_id, "uid": "c-1", "resourceVersion": "7"},
        "spec": {
            "phoneId": phone_id,
            "serialName": "phone-001",
            "holder": {"namespace": namespace, "name": name, "uid": "b-1"},
        },
    }


PHONES = [
    Phone(id=PHONE_1, serial_name="phone-001", status=PhoneStatus.RUNNING),
    Phone(id=PHONE_2, serial_name="phone-002", status=PhoneStatus.SHUT_DOWN),
]


def test_claims_give_the_holder_of_each_phone_by_canonical_id() -> None:
    """Each claim maps its phone id to its holder; malformed claims are skipped."""
    holders = holders_by_phone([make_claim(PHONE_1), {"metadata": {"name": "junk"}}])

    assert holders == {PHONE_1: Holder(namespace="team-a", name="alpha", uid="b-1")}


def test_rows_show_the_holder_none_when_free_and_dash_when_unknown() -> None:
    """HELD BY is namespace/name, <none> for a free phone, - when the cluster was not asked."""
    holders = holders_by_phone([make_claim(PHONE_1)])

    assert phone_rows(PHONES, holders) == [
        (PHONE_1, "phone-001", "Running", "team-a/alpha"),
        (PHONE_2, "phone-002", "Stopped", "<none>"),
    ]
    assert [row[3] for row in phone_rows(PHONES, None)] == ["-", "-"]


def test_statuses_use_the_words_of_a_bindings_status() -> None:
    """Geelark's power codes read as status.phone.status spells them."""
    found = [
        Phone(id=str(n), serial_name="p", status=status)
        for n, status in enumerate(PhoneStatus, start=1)
    ]

    assert {row[2] for row in phone_rows(found, None)} == {
        "Running",
        "Starting",
        "Stopped",
        "Expired",
        "Unknown",
    }


def test_the_table_aligns_columns_like_kubectl() -> None:
    """Columns are left-aligned, three spaces apart, without trailing blanks."""
    table = render_table([("ID", "NAME"), ("1", "alpha"), ("12345", "b")])

    assert table.splitlines() == ["ID      NAME", "1       alpha", "12345   b"]


def test_json_says_whether_holders_are_known_and_gives_them_whole() -> None:
    """JSON carries each holder's namespace, name and uid (null when free) and heldByKnown."""
    records = phone_records(PHONES, holders_by_phone([make_claim(PHONE_1)]))

    assert records["heldByKnown"] is True
    assert records["phones"][0] == {
        "id": PHONE_1,
        "serialName": "phone-001",
        "status": "Running",
        "heldBy": {"namespace": "team-a", "name": "alpha", "uid": "b-1"},
    }
    assert records["phones"][1]["heldBy"] is None
    assert phone_records(PHONES, None)["heldByKnown"] is False
