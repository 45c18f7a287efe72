"""Specification of the Geelark client over real HTTP (the simulator): auth, errors, retries."""

from __future__ import annotations

from typing import Any

import pytest
from loop_order import let_virtual_time_pass

from phonefleet_operator.errors import (
    GeelarkAuthError,
    GeelarkRateLimited,
    GeelarkRequestError,
    GeelarkUnavailable,
    PhonefleetError,
    PhoneNotReady,
)
from phonefleet_operator.geelark import PhoneStatus, build_rate_limiter, item_fault
from phonefleet_operator.settings import GeelarkSettings
from phonefleet_testbed.geelark_sim import GeelarkSimulator, seed_id
from phonefleet_testbed.processes import free_port

from .conftest import ClientFactory
from .factories import CountingLimiter, make_client, make_key_settings, make_settings

SECRET = "phonefleet-system/geelark-credentials"


@pytest.mark.parametrize(
    "settings", [make_settings(), make_key_settings()], ids=["token mode", "key mode"]
)
async def test_both_auth_modes_are_accepted(
    simulator: GeelarkSimulator, open_client: ClientFactory, settings: GeelarkSettings
) -> None:
    """A correctly configured token or appId/apiKey pair reads the phone list."""
    async with open_client(simulator, settings) as client:
        page = await client.list_phones(1, 100)

    assert [p.serial_name for p in page.items] == [f"phone-00{n}" for n in range(1, 6)]
    assert page.total == 5


@pytest.mark.parametrize(
    ("settings", "variables"),
    [
        (make_settings(token="wrong-token"), "PHONEFLEET_GEELARK_TOKEN (key token)"),
        (
            make_key_settings(api_key="wrong-key"),
            "PHONEFLEET_GEELARK_APP_ID and PHONEFLEET_GEELARK_API_KEY (keys appId, apiKey)",
        ),
    ],
    ids=["token mode", "key mode"],
)
async def test_bad_credentials_raise_an_auth_error_naming_the_variables_and_secret_once(
    simulator: GeelarkSimulator,
    open_client: ClientFactory,
    settings: GeelarkSettings,
    variables: str,
) -> None:
    """40003 is not retried; its message names the variables and the Secret to fix (an operator
    run by hand has no Secret, only the variables), never the credential."""
    async with open_client(simulator, settings) as client:
        with pytest.raises(GeelarkAuthError) as caught:
            await client.list_phones()

    assert caught.value.code == 40003
    names, keys = variables.split(" (", maxsplit=1)
    assert f"fix {names} (the Secret {SECRET}, {keys}" in str(caught.value)
    assert "wrong-" not in str(caught.value)
    assert simulator.admin.counters().total == 1


FaultSpec = dict[str, Any]
RETRYABLE: list[tuple[str, FaultSpec, type[PhonefleetError]]] = [
    ("code 50000", {"code": 50000}, GeelarkUnavailable),
    ("code 40007", {"code": 40007}, GeelarkRateLimited),
    ("code 40017", {"code": 40017}, GeelarkRateLimited),
    ("HTTP 500", {"http_status": 500}, GeelarkUnavailable),
    ("HTTP 503", {"http_status": 503}, GeelarkUnavailable),
    ("HTTP 429", {"http_status": 429}, GeelarkRateLimited),
    ("connection dropped", {"outage": True}, GeelarkUnavailable),
]


@pytest.mark.parametrize(
    ("fault", "_type"), [(f, t) for _, f, t in RETRYABLE], ids=[name for name, _, _ in RETRYABLE]
)
async def test_transient_faults_are_retried_until_the_call_succeeds(
    simulator: GeelarkSimulator, open_client: ClientFactory, fault: FaultSpec, _type: type
) -> None:
    """A transient fault on two calls costs two retries and the caller sees only the success."""
    simulator.admin.set_faults("phone/status", times=2, **fault)

    async with open_client(simulator, max_attempts=3) as client:
        result = await client.phone_status([seed_id(1)])

    assert result.succeeded[seed_id(1)].status is PhoneStatus.SHUT_DOWN
    assert simulator.admin.counters().calls("phone/status") == 3


@pytest.mark.parametrize(
    ("fault", "fault_type"),
    [(f, t) for _, f, t in RETRYABLE],
    ids=[name for name, _, _ in RETRYABLE],
)
async def test_a_lasting_transient_fault_gives_up_after_max_attempts(
    simulator: GeelarkSimulator,
    open_client: ClientFactory,
    fault: FaultSpec,
    fault_type: type[PhonefleetError],
) -> None:
    """After ``max_attempts`` tries the mapped temporary fault reaches the caller."""
    simulator.admin.set_faults("phone/start", **fault)

    async with open_client(simulator, max_attempts=4) as client:
        with pytest.raises(fault_type):
            await client.start_phones([seed_id(1)])

    assert simulator.admin.counters().calls("phone/start") == 4


