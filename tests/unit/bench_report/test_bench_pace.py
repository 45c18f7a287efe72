"""The bench's figure for the operator's pace: the least time the floor's calls take when no
60 s may hold more than the pace and no second more than ten calls (``geelark/pace.py``).

``bench`` is run from the checkout (`tests/bench` takes the name inside the test tree), so the
figures are computed in a child interpreter there, as in test_bench_targets.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from phonefleet_testbed.binaries import repo_root

OPTIONS = {
    "rateLimitPerMinute": 200,
    "bootSeconds": 10.0,
    "adbEnableSeconds": 3.0,
    "latencyMs": 100,
}
_CALL = (
    "import json, sys; from bench.report import geelark_floor, pace_seconds; "
    "cases, options = json.load(sys.stdin); "
    "print(json.dumps([[pace_seconds(c, p) for c, p in cases], "
    "[geelark_floor(n, options)['paceSeconds'] for n in (1000, 5000)]]))"
)
CASES = [(0, 125), (1, 125), (50, 125), (125, 125), (126, 125), (250, 125), (250, 190), (3, 1)]


def figures() -> Any:
    result = subprocess.run(
        [sys.executable, "-c", _CALL],
        cwd=repo_root(),
        input=json.dumps([CASES, OPTIONS]),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_calls_within_one_window_go_ten_a_second_and_the_rest_wait_for_the_next() -> None:
    """50 calls at 125: 4 s (the leaky bucket's figure was 24 s); the 126th waits a window; at
    N = 1,000 one phone's 13.5 s path is the figure, at N = 5,000 the 250 calls' 72 s."""
    paced, floors = figures()

    assert paced == [0.0, 0.0, 4.0, 12.0, 60.0, 72.0, 65.0, 120.0]
    assert floors == [13.5, 72.0]
