"""The bench's attribution of the API side: each binding's pod pipeline from its ADB read to
Ready (``bench/pipeline.py``), Geelark's two floors and the "API side" line (``bench/report.py``).

Run in a child interpreter from the checkout, as ``test_bench_targets.py`` explains.
"""

from __future__ import annotations

from typing import Any

from .children import run_in_repo

_PIPELINE = """
import json, sys
from types import SimpleNamespace
from bench.pipeline import adb_reads, pipeline
args = json.load(sys.stdin)
items = [SimpleNamespace(**item) for item in args["items"]]
reads = adb_reads((at, endpoint, ids) for at, endpoint, ids in args["calls"])
print(json.dumps(pipeline(items, reads, args["start"], args["samples"])))
"""

_REPORT = """
import json, sys
from bench.report import _api_side_line, geelark_floor, pipeline_lines
args = json.load(sys.stdin)
print(json.dumps({
    "floor": geelark_floor(args["n"], args["options"]),
    "apiSide": _api_side_line(args["operator"], args["ceiling"], args["n"]),
    "pipeline": pipeline_lines(args["operator"]["podPipeline"]),
}))
"""


def _item(
    phone: str,
    pod: float | None,
    scheduled: float | None,
    running: float | None,
    ready: float | None,
) -> dict[str, Any]:
    return {
        "phone_id": phone,
        "pod_created": pod,
        "pod_scheduled": scheduled,
        "pod_running": running,
        "ready_at": ready,
    }


def test_each_step_is_timed_from_the_read_the_pod_was_created_after() -> None:
    """Phone A was read twice, the second time after its pod existed (a re-read): its step
    starts at the first. Phone B's pod is not Running yet: its later steps are not counted,
    and at 112 s it is in the scheduled step while A is Ready."""
    calls = [
        [101.0, "/open/v1/adb/getData", ["A", "B"]],
        [100.5, "/open/v1/phone/status", ["A"]],
        [130.0, "/open/v1/adb/getData", ["A"]],
    ]
    items = [_item("A", 103.0, 104.0, 106.0, 110.0), _item("B", 102.0, 111.0, None, None)]
    out = run_in_repo(
        _PIPELINE, {"items": items, "calls": calls, "start": 100.0, "samples": [0.5, 3.5, 12.0]}
    )
    steps = out["steps"]
    assert steps["adbReadToPod"]["bindings"] == 2
    assert steps["adbReadToPod"]["max"] == 2.0
    assert steps["podToScheduled"]["max"] == 9.0
    assert steps["scheduledToRunning"] == {
        "by": "KWOK",
        "bindings": 1,
        "p50": 2.0,
        "p95": 2.0,
        "p99": 2.0,
        "max": 2.0,
    }
    assert steps["runningToReady"]["p50"] == 4.0
    assert out["lastSeconds"] == {
        "adbRead": 1.0,
        "podCreated": 3.0,
        "scheduled": 11.0,
        "running": 6.0,
        "ready": 10.0,
    }
    stages = {row["t"]: row for row in out["stages"]}
    assert stages[0.5] == {
        "t": 0.5,
        "adbRead": 0,
        "podCreated": 0,
        "scheduled": 0,
        "running": 0,
        "ready": 0,
    }
    assert stages[3.5] == {
        "t": 3.5,
        "adbRead": 0,
        "podCreated": 2,
        "scheduled": 0,
        "running": 0,
        "ready": 0,
    }
    assert stages[12.0] == {
        "t": 12.0,
        "adbRead": 0,
        "podCreated": 0,
        "scheduled": 1,
        "running": 0,
        "ready": 1,
    }


def _operator() -> dict[str, Any]:
    pipeline = run_in_repo(
        _PIPELINE,
        {
            "items": [_item("A", 3.0, 4.0, 6.0, 9.0)],
            "calls": [[1.0, "adb/getData", ["A"]]],
            "start": 0.0,
            "samples": [0.0, 5.0, 9.5],
        },
    )
    return {
        "convergeSeconds": 10.0,
        "apiRequestsConvergence": {
            "POST pods": 600,
            "PUT leases": 50,
            "GET pods": 9,
            "PATCH pods/status": 600,
        },
        "timeline": [
            {"t": 0.0, "apiWrites": 0},
            {"t": 5.0, "apiWrites": 400},
            {"t": 9.5, "apiWrites": 1100},
        ],
        "podPipeline": pipeline,
    }


def test_the_api_side_line_gives_the_write_rates_and_the_ceilings_least_time() -> None:
    """1,200 writes in 10 s (leases and reads left out); from the sample at the last ADB read
    (0 s, the read was at 1 s) to the last one; the ceiling's 600 writes in 2 s allow the
    run's 1,200 in no less than 4 s."""
    n = 100
    out = run_in_repo(
        _REPORT,
        {
            "n": n,
            "options": {
                "rateLimitPerMinute": 200,
                "bootSeconds": 10,
                "adbEnableSeconds": 3,
                "latencyMs": 100,
            },
            "operator": _operator(),
            "ceiling": {"apiWrites": 600, "convergeSeconds": 2.0},
        },
    )
    line = out["apiSide"]
    assert line.startswith("API side: 1200 writes in 10.0 s of convergence, 120 writes/s")
    assert "(116/s from 0 s, the last ADB read's sample)" in line
    assert "ceiling 600 writes in 2.0 s, 300/s" in line
    assert "the run's 12.00 writes per binding take at least 4.0 s" in line
    # Every 10 s and the last sample (9.5 s).
    assert out["pipeline"][2].endswith("): 0 s 0/0/0/0/0, 10 s 0/0/0/0/1")


def test_the_documented_floor_counts_200_phones_per_start() -> None:
    """N = 5,000: the issue's floor 250 calls (75 s at 200 a minute); with Geelark's documented
    batch sizes 225 (25 starts instead of 50), 67.5 s."""
    out = run_in_repo(
        _REPORT,
        {
            "n": 5000,
            "options": {
                "rateLimitPerMinute": 200,
                "bootSeconds": 10,
                "adbEnableSeconds": 3,
                "latencyMs": 100,
            },
            "operator": {"podPipeline": {}},
            "ceiling": {},
        },
    )
    floor = out["floor"]
    assert (floor["calls"], floor["seconds"]) == (250, 75.0)
    documented = floor["documented"]
    assert documented["callsByEndpoint"]["phone/start"] == 25
    assert (documented["calls"], documented["seconds"]) == (225, 67.5)
    assert out["apiSide"] == "API side: -"
