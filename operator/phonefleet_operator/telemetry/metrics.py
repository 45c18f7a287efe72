"""The operator's counters, gauges and histograms, and the decorators that record them.

Labels are bounded by construction: Geelark endpoints (a handful of paths in our own code),
outcomes and rate-limit codes (small fixed sets). Nothing is labelled per binding or per phone.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from phonefleet_operator.errors import (
    GeelarkAuthError,
    GeelarkRateLimited,
    GeelarkRequestError,
    GeelarkUnavailable,
)

__all__ = [
    "CLAIMS_CREATED",
    "CLAIMS_LOST",
    "GEELARK_RATE_LIMITED",
    "GEELARK_REACHABLE",
    "GEELARK_REQUESTS",
    "LEADER",
    "PODS_CREATED",
    "PODS_DELETED",
    "RECONCILE_DURATION",
    "RECONCILE_LAST_PASS",
    "RECONCILE_PASSES",
    "UNBOUND_RUNNING_LONGEST",
    "UNBOUND_RUNNING_PHONES",
    "WORKER_REQUESTS",
    "RateBudget",
    "count_calls",
    "count_creates",
    "geelark_budget",
    "geelark_outcome",
    "geelark_request",
    "reconcile_pass",
]

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")

# ----------------------------------------------------------------------------- reconcile passes

RECONCILE_PASSES: Final = Counter(
    "phonefleet_reconcile_passes",
    "Reconcile passes of PhoneBindings, by outcome (ok: the pass returned; error: it raised).",
    ["outcome"],
)
RECONCILE_DURATION: Final = Histogram(
    "phonefleet_reconcile_duration_seconds",
    "Wall time of one reconcile pass, status write included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RECONCILE_LAST_PASS: Final = Gauge(
    "phonefleet_reconcile_last_pass_timestamp_seconds",
    "Unix time at which the last reconcile pass ended.",
)

# ----------------------------------------------------------------------------- Geelark

GEELARK_REQUESTS: Final = Counter(
    "phonefleet_geelark_requests",
    "Requests to the Geelark Open API (retries count each), by endpoint and outcome: ok, "
    "rate_limited, unavailable (unreachable, timeout, 5xx, 50000), auth_failed, rejected, error.",
    ["endpoint", "outcome"],
)
GEELARK_RATE_LIMITED: Final = Counter(
    "phonefleet_geelark_rate_limit_answers",
    "Rate-limit answers from Geelark, by code (40007 and 40017 lift within the minute; 40014 "
    "locks the endpoint for two hours; 429 is the HTTP status).",
    ["code"],
)
#: Rate-limit answers exported at 0 from the start: ``increase()`` cannot see the first answer
#: of a series that appears with the value 1.
RATE_LIMIT_CODES: Final = ("40007", "40017", "40014", "429")
GEELARK_REACHABLE: Final = Gauge(
    "phonefleet_geelark_reachable",
    "1 when the last Geelark request got an answer (any code), 0 when it could not be asked.",
)

# ----------------------------------------------------------------------------- Kubernetes writes

CLAIMS_CREATED: Final = Counter(
    "phonefleet_claims_created", "PhoneClaims created: a binding took a phone."
)
CLAIMS_LOST: Final = Counter(
    "phonefleet_claims_lost",
    "PhoneClaim creates refused because a claim on that phone existed (a race lost, or the "
    "phone held by another binding).",
)
PODS_CREATED: Final = Counter("phonefleet_pods_created", "Worker pods created.")
PODS_DELETED: Final = Counter("phonefleet_pods_deleted", "Worker pod deletions requested.")
WORKER_REQUESTS: Final = Counter(
    "phonefleet_worker_requests",
    "HTTP requests to workers' job endpoints (validate, deliver, follow, cancel), answered or not.",
)

# ----------------------------------------------------------------------------- replicas

LEADER: Final = Gauge(
    "phonefleet_leader",
    "1 in the replica that works (it holds the leader Lease, or leader election is off), "
    "0 in a standby.",
)

# ----------------------------------------------------------------------------- billing

UNBOUND_RUNNING_PHONES: Final = Gauge(
    "phonefleet_unbound_running_phones",
    "Phones Geelark reports running or starting (billed per minute) that no live PhoneBinding "
    "runs (Bound or Running), at the last billing check.",
)
UNBOUND_RUNNING_LONGEST: Final = Gauge(
    "phonefleet_unbound_running_longest_seconds",
    "How long the longest of those phones has been seen running unbound (0 when none).",
)


# ----------------------------------------------------------------------------- decorators


def geelark_outcome(error: BaseException | None) -> tuple[str, str | None]:
    """(outcome label, rate-limit code or None) of one request that raised ``error`` (or not)."""
    if error is None:
        return "ok", None
    fault = getattr(error, "fault", error)  # the client's retry wrapper carries the fault
    if isinstance(fault, GeelarkRateLimited):
        return "rate_limited", str(fault.code)
    if isinstance(fault, GeelarkUnavailable):
        return "unavailable", None
    if isinstance(fault, GeelarkAuthError):
        return "auth_failed", None
    if isinstance(fault, GeelarkRequestError):
        return "rejected", None
    return "error", None


def _endpoint(path: str) -> str:
    return path.removeprefix("/open/v1/")


def geelark_request(
    send: Callable[Concatenate[S, str, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, str, P], Coroutine[Any, Any, T]]:
    """Count each request ``send(self, path, ...)`` makes, by endpoint and outcome."""

    @functools.wraps(send)
    async def counted(self: S, path: str, /, *args: P.args, **kwargs: P.kwargs) -> T:
        geelark_budget.spent()
        try:
            result = await send(self, path, *args, **kwargs)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            _record_geelark(path, error)
            raise
        _record_geelark(path, None)
        return result

    return counted


def _record_geelark(path: str, error: BaseException | None) -> None:
    outcome, code = geelark_outcome(error)
    GEELARK_REQUESTS.labels(endpoint=_endpoint(path), outcome=outcome).inc()
    if code is not None:
        GEELARK_RATE_LIMITED.labels(code=code).inc()
    if outcome != "error":
        GEELARK_REACHABLE.set(0 if outcome == "unavailable" else 1)


def reconcile_pass(
    run: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Count and time each reconcile pass."""

    @functools.wraps(run)
    async def timed(*args: P.args, **kwargs: P.kwargs) -> T:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await run(*args, **kwargs)
            outcome = "ok"
            return result
        finally:
            RECONCILE_DURATION.observe(time.perf_counter() - started)
            RECONCILE_PASSES.labels(outcome=outcome).inc()
            RECONCILE_LAST_PASS.set_to_current_time()

    return timed


