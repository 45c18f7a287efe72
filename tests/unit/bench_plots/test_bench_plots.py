"""The bench's plots (`python -m bench.plots`, run from the checkout as `make bench` does)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from phonefleet_testbed.binaries import repo_root

PNG = b"\x89PNG\r\n\x1a\n"


def plots(*paths: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "bench.plots", *map(str, paths)],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def test_calls_are_counted_per_10_s_window_and_both_plots_are_written(tmp_path: Path) -> None:
    """A timeline sampled about every second gives each window the calls made within it; a
    result whose ceiling lists every pod's time draws its curve; both PNGs land beside it."""
    timeline = [
        {"t": 0.0, "converged": 0, "geelarkCalls": 0},
        {"t": 5.0, "converged": 0, "geelarkCalls": 7},
        {"t": 10.0, "converged": 1, "geelarkCalls": 9},
        {"t": 19.9, "converged": 2, "geelarkCalls": 12},
        {"t": 25.0, "converged": 2, "geelarkCalls": 30},
    ]
    result = {
        "bindings": 2,
        "operator": {
            "timeline": timeline,
            "convergeSeconds": 19.9,
            "geelarkConvergence": {"total": 12},
        },
        "ceiling": {"convergeSeconds": 3.0, "convergedAtSeconds": [1.5, 3.0]},
    }
    path = tmp_path / "run-N2.json"
    path.write_text(json.dumps(result))

    out = plots(path)

    assert out.startswith("Geelark calls per 10 s: 9, 3, 18;")
    for name in ("run-N2-ready.png", "run-N2-geelark.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG, name


def test_the_reference_result_is_drawn_from_its_milestones(tmp_path: Path) -> None:
    """The reference run predates per-pod ceiling times: its ceiling comes from the milestones."""
    copy = tmp_path / "reference-N1000.json"
    shutil.copy(repo_root() / "bench" / "results" / "reference-N1000.json", copy)

    plots(copy)

    assert (tmp_path / "reference-N1000-ready.png").read_bytes()[:8] == PNG
