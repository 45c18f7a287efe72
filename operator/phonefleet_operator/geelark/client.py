"""The one HTTP client of the Geelark Open API: signing, rate limiting, retries and reply parsing.

Every call is a JSON ``POST`` to ``/open/v1/...`` and goes, in this order, through:

1. the 2-hour lock of an endpoint that answered 40014 (fail fast instead of asking again);
2. one :class:`~phonefleet_operator.geelark.pace.CallPace` shared by every call of the client,
   retries included: at most ``requests_per_minute`` calls in any rolling 60 s, in short bursts;
3. fresh authentication headers (token mode or key mode, a new ``traceId`` each time);
4. a deadline of ``settings.timeout_seconds``;
5. envelope parsing: HTTP status, then ``code``, mapped onto :mod:`phonefleet_operator.errors`.

Calls are retried with exponential back-off and jitter (tenacity) when the fault is transient:
network errors, timeouts, HTTP 5xx and 429, code 50000, and the short rate limits 40007/40017.
Every call here is idempotent per phone, so a retry after an unknown outcome is safe. Auth errors,
malformed requests and the hourly lock 40014 are never retried.

Secrets (token, API key, signature) live only in the request headers: they are never logged,
never put into an exception message, and Geelark's own messages are scrubbed of them.
"""

from __future__ import annotations

import hashlib
import logging
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from phonefleet_operator.errors import (
    GeelarkAuthError,
    GeelarkRateLimited,
    GeelarkRequestError,
    GeelarkUnavailable,
    PhonefleetError,
    PhoneNotReady,
)
from phonefleet_operator.fence import Fence
from phonefleet_operator.geelark.faults import PHONE_NOT_RUNNING
from phonefleet_operator.geelark.models import (
    MISSING_FROM_REPLY,
    AdbEndpoint,
    BatchResult,
    ItemFailure,
    PhonePage,
    PhoneState,
    PhoneStatus,
    StartResult,
)
from phonefleet_operator.geelark.pace import CallPace
from phonefleet_operator.settings import GeelarkSettings
from phonefleet_operator.telemetry import geelark_request

