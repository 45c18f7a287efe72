"""``make bench`` at a tiny N, end to end, so that it cannot rot (its figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from phonefleet_testbed.binaries import repo_root

pytestmark = pytest.mark.integration

N = 5


@pytest.mark.timeout(240)
def test_the_bench_converges_a_small_fleet_and_writes_every_figure(tmp_path: Path) -> None:
    """python -m bench runs the ceiling, the operator and the seed's way and writes the JSON."""
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--bindings",
            str(N),
            "--boot-seconds",
            "1",
            "--adb-enable-seconds",
            "0.5",
            "--latency-ms",
            "10",
            "--steady-seconds",
            "5",
            "--out",
            str(out),
        ],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| operator |" in result.stdout
    figures = json.loads(out.read_text())

    assert figures["bindings"] == N
    for plot in ("bench-ready.png", "bench-geelark.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    assert len(figures["ceiling"]["convergedAtSeconds"]) == N
    assert {"machine", "options", "operator", "ceiling", "seedWay", "targets"} <= set(figures)
    assert figures["machine"]["versions"]["kopf"]
    operator = figures["operator"]
    assert operator["converged"] == N
    for key in (
        "convergeSeconds",
        "bindingsPerSecond",
        "latencySeconds",
        "geelarkConvergence",
        "maxCallsPerMinute",
        "rateLimited40007",
        "steadyCallsPerMinute",
        "peakRssMiB",
        "cpuSecondsConvergence",
        "apiRequestsSteady",
        "eventsTrailingSeconds",
    ):
        assert key in operator, key
    assert {"total", "failedWrites"} <= set(operator["steadyRequestsPerBindingMinute"])
    # Read from the operator's own /metrics: every binding took at least one pass.
    assert operator["reconcilePassesConvergence"]["ok"] >= N
    assert "reconcile passes to converge:" in result.stdout
    # The simulator's log of served calls: every start is in it, and the line says when.
    served = operator["geelarkCalls"]
    assert sum(ids for _, endpoint, ids in served if endpoint == "phone/start") == N
    assert "Geelark calls served, first..last s after the apply: " in result.stdout
    assert "API writes per binding to converge (all clients):" in result.stdout
    # The Events posted after convergence are the convergence's: the steady window posts none.
    assert "POST events" not in operator["apiRequestsSteady"]
    assert figures["geelarkFloor"]["seconds"] > 0
    assert figures["geelarkFloor"]["documented"]["ratio"] > 0
    # Every binding's pod pipeline, step by step, from its ADB read to Ready.
    steps = operator["podPipeline"]["steps"]
    assert {step["bindings"] for step in steps.values()} == {N}, steps
    assert "pod pipeline, p50 / p95 / max s (bindings): " in result.stdout
    assert "API side: " in result.stdout
    assert figures["ceiling"]["apiWrites"] >= 3 * N
    assert "steady API requests per binding per minute, by verb" in result.stdout
    assert set(operator["latencySeconds"]) == {"p50", "p95", "p99", "max"}
    assert figures["ceiling"]["converged"] == N
    assert figures["seedWay"]["measured"]["found"] == figures["seedWay"]["measured"]["assignments"]
    assert {t["target"] for t in figures["targets"]} >= {
        "convergence seconds",
        "bindings converged",
    }
