"""The bench modules run in a child process from the repository's root (``bench`` is a folder
of scripts there, not an installed package): code reads its arguments from stdin as JSON and
prints its answer as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from phonefleet_testbed.binaries import repo_root

__all__ = ["run_in_repo"]


def run_in_repo(code: str, args: Any) -> Any:
    """Run ``code`` with ``args`` (JSON on its stdin); its printed JSON answer."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo_root(),
        input=json.dumps(args),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)