__all__ = [
    "MAX_IDS_PER_ADB",
    "MAX_IDS_PER_CALL",
    "MAX_IDS_PER_START",
    "MAX_PAGE_SIZE",
    "GeelarkClient",
    "build_auth_headers",
    "build_rate_limiter",
    "sign_request",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: Geelark's limits on one call: list and status take 100 ids, start 200 (its reference says so).
#: Its reference states no limit for the ADB calls (``adb/setStatus``, ``adb/getData``): they
#: get the documented 100 of the other phone calls, since a call refused for its size in
#: production would hold every phone in it back (docs/scale.md "Round 6b").
MAX_PAGE_SIZE: Final = 100
MAX_IDS_PER_CALL: Final = 100
MAX_IDS_PER_START: Final = 200
MAX_IDS_PER_ADB: Final = 100

#: Codes that mean "these credentials are wrong": the user must fix the Secret.
AUTH_CODES: Final[Mapping[int, str]] = {
    40003: "the signature was rejected",
    40013: "the user was not found",
    40015: "the account has no permission for this call",
    40016: "this IP address is not allowed",
}
#: Short rate limits: they lift within the minute, so a retry with back-off is right.
SHORT_RATE_LIMIT_CODES: Final = frozenset({40007, 40017})
#: The hourly budget is spent: Geelark locks the endpoint for two hours.
HOURLY_LOCK_CODE: Final = 40014
HOURLY_LOCK_SECONDS: Final = 2 * 60 * 60.0
#: The calls that change nothing: they pass a closed fence (``fence.py``), every other is refused.
READ_ONLY_PATHS: Final = frozenset(
    {"/open/v1/phone/list", "/open/v1/phone/status", "/open/v1/adb/getData"}
)
#: Geelark's internal error: transient.
INTERNAL_ERROR_CODE: Final = 50000

#: Delay kopf waits after a call gave up on a short rate limit ("lifts next minute").
RATE_LIMIT_DELAY_SECONDS: Final = 60.0
#: Delay before a phone answered "not running" for a whole call is asked about again.
NOT_RUNNING_DELAY_SECONDS: Final = 5.0
#: Delay kopf waits after Geelark stayed unreachable through every attempt.
UNAVAILABLE_DELAY_SECONDS: Final = 30.0


def sign_request(app_id: str, trace_id: str, ts: str, nonce: str, api_key: str) -> str:
    """Key mode's ``sign`` header: upper-case hex SHA-256 of ``appId+traceId+ts+nonce+apiKey``."""
    material = f"{app_id}{trace_id}{ts}{nonce}{api_key}".encode()
    return hashlib.sha256(material).hexdigest().upper()


def build_auth_headers(settings: GeelarkSettings, *, trace_id: str, now_ms: int) -> dict[str, str]:
    """The authentication headers of one request, in whichever mode the settings select."""
    if settings.auth_mode == "token":
        assert settings.token is not None  # noqa: S101 - guaranteed by auth_mode
        return {
            "traceId": trace_id,
            "Authorization": f"Bearer {settings.token.get_secret_value()}",
        }
    assert settings.app_id is not None  # noqa: S101 - guaranteed by auth_mode
    assert settings.api_key is not None  # noqa: S101 - guaranteed by auth_mode
    ts = str(now_ms)
    nonce = trace_id[:6]
    return {
        "appId": settings.app_id,
        "traceId": trace_id,
        "ts": ts,
        "nonce": nonce,
        "sign": sign_request(
            settings.app_id, trace_id, ts, nonce, settings.api_key.get_secret_value()
        ),
    }


def build_rate_limiter(settings: GeelarkSettings) -> CallPace:
    """The shared pace: at most ``requests_per_minute`` calls in any rolling 60 s.

    Never more than ``account_requests_per_minute`` (Geelark's 200): a pace set above the
    account's limit is held to it, since every call past it would only be refused (40007).
    Bursts: see :mod:`.pace`.
    """
    return CallPace(min(settings.requests_per_minute, settings.account_requests_per_minute))


class _RetryableFault(Exception):
    """Carries a transient fault through tenacity; the fault itself is raised after the last try."""

    def __init__(self, fault: PhonefleetError) -> None:
        super().__init__(str(fault))
        self.fault = fault


class GeelarkClient:
    """Async client of the Geelark Open API, used as ``async with GeelarkClient(settings)``.

    One instance serves the whole operator: its rate limiter is the account's budget.
    """

    def __init__(
        self,
        settings: GeelarkSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        limiter: CallPace | None = None,
        backoff_initial_seconds: float = 0.5,
        backoff_max_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock_ns: Callable[[], int] = time.time_ns,
        new_trace_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        fence: Fence | None = None,
    ) -> None:
        """Prepare a client; the HTTP session is opened on first use unless one is given.

        ``backoff_*`` shape the retry waits (exponential from the initial value, capped, plus up
        to one initial value of jitter); ``clock`` times the 40014 lock; ``wall_clock_ns`` is
        the Unix time in nanoseconds behind key mode's ``ts`` (sent in milliseconds);
        ``new_trace_id`` makes each request's ``traceId``; once ``fence`` is closed, calls
        outside :data:`READ_ONLY_PATHS` raise ReplicaStopping instead of being sent.
        """
        self._settings = settings
        self._session = session
        self._owns_session = session is None
        self._limiter = limiter if limiter is not None else build_rate_limiter(settings)
        self._clock = clock
        self._wall_clock_ns = wall_clock_ns
        self._new_trace_id = new_trace_id
        self.fence = fence if fence is not None else Fence()
        self._base_url = settings.url.rstrip("/")
        # Where errors say the client tried: scheme, host and port only (no user, no query).
        address = urllib.parse.urlsplit(settings.url)
        self._origin = f"{address.scheme}://{address.netloc.rpartition('@')[2]}"
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_seconds)
        self._wait = wait_exponential(
            multiplier=backoff_initial_seconds, max=backoff_max_seconds
        ) + wait_random(0, backoff_initial_seconds)
        self._locked_until: dict[str, float] = {}
        # Power states that /phone/list reported, with when: each can answer one status question.
        self._listed: dict[str, tuple[float, PhoneStatus]] = {}
        secrets = [settings.token, settings.api_key]
        self._secrets = [
            s.get_secret_value() for s in secrets if s is not None and s.get_secret_value()
        ]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client opened it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def has_budget(self, *, keep_reserve: bool = False, calls: int = 1) -> bool:
        """Whether the pace would let ``calls`` calls through now, without waiting.

        ``keep_reserve``: only if the account is quiet (a sixth of the minute free, nothing
        queued: :meth:`CallPace.is_quiet`), so that a partial batch of polls
        goes at once in a small fleet or at rest, and waits to fill while a large fleet keeps
        the budget busy.
        """
        if keep_reserve:
            return self._limiter.is_quiet()
        return self._limiter.has_room(calls)

    # ----------------------------------------------------------------------------- typed calls

    async def list_phones(
        self,
        page: int = 1,
        page_size: int = MAX_PAGE_SIZE,
        *,
        ids: Sequence[str] | None = None,
        serial_name: str | None = None,
    ) -> PhonePage:
        """One page of the account's phones; ``ids`` (at most 100) makes Geelark ignore paging.

        Whether Geelark's ``serialName`` filter is exact is unconfirmed: callers compare exactly.
        """
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page must be >= 1 and page_size 1..{MAX_PAGE_SIZE}")
        body: dict[str, Any] = {"page": page, "pageSize": page_size}
        if ids is not None:
            body["ids"] = _checked_ids(ids, MAX_IDS_PER_CALL)
        if serial_name is not None:
            body["serialName"] = serial_name
        path = "/open/v1/phone/list"
        data = await self.call(path, body)
        empty = isinstance(data, Mapping) and data.get("items") is None and data.get("total") == 0
        if not empty and not (isinstance(data, Mapping) and isinstance(data.get("items"), list)):
            # Success without a page is no listing: never read it as "no phones". (An empty
            # account may say items: null, but then it says total: 0 as well.)
            raise GeelarkUnavailable(
                f"Geelark answered {path} with code 0 but no list of phones",
                delay=UNAVAILABLE_DELAY_SECONDS,
            )
        page_of_phones = _parse(PhonePage, {**data, "items": data.get("items") or []}, path)
        now = self._clock()
        for phone in page_of_phones.items:
            if phone.status is not PhoneStatus.UNKNOWN:
                self._listed[phone.id] = (now, phone.status)
        return page_of_phones

    def listed_status(self, phone_id: str, max_age: float) -> PhoneStatus | None:
        """The power state a listing reported at most ``max_age`` s ago, once; else None.

        A listing answers for a hundred phones per call, like a status call: a binding's first
        question about its phone, asked right after the listing that resolved it, needs no call of
        its own. Each listed state answers one question only, so it never stands in for a poll.
        """
        listed = self._listed.pop(phone_id, None)
        if listed is None or self._clock() - listed[0] > max_age:
            return None
        return listed[1]

    async def phone_status(self, ids: Sequence[str]) -> BatchResult[PhoneState]:
        """The power state of up to 100 phones."""
        path = "/open/v1/phone/status"
        return await self._batch(
            path, ids, MAX_IDS_PER_CALL, {}, lambda item: _parse(PhoneState, item, path)
        )

    async def start_phones(self, ids: Sequence[str]) -> BatchResult[StartResult]:
        """Start up to 200 phones, ``energySavingMode`` 0: a worker's phone never stops itself."""
        path = "/open/v1/phone/start"
        return await self._batch(
            path,
            ids,
            MAX_IDS_PER_START,
            {"energySavingMode": 0},
            lambda item: _parse(StartResult, item, path),
        )

    async def stop_phones(self, ids: Sequence[str]) -> BatchResult[None]:
        """Stop up to 100 phones; stopping a stopped phone is harmless."""
        return await self._batch("/open/v1/phone/stop", ids, MAX_IDS_PER_CALL, {}, None)

    async def set_adb(self, ids: Sequence[str], open: bool) -> BatchResult[None]:
        """Enable or disable ADB on up to 200 running phones; enabling takes about 3 s."""
        return await self._batch(
            "/open/v1/adb/setStatus", ids, MAX_IDS_PER_ADB, {"open": open}, None
        )

    async def adb_data(self, ids: Sequence[str]) -> BatchResult[AdbEndpoint]:
        """The ADB endpoint (ip, port, password) of up to 200 phones."""
        path = "/open/v1/adb/getData"
        checked = _checked_ids(ids, MAX_IDS_PER_ADB)
        if not checked:
            return BatchResult()
        data = await self.call(path, {"ids": checked})
        wanted = set(checked)
        succeeded: dict[str, AdbEndpoint] = {}
        failed = _fail_details(data, wanted, path)
        for item in _list_field(data, "items", path):
            phone_id = str(item.get("id", ""))
            if phone_id not in wanted or phone_id in failed:
                continue
            code = item.get("code", 0)
            if code in (0, None):
                succeeded[phone_id] = _parse(AdbEndpoint, item, path)
            else:
                failed[phone_id] = _parse(ItemFailure, item, path)
        _add_missing(checked, succeeded, failed)
        return BatchResult(succeeded=succeeded, failed=self._scrub_failures(failed))

    # ----------------------------------------------------------------------------- the envelope

    async def call(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST ``body`` to ``path`` with retries and return the envelope's ``data``.

        Raises the mapped :mod:`phonefleet_operator.errors` fault once retries are exhausted.
        """
        self._check_fence(path)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._settings.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_RetryableFault),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            return await retrying(self._post_once, path, body)
        except _RetryableFault as wrapped:
            fault = wrapped.fault
            raise fault from fault.__cause__

    @geelark_request
    async def _post_once(self, path: str, body: Mapping[str, Any]) -> Any:
        self._check_lock(path)
        await self._limiter.acquire()
        try:
            return await self._send(path, body)
        finally:
            self._limiter.release()  # counts in the pace's window until 60 s after its answer

    async def _send(self, path: str, body: Mapping[str, Any]) -> Any:
        self._check_fence(path)  # again: it may have closed while this call waited or backed off
        trace_id = self._new_trace_id()
        headers = build_auth_headers(
            self._settings, trace_id=trace_id, now_ms=self._wall_clock_ns() // 1_000_000
        )
        session = await self._ensure_session()
        started = self._clock()
        try:
            async with session.post(
                self._base_url + path, json=dict(body), headers=headers, timeout=self._timeout
            ) as response:
                if response.status != 200:
                    raise self._http_fault(path, response.status)
                try:
                    envelope = await response.json(content_type=None)
                except ValueError as exc:
                    raise _transient(
                        GeelarkUnavailable(
                            f"Geelark answered {path} with a body that is not JSON",
                            delay=UNAVAILABLE_DELAY_SECONDS,
                        ),
                        exc,
                    ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            if isinstance(exc, aiohttp.ClientConnectorError):
                what = f"could not connect ({what}); check PHONEFLEET_GEELARK_URL"
            raise _transient(
                GeelarkUnavailable(
                    f"Geelark could not be reached at {self._origin} for {path}: {what}",
                    delay=UNAVAILABLE_DELAY_SECONDS,
                ),
                exc,
            ) from None
        elapsed = self._clock() - started
        if not isinstance(envelope, Mapping) or "code" not in envelope:
            raise _transient(
                GeelarkUnavailable(
                    f"Geelark answered {path} without a reply envelope",
                    delay=UNAVAILABLE_DELAY_SECONDS,
                ),
                None,
            )
        code = envelope.get("code")
        logger.debug(
            "Called Geelark %s: code %s in %.3f s (traceId %s)", path, code, elapsed, trace_id
        )
        if code == 0:
            return envelope.get("data")
        raise self._code_fault(path, code, str(envelope.get("msg") or ""))

    async def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _check_fence(self, path: str) -> None:
        if path not in READ_ONLY_PATHS:
            self.fence.check(path)

    def _check_lock(self, path: str) -> None:
        until = self._locked_until.get(path)
        if until is None:
            return
        remaining = until - self._clock()
        if remaining <= 0:
            del self._locked_until[path]
            return
        raise GeelarkRateLimited(
            f"Geelark locked {path} after the hourly request limit (40014); "
            f"not asking again for {remaining:.0f} s",
            code=HOURLY_LOCK_CODE,
            delay=remaining,
        )

    def _http_fault(self, path: str, status: int) -> Exception:
        if status == 429:
            return _RetryableFault(
                GeelarkRateLimited(
                    f"Geelark answered {path} with HTTP 429",
                    code=429,
                    delay=RATE_LIMIT_DELAY_SECONDS,
                )
            )
        fault = GeelarkUnavailable(
            f"Geelark answered {path} with HTTP {status}", delay=UNAVAILABLE_DELAY_SECONDS
        )
        return _RetryableFault(fault) if status >= 500 else fault

    def _credential_source(self) -> str:
        """The variables in use and where a cluster's come from (an operator run by hand has no
        Secret, only the variables); never their values."""
        if self._settings.token is not None:
            variables, keys = "PHONEFLEET_GEELARK_TOKEN", "key token"
        else:
            variables = "PHONEFLEET_GEELARK_APP_ID and PHONEFLEET_GEELARK_API_KEY"
            keys = "keys appId, apiKey"
        return f"{variables} (the Secret {self._settings.credentials_secret}, {keys})"

    def _code_fault(self, path: str, code: Any, msg: str) -> Exception:
        said = f"code {code}" + (f" ({self._scrub(msg)})" if msg else "")
        if code in AUTH_CODES:
            return GeelarkAuthError(
                f"Geelark refused the credentials: {AUTH_CODES[code]} ({said}); "
                f"fix {self._credential_source()}",
                code=code,
            )
        if code in SHORT_RATE_LIMIT_CODES:
            return _RetryableFault(
                GeelarkRateLimited(
                    f"Geelark rate-limited {path}: {said}",
                    code=code,
                    delay=RATE_LIMIT_DELAY_SECONDS,
                )
            )
        if code == HOURLY_LOCK_CODE:
            self._locked_until[path] = self._clock() + HOURLY_LOCK_SECONDS
            logger.warning(
                "Geelark locked %s for %.0f s after the hourly request limit (40014)",
                path,
                HOURLY_LOCK_SECONDS,
            )
            return GeelarkRateLimited(
                f"Geelark locked {path} after the hourly request limit: {said}",
                code=code,
                delay=HOURLY_LOCK_SECONDS,
            )
        if code == PHONE_NOT_RUNNING:
            # Said of the whole call (one reading of adb/setStatus on a phone still booting):
            # every phone of the batch is answered "not running", and asked about again.
            return PhoneNotReady(
                f"Geelark refused {path}: a phone named is not running ({said})",
                delay=NOT_RUNNING_DELAY_SECONDS,
                code=PHONE_NOT_RUNNING,
            )
        if code == INTERNAL_ERROR_CODE:
            return _RetryableFault(
                GeelarkUnavailable(
                    f"Geelark failed internally on {path}: {said}",
                    delay=UNAVAILABLE_DELAY_SECONDS,
                )
            )
        return GeelarkRequestError(
            f"Geelark rejected {path}: {said}", code=code if isinstance(code, int) else -1
        )

    def _scrub(self, text: str) -> str:
        """Geelark's message (of a call or of one item), with any credential it echoes replaced."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # ----------------------------------------------------------------------------- batch replies

    async def _batch(
        self,
        path: str,
        ids: Sequence[str],
        limit: int,
        extra: Mapping[str, Any],
        parse: Callable[[Mapping[str, Any]], T] | None,
    ) -> BatchResult[T]:
        """One batch call; ``parse=None`` for calls whose successes carry no payload."""
        checked = _checked_ids(ids, limit)
        if not checked:
            return BatchResult()
        data = await self.call(path, {"ids": checked, **extra})
        wanted = set(checked)
        failed = _fail_details(data, wanted, path)
        succeeded: dict[str, Any] = {}
        for item in _list_field(data, "successDetails", path):
            phone_id = str(item.get("id", ""))
            if phone_id in wanted and phone_id not in failed:
                succeeded[phone_id] = parse(item) if parse is not None else None
        if parse is None:
            # Calls without a payload: whatever Geelark did not refuse was done.
            for phone_id in checked:
                if phone_id not in failed:
                    succeeded.setdefault(phone_id, None)
        _add_missing(checked, succeeded, failed)
        return BatchResult(succeeded=succeeded, failed=self._scrub_failures(failed))

    def _scrub_failures(self, failed: Mapping[str, ItemFailure]) -> dict[str, ItemFailure]:
        """Per-item messages end up in faults, Events and conditions: scrub them like ``msg``."""
        return {
            phone_id: failure.model_copy(update={"msg": self._scrub(failure.msg)})
            if failure.msg
            else failure
            for phone_id, failure in failed.items()
        }


