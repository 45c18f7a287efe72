"""The bench's targets: the issue's N = 1,000 set up to 1,000 bindings, its N = 5,000 set above.

``bench`` is run from the checkout (as `make bench` does; `tests/bench` takes the name inside the
test tree), so the targets are computed in a child interpreter there.
"""

from __future__ import annotations

from typing import Any

from .children import run_in_repo

_CALL = (
    "import json, sys; from bench.report import targets; "
    "print(json.dumps(targets(*json.load(sys.stdin))))"
)


def targets(*args: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = run_in_repo(_CALL, list(args))
    return rows


def operator(converged: int, rss: float) -> dict[str, Any]:
    return {
        "geelarkConvergence": {"byEndpoint": {"phone/list": 50}, "total": 243},
        "maxCallsPerMinute": 145,
        "rateLimited40007": 0,
        "steadyCallsPerMinute": 50.0,
        "convergeSeconds": 153.2,
        "peakRssMiB": rss,
        "steadyRequestsPerBindingMinute": {"total": 0.003},
        "converged": converged,
    }


def judged(rows: list[dict[str, Any]]) -> dict[str, bool | None]:
    return {row["target"]: row["met"] for row in rows}


def test_a_large_fleet_is_judged_by_the_n_5000_targets_only() -> None:
    """At N = 5,000 the calls and seconds stated for N = 1,000 are not judged: RSS against
    600 MiB and the ratio to Geelark's floor against 1.5x are."""
    rows = judged(targets(5000, operator(5000, 401.1), {"convergeSeconds": None}, {"ratio": 2.04}))
    assert rows == {
        "operator peak RSS MiB": True,
        "convergence / Geelark floor": False,
        "40007 answers (whole run)": True,
        "steady API requests per binding per minute": True,
        "bindings converged": True,
    }


def test_a_fleet_of_1000_keeps_the_n_1000_targets() -> None:
    """Up to 1,000 bindings: RSS against 300 MiB, the ceiling's ratio, the call counts."""
    rows = judged(targets(1000, operator(1000, 401.1), {"convergeSeconds": 60.0}))
    assert rows["operator peak RSS MiB"] is False
    assert rows["list calls during convergence"] is False
    assert rows["convergence / ceiling"] is True
    assert "convergence / Geelark floor" not in rows
