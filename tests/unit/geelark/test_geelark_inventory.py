"""Specification of the phone inventory: one cached phone list, looked up by id and exact name."""

from __future__ import annotations

import asyncio

import pytest
from loop_order import loop_caught_up, until

from phonefleet_operator.errors import (
    AmbiguousPhone,
    GeelarkAuthError,
    GeelarkUnavailable,
    PhonefleetError,
    PhoneNotFound,
)
from phonefleet_operator.geelark import Phone, PhoneInventory

from .factories import Clock, FakeLister, make_phone, make_settings

REFRESH = 300.0
MISS_REFRESH = 15.0


def make_inventory(phones: list[Phone]) -> tuple[PhoneInventory, FakeLister, Clock]:
    """An inventory over a fake listing of ``phones`` with a manual clock."""
    lister = FakeLister(phones=phones)
    clock = Clock()
    settings = make_settings(
        inventory_refresh_seconds=REFRESH, inventory_miss_refresh_seconds=MISS_REFRESH
    )
    return PhoneInventory(lister, settings, clock=clock), lister, clock


def fleet(count: int) -> list[Phone]:
    """Phones 1..count as the simulator seeds them."""
    return [make_phone(n) for n in range(1, count + 1)]


@pytest.mark.parametrize(("count", "pages"), [(0, 1), (99, 1), (100, 1), (250, 3), (1000, 10)])
async def test_the_first_lookup_pages_through_the_whole_list_once(count: int, pages: int) -> None:
    """The list is read 100 a page until a short page (or the reported total): ceil(n/100) calls."""
    inventory, lister, _ = make_inventory(fleet(max(count, 1))[:count] if count else [])

    if count:
        await inventory.resolve(make_phone(count).id)
    else:
        await inventory.refresh()

    assert [c["page"] for c in lister.calls] == list(range(1, pages + 1))
    assert len(inventory.cached()) == count


@pytest.mark.parametrize(("ref", "number"), [("600000000000000007", 7), ("phone-007", 7)])
async def test_a_phone_is_found_by_its_id_or_its_exact_serial_name(ref: str, number: int) -> None:
    """``resolve`` accepts the canonical id or the serialName and returns the same phone."""
    inventory, _, _ = make_inventory(fleet(20))

    assert await inventory.resolve(ref) == make_phone(number)


async def test_a_serial_name_matches_exactly_never_by_prefix_or_case() -> None:
    """ "phone-00" and "PHONE-001" are not "phone-001": no fuzzy matching."""
    inventory, _, _ = make_inventory(fleet(3))

    for near_miss in ["phone-00", "PHONE-001", "phone-001 "]:
        with pytest.raises(PhoneNotFound):
            await inventory.resolve(near_miss)


async def test_a_thousand_lookups_cost_one_listing() -> None:
    """Every binding shares the cache: resolving 1,000 phones costs ceil(1000/100) list calls."""
    inventory, lister, _ = make_inventory(fleet(1000))

    found = await asyncio.gather(
        *(
            inventory.resolve(p.serial_name if p.serial_no.endswith("0") else p.id)
            for p in fleet(1000)
        )
    )

    assert found == fleet(1000)
    assert len(lister.calls) == 10


async def test_the_list_is_refreshed_at_most_once_per_interval() -> None:
    """Lookups inside the refresh interval are served from the cache; after it, one refresh."""
    inventory, lister, clock = make_inventory(fleet(5))
    await inventory.resolve("phone-001")

    clock.advance(REFRESH - 1)
    await inventory.resolve("phone-002")
    calls_within_interval = len(lister.calls)
    clock.advance(2)
    await inventory.resolve("phone-003")

    assert calls_within_interval == 1
    assert len(lister.calls) == 2


async def test_a_shared_serial_name_is_ambiguous_and_never_picks_one() -> None:
    """Two phones named alike: the lookup fails asking for the id, naming both candidates."""
    twins = [make_phone(1, serial_name="twin"), make_phone(2, serial_name="twin")]
    inventory, _, _ = make_inventory(twins)

    with pytest.raises(AmbiguousPhone, match="by its id") as caught:
        await inventory.resolve("twin")

    assert all(p.id in str(caught.value) for p in twins)
    assert await inventory.resolve(twins[0].id) == twins[0]