def _checked_ids(ids: Iterable[str], limit: int) -> list[str]:
    unique = list(dict.fromkeys(str(i) for i in ids))
    if len(unique) > limit:
        raise ValueError(f"Geelark takes at most {limit} ids per call, got {len(unique)}")
    return unique


def _list_field(data: Any, key: str, path: str) -> list[Mapping[str, Any]]:
    """``data[key]`` as a list of objects; a bare id string counts as ``{"id": ...}``."""
    if data is None:
        return []
    if not isinstance(data, Mapping):
        raise GeelarkUnavailable(
            f"Geelark answered {path} with unexpected data", delay=UNAVAILABLE_DELAY_SECONDS
        )
    raw = data.get(key) or []
    if not isinstance(raw, list):
        raise GeelarkUnavailable(
            f"Geelark answered {path} with a {key} that is not a list",
            delay=UNAVAILABLE_DELAY_SECONDS,
        )
    return [item if isinstance(item, Mapping) else {"id": str(item)} for item in raw]


def _fail_details(data: Any, wanted: set[str], path: str) -> dict[str, ItemFailure]:
    failed: dict[str, ItemFailure] = {}
    for item in _list_field(data, "failDetails", path):
        failure = _parse(ItemFailure, item, path)
        if failure.id in wanted:
            failed[failure.id] = failure
    return failed


def _add_missing(
    ids: Sequence[str], succeeded: Mapping[str, Any], failed: dict[str, ItemFailure]
) -> None:
    for phone_id in ids:
        if phone_id not in succeeded and phone_id not in failed:
            failed[phone_id] = ItemFailure(
                id=phone_id, code=MISSING_FROM_REPLY, msg="Geelark did not report this phone"
            )


def _parse(model: type[M], data: Any, path: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # The validation error quotes its input (an ADB password, say): keep only the field names.
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
        raise GeelarkUnavailable(
            f"Geelark answered {path} in an unexpected shape (fields: {', '.join(fields)})",
            delay=UNAVAILABLE_DELAY_SECONDS,
        ) from None


def _transient(fault: PhonefleetError, cause: BaseException | None) -> _RetryableFault:
    fault.__cause__ = cause
    return _RetryableFault(fault)


def _log_retry(state: RetryCallState) -> None:
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    fault = exc.fault if isinstance(exc, _RetryableFault) else exc
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    logger.info(
        "Retrying a Geelark call in %.2f s after attempt %d failed: %s",
        wait,
        state.attempt_number,
        fault,
    )