@pytest.mark.parametrize(
    ("fault", "fault_type"),
    [
        ({"code": 40004}, GeelarkRequestError),
        ({"code": 40015}, GeelarkAuthError),
        ({"code": 40016}, GeelarkAuthError),
        ({"http_status": 404}, GeelarkUnavailable),
    ],
    ids=["code 40004", "code 40015", "code 40016", "HTTP 404"],
)
async def test_faults_that_a_retry_cannot_fix_are_not_retried(
    simulator: GeelarkSimulator,
    open_client: ClientFactory,
    fault: FaultSpec,
    fault_type: type[PhonefleetError],
) -> None:
    """Bad requests, auth refusals and non-5xx HTTP errors are raised after one call."""
    simulator.admin.set_faults("phone/stop", **fault)

    async with open_client(simulator) as client:
        with pytest.raises(fault_type):
            await client.stop_phones([seed_id(1)])

    assert simulator.admin.counters().calls("phone/stop") == 1


async def test_the_hourly_lock_backs_off_for_two_hours_without_asking_again(
    simulator: GeelarkSimulator, open_client: ClientFactory
) -> None:
    """40014 locks the endpoint: a long delay, and further calls fail fast without HTTP."""
    simulator.admin.set_faults("phone/list", code=40014)

    async with open_client(simulator) as client:
        with pytest.raises(GeelarkRateLimited) as first:
            await client.list_phones()
        with pytest.raises(GeelarkRateLimited) as second:
            await client.list_phones()
        status = await client.phone_status([seed_id(1)])

    assert first.value.code == 40014
    assert first.value.delay == pytest.approx(7200)
    assert second.value.delay is not None
    assert second.value.delay > 7000
    assert simulator.admin.counters().calls("phone/list") == 1
    assert seed_id(1) in status.succeeded  # other endpoints stay usable


async def test_every_call_has_a_deadline(
    simulator: GeelarkSimulator, open_client: ClientFactory
) -> None:
    """A reply slower than ``timeout_seconds`` is a GeelarkUnavailable, not a hang.

    The simulator would answer after a minute; "timed out" can only come from the deadline.
    """
    simulator.admin.set_faults("phone/list", latency_ms=60_000)

    async with open_client(simulator, timeout_seconds=0.2, max_attempts=1) as client:
        with pytest.raises(GeelarkUnavailable, match="timed out"):
            await client.list_phones()


async def test_every_http_attempt_passes_the_shared_rate_limiter(
    simulator: GeelarkSimulator, open_client: ClientFactory
) -> None:
    """Each request, retries included, acquires the one limiter before it is sent."""
    limiter = CountingLimiter()
    simulator.admin.set_faults("phone/status", code=50000, times=2)

    async with open_client(simulator, limiter=limiter) as client:
        await client.list_phones()
        await client.phone_status([seed_id(1)])
        await client.adb_data([seed_id(1)])

    assert limiter.acquired == simulator.admin.counters().total == 5


@pytest.mark.parametrize(
    ("rpm", "account", "window"), [(125, 200, 125), (190, 200, 190), (300, 200, 200)]
)
def test_the_pace_is_the_setting_and_never_above_the_accounts_limit(
    rpm: int, account: int, window: int
) -> None:
    """requests_per_minute is the calls allowed in any 60 s; a pace set above the account's
    limit is held to it (every call past it would be refused)."""
    settings = make_settings(requests_per_minute=rpm, account_requests_per_minute=account)

    assert build_rate_limiter(settings).per_minute == window


async def test_batch_replies_report_every_phone_in_one_of_two_maps(
    simulator: GeelarkSimulator, open_client: ClientFactory
) -> None:
    """successDetails and failDetails are both read: each id is a success or a coded failure."""
    missing = "699999999999999999"
    expired = simulator.admin.create_phone("old-phone", status=3).id

    async with open_client(simulator) as client:
        started = await client.start_phones([seed_id(1), missing, expired])
        stopped = await client.stop_phones([seed_id(1), missing])

    assert set(started.succeeded) == {seed_id(1)}
    assert started.succeeded[seed_id(1)].url
    assert {i: f.code for i, f in started.failed.items()} == {missing: 42001, expired: 43004}
    assert set(stopped.succeeded) == {seed_id(1)}
    assert stopped.failed[missing].code == 42001


async def test_adb_data_reads_each_item_code(
    simulator: GeelarkSimulator, open_client: ClientFactory
) -> None:
    """getData items with code 0 are endpoints; 42002 and 49001 are per-phone failures."""
    running, adb_off, stopped = seed_id(1), seed_id(2), seed_id(3)

    async with open_client(simulator) as client:
        await client.start_phones([running, adb_off])
        await client.set_adb([running], open=True)
        data = await client.adb_data([running, adb_off, stopped])

    snapshot = simulator.admin.phone(running)
    endpoint = data.succeeded[running]
    assert (endpoint.ip, str(endpoint.port)) == ("127.0.0.1", snapshot.adb_port)
    assert endpoint.password.get_secret_value() == snapshot.adb_password
    assert {i: f.code for i, f in data.failed.items()} == {adb_off: 49001, stopped: 42002}


