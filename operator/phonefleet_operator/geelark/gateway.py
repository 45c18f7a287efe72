"""The per-phone Geelark API the services use, batched across concurrent callers.

Each operation (start, stop, status, ADB on/off, ADB data) has one :class:`_Batcher`. The first
caller opens a gathering window of ``settings.batch_window_seconds``; every caller that arrives
before it closes joins the same Geelark call and keeps the window open for as long again, so the
call goes out once callers stop coming for a window (a lone caller waits one window), as soon as
the batch is full (100 ids; 200 for start and ADB), or after :data:`MAX_GATHER_SECONDS` at the
latest.
Each caller then gets its own phone's result, or the fault Geelark gave for that phone (see
:mod:`.faults`); a failure of the whole call (network, rate limit, auth) fails every caller of
that batch with the same exception.

A window that closes while the account's budget is spent (the client's rate limiter has no room
now) stays open: its call would only wait in the limiter, while its batch can still grow. Held
batches get the limiter's free slots one at a time, calls that set something going (start, ADB
on, stop) before polls (ADB data, then status), and go out when full or after
:data:`MAX_GATHER_SECONDS` in any case. A partial batch of status polls (each booting phone
comes on its own timer) also waits while the account is busy, to fill; a partial batch of any
other call (a cohort: the phones one status answer found running, the ADB reads due together
3 s later) goes as soon as the budget has room for it and for every batch already waiting.
So when a thousand bindings poll at once, they share a few full calls instead of queueing many
small ones behind the limiter, and a start is not kept waiting behind polls of phones that are
still booting (measured by ``make bench``).

A status question about a phone whose last answer was "running" is a *check* (a Running binding's
periodic pass, a binding re-asking while its pod comes up): it has its own batcher, last in line.
A check batch goes only while the budget has room that nothing else is waiting for (the account
quiet and no other batch held), keeps gathering while it waits, and waits at most
:data:`CHECK_DEFER_SECONDS`. At rest nothing contends and checks go as before; while a fleet comes
up, the phones still on their way get the budget first, and the checks go later in full batches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.geelark.client import (
    MAX_IDS_PER_ADB,
    MAX_IDS_PER_CALL,
    MAX_IDS_PER_START,
)
from phonefleet_operator.geelark.faults import (
    ALREADY_STARTING_CODES,
    PHONE_NOT_RUNNING,
    Operation,
    item_fault,
)
from phonefleet_operator.geelark.models import (
    MISSING_FROM_REPLY,
    AdbEndpoint,
    BatchResult,
    ItemFailure,
    PhoneState,
    PhoneStatus,
    StartResult,
)
from phonefleet_operator.settings import GeelarkSettings

__all__ = ["PhoneApi", "PhoneGateway"]

logger = logging.getLogger(__name__)

R = TypeVar("R")

#: Longest a partial batch keeps gathering while the budget is spent; then it queues for it.
MAX_GATHER_SECONDS = 5.0
#: Longest a check of a phone last seen running waits for budget that nothing else needs.
CHECK_DEFER_SECONDS = 20.0
#: How old a listing's power state may be to answer a binding's first status question: as old as
#: the inventory lets its listing get (``inventory_refresh_seconds``' default). What it answers
#: is safe to act on however old (below); with 30 s, a large fleet whose first passes came later
#: than that behind the API server asked each phone again before its start (50 status calls at
#: N = 5,000 under load: docs/scale.md, "Round 6b").
LISTING_FRESH_SECONDS = 300.0
#: Listed states safe to act on when old: each leads to a start (idempotent: a phone started
#: meanwhile answers "already started") or a poll that asks again.
_TRUSTED_LISTED = frozenset({PhoneStatus.SHUT_DOWN, PhoneStatus.STARTING})
#: Share of the account's budget that polls of booting phones and ADB may take on average; the
#: rest stays for the calls that set something going (start, ADB on) and for the periodic checks.
POLL_BUDGET_SHARE = 0.5
#: How often the budget is looked at while batches are held back.
_BUDGET_RECHECK_SECONDS = 0.05
#: Which held-back batch gets a free slot first: what sets something going, then polls.
_PRIORITY: dict[Operation, int] = {
    "start": 3,
    "enable ADB": 2,
    "stop": 2,
    "disable ADB": 2,
    "read ADB data": 1,
    "status": 0,
}
#: Checks of phones last seen running come after every other batch.
_CHECK_PRIORITY = -1


class PhoneApi(Protocol):
    """The batch calls of :class:`~.client.GeelarkClient` the gateway needs (fakes implement it)."""

    async def phone_status(self, ids: Sequence[str]) -> BatchResult[PhoneState]: ...

    async def start_phones(self, ids: Sequence[str]) -> BatchResult[StartResult]: ...

    async def stop_phones(self, ids: Sequence[str]) -> BatchResult[None]: ...

    async def set_adb(self, ids: Sequence[str], open: bool) -> BatchResult[None]: ...

    async def adb_data(self, ids: Sequence[str]) -> BatchResult[AdbEndpoint]: ...

    def has_budget(self, *, keep_reserve: bool = False, calls: int = 1) -> bool:
        """Whether ``calls`` calls could be sent now without waiting (or one, with the account
        quiet)."""
        ...

    def listed_status(self, phone_id: str, max_age: float) -> PhoneStatus | None:
        """A phone's power state from a recent listing, usable once; None if there is none."""
        ...


