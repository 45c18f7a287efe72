"""Specification of the phone gateway: concurrent per-phone calls merge into Geelark batch calls.

Every test runs on looptime's virtual clock: the event loop's time moves only when the loop has
nothing else to do, straight to the next timer, so the gathering windows and budget waits here
are exact figures on that clock, and no real time passes (no flakiness under CPU load).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import pytest
from loop_order import loop_caught_up

from phonefleet_operator.errors import (
    GeelarkRateLimited,
    GeelarkRequestError,
    PhoneNotFound,
    PhoneNotReady,
)
from phonefleet_operator.geelark import PhoneGateway, PhoneStatus, StartResult
from phonefleet_operator.geelark import gateway as gateway_module

from .factories import FakePhoneApi, let_time_pass, make_settings

pytestmark = pytest.mark.looptime

WINDOW = 0.05


def make_gateway(api: FakePhoneApi, window: float = WINDOW) -> PhoneGateway:
    """A gateway over the fake API with the given gathering window."""
    return PhoneGateway(api, make_settings(batch_window_seconds=window))


def phone_ids(count: int) -> list[str]:
    """Distinct 18-digit phone ids."""
    return [str(600_000_000_000_000_001 + n) for n in range(count)]


async def test_concurrent_starts_merge_into_one_call_and_each_caller_gets_its_own_result() -> None:
    """Starts arriving within one window cost one Geelark call; each caller sees its phone's URL."""
    api = FakePhoneApi()
    gateway = PhoneGateway(
        api, make_settings(batch_window_seconds=WINDOW, live_view_in_status=True)
    )
    ids = phone_ids(30)

    results = await asyncio.gather(*(gateway.start(i) for i in ids))

    assert api.calls == [("start", ids)]
    assert [r.url for r in results] == [f"https://live/{i}" for i in ids]


async def test_the_live_view_link_is_not_handed_on_unless_asked_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """By default a start's live-view link (a capability) is only logged, at debug level."""
    caplog.set_level(logging.DEBUG, logger="phonefleet_operator.geelark")
    phone = phone_ids(1)[0]

    result = await make_gateway(FakePhoneApi()).start(phone)

    assert result == StartResult(id=phone)
    shown = [r for r in caplog.records if f"https://live/{phone}" in r.getMessage()]
    assert [r.levelno for r in shown] == [logging.DEBUG]


@pytest.mark.parametrize(
    ("operation", "call", "sizes"),
    [
        ("start", "start", [200, 200, 50]),
        ("stop", "stop", [100, 100, 100, 100, 50]),
        ("status", "status", [100, 100, 100, 100, 50]),
        ("enable_adb", "adb on", [100, 100, 100, 100, 50]),
        ("disable_adb", "adb off", [100, 100, 100, 100, 50]),
        ("adb_endpoint", "adb data", [100, 100, 100, 100, 50]),
    ],
)
async def test_batches_never_exceed_geelarks_limit(
    operation: str, call: str, sizes: list[int]
) -> None:
    """A full batch goes out at once: 200 ids per start call (Geelark's reference), 100 per
    other call (the ADB calls have no documented limit: they keep to the other calls' 100)."""
    api = FakePhoneApi()
    gateway = make_gateway(api)

    await asyncio.gather(*(getattr(gateway, operation)(i) for i in phone_ids(450)))

    assert [name for name, _ in api.calls] == [call] * len(sizes)
    assert [len(ids) for _, ids in api.calls] == sizes


@pytest.mark.parametrize(
    ("code", "fault_type"),
    [(42001, PhoneNotFound), (43004, GeelarkRequestError), (42002, PhoneNotReady)],
)
async def test_a_refused_phone_fails_only_its_own_caller(
    code: int, fault_type: type[Exception]
) -> None:
    """Geelark's per-item failure reaches the caller of that phone; the others succeed."""
    bad, *good = phone_ids(5)
    gateway = make_gateway(FakePhoneApi(failures={bad: code}))

    outcomes = await asyncio.gather(
        *(gateway.start(i) for i in [bad, *good]), return_exceptions=True
    )

    assert isinstance(outcomes[0], fault_type)
    assert all(isinstance(o, StartResult) for o in outcomes[1:])