async def test_the_list_can_be_filtered_by_ids_or_serial_name(
    simulator: GeelarkSimulator, open_client: ClientFactory
) -> None:
    """``ids`` returns exactly those phones; ``serial_name`` narrows the listing."""
    async with open_client(simulator) as client:
        by_ids = await client.list_phones(ids=[seed_id(2), seed_id(4)])
        by_name = await client.list_phones(serial_name="phone-003")

    assert [p.id for p in by_ids.items] == [seed_id(2), seed_id(4)]
    assert [p.id for p in by_name.items] == [seed_id(3)]


@pytest.mark.parametrize(
    ("method", "args"),
    [("phone_status", (101,)), ("stop_phones", (101,)), ("start_phones", (201,))],
)
async def test_oversized_batches_are_refused_before_any_call(
    simulator: GeelarkSimulator, open_client: ClientFactory, method: str, args: tuple[int]
) -> None:
    """More ids than Geelark takes in one call is a programming error, caught locally."""
    ids = [str(700_000_000_000_000_000 + n) for n in range(args[0])]

    async with open_client(simulator) as client:
        with pytest.raises(ValueError, match="at most"):
            await getattr(client, method)(ids)

    assert simulator.admin.counters().total == 0


async def test_a_listing_keeps_each_phones_state_for_one_later_question(
    simulator: GeelarkSimulator, open_client: ClientFactory
) -> None:
    """Power states seen in /phone/list answer one status question each, while fresh."""
    async with open_client(simulator) as client:
        await client.list_phones()

        assert client.listed_status(seed_id(1), max_age=60) is PhoneStatus.SHUT_DOWN
        assert client.listed_status(seed_id(1), max_age=60) is None
        assert client.listed_status(seed_id(2), max_age=-1) is None  # older than asked for


@pytest.mark.looptime
async def test_the_budget_can_be_asked_whether_the_account_is_quiet() -> None:
    """Room for a call is not a quiet account: a minute with less than a sixth of it free is not
    quiet (what partial batches wait for); one with a sixth free still is."""
    settings = make_settings(requests_per_minute=30)  # a reserve of 5 calls in the minute
    limiter = build_rate_limiter(settings)
    client = make_client(settings, limiter=limiter)
    assert client.has_budget(keep_reserve=True)

    for _ in range(25):  # one a second: 25 of the minute's 30 spent
        await limiter.acquire()
        limiter.release()
        await let_virtual_time_pass(1)
    assert client.has_budget(keep_reserve=True)
    await limiter.acquire()
    limiter.release()

    assert client.has_budget()
    assert not client.has_budget(keep_reserve=True)  # 26 spent: less than a sixth left
    await client.close()


@pytest.mark.looptime
async def test_the_budget_can_be_asked_for_room_for_several_calls() -> None:
    """Room for ``calls`` calls is what a partial batch asks for: itself and the batches held."""
    settings = make_settings(requests_per_minute=5)
    limiter = build_rate_limiter(settings)
    client = make_client(settings, limiter=limiter)
    for _ in range(3):
        await limiter.acquire()
        limiter.release()
        await let_virtual_time_pass(10)

    assert client.has_budget(calls=2)
    assert not client.has_budget(calls=3)
    await client.close()


async def test_an_adb_switch_refused_as_not_running_raises_phone_not_ready_with_42002(
    simulator: GeelarkSimulator, open_client: ClientFactory
) -> None:
    """Per phone (the simulator's reading of adb/setStatus) or for the whole call (another
    reading no public source rules out), "not running" reaches the caller as PhoneNotReady with
    code 42002, never as a refusal the user must fix."""
    booting, running = seed_id(1), seed_id(2)
    simulator.admin.update_settings(boot_seconds=3600.0)
    async with open_client(simulator) as client:
        await client.start_phones([booting])
        reply = await client.set_adb([booting], open=True)
        assert reply.failed[booting].code == 42002
        fault = item_fault("enable ADB", reply.failed[booting])
        assert isinstance(fault, PhoneNotReady)
        assert fault.code == 42002

        simulator.admin.set_faults("adb/setStatus", code=42002)
        with pytest.raises(PhoneNotReady) as raised:
            await client.set_adb([running], open=True)
    assert raised.value.code == 42002
    assert simulator.admin.counters().calls("adb/setStatus") == 2


async def test_an_unreachable_geelark_names_the_address_and_the_variable_to_check() -> None:
    """Nothing listens at the URL: the error says where it tried, and which variable sets it."""
    port = free_port()
    settings = make_settings(url=f"http://127.0.0.1:{port}", max_attempts=1)

    async with make_client(settings) as client:
        with pytest.raises(GeelarkUnavailable) as caught:
            await client.list_phones()

    said = str(caught.value)
    assert f"Geelark could not be reached at http://127.0.0.1:{port} for " in said
    assert "could not connect" in said
    assert "check PHONEFLEET_GEELARK_URL" in said
