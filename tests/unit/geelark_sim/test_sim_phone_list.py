"""phone/list pages through the account's phones and filters them like Geelark."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from phonefleet_testbed.geelark_sim import (
    GeelarkSimulator,
    OpenApiProbe,
    SimulatorAdmin,
    seed_id,
)


def test_seeded_phones_have_padded_names_and_stable_18_digit_ids(api: OpenApiProbe) -> None:
    """Seeded phones are phone-001, phone-002, ... with deterministic 18-digit ids."""
    items = api.data("phone/list", {"page": 1, "pageSize": 100})["items"]
    assert [item["serialName"] for item in items] == [f"phone-00{n}" for n in range(1, 6)]
    assert [item["id"] for item in items] == [seed_id(n) for n in range(1, 6)]
    assert all(len(item["id"]) == 18 and item["id"].isdigit() for item in items)


def test_item_has_every_documented_field(api: OpenApiProbe) -> None:
    """A list item carries the fields the API reference documents, with their types."""
    item = api.data("phone/list", {"page": 1, "pageSize": 1})["items"][0]
    assert item["id"] == seed_id(1)
    assert item["serialNo"] == "1"
    assert set(item["group"]) == {"id", "name", "remark"}
    assert item["status"] == 2
    assert item["tags"] == []
    assert item["equipmentInfo"]["osVersion"] == "Android 12"
    assert "deviceModel" in item["equipmentInfo"]
    assert isinstance(item["proxy"], dict)
    assert item["chargeMode"] == 0
    assert item["rpaStatus"] == 0
    assert isinstance(item["remark"], str)


def test_paging_ends_with_a_short_page(api: OpenApiProbe) -> None:
    """Five phones in pages of two come as 2, 2 and a short page of 1, each reporting the total."""
    pages = [api.data("phone/list", {"page": page, "pageSize": 2}) for page in (1, 2, 3)]
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert {page["total"] for page in pages} == {5}
    assert [page["page"] for page in pages] == [1, 2, 3]
    assert {page["pageSize"] for page in pages} == {2}
    assert pages[2]["items"][0]["serialName"] == "phone-005"


def test_page_past_the_end_is_empty(api: OpenApiProbe) -> None:
    """Asking for a page after the last one answers an empty page, not an error."""
    data = api.data("phone/list", {"page": 9, "pageSize": 5})
    assert data["items"] == []
    assert data["total"] == 5


@pytest.mark.parametrize(
    "paging",
    [{"page": 1, "pageSize": 0}, {"page": 1, "pageSize": 101}, {"page": 0, "pageSize": 10}],
)
def test_paging_out_of_range_is_refused_with_40008(
    api: OpenApiProbe, paging: dict[str, int]
) -> None:
    """A page below 1 or a pageSize outside 1..100 earns code 40008."""
    assert api.call("phone/list", paging)["code"] == 40008


def test_ids_override_paging(api: OpenApiProbe) -> None:
    """With ids given, exactly those phones come back and page/pageSize are ignored."""
    ids = [seed_id(4), seed_id(2), "999999999999999999"]
    data = api.data("phone/list", {"ids": ids, "page": 0, "pageSize": 1})
    assert sorted(item["id"] for item in data["items"]) == [seed_id(2), seed_id(4)]
    assert data["total"] == 2


def test_more_than_100_ids_are_refused_with_40004(api: OpenApiProbe) -> None:
    """A list call naming more than 100 ids earns code 40004."""
    ids = [seed_id(n) for n in range(1, 102)]
    assert api.call("phone/list", {"ids": ids})["code"] == 40004


def test_serial_name_filter_is_exact(api: OpenApiProbe, admin: SimulatorAdmin) -> None:
    """serialName matches whole names only: "phone-01" finds neither phone-010 nor phone-011."""
    admin.create_phone("phone-010")
    admin.create_phone("phone-01")
    items = api.data("phone/list", {"page": 1, "pageSize": 100, "serialName": "phone-01"})["items"]
    assert [item["serialName"] for item in items] == ["phone-01"]


def test_open_status_filter_separates_phones_that_are_on(
    api: OpenApiProbe, start_phone: Callable[[str], object]
) -> None:
    """openStatus 1 lists the phones that are on, 0 the ones that are off."""
    start_phone(seed_id(3))
    on = api.data("phone/list", {"page": 1, "pageSize": 100, "openStatus": 1})["items"]
    off = api.data("phone/list", {"page": 1, "pageSize": 100, "openStatus": 0})["items"]
    assert [item["id"] for item in on] == [seed_id(3)]
    assert len(off) == 4


def test_malformed_body_is_refused_with_40004(api: OpenApiProbe) -> None:
    """A body that is not a JSON object, or a field of the wrong type, earns code 40004."""
    assert api.call("phone/list", ["not", "an", "object"])["code"] == 40004
    assert api.call("phone/list", {"page": "one"})["code"] == 40004


def test_a_thousand_phones_list_in_ten_pages(
    make_sim: Callable[..., GeelarkSimulator], make_probe: Callable[..., OpenApiProbe]
) -> None:
    """A 1000-phone account lists in ten full pages of 100 and names phone-1000 without padding."""
    probe = make_probe(make_sim(phones=1000))
    pages = [probe.data("phone/list", {"page": n, "pageSize": 100}) for n in range(1, 12)]
    assert [len(page["items"]) for page in pages] == [100] * 10 + [0]
    assert pages[9]["items"][-1]["serialName"] == "phone-1000"
    assert len({item["id"] for page in pages for item in page["items"]}) == 1000