@pytest.mark.parametrize("code", [43009, 43010])
async def test_a_phone_already_starting_counts_as_started(code: int) -> None:
    """43009 (already opened) and 43010 (starting) mean the start is done: no error, no URL."""
    phone = phone_ids(1)[0]
    gateway = make_gateway(FakePhoneApi(failures={phone: code}))

    result = await gateway.start(phone)

    assert result == StartResult(id=phone, already_started=True)


async def test_a_failed_batch_call_fails_every_caller_with_the_same_exception() -> None:
    """A rate limit or outage of the whole call reaches all callers of that batch alike."""
    fault = GeelarkRateLimited("Geelark rate-limited /open/v1/phone/status", code=40007)
    gateway = make_gateway(FakePhoneApi(fail_whole_call_with=fault))

    outcomes = await asyncio.gather(
        *(gateway.status(i) for i in phone_ids(10)), return_exceptions=True
    )

    assert all(o is fault for o in outcomes)


async def test_a_phone_asked_twice_in_one_window_is_sent_once() -> None:
    """Two bindings asking for the same phone share one id in the batch and one answer."""
    api = FakePhoneApi()
    gateway = make_gateway(api)
    phone = phone_ids(1)[0]

    first, second = await asyncio.gather(gateway.adb_endpoint(phone), gateway.adb_endpoint(phone))

    assert api.calls == [("adb data", [phone])]
    assert first is second


async def test_a_single_caller_waits_exactly_the_window() -> None:
    """One binding alone is answered as soon as the short gathering window closes."""
    window = 0.2
    gateway = make_gateway(FakePhoneApi(), window=window)
    loop = asyncio.get_running_loop()

    started = loop.time()
    status = await gateway.status(phone_ids(1)[0])

    assert status is PhoneStatus.RUNNING
    assert loop.time() - started == pytest.approx(window)


async def test_callers_after_the_window_closed_go_into_the_next_batch() -> None:
    """A window gathers only the callers that arrived during it."""
    api = FakePhoneApi()
    gateway = make_gateway(api)
    first, second = phone_ids(2)

    await gateway.stop(first)
    await gateway.stop(second)

    assert api.calls == [("stop", [first]), ("stop", [second])]


async def test_statuses_report_each_phone_or_its_fault_without_raising() -> None:
    """``statuses`` maps each id to its status, or to the fault Geelark gave for it."""
    gone, *alive = phone_ids(4)
    api = FakePhoneApi(failures={gone: 42001})
    gateway = make_gateway(api)

    report = await gateway.statuses([gone, *alive])

    assert isinstance(report.pop(gone), PhoneNotFound)
    assert report == dict.fromkeys(alive, PhoneStatus.RUNNING)
    assert len(api.calls) == 1


async def test_a_cancelled_caller_does_not_disturb_the_others_in_its_batch() -> None:
    """A binding that gives up leaves the rest of the batch to be answered normally."""
    api = FakePhoneApi()
    gateway = make_gateway(api)
    quitter, *stayers = phone_ids(3)
    quitting = asyncio.ensure_future(gateway.start(quitter))
    staying = [asyncio.ensure_future(gateway.start(i)) for i in stayers]
    await loop_caught_up()  # every caller has joined the batch before one gives up

    quitting.cancel()
    results = await asyncio.gather(*staying)

    assert [r.id for r in results] == stayers
    assert quitting.cancelled()


async def test_closing_sends_pending_batches_without_waiting_for_the_window() -> None:
    """``aclose`` flushes what is gathered so that no caller is left waiting at shutdown."""
    api = FakePhoneApi()
    gateway = make_gateway(api, window=60.0)
    pending = asyncio.ensure_future(gateway.enable_adb(phone_ids(1)[0]))
    await loop_caught_up()  # the caller has joined the batch

    await asyncio.wait_for(gateway.aclose(), timeout=5)

    assert pending.done()
    assert api.calls == [("adb on", phone_ids(1))]


