"""What the simulator saw: calls per endpoint, replies per code, and the busiest rolling minute."""

from __future__ import annotations

from collections import Counter, defaultdict
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
