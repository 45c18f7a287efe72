"""Specifications of the assignment checks: duplicates, aliases, missing phones (seed's words)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from phonefleet_operator.errors import (
    AmbiguousPhone,
    GeelarkAuthError,
    GeelarkUnavailable,
    PhoneNotFound,
)
from phonefleet_operator.geelark import Phone
from phonefleet_operator.services.assignments import (
    Assignment,
    Problem,
    check_with_geelark,
    find_duplicates,
    format_refs,
)

PHONE_1 = "600000000000000001"
PHONE_2 = "600000000000000002"


class FakeDirectory:
    """An in-memory Geelark directory: resolves ids and serialNames, counts lookups per ref."""

    def __init__(self, phones: Mapping[str, str], *, fault: Exception | None = None) -> None:
        self._phones = [Phone(id=i, serial_name=n) for i, n in phones.items()]
        self._fault = fault
        self.asked: list[str] = []

    async def resolve(self, reference: str) -> Phone:
        self.asked.append(reference)
        if self._fault is not None:
            raise self._fault
        by_id = [p for p in self._phones if p.id == reference]
        by_name = [p for p in self._phones if p.serial_name == reference]
        if by_id:
            return by_id[0]
        if len(by_name) > 1:
            raise AmbiguousPhone(f"serialName {reference!r} matches {len(by_name)} phones")
        if not by_name:
            raise PhoneNotFound(f"Geelark has no phone {reference!r}")
        return by_name[0]


def make_assignments(*refs: str) -> list[Assignment]:
    """One assignment per ref, from sources a.yaml:0, a.yaml:1, ..."""
    return [Assignment(f"a.yaml:{n}", ref) for n, ref in enumerate(refs)]


def test_a_set_of_refs_prints_like_the_seeds_set_but_sorted() -> None:
    """Refs print as the seed's set does, sorted and deduplicated so the output is stable."""
    assert format_refs(["b", "a", "b"]) == "{'a', 'b'}"


def test_a_problem_line_is_its_source_then_its_message() -> None:
    """A problem prints as `source: message`, or the message alone for the whole check."""
    assert str(Problem("a.yaml:0 (ns/x)", "wrong")) == "a.yaml:0 (ns/x): wrong"
    assert str(Problem(None, "wrong")) == "wrong"


def test_distinct_refs_are_no_duplicates() -> None:
    """Bindings of different phoneIds raise no problem offline."""
    assert find_duplicates(make_assignments("phone-001", "phone-002", PHONE_1)) == []


def test_a_ref_written_twice_is_a_duplicate_naming_the_first() -> None:
    """The second binding of the same phoneId gets the seed's duplicate line, naming the first."""
    problems = find_duplicates(make_assignments("phone-001", "phone-002", "phone-001"))

    assert [str(p) for p in problems] == [
        "a.yaml:2: Duplicate phone assignments: {'phone-001'} (also assigned by a.yaml:0)"
    ]


def test_every_later_copy_of_a_ref_is_reported_once() -> None:
    """Three bindings of one ref give two problems, each pointing at the first."""
    problems = find_duplicates(make_assignments("x", "x", "x"))

    assert [p.source for p in problems] == ["a.yaml:1", "a.yaml:2"]
    assert all("also assigned by a.yaml:0" in p.message for p in problems)


async def test_known_phones_by_id_or_serial_name_raise_nothing() -> None:
    """Bindings of distinct existing phones, by id or serialName, pass the Geelark check."""
    directory = FakeDirectory({PHONE_1: "phone-001", PHONE_2: "phone-002"})

    assert await check_with_geelark(make_assignments(PHONE_1, "phone-002"), directory) == []


async def test_a_phone_geelark_lacks_is_not_found_in_the_seeds_words() -> None:
    """A phoneId Geelark has no phone for reads "Phone 'X' not found in Geelark"."""
    directory = FakeDirectory({PHONE_1: "phone-001"})

    problems = await check_with_geelark(make_assignments("phone-001", "phone-404"), directory)

    assert [str(p) for p in problems] == ["a.yaml:1: Phone 'phone-404' not found in Geelark"]


async def test_an_id_and_a_serial_name_of_one_phone_are_an_alias_duplicate() -> None:
    """An id in one binding and the same phone's serialName in another are a duplicate."""
    directory = FakeDirectory({PHONE_1: "phone-001"})

    problems = await check_with_geelark(make_assignments("phone-001", PHONE_1), directory)

    assert [str(p) for p in problems] == [
        f"a.yaml:1: Duplicate phone assignments: {{'{PHONE_1}', 'phone-001'}} "
        f"(phone {PHONE_1}, also assigned by a.yaml:0)"
    ]


async def test_the_same_ref_twice_is_left_to_the_offline_check() -> None:
    """A ref written twice is not reported again as an alias, but a third spelling is."""
    directory = FakeDirectory({PHONE_1: "phone-001"})

    problems = await check_with_geelark(
        make_assignments("phone-001", "phone-001", PHONE_1), directory
    )

    assert [p.source for p in problems] == ["a.yaml:2"]


async def test_each_ref_is_resolved_once() -> None:
    """A ref shared by several bindings is looked up once."""
    directory = FakeDirectory({PHONE_1: "phone-001"})

    await check_with_geelark(make_assignments("phone-001", "phone-001", "phone-404"), directory)

    assert directory.asked == ["phone-001", "phone-404"]


async def test_every_binding_of_a_missing_phone_is_reported() -> None:
    """Each binding naming a phone Geelark lacks gets its own line."""
    problems = await check_with_geelark(make_assignments("gone", "gone"), FakeDirectory({}))

    assert [p.source for p in problems] == ["a.yaml:0", "a.yaml:1"]


async def test_an_ambiguous_serial_name_asks_for_the_id() -> None:
    """A serialName two phones share is reported with the directory's explanation."""
    directory = FakeDirectory({PHONE_1: "twin", PHONE_2: "twin"})

    problems = await check_with_geelark(make_assignments("twin"), directory)

    assert [str(p) for p in problems] == [
        "a.yaml:0: Phone 'twin' is ambiguous in Geelark: serialName 'twin' matches 2 phones"
    ]


@pytest.mark.parametrize(
    "fault",
    [
        GeelarkUnavailable("Geelark could not be reached for /open/v1/phone/list: timed out"),
        GeelarkAuthError("Geelark refused the credentials: the signature was rejected", code=40003),
    ],
    ids=["unreachable", "bad-credentials"],
)
async def test_geelark_failing_is_one_failed_to_validate_line(fault: Exception) -> None:
    """When Geelark cannot answer, the only problem is the seed's "Failed to validate" line."""
    directory = FakeDirectory({}, fault=fault)

    problems = await check_with_geelark(make_assignments("a", "b"), directory)

    assert [str(p) for p in problems] == [f"Failed to validate phones with Geelark: {fault}"]
    assert directory.asked == ["a"]