class _BudgetQueue:
    """Hands the rate limiter's free slots to batches held back while the budget was spent.

    A full batch goes as soon as one call fits. A partial batch of status polls only while the
    account is quiet (a sixth of the minute free and no call queued, ``pace.py``),
    so that under sustained demand the polls keep gathering instead of taking each slot as it
    frees up (in a small fleet or at rest nothing waits): ``make bench`` at N = 1,000 sent
    status batches 59-67 % full when any room was enough. A partial batch of another call goes
    when the budget has room for it and for every other batch held: its phones came together
    (one status answer's running phones, or the ADB reads of one switch, due at the same
    moment), so waiting would not fill it, and it takes no slot that another batch waits for.
    ``make bench`` at N = 1,000 (round 4) showed the quiet account's price for them: ADB
    switches one a second for 8 s while the budget had room (docs/scale.md, Round 5a).
    """

    def __init__(self, has_budget: Callable[..., bool]) -> None:
        self._has_budget = has_budget
        self._held: list[_Batcher[Any]] = []
        self._timer: asyncio.TimerHandle | None = None

    def _room_for(self, batcher: _Batcher[Any]) -> bool:
        if batcher.deferrable:
            # Only budget nobody else waits for: no batch held, the account quiet.
            others = any(b.waiting and not b.deferrable for b in self._held)
            return not others and bool(self._has_budget(keep_reserve=True))
        if batcher.full:
            return bool(self._has_budget())
        if batcher.fills_while_busy:
            return bool(self._has_budget(keep_reserve=True))
        ahead = sum(1 for b in self._held if b is not batcher and b.waiting and not b.deferrable)
        return bool(self._has_budget(calls=1 + ahead))

    def ready(self, batcher: _Batcher[Any]) -> None:
        """``batcher`` has a batch to send: now if there is room and nothing waits, else later."""
        if not self._held and self._room_for(batcher):
            batcher.send_one()
        if batcher.waiting and batcher not in self._held:
            self._held.append(batcher)
        self._schedule()

    def _schedule(self) -> None:
        self._held = [b for b in self._held if b.waiting]
        if self._timer is None and self._held:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(_BUDGET_RECHECK_SECONDS, self._release)

    def _release(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        for batcher in self._held:
            while batcher.waiting and batcher.waiting_since(now) >= batcher.max_gather:
                batcher.send_one()  # waited long enough: queue for the budget like any call
        self._held = [b for b in self._held if b.waiting]
        eligible = [b for b in self._held if self._room_for(b)]
        if eligible:
            # One batch per look: its call takes the slot only once its task runs.
            max(eligible, key=lambda b: (b.priority, b.size)).send_one()
        self._schedule()


class _Batcher(Generic[R]):
    """Gathers phone ids from concurrent callers into batch calls of at most ``max_ids``."""

    def __init__(
        self,
        operation: Operation,
        send: Callable[[list[str]], Awaitable[BatchResult[R]]],
        *,
        max_ids: int,
        window: float,
        on_failure: Callable[[ItemFailure], R | PhonefleetError],
        budget: _BudgetQueue,
        deferrable: bool = False,
    ) -> None:
        self._operation: Operation = operation
        self._send = send
        self._max_ids = max_ids
        self._window = window
        self._on_failure = on_failure
        self._budget = budget
        #: Sent only with budget to spare (see :class:`_BudgetQueue`), for this long at most.
        self.deferrable = deferrable
        self.priority = _CHECK_PRIORITY if deferrable else _PRIORITY[operation]
        #: Status polls come on each phone's own timer: a partial batch waits to fill while the
        #: account is busy. Other calls come in cohorts (see :class:`_BudgetQueue`).
        self.fills_while_busy = operation == "status" and not deferrable
        self._pending: dict[str, list[asyncio.Future[R]]] = {}
        self._opened_at: float | None = None
        self._last_joined = 0.0
        self._timer: asyncio.TimerHandle | None = None
        # Batches done gathering (full, or their window closed) that wait for the budget.
        self._ready: list[tuple[float, dict[str, list[asyncio.Future[R]]]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> bool:
        """Whether a batch is done gathering and waits to be sent."""
        return bool(self._ready)

    @property
    def full(self) -> bool:
        """Whether the next batch to send is full."""
        return self.size >= self._max_ids

    @property
    def size(self) -> int:
        """Phones in the next batch to send."""
        return len(self._ready[0][1]) if self._ready else 0

    @property
    def max_gather(self) -> float:
        """Longest a batch done gathering waits for the budget before it queues like any call."""
        return CHECK_DEFER_SECONDS if self.deferrable else MAX_GATHER_SECONDS

    def waiting_since(self, now: float) -> float:
        """Seconds since the next batch to send was opened."""
        return now - self._ready[0][0] if self._ready else 0.0

    async def submit(self, phone_id: str) -> R:
        """Wait for the batch holding ``phone_id`` and return this phone's result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if self._ready and len(self._ready[-1][1]) < self._max_ids:
            # A batch waiting for the budget keeps gathering until it is sent.
            self._ready[-1][1].setdefault(phone_id, []).append(future)
            return await future
        self._pending.setdefault(phone_id, []).append(future)
        self._last_joined = loop.time()
        if len(self._pending) >= self._max_ids:
            self._close()  # full: it cannot grow, it only waits for the budget
        elif self._opened_at is None:
            self._opened_at = self._last_joined
            self._timer = loop.call_later(self._window, self._window_closed)
        return await future

    def _window_closed(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        quiet_from = self._last_joined + self._window
        opened = self._opened_at if self._opened_at is not None else now
        if now < quiet_from and now - opened < MAX_GATHER_SECONDS:
            # Callers are still coming: keep gathering until a window passes without one.
            self._timer = loop.call_later(quiet_from - now, self._window_closed)
            return
        self._timer = None
        self._close()

    def _close(self) -> None:
        """Stop gathering: the batch waits for a slot of the budget (often none is needed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        opened = self._opened_at if self._opened_at is not None else self._last_joined
        batch, self._pending, self._opened_at = self._pending, {}, None
        if batch:
            self._ready.append((opened, batch))
            self._budget.ready(self)

    def send_one(self) -> None:
        """Send the oldest batch that is done gathering."""
        if not self._ready:
            return
        _, batch = self._ready.pop(0)
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _run(self, batch: dict[str, list[asyncio.Future[R]]]) -> None:
        ids = list(batch)
        logger.debug("Sending a batch to %s %d phones", self._operation, len(ids))
        try:
            result = await self._send(ids)
        except asyncio.CancelledError:
            for futures in batch.values():
                for future in futures:
                    future.cancel()
            raise
        except Exception as exc:
            # The whole call failed: every caller of the batch gets the same fault.
            for futures in batch.values():
                _deliver(futures, exc)
            return
        for phone_id, futures in batch.items():
            if phone_id in result.succeeded:
                _deliver(futures, result.succeeded[phone_id])
            else:
                failure = result.failed.get(phone_id) or ItemFailure(
                    id=phone_id, code=MISSING_FROM_REPLY
                )
                _deliver(futures, self._on_failure(failure))

    async def aclose(self) -> None:
        """Send what is pending now and wait for every batch in flight."""
        self._close()
        while self._ready:
            self.send_one()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)


class PhoneGateway:
    """Start, stop, status and ADB of single phones, merged into batch calls behind the scenes.

    One instance serves the whole operator (the batches gather across bindings). Close it with
    :meth:`aclose` on shutdown so that no caller is left waiting on a batch.
    """

    def __init__(self, api: PhoneApi, settings: GeelarkSettings) -> None:
        """Batch calls to ``api`` with the window of ``settings.batch_window_seconds``."""
        window = settings.batch_window_seconds
        self._live_view_in_status = settings.live_view_in_status
        self._polls_per_second = (
            settings.requests_per_minute / 60 * POLL_BUDGET_SHARE * MAX_IDS_PER_CALL
        )
        budget = _BudgetQueue(api.has_budget)
        self._listed_status = api.listed_status
        # Each phone's last power state from a status answer, or "running" from an ADB switch
        # or read Geelark took (it takes them of running phones only): "running" makes the next
        # question about it a check (bounded by the account's phones; a stop or start drops it).
        self._last_power: dict[str, PhoneStatus] = {}

        async def status(ids: list[str]) -> BatchResult[PhoneState]:
            result = await api.phone_status(ids)
            for phone_id, state in result.succeeded.items():
                self._last_power[phone_id] = state.status
            for phone_id in result.failed:
                self._last_power.pop(phone_id, None)
            return result

        def batcher(
            operation: Operation,
            send: Callable[[list[str]], Awaitable[BatchResult[R]]],
            **options: Any,
        ) -> _Batcher[R]:
            """A batcher on this gateway's window and budget: 100 ids a call and the operation's
            own fault for a failed id, unless ``options`` say otherwise."""
            return _Batcher(
                operation,
                send,
                window=window,
                budget=budget,
                **{"max_ids": MAX_IDS_PER_CALL, "on_failure": _fault(operation), **options},
            )

        async def enable(ids: list[str]) -> BatchResult[None]:
            result = await api.set_adb(ids, True)
            self._ran(result.succeeded)
            return result

        async def adb_data(ids: list[str]) -> BatchResult[AdbEndpoint]:
            result = await api.adb_data(ids)
            self._ran(result.succeeded)
            for phone_id, failure in result.failed.items():
                if failure.code == PHONE_NOT_RUNNING:
                    self._last_power.pop(phone_id, None)
            return result

        async def disable(ids: list[str]) -> BatchResult[None]:
            return await api.set_adb(ids, False)

        self._start = batcher(
            "start", api.start_phones, max_ids=MAX_IDS_PER_START, on_failure=_start_failure
        )
        self._stop = batcher("stop", api.stop_phones)
        self._status = batcher("status", status)
        self._checks = batcher("status", status, deferrable=True)
        self._adb_on = batcher("enable ADB", enable, max_ids=MAX_IDS_PER_ADB)
        self._adb_off = batcher("disable ADB", disable, max_ids=MAX_IDS_PER_ADB)
        self._adb_data = batcher("read ADB data", adb_data, max_ids=MAX_IDS_PER_ADB)

    def _ran(self, phone_ids: Iterable[str]) -> None:
        """Geelark took an ADB call for these phones: they ran (their next status is a check)."""
        for phone_id in phone_ids:
            self._last_power[phone_id] = PhoneStatus.RUNNING

    def poll_interval(self, phones: int) -> float:
        """Seconds between two polls of each of ``phones`` phones that keeps all their polls
        (in full batches) within :data:`POLL_BUDGET_SHARE` of the account's budget.

        A thousand phones booting at once, each polled every 2 s, would ask for five full
        status calls a second where the budget allows two: the polls would crowd out the ADB
        calls of the phones already up (measured by ``make bench``). Few phones: 0.
        """
        return phones / self._polls_per_second

    async def start(self, phone_id: str) -> StartResult:
        """Start the phone (``energySavingMode`` 0); a phone already starting counts as started.

        The result carries the live-view link only with ``settings.live_view_in_status``.

        Raises PhoneNotFound (42001), GeelarkRequestError (43004 expired, others), PhoneBusy
        (43005-43007), GeelarkRateLimited (43008 daily limit), GeelarkUnavailable (transient).
        """
        self._last_power.pop(phone_id, None)
        started = await self._start.submit(phone_id)
        if started.url is None or self._live_view_in_status:
            return started
        # The link opens the phone in a browser: a capability, kept out of what callers store.
        logger.debug("Started phone %s; its live view is at %s", phone_id, started.url)
        return started.model_copy(update={"url": None})

    async def stop(self, phone_id: str) -> None:
        """Stop the phone; stopping a stopped phone succeeds. 42001 raises PhoneNotFound."""
        self._last_power.pop(phone_id, None)
        await self._stop.submit(phone_id)

    async def status(self, phone_id: str) -> PhoneStatus:
        """The phone's power state. 42001 raises PhoneNotFound.

        Right after the listing that resolved a phone, the listing's answer is used once when it
        says the phone is off or starting: what follows (a start, which is idempotent, or a later
        poll) asks Geelark again anyway. "Running" and "expired" are always asked for.

        A phone whose last answer was "running" is checked, last in line for the budget (see
        the module's docstring); any other phone is polled with the urgency of a booting one.
        """
        listed = self._listed_status(phone_id, LISTING_FRESH_SECONDS)
        if listed in _TRUSTED_LISTED:
            return listed
        running = self._last_power.get(phone_id) is PhoneStatus.RUNNING
        batcher = self._checks if running else self._status
        return (await batcher.submit(phone_id)).status

    async def statuses(self, phone_ids: Iterable[str]) -> dict[str, PhoneStatus | PhonefleetError]:
        """Each phone's power state, or the fault that stopped Geelark from telling it.

        Never raises: a phone Geelark does not know maps to PhoneNotFound, a phone whose batch
        could not be sent maps to that batch's GeelarkUnavailable, and so on.
        """
        ids = list(dict.fromkeys(phone_ids))
        outcomes = await asyncio.gather(
            *(self._status.submit(phone_id) for phone_id in ids), return_exceptions=True
        )
        result: dict[str, PhoneStatus | PhonefleetError] = {}
        for phone_id, outcome in zip(ids, outcomes, strict=True):
            if isinstance(outcome, PhoneState):
                result[phone_id] = outcome.status
            elif isinstance(outcome, PhonefleetError):
                result[phone_id] = outcome
            else:
                raise outcome
        return result

    async def enable_adb(self, phone_id: str) -> None:
        """Ask Geelark to enable ADB (usable about 3 s later).

        Raises PhoneNotReady with code 42002 when Geelark refuses it because the phone does not
        run (per phone, or for the whole call)."""
        await self._adb_on.submit(phone_id)

    async def disable_adb(self, phone_id: str) -> None:
        """Ask Geelark to disable ADB (disable then enable clears a stuck endpoint)."""
        await self._adb_off.submit(phone_id)

    async def adb_endpoint(self, phone_id: str) -> AdbEndpoint:
        """The phone's ADB ip, port and password; fetch again after every start.

        Raises PhoneNotReady (42002 not running, 49001 ADB not enabled yet) or
        GeelarkRequestError (49002: this phone model has no ADB).
        """
        return await self._adb_data.submit(phone_id)

    async def aclose(self) -> None:
        """Send every pending batch and wait for the batches in flight."""
        for batcher in (
            self._start,
            self._stop,
            self._status,
            self._checks,
            self._adb_on,
            self._adb_off,
            self._adb_data,
        ):
            await batcher.aclose()


def _deliver(futures: Iterable[asyncio.Future[R]], outcome: R | Exception) -> None:
    """Resolve the futures still waiting (a cancelled caller's future is already done)."""
    for future in futures:
        if future.done():
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _fault(operation: Operation) -> Callable[[ItemFailure], PhonefleetError]:
    def on_failure(failure: ItemFailure) -> PhonefleetError:
        return item_fault(operation, failure)

    return on_failure


def _start_failure(failure: ItemFailure) -> StartResult | PhonefleetError:
    if failure.code in ALREADY_STARTING_CODES:
        return StartResult(id=failure.id, already_started=True)
    return item_fault("start", failure)