async def test_a_window_closing_while_the_budget_is_spent_keeps_gathering() -> None:
    """No room in the rate limiter: the batch waits for it and takes later callers along."""
    api = FakePhoneApi(budget_spent=True)
    gateway = make_gateway(api)
    early, late = phone_ids(2)

    first = asyncio.ensure_future(gateway.status(early))
    await let_time_pass(WINDOW * 3)  # the window has closed, but there is no budget
    second = asyncio.ensure_future(gateway.status(late))
    await let_time_pass(WINDOW)
    assert api.calls == []

    api.budget_spent = False
    await asyncio.gather(first, second)

    assert api.calls == [("status", [early, late])]


async def test_a_batch_waits_for_budget_no_longer_than_the_gathering_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A budget that stays spent holds a partial batch back for MAX_GATHER_SECONDS at most."""
    monkeypatch.setattr(gateway_module, "MAX_GATHER_SECONDS", 0.3)
    api = FakePhoneApi(budget_spent=True)
    gateway = make_gateway(api)
    loop = asyncio.get_running_loop()

    started = loop.time()
    await gateway.start(phone_ids(1)[0])

    assert loop.time() - started == pytest.approx(0.3, abs=WINDOW)
    assert len(api.calls) == 1


async def test_a_full_batch_waits_for_the_budget_and_later_callers_start_the_next() -> None:
    """A full batch cannot grow but still waits for room; callers after it form the next batch."""
    api = FakePhoneApi(budget_spent=True)
    gateway = make_gateway(api)
    *hundred, extra = phone_ids(101)

    first = [asyncio.ensure_future(gateway.status(i)) for i in hundred]
    later = asyncio.ensure_future(gateway.status(extra))
    await let_time_pass(WINDOW * 3)
    assert api.calls == []
    api.budget_spent = False
    await asyncio.gather(*first, later)

    assert [len(ids) for _, ids in api.calls] == [100, 1]


async def test_when_the_budget_returns_a_start_goes_before_status_polls() -> None:
    """Held batches share the free slots by urgency: a start before polls of booting phones."""
    api = FakePhoneApi(budget_spent=True)
    gateway = make_gateway(api)
    polled, started = phone_ids(2)

    poll = asyncio.ensure_future(gateway.status(polled))
    await let_time_pass(WINDOW * 2)  # the poll's window closed first
    start = asyncio.ensure_future(gateway.start(started))
    await let_time_pass(WINDOW * 2)
    api.budget_spent = False
    await asyncio.gather(poll, start)

    assert api.calls == [("start", [started]), ("status", [polled])]


async def test_a_batch_keeps_gathering_while_callers_keep_coming() -> None:
    """Callers arriving within a window of each other share one call, however long they trickle."""
    api = FakePhoneApi()
    gateway = make_gateway(api)
    ids = phone_ids(8)

    callers = []
    for phone in ids:
        callers.append(asyncio.ensure_future(gateway.status(phone)))
        # 0.4 of a window apart: no caller arrives at the same virtual instant as a window's
        # check (at half a window they tied, and which ran first was not the test's to say;
        # this test failed once in each of three loaded full runs).
        await let_time_pass(WINDOW * 0.4)
    await asyncio.gather(*callers)

    assert api.calls == [("status", ids)]


@pytest.mark.parametrize(
    ("listed", "calls"),
    [(PhoneStatus.SHUT_DOWN, 0), (PhoneStatus.STARTING, 0), (PhoneStatus.RUNNING, 1)],
)
async def test_a_fresh_listing_answers_the_first_status_question_when_the_phone_is_off(
    listed: PhoneStatus, calls: int
) -> None:
    """Off or starting in a listing seconds old: no status call; running is always asked."""
    phone = phone_ids(1)[0]
    api = FakePhoneApi(listed={phone: listed})
    gateway = make_gateway(api)

    first = await gateway.status(phone)

    assert first is listed
    assert len(api.calls) == calls
    await gateway.status(phone)  # a listed state answers once
    assert len(api.calls) == calls + 1


def test_poll_interval_keeps_polls_within_half_the_budget() -> None:
    """125 calls a minute, half for polls, 100 phones a call: about 104 phone polls a second."""
    gateway = PhoneGateway(FakePhoneApi(), make_settings(requests_per_minute=125))
    assert gateway.poll_interval(0) == 0
    assert gateway.poll_interval(1000) == pytest.approx(1000 / (125 / 60 * 0.5 * 100))


async def seen_running(gateway: PhoneGateway, api: FakePhoneApi, phones: list[str]) -> None:
    """Let Geelark answer "running" for ``phones`` once, then forget the calls it took."""
    await asyncio.gather(*(gateway.status(p) for p in phones))
    api.calls.clear()


async def test_a_phone_last_seen_running_is_checked_after_the_polls_of_booting_phones() -> None:
    """With the budget contended, a poll of a booting phone goes first, the check after it."""
    api = FakePhoneApi()
    gateway = make_gateway(api)
    running, booting = phone_ids(2)
    await seen_running(gateway, api, [running])
    api.budget_spent = True

    check = asyncio.ensure_future(gateway.status(running))
    await let_time_pass(WINDOW * 2)  # the check's window closed first
    poll = asyncio.ensure_future(gateway.status(booting))
    await let_time_pass(WINDOW * 2)
    api.budget_spent = False
    await asyncio.gather(check, poll)

    assert api.calls == [("status", [booting]), ("status", [running])]


async def test_a_check_waits_for_spare_budget_and_gathers_meanwhile() -> None:
    """Room for a call but none to spare: checks keep gathering into one call until there is."""
    api = FakePhoneApi()
    gateway = make_gateway(api)
    ids = phone_ids(3)
    await seen_running(gateway, api, ids)
    api.reserve_spent = True

    checks = []
    for phone in ids:
        checks.append(asyncio.ensure_future(gateway.status(phone)))
        await let_time_pass(WINDOW * 3)  # each caller after the last one's window closed
    assert api.calls == []
    api.reserve_spent = False
    await asyncio.gather(*checks)

    assert api.calls == [("status", ids)]


async def test_a_check_waits_for_spare_budget_no_longer_than_the_deferral_limit() -> None:
    """A budget never to spare holds a check back for CHECK_DEFER_SECONDS, then it goes."""
    api = FakePhoneApi()
    gateway = make_gateway(api)
    phone = phone_ids(1)[0]
    await seen_running(gateway, api, [phone])
    api.reserve_spent = True
    loop = asyncio.get_running_loop()

    started = loop.time()
    await gateway.status(phone)

    waited = loop.time() - started
    assert waited == pytest.approx(gateway_module.CHECK_DEFER_SECONDS, abs=WINDOW * 2)
    assert api.calls == [("status", [phone])]


async def test_a_phone_stopped_since_it_was_seen_running_is_polled_not_checked() -> None:
    """After a stop, the next question is a poll: held no longer than MAX_GATHER_SECONDS."""
    api = FakePhoneApi()
    gateway = make_gateway(api)
    phone = phone_ids(1)[0]
    await seen_running(gateway, api, [phone])
    await gateway.stop(phone)
    api.reserve_spent = True
    loop = asyncio.get_running_loop()

    started = loop.time()
    await gateway.status(phone)

    waited = loop.time() - started
    assert waited == pytest.approx(gateway_module.MAX_GATHER_SECONDS, abs=WINDOW * 2)
    assert api.calls == [("stop", [phone]), ("status", [phone])]


async def test_a_partial_batch_of_polls_keeps_gathering_while_the_account_is_busy() -> None:
    """Room for a call but the account not quiet: polls of booting phones a few windows apart
    share one call, sent once the account is quiet again."""
    api = FakePhoneApi(reserve_spent=True)
    gateway = make_gateway(api)
    early, late = phone_ids(2)

    first = asyncio.ensure_future(gateway.status(early))
    await let_time_pass(WINDOW * 3)
    second = asyncio.ensure_future(gateway.status(late))
    await let_time_pass(WINDOW * 3)
    assert api.calls == []
    api.reserve_spent = False
    await asyncio.gather(first, second)

    assert api.calls == [("status", [early, late])]


@pytest.mark.parametrize(
    ("operation", "call"),
    [("enable_adb", "adb on"), ("adb_endpoint", "adb data"), ("start", "start")],
)
async def test_a_partial_cohort_goes_once_its_window_closes_while_the_account_is_busy(
    operation: str, call: str
) -> None:
    """Room for a call but the account not quiet: the ADB switches of the phones one answer
    found running (or their ADB reads, or starts) go when their window closes, not seconds
    later when the account is quiet again (round 4 sent them one a second for 8 s)."""
    api = FakePhoneApi(reserve_spent=True)
    gateway = make_gateway(api)
    cohort = phone_ids(40)
    loop = asyncio.get_running_loop()

    began = loop.time()
    await asyncio.gather(*(getattr(gateway, operation)(p) for p in cohort))

    assert loop.time() - began == pytest.approx(WINDOW, abs=WINDOW / 2)
    assert api.calls == [(call, cohort)]


async def test_a_partial_cohort_leaves_the_last_slot_to_a_batch_held_before_it() -> None:
    """Room for one call only, and a full batch of polls held for it: the partial ADB batch
    waits (gathering) rather than take that slot."""
    api = FakePhoneApi(budget_spent=True)
    gateway = make_gateway(api)
    polled = phone_ids(100)
    switched = phone_ids(101)[100]

    polls = [asyncio.ensure_future(gateway.status(p)) for p in polled]
    await let_time_pass(WINDOW)  # the full poll batch is held for the budget
    switch = asyncio.ensure_future(gateway.enable_adb(switched))
    await let_time_pass(WINDOW * 3)  # the switch's window closed: held too
    assert api.calls == []
    api.budget_spent = False
    api.room = 1
    await let_time_pass(WINDOW)

    assert api.calls == [("status", polled)]
    api.room = None
    await asyncio.gather(*polls, switch)
    assert api.calls == [("status", polled), ("adb on", [switched])]


async def test_an_adb_call_geelark_took_makes_the_next_status_question_a_check() -> None:
    """Geelark takes ADB switches and reads of running phones only: a phone switched on in
    place of its status poll is checked (last in line) when next asked, like one answered
    "running"; a read answered "not running" makes the next question a poll again."""
    api = FakePhoneApi()
    gateway = make_gateway(api)
    phone = phone_ids(1)[0]
    await gateway.enable_adb(phone)
    api.calls.clear()
    api.reserve_spent = True
    loop = asyncio.get_running_loop()

    started = loop.time()
    await gateway.status(phone)
    assert loop.time() - started == pytest.approx(
        gateway_module.CHECK_DEFER_SECONDS, abs=WINDOW * 2
    )

    api.failures[phone] = 42002
    with pytest.raises(PhoneNotReady):
        await gateway.adb_endpoint(phone)
    started = loop.time()
    with contextlib.suppress(PhoneNotReady):
        await gateway.status(phone)
    assert loop.time() - started == pytest.approx(gateway_module.MAX_GATHER_SECONDS, abs=WINDOW * 2)


@dataclass
class AgedListing(FakePhoneApi):
    """A listing made ``age`` seconds ago: it answers only a question that accepts that age."""

    age: float = 0.0

    def listed_status(self, phone_id: str, max_age: float) -> PhoneStatus | None:
        return super().listed_status(phone_id, max_age) if self.age <= max_age else None


async def test_a_listing_minutes_old_answers_the_first_question_of_a_phone_it_says_is_off() -> None:
    """The first passes of a large fleet come minutes after the listing behind the API server:
    "off" from a listing four minutes old still answers once (it leads to a start, which is
    idempotent), so no status call precedes the start."""
    phone = phone_ids(1)[0]
    api = AgedListing(listed={phone: PhoneStatus.SHUT_DOWN}, age=240.0)
    gateway = make_gateway(api)

    assert await gateway.status(phone) is PhoneStatus.SHUT_DOWN
    assert api.calls == []
