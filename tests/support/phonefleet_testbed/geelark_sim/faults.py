"""Injected faults: which Open API calls fail, how, and for how many calls.

A rule applies to one endpoint path or to every endpoint (`ALL_ENDPOINTS`); an endpoint's own
rule wins over the catch-all. A rule may combine extra latency with one failure, checked in this
order: `outage` (the connection is closed without any reply, as a dead load balancer or a
network cut looks to a client), `http_status` (a non-200 reply with a plain-text body), `code`
(HTTP 200 with that envelope code, e.g. 50000; given after authentication and rate limiting),
`reply` (HTTP 200, code 0 and exactly this `data`, e.g. null or a short page: an odd but
successful answer, also given after authentication and rate limiting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALL_ENDPOINTS = "*"


@dataclass(frozen=True)
class FaultRule:
    """How the calls a rule covers misbehave."""

    outage: bool = False
    """Close the connection without a reply."""

    http_status: int | None = None
    """Answer with this HTTP status (e.g. 500 or 503) instead of the envelope."""

    code: int | None = None
    """Answer HTTP 200 with this envelope code (e.g. 50000) instead of doing the call."""

    latency_ms: float = 0.0
    """Delay added before answering, on top of the configured latency."""

    reply: dict[str, Any] | None = None
    """Answer code 0 with ``reply["data"]`` (the key must be there; its value may be null)."""

    times: int | None = None
    """Cover only the next `times` calls, then lift itself; None covers calls until cleared."""

    def __post_init__(self) -> None:
        if self.http_status is not None and not 400 <= self.http_status <= 599:
            raise ValueError("http_status must be an HTTP error status (400-599)")
        if self.code == 0:
            raise ValueError("code 0 is success, not a fault")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        if self.reply is not None and (set(self.reply) != {"data"} or self.code is not None):
            raise ValueError("reply must be {'data': ...} and cannot be combined with code")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None for until cleared)")

    def to_json(self) -> dict[str, Any]:
        """The rule as the admin API shows it."""
        return {
            "outage": self.outage,
            "httpStatus": self.http_status,
            "code": self.code,
            "latencyMs": self.latency_ms,
            "times": self.times,
            "reply": self.reply,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FaultRule:
        """Parse the admin API's JSON form; raises ValueError or TypeError on bad input."""
        unknown = set(body) - {
            "endpoint",
            "outage",
            "httpStatus",
            "code",
            "latencyMs",
            "times",
            "reply",
        }
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(
            outage=_typed(body.get("outage", False), bool, "outage"),
            http_status=_optional_int(body.get("httpStatus"), "httpStatus"),
            code=_optional_int(body.get("code"), "code"),
            latency_ms=float(_typed(body.get("latencyMs", 0.0), (int, float), "latencyMs")),
            times=_optional_int(body.get("times"), "times"),
            reply=_optional_reply(body.get("reply")),
        )


def _typed(value: Any, kind: type | tuple[type, ...], name: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise TypeError(f"{name} has the wrong type")
    return value


def _optional_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    result: int = _typed(value, int, name)
    return result


def _optional_reply(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    reply: dict[str, Any] = _typed(value, dict, "reply")
    return reply


class FaultTable:
    """The fault rules in force, by endpoint path (or `ALL_ENDPOINTS`)."""

    def __init__(self) -> None:
        self._rules: dict[str, FaultRule] = {}
        self._remaining: dict[str, int] = {}

    def set(self, endpoint: str, rule: FaultRule) -> None:
        """Put `rule` in force for `endpoint`, replacing any rule it had."""
        self._rules[endpoint] = rule
        self._remaining.pop(endpoint, None)
        if rule.times is not None:
            self._remaining[endpoint] = rule.times

    def clear(self, endpoint: str | None = None) -> None:
        """Lift the rule of one endpoint, or every rule."""
        if endpoint is None:
            self._rules.clear()
            self._remaining.clear()
        else:
            self._rules.pop(endpoint, None)
            self._remaining.pop(endpoint, None)

    def take(self, endpoint: str) -> FaultRule | None:
        """The rule covering one call to `endpoint`, counting the call against its `times`."""
        key = endpoint if endpoint in self._rules else ALL_ENDPOINTS
        rule = self._rules.get(key)
        if rule is None:
            return None
        if key in self._remaining:
            self._remaining[key] -= 1
            if self._remaining[key] <= 0:
                self.clear(key)
        return rule

    def to_json(self) -> dict[str, Any]:
        """The rules in force, with how many calls each still covers."""
        return {
            endpoint: {**rule.to_json(), "remaining": self._remaining.get(endpoint)}
            for endpoint, rule in self._rules.items()
        }