async def test_a_miss_asks_geelark_once_then_answers_not_found() -> None:
    """An unknown ref triggers one targeted query; repeated misses in the interval cost nothing."""
    inventory, lister, clock = make_inventory(fleet(300))
    await inventory.resolve("phone-001")
    clock.advance(MISS_REFRESH)  # the listing itself answered every miss until now
    listing = len(lister.calls)

    for _ in range(5):
        with pytest.raises(PhoneNotFound):
            await inventory.resolve("no-such-phone")

    assert lister.calls[listing:] == [{"page": 1, "ids": None, "serial_name": "no-such-phone"}]


async def test_a_miss_right_after_a_listing_does_not_ask_again() -> None:
    """The listing that just ran already answered the miss: no second call within the interval."""
    inventory, lister, _ = make_inventory(fleet(3))

    with pytest.raises(PhoneNotFound):
        await inventory.resolve("phone-new")

    assert len(lister.calls) == 1


async def test_a_miss_after_the_interval_asks_again_and_finds_a_new_phone() -> None:
    """A phone created after the listing is found by the next miss refresh."""
    inventory, lister, clock = make_inventory(fleet(300))
    await inventory.resolve("phone-001")
    with pytest.raises(PhoneNotFound):
        await inventory.resolve("phone-new")

    lister.phones.append(make_phone(999, serial_name="phone-new"))
    clock.advance(MISS_REFRESH)

    assert (await inventory.resolve("phone-new")).id == make_phone(999).id


async def test_an_id_miss_is_asked_for_by_id() -> None:
    """A ref shaped like a Geelark id is queried with ``ids``, not by listing every page."""
    inventory, lister, clock = make_inventory(fleet(300))
    await inventory.resolve("phone-001")
    clock.advance(MISS_REFRESH)  # the listing itself answered every miss until now
    lister.phones.append(make_phone(999))

    found = await inventory.resolve(make_phone(999).id)

    assert found == make_phone(999)
    assert lister.calls[-1] == {"page": 1, "ids": [make_phone(999).id], "serial_name": None}


async def test_concurrent_misses_share_one_refresh() -> None:
    """Many bindings missing at once cause a single refresh, not one each."""
    inventory, lister, clock = make_inventory(fleet(300))
    await inventory.resolve("phone-001")
    clock.advance(MISS_REFRESH)  # the listing itself answered every miss until now
    listing = len(lister.calls)
    missing = [str(700_000_000_000_000_000 + n) for n in range(50)]

    outcomes = await asyncio.gather(
        *(inventory.resolve(i) for i in missing), return_exceptions=True
    )

    assert all(isinstance(o, PhoneNotFound) for o in outcomes)
    assert len(lister.calls) == listing + 1
    assert sorted(lister.calls[-1]["ids"]) == missing


async def test_many_missing_names_fall_back_to_one_full_listing() -> None:
    """When asking name by name would cost more than a listing, the whole list is read instead."""
    inventory, lister, clock = make_inventory(fleet(150))
    await inventory.resolve("phone-001")
    clock.advance(MISS_REFRESH)  # the listing itself answered every miss until now
    listing = len(lister.calls)

    await asyncio.gather(
        *(inventory.resolve(f"ghost-{n}") for n in range(10)), return_exceptions=True
    )

    assert [c["page"] for c in lister.calls[listing:]] == [1, 2]
    assert all(c["serial_name"] is None for c in lister.calls[listing:])


async def test_a_renamed_phone_keeps_resolving_by_id() -> None:
    """After a rename the id still finds the phone, and the new name finds it after a refresh."""
    inventory, lister, clock = make_inventory(fleet(3))
    bound = await inventory.resolve("phone-002")

    lister.phones[1] = make_phone(2, serial_name="renamed")
    clock.advance(REFRESH)

    assert (await inventory.get(bound.id)).serial_name == "renamed"
    assert (await inventory.resolve("renamed")).id == bound.id
    with pytest.raises(PhoneNotFound):
        await inventory.resolve("phone-002")


async def test_a_stale_twin_is_confirmed_with_geelark_before_calling_it_ambiguous() -> None:
    """If one of two same-named phones was renamed meanwhile, the remaining one is found."""
    inventory, lister, clock = make_inventory(
        [make_phone(1, serial_name="twin"), make_phone(2, serial_name="twin"), *fleet(300)[2:]]
    )
    await inventory.refresh()
    clock.advance(MISS_REFRESH)
    lister.phones[1] = make_phone(2, serial_name="moved")

    assert (await inventory.resolve("twin")).id == make_phone(1).id


