"""The seed's way: validate each phone assignment by listing every page of the account.

``validate_phone_assignments`` in the seed (``shared/seed-task-24.md``) pages through
``/phone/list`` (``page_size=100``, pages 1..19, until a short page) with a synchronous client,
one call after the other, and checks the phone against what it collected. Done once per
assignment (each worker finding its phone), N assignments cost N full listings.

At N = 1000 that is 11,000 calls: 55 minutes at Geelark's 200 calls a minute (the seed's client
has no back-off, so it would get 40007 from the 201st call on). The bench therefore measures a
sample of assignments with the same client semantics against the same simulator, its latency
unchanged and its rate limit lifted for the sample (so the sample measures the calls, not the
limit), and projects the totals for N: calls exactly, time both unthrottled and at 200/min.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests

from bench.fleet import counters_json
from phonefleet_testbed.geelark_sim import GeelarkSimulator

__all__ = ["SeedWayResult", "run_seed_way"]

PAGE_SIZE = 100
LAST_PAGE = 19  # the seed's `for page in range(1, 20)`
GEELARK_PER_MINUTE = 200


@dataclass(frozen=True)
class SeedWayResult:
    """Measured on a sample, projected to N."""

    assignments: int
    sampled: int
    found: int
    sample_calls: int
    sample_seconds: float
    calls_per_assignment: int
    per_assignment: list[float]
    counters: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Measured and projected figures, each labelled."""
        mean = self.sample_seconds / self.sampled if self.sampled else 0.0
        projected_calls = self.calls_per_assignment * self.assignments
        unthrottled = mean * self.assignments
        # A client that keeps to 200 calls in any 60 s sends the first 200 at once, then 200 a
        # minute: the seed's client has no such pacing and gets 40007 instead.
        over = max(0, projected_calls - GEELARK_PER_MINUTE)
        at_limit = over * 60.0 / GEELARK_PER_MINUTE
        ordered = sorted(self.per_assignment)

        def rank(share: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)], 3)

        return {
            "assignments": self.assignments,
            "measured": {
                "assignments": self.sampled,
                "found": self.found,
                "listCalls": self.sample_calls,
                "seconds": round(self.sample_seconds, 2),
                "secondsPerAssignment": {"p50": rank(0.5), "p95": rank(0.95), "p99": rank(0.99)},
                "simulator": self.counters,
                "rateLimit": "lifted for the sample (latency unchanged)",
            },
            "projected": {
                "exact": self.sampled == self.assignments,
                "listCalls": projected_calls,
                "secondsUnthrottled": round(unthrottled, 1),
                "secondsAt200PerMinute": round(max(unthrottled, at_limit), 1),
                "maxCallsPerMinuteUnthrottled": round(60.0 / mean * self.calls_per_assignment)
                if mean
                else None,
                "note": (
                    "N full listings, one per assignment; at Geelark's 200 calls/minute a client "
                    "that backs off needs secondsAt200PerMinute, the seed's client (no back-off) "
                    f"gets 40007 after {GEELARK_PER_MINUTE} calls"
                ),
            },
        }


def _list_page(session: requests.Session, url: str, token: str, page: int) -> dict[str, Any]:
    reply = session.post(
        f"{url}/open/v1/phone/list",
        json={"page": page, "pageSize": PAGE_SIZE},
        headers={"traceId": str(uuid.uuid4()), "Authorization": f"Bearer {token}"},
        timeout=30,
    )
    reply.raise_for_status()
    envelope: dict[str, Any] = reply.json()
    if envelope.get("code") != 0:
        raise RuntimeError(f"Geelark answered code {envelope.get('code')}: {envelope.get('msg')}")
    data: dict[str, Any] = envelope.get("data") or {}
    return data


def validate_one(session: requests.Session, url: str, token: str, phone: str) -> tuple[bool, int]:
    """The seed's listing for one assignment: (found, calls made)."""
    all_phones: dict[str, str] = {}
    calls = 0
    for page in range(1, LAST_PAGE + 1):
        result = _list_page(session, url, token, page)
        calls += 1
        for item in result.get("items", []):
            all_phones[item["id"]] = item["serialName"]
            all_phones[item["serialName"]] = item["id"]
        if len(result.get("items", [])) < PAGE_SIZE:
            break
    return phone in all_phones, calls


def run_seed_way(
    simulator: GeelarkSimulator, token: str, refs: list[str], sample: int
) -> SeedWayResult:
    """Validate ``sample`` of ``refs`` the seed's way (synchronously; call it in a thread)."""
    chosen = refs[: max(1, min(sample, len(refs)))]
    admin = simulator.admin
    limit = admin.settings().get("rateLimitPerMinute")
    before = admin.counters()
    admin.update_settings(rate_limit_per_minute=None)
    session = requests.Session()
    session.trust_env = False
    durations: list[float] = []
    found = 0
    calls = 0
    try:
        started = time.monotonic()
        for ref in chosen:
            began = time.monotonic()
            ok, made = validate_one(session, simulator.base_url, token, ref)
            durations.append(time.monotonic() - began)
            found += ok
            calls += made
        seconds = time.monotonic() - started
    finally:
        session.close()
        admin.update_settings(rate_limit_per_minute=limit)
    per_assignment = calls // len(chosen)
    return SeedWayResult(
        assignments=len(refs),
        sampled=len(chosen),
        found=found,
        sample_calls=calls,
        sample_seconds=seconds,
        calls_per_assignment=per_assignment,
        per_assignment=durations,
        counters=counters_json(admin.counters(), before),
    )
