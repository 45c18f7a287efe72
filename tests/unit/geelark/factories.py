"""Factories and in-memory fakes for the Geelark tests: settings, phones, lister, batch API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import looptime

from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.geelark import (
    AdbEndpoint,
    BatchResult,
    CallPace,
    GeelarkClient,
    ItemFailure,
    Phone,
    PhonePage,
    PhoneState,
    PhoneStatus,
    StartResult,
)
from phonefleet_operator.settings import GeelarkSettings
from phonefleet_testbed.geelark_sim import (
    DEFAULT_API_KEY,
    DEFAULT_APP_ID,
    DEFAULT_TOKEN,
    seed_id,
    seed_name,
)


async def let_time_pass(seconds: float) -> None:
    """Let ``seconds`` pass on the loop's clock: virtual under ``pytest.mark.looptime``.

    Only for tests marked looptime, where the loop jumps to its next timer at once: no real
    time passes, so the steps are exact whatever the machine's load.
    """
    loop = asyncio.get_running_loop()
    if not isinstance(loop, looptime.LoopTimeEventLoop) or not loop.looptime_on:
        raise RuntimeError("let_time_pass needs a test marked pytest.mark.looptime")
    await asyncio.sleep(seconds)


def make_settings(**overrides: Any) -> GeelarkSettings:
    """Settings in token mode with test-sized timings; any field can be overridden."""
    values: dict[str, Any] = {
        "url": "http://127.0.0.1:9",
        "token": DEFAULT_TOKEN,
        "timeout_seconds": 5.0,
        "requests_per_minute": 6000,
        "account_requests_per_minute": 60_000,  # an account these tests never come near
        "max_attempts": 3,
        "batch_window_seconds": 0.05,
        "inventory_refresh_seconds": 300.0,
        "inventory_miss_refresh_seconds": 15.0,
        "credentials_secret": "phonefleet-system/geelark-credentials",
    }
    values.update(overrides)
    return GeelarkSettings(**values)


def make_key_settings(**overrides: Any) -> GeelarkSettings:
    """Settings in key mode (appId + apiKey) matching the simulator's defaults."""
    values: dict[str, Any] = {"token": None, "app_id": DEFAULT_APP_ID, "api_key": DEFAULT_API_KEY}
    values.update(overrides)
    return make_settings(**values)


def make_phone(number: int, **overrides: Any) -> Phone:
    """Phone number ``number`` as the simulator seeds it (id seed_id(n), name phone-00n)."""
    values: dict[str, Any] = {
        "id": seed_id(number),
        "serial_name": seed_name(number),
        "serial_no": str(number),
        "status": PhoneStatus.SHUT_DOWN,
    }
    values.update(overrides)
    return Phone(**values)


def make_client(settings: GeelarkSettings, **overrides: Any) -> GeelarkClient:
    """A client whose retry waits are short enough for tests (still exponential with jitter)."""
    return GeelarkClient(
        settings, backoff_initial_seconds=0.01, backoff_max_seconds=0.05, **overrides
    )


class Clock:
    """A manual monotonic clock for the inventory's intervals."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@dataclass
class FakeLister:
    """An in-memory ``/phone/list`` that pages like Geelark and records every call."""

    phones: list[Phone]
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail_with: PhonefleetError | None = None
    gate: asyncio.Event | None = None
    """When set, every call waits for it: lets a test hold a refresh in flight."""

    async def list_phones(
        self,
        page: int = 1,
        page_size: int = 100,
        *,
        ids: Sequence[str] | None = None,
        serial_name: str | None = None,
    ) -> PhonePage:
        """Serve one page, filtered like the simulator does."""
        self.calls.append({"page": page, "ids": ids, "serial_name": serial_name})
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        if ids is not None:
            items = [p for p in self.phones if p.id in ids]
            return PhonePage(total=len(items), page=1, page_size=page_size, items=tuple(items))
        matches = [p for p in self.phones if serial_name is None or p.serial_name == serial_name]
        shown = matches[(page - 1) * page_size : page * page_size]
        return PhonePage(total=len(matches), page=page, page_size=page_size, items=tuple(shown))


Outcome = Callable[[str], Any]


@dataclass
class FakePhoneApi:
    """An in-memory batch API: records each call's ids and answers per id from ``failures``."""

    failures: dict[str, int] = field(default_factory=dict)
    """Per-id failure codes; every other id succeeds."""
    fail_whole_call_with: Exception | None = None
    calls: list[tuple[str, list[str]]] = field(default_factory=list)
    listed: dict[str, PhoneStatus] = field(default_factory=dict)
    """Power states a fresh listing reported; each answers one status question."""
    budget_spent: bool = False
    """While True, ``has_budget`` says the rate limiter has no room."""
    reserve_spent: bool = False
    """While True, there is room for a call but the account is not quiet (no reserve)."""
    room: int | None = None
    """Calls the rate limiter has room for now (None: as many as asked for, budget permitting)."""

    def _split(self, name: str, ids: Sequence[str], make: Outcome) -> BatchResult[Any]:
        self.calls.append((name, list(ids)))
        if self.fail_whole_call_with is not None:
            raise self.fail_whole_call_with
        failed = {
            i: ItemFailure(id=i, code=self.failures[i], msg="refused")
            for i in ids
            if i in self.failures
        }
        succeeded = {i: make(i) for i in ids if i not in failed}
        return BatchResult(succeeded=succeeded, failed=failed)

    async def phone_status(self, ids: Sequence[str]) -> BatchResult[PhoneState]:
        """Every phone known here is running."""
        return self._split("status", ids, lambda i: PhoneState(id=i, status=PhoneStatus.RUNNING))

    async def start_phones(self, ids: Sequence[str]) -> BatchResult[StartResult]:
        """Starts answer a live-view URL naming the phone."""
        return self._split("start", ids, lambda i: StartResult(id=i, url=f"https://live/{i}"))

    async def stop_phones(self, ids: Sequence[str]) -> BatchResult[None]:
        """Stops answer nothing per phone."""
        return self._split("stop", ids, lambda i: None)

    async def set_adb(self, ids: Sequence[str], open: bool) -> BatchResult[None]:
        """ADB switches answer nothing per phone."""
        return self._split("adb on" if open else "adb off", ids, lambda i: None)

    async def adb_data(self, ids: Sequence[str]) -> BatchResult[AdbEndpoint]:
        """Every phone's ADB is at 10.0.0.1 with a password derived from its id."""
        return self._split(
            "adb data",
            ids,
            lambda i: AdbEndpoint(id=i, ip="10.0.0.1", port=5555, password=f"pw-{i}"),
        )

    def has_budget(self, *, keep_reserve: bool = False, calls: int = 1) -> bool:
        """The budget is spent while ``budget_spent`` is set (reserve or not); the reserve
        alone while ``reserve_spent`` is; room for ``room`` calls at most when it is set."""
        if self.room is not None and calls > self.room:
            return False
        return not self.budget_spent and not (keep_reserve and self.reserve_spent)

    def listed_status(self, phone_id: str, max_age: float) -> PhoneStatus | None:
        """What ``listed`` says about the phone, once (as if a listing had just reported it)."""
        return self.listed.pop(phone_id, None)


class CountingLimiter(CallPace):
    """A pace that never holds a call back and counts acquisitions."""

    def __init__(self) -> None:
        super().__init__(1_000_000, burst=1_000_000)
        self.acquired = 0

    async def acquire(self) -> None:
        """Count, then acquire as usual."""
        self.acquired += 1
        await super().acquire()