@pytest.mark.parametrize(
    "fault",
    [
        GeelarkUnavailable("Geelark could not be reached", delay=30),
        GeelarkAuthError("fix the Secret ns/geelark", code=40003),
    ],
    ids=["outage", "bad-credentials"],
)
async def test_a_failed_first_listing_raises_its_own_fault_not_not_found(
    fault: PhonefleetError,
) -> None:
    """ "Could not check" is never reported as "not found", and an auth failure is not
    disguised as an outage or a missing phone: the lookup raises the listing's fault."""
    inventory, lister, _ = make_inventory(fleet(3))
    lister.fail_with = fault

    with pytest.raises(type(fault)):
        await inventory.resolve("phone-001")


async def test_an_outage_during_a_miss_refresh_is_unavailable_not_not_found() -> None:
    """A miss whose check failed, and misses right after it, report GeelarkUnavailable."""
    inventory, lister, clock = make_inventory(fleet(300))
    await inventory.resolve("phone-001")
    clock.advance(MISS_REFRESH)  # the listing itself answered every miss until now
    lister.fail_with = GeelarkUnavailable("Geelark could not be reached", delay=30)

    with pytest.raises(GeelarkUnavailable):
        await inventory.resolve("phone-new")
    with pytest.raises(GeelarkUnavailable):
        await inventory.resolve("phone-newer")


async def test_an_outage_at_refresh_time_serves_the_cached_list() -> None:
    """A stale list beats no list: known phones still resolve while Geelark is down."""
    inventory, lister, clock = make_inventory(fleet(3))
    await inventory.resolve("phone-001")
    lister.fail_with = GeelarkUnavailable("Geelark could not be reached", delay=30)
    clock.advance(REFRESH)

    assert (await inventory.resolve("phone-002")).id == make_phone(2).id
    assert (await inventory.resolve("phone-003")).id == make_phone(3).id
    assert len(lister.calls) == 2  # one failed refresh, then a pause before the next attempt


async def test_concurrent_first_lookups_share_one_listing() -> None:
    """Bindings resolving before the first listing finished wait for it instead of listing again."""
    inventory, lister, _ = make_inventory(fleet(250))
    lister.gate = asyncio.Event()
    lookups = [asyncio.ensure_future(inventory.resolve(p.id)) for p in fleet(250)]
    await until(lambda: lister.calls, within=10)  # the first listing is on its way
    await loop_caught_up()  # and every lookup has run its first step

    lister.gate.set()
    await asyncio.gather(*lookups)

    assert [c["page"] for c in lister.calls] == [1, 2, 3]


async def test_forgetting_a_phone_makes_the_next_lookup_ask_geelark() -> None:
    """A phone Geelark said it lost is dropped from the cache and rechecked on the next lookup."""
    inventory, lister, clock = make_inventory(fleet(300))
    await inventory.resolve("phone-001")
    del lister.phones[0]
    clock.advance(MISS_REFRESH)

    inventory.forget(make_phone(1).id)

    with pytest.raises(PhoneNotFound):
        await inventory.get(make_phone(1).id)


async def test_a_miss_joining_a_refresh_already_sent_is_asked_about_in_the_next_one() -> None:
    """A refresh answers only the refs it asked about; a ref that came too late is asked next."""
    inventory, lister, clock = make_inventory(fleet(300))
    await inventory.resolve("phone-001")
    clock.advance(MISS_REFRESH)
    lister.gate = asyncio.Event()
    sent = len(lister.calls)

    ghost = asyncio.ensure_future(inventory.resolve("ghost"))
    await until(lambda: len(lister.calls) > sent, within=10)  # the refresh waits on the gate
    lister.phones.append(make_phone(999, serial_name="late"))
    late = asyncio.ensure_future(inventory.resolve("late"))
    await loop_caught_up()  # the late lookup has joined while the refresh is on its way
    lister.gate.set()

    with pytest.raises(PhoneNotFound):
        await ghost
    assert (await late).id == make_phone(999).id
    assert [c["serial_name"] for c in lister.calls[sent:]] == ["ghost", "late"]
