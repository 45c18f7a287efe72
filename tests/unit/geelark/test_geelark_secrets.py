"""Specification that credentials, signatures and ADB passwords never reach logs or errors."""

from __future__ import annotations

import itertools
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable

import pytest

from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.geelark import (
    AdbEndpoint,
    PhoneGateway,
    PhoneInventory,
    sign_request,
)
from phonefleet_operator.settings import GeelarkSettings
from phonefleet_testbed.geelark_sim import GeelarkSimulator, seed_id

from .conftest import SimulatorFactory
from .factories import make_client, make_settings

TOKEN = "tok-SECRET-7f3a9c"
APP_ID = "app-id-42"
API_KEY = "key-SECRET-91bc4e"
WRONG_TOKEN = "tok-WRONG-SECRET-55aa"
WRONG_KEY = "key-WRONG-SECRET-66bb"
NOW_NS = 1_716_972_892_166_000_000


class TraceIds:
    """Deterministic trace ids, remembered so that every signature sent can be recomputed."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self.issued: list[str] = []

    def __call__(self) -> str:
        trace_id = str(uuid.UUID(int=next(self._counter)))
        self.issued.append(trace_id)
        return trace_id


async def exercise(
    simulator: GeelarkSimulator, settings: GeelarkSettings, new_trace_id: Callable[[], str]
) -> tuple[list[BaseException], list[AdbEndpoint]]:
    """Drive every kind of call, good and failing, and collect what the callers saw."""
    raised: list[BaseException] = []
    endpoints: list[AdbEndpoint] = []
    async with make_client(
        settings, new_trace_id=new_trace_id, wall_clock_ns=lambda: NOW_NS
    ) as client:
        inventory = PhoneInventory(client, settings)
        gateway = PhoneGateway(client, settings)
        steps: list[Callable[[], Awaitable[object]]] = [
            lambda: inventory.resolve("phone-001"),
            lambda: gateway.start(seed_id(1)),
            lambda: gateway.enable_adb(seed_id(1)),
            lambda: gateway.adb_endpoint(seed_id(1)),
            lambda: gateway.adb_endpoint(seed_id(2)),  # not running: 42002
            lambda: gateway.start("699999999999999999"),  # not found: 42001
        ]
        for step in steps:
            try:
                result = await step()
            except PhonefleetError as error:
                raised.append(error)
            else:
                if isinstance(result, AdbEndpoint):
                    endpoints.append(result)
        simulator.admin.set_faults("phone/status", code=50000)
        simulator.admin.set_faults("phone/stop", outage=True)
        failing_steps: list[Callable[[], Awaitable[object]]] = [
            lambda: gateway.status(seed_id(1)),
            lambda: gateway.stop(seed_id(1)),
        ]
        for failing in failing_steps:
            try:
                await failing()
            except PhonefleetError as error:
                raised.append(error)
        simulator.admin.clear_faults()
        await gateway.aclose()
    return raised, endpoints


@pytest.mark.parametrize(
    "credentials",
    [
        {"token": TOKEN},
        {"token": None, "app_id": APP_ID, "api_key": API_KEY},
        {"token": WRONG_TOKEN},
        {"token": None, "app_id": APP_ID, "api_key": WRONG_KEY},
    ],
    ids=["token mode", "key mode", "wrong token", "wrong key"],
)
async def test_no_secret_appears_in_any_log_record_or_raised_error(
    start_simulator: SimulatorFactory,
    caplog: pytest.LogCaptureFixture,
    credentials: dict[str, str | None],
) -> None:
    """At DEBUG, through successes, per-item failures, retries and outages, no secret is shown."""
    simulator = start_simulator(phones=3, token=TOKEN, app_id=APP_ID, api_key=API_KEY)
    settings = make_settings(url=simulator.base_url, max_attempts=2, **credentials)
    trace_ids = TraceIds()
    caplog.set_level(logging.DEBUG)

    raised, endpoints = await exercise(simulator, settings, trace_ids)

    key = settings.api_key.get_secret_value() if settings.api_key else None
    signatures = [
        sign_request(APP_ID, t, str(NOW_NS // 1_000_000), t[:6], key)
        for t in trace_ids.issued
        if key
    ]
    passwords = [p.adb_password for p in simulator.admin.phones() if p.adb_password]
    secrets = [TOKEN, API_KEY, WRONG_TOKEN, WRONG_KEY, *signatures, *passwords]
    formatter = logging.Formatter()
    texts = [
        *(formatter.format(record) for record in caplog.records),
        *(repr(record.args) for record in caplog.records),
        *("".join(traceback.format_exception(error)) + repr(error) for error in raised),
        *(repr(endpoint) + str(endpoint) for endpoint in endpoints),
    ]
    assert raised, "the scenario must include failing calls"
    assert trace_ids.issued, "the scenario must reach Geelark"
    leaks = [s for s in secrets if any(s in text for text in texts)]
    assert leaks == []


@pytest.mark.parametrize("code", [42002, 43005, 50000, 41999], ids=["known", "busy", "5xx", "new"])
@pytest.mark.parametrize(
    "credentials",
    [{"token": TOKEN}, {"token": None, "app_id": APP_ID, "api_key": API_KEY}],
    ids=["token mode", "key mode"],
)
async def test_per_item_messages_that_echo_a_credential_are_scrubbed(
    start_simulator: SimulatorFactory, credentials: dict[str, str | None], code: int
) -> None:
    """A phone Geelark refuses with a message quoting the token or key: the fault never shows it."""
    simulator = start_simulator(phones=1, token=TOKEN, app_id=APP_ID, api_key=API_KEY)
    settings = make_settings(url=simulator.base_url, max_attempts=1, **credentials)
    sent = [c for c in (credentials.get("token"), credentials.get("api_key")) if c]
    echo = "header check failed: " + ", ".join(sent)
    refusal = {"data": {"failDetails": [{"id": seed_id(1), "code": code, "msg": echo}]}}
    raised: list[BaseException] = []
    async with make_client(settings) as client:
        gateway = PhoneGateway(client, settings)
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "phone/start": lambda: gateway.start(seed_id(1)),
            "phone/stop": lambda: gateway.stop(seed_id(1)),
            "phone/status": lambda: gateway.status(seed_id(1)),
            "adb/setStatus": lambda: gateway.enable_adb(seed_id(1)),
            "adb/getData": lambda: gateway.adb_endpoint(seed_id(1)),
        }
        for endpoint, call in calls.items():
            simulator.admin.set_faults(endpoint, reply=refusal, times=1)
            with pytest.raises(PhonefleetError) as refused:
                await call()
            raised.append(refused.value)
        await gateway.aclose()

    texts = ["".join(traceback.format_exception(error)) + repr(error) for error in raised]
    assert len(raised) == len(calls)
    assert all(str(code) in text for text in texts)
    assert [s for s in sent if any(s in text for text in texts)] == []
