"""The example task package in examples/hello-task registers through the entry point group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "hello-task"

LIST_TASKS = """
import json
from phonefleet_worker.registry import TaskRegistry
registry = TaskRegistry.from_entry_points()
print(json.dumps({"tasks": sorted(registry.tasks), "broken": registry.broken,
                  "schema": registry.catalog()["tasks"]["hello-caption"]["paramsSchema"]}))
"""


def test_the_example_package_adds_its_task_without_touching_the_worker(tmp_path: Path) -> None:
    """With the example's package metadata on the path beside phonefleet, hello-caption is a
    registered task, with its params schema in the catalog the operator reads.

    The metadata is built by setuptools itself (``egg_info``, which importlib.metadata reads as
    it reads an installed package); a wheel install would need the ``wheel`` package or a
    download, and tests download nothing.
    """
    subprocess.run(
        [
            sys.executable, "-c", "from setuptools import setup; setup()",
            "-q", "egg_info", "--egg-base", str(tmp_path),
        ],
        cwd=EXAMPLE,
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip

    listed = subprocess.run(
        [sys.executable, "-c", LIST_TASKS],
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{EXAMPLE}"},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )

    found = json.loads(listed.stdout)
    assert {"heartbeat", "ui-steps", "hello-caption"} <= set(found["tasks"])
    assert found["broken"] == {}
    assert found["schema"]["required"] == ["caption"]