def count_creates(
    created: Counter, existed: Counter | None = None
) -> Callable[[Callable[P, Coroutine[Any, Any, bool]]], Callable[P, Coroutine[Any, Any, bool]]]:
    """For a create that returns False when the object exists: count True in ``created``, False
    in ``existed``."""

    def decorate(
        create: Callable[P, Coroutine[Any, Any, bool]],
    ) -> Callable[P, Coroutine[Any, Any, bool]]:
        @functools.wraps(create)
        async def counted(*args: P.args, **kwargs: P.kwargs) -> bool:
            made = await create(*args, **kwargs)
            if made:
                created.inc()
            elif existed is not None:
                existed.inc()
            return made

        return counted

    return decorate


def count_calls(
    counter: Counter,
) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Count the calls that did something: returned (did not raise) and did not answer False
    (a create that found the object there, a delete the API server refused)."""

    def decorate(call: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(call)
        async def counted(*args: P.args, **kwargs: P.kwargs) -> T:
            result = await call(*args, **kwargs)
            if result is not False:
                counter.inc()
            return result

        return counted

    return decorate


# ----------------------------------------------------------------------------- rate budget


class RateBudget(Collector):
    """``phonefleet_geelark_rate_budget_remaining``: the configured requests per minute minus the
    requests sent in the last 60 s (Geelark counts per minute), and the budget itself."""

    WINDOW_SECONDS: Final = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sent: deque[float] = deque()
        self._per_minute: int | None = None

    def configure(self, per_minute: int) -> None:
        """The budget (``PHONEFLEET_GEELARK_REQUESTS_PER_MINUTE``); nothing is exported before.

        Also exports the rate-limit counters at 0 (see ``RATE_LIMIT_CODES``).
        """
        self._per_minute = per_minute
        for code in RATE_LIMIT_CODES:
            GEELARK_RATE_LIMITED.labels(code=code)

    def spent(self) -> None:
        """One request is about to be sent."""
        now = self._clock()
        self._sent.append(now)
        self._prune(now)

    def remaining(self) -> float:
        """Requests left in the last 60 s's budget (never below zero).

        Read by the /metrics scrape threads: they count on a copy (made in C, under the GIL,
        as deque's appends and pops are) and never remove, so that ``spent`` on the event loop
        is the deque's only writer. A scrape that pruned too could
        remove an entry between the loop's check of the oldest one and its ``popleft``: the
        loop then removed a request of the last minute, or raised on an emptied deque in a
        Geelark request (tests/unit/telemetry/test_rate_budget_scrape.py)."""
        now = self._clock()
        recent = sum(1 for sent in list(self._sent) if now - sent < self.WINDOW_SECONDS)
        return max(0.0, float(self._per_minute or 0) - recent)

    def _prune(self, now: float) -> None:
        """Forget the requests older than the window; on the event loop only."""
        while self._sent and now - self._sent[0] >= self.WINDOW_SECONDS:
            self._sent.popleft()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The two gauges, once configured."""
        if self._per_minute is None:
            return
        yield GaugeMetricFamily(
            "phonefleet_geelark_rate_budget_remaining",
            "Geelark requests the operator's budget still allows in the current 60 s window.",
            value=self.remaining(),
        )
        yield GaugeMetricFamily(
            "phonefleet_geelark_rate_budget_per_minute",
            "The operator's Geelark budget in requests per minute (Geelark's own limit is 200).",
            value=float(self._per_minute),
        )


geelark_budget: Final = RateBudget()
REGISTRY.register(geelark_budget)
