"""What the simulator saw: calls per endpoint, replies per code, the busiest rolling minute, and
the log of the calls it served."""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from typing import Any

from .limits import MINUTE, RollingWindow


class RequestCounters:
    """Counts of Open API calls and of the replies they got, since start or the last reset.

    Every call that reaches an `/open/` endpoint counts, whether it was then refused, faulted
    or answered, so `max_per_minute` measures what the client sent, not what it was allowed.
    """

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        # Phone ids named by the batch calls, per endpoint: with `requests`, how full batches are.
        self.ids: Counter[str] = Counter()
        self.codes: Counter[int] = Counter()
        self.codes_by_endpoint: defaultdict[str, Counter[int]] = defaultdict(Counter)
        self.http_statuses: Counter[int] = Counter()
        self.dropped = 0
        self.max_per_minute = 0
        self._window = RollingWindow(MINUTE)

    def record_call(self, endpoint: str, now: float) -> None:
        """A call to `endpoint` arrived at `now`."""
        self.requests[endpoint] += 1
        self.max_per_minute = max(self.max_per_minute, self._window.add(now))

    def record_ids(self, endpoint: str, count: int) -> None:
        """A call to `endpoint` named `count` phone ids."""
        self.ids[endpoint] += count

    def record_code(self, endpoint: str, code: int) -> None:
        """A call was answered with HTTP 200 and envelope `code`."""
        self.codes[code] += 1
        self.codes_by_endpoint[endpoint][code] += 1

    def record_http_status(self, status: int) -> None:
        """A call was answered with a non-200 HTTP status."""
        self.http_statuses[status] += 1

    def record_drop(self) -> None:
        """A call's connection was closed without a reply."""
        self.dropped += 1

    def reset(self) -> None:
        """Start counting from zero."""
        self.requests.clear()
        self.ids.clear()
        self.codes.clear()
        self.codes_by_endpoint.clear()
        self.http_statuses.clear()
        self.dropped = 0
        self.max_per_minute = 0
        self._window.clear()

    def to_json(self) -> dict[str, Any]:
        """The counts as the admin API shows them (code and status keys are strings in JSON)."""
        return {
            "total": sum(self.requests.values()),
            "requests": dict(self.requests),
            "ids": dict(self.ids),
            "codes": {str(code): n for code, n in self.codes.items()},
            "codesByEndpoint": {
                endpoint: {str(code): n for code, n in codes.items()}
                for endpoint, codes in self.codes_by_endpoint.items()
            },
            "httpStatuses": {str(status): n for status, n in self.http_statuses.items()},
            "dropped": self.dropped,
            "maxPerMinute": self.max_per_minute,
        }


class CallLog:
    """Every Open API call the simulator served (past authentication, the rate limit and any
    injected code), numbered in the order it served them, with the simulator-clock time and the
    phone ids the call named. A test reads from it which phones were asked about when, and in
    which order, without timing anything itself. The oldest entries are dropped beyond
    ``limit``; a reader sees the gap in ``seq``."""

    def __init__(self, limit: int = 100_000) -> None:
        self._entries: deque[tuple[int, float, str, tuple[str, ...]]] = deque(maxlen=limit)
        self._seq = 0

    def record(self, endpoint: str, at: float, ids: list[str]) -> None:
        """A call to ``endpoint`` naming ``ids`` was served at ``at``."""
        self._seq += 1
        self._entries.append((self._seq, at, endpoint, tuple(ids)))

    def since(self, after: int) -> list[dict[str, Any]]:
        """The entries numbered above ``after``, oldest first."""
        return [
            {"seq": seq, "at": at, "endpoint": endpoint, "ids": list(ids)}
            for seq, at, endpoint, ids in self._entries
            if seq > after
        ]
