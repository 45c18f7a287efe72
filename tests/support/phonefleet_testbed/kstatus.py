"""kstatus, the health rule Flux applies to custom resources, as hack/kstatus builds it."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from phonefleet_testbed.binaries import repo_root

__all__ = ["kstatus"]


def kstatus(objects: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """(status, message) by object name, as sigs.k8s.io/cli-utils computes them for ``objects``
    (one object or a List). Builds the command on first use (about a minute; then cached)."""
    script = repo_root() / "hack" / "kstatus" / "build.sh"
    built = subprocess.run(["bash", str(script)], check=True, stdout=subprocess.PIPE, text=True)
    binary = built.stdout.strip().splitlines()[-1]
    result = subprocess.run(
        [binary], input=json.dumps(objects), capture_output=True, text=True, check=True
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {line["name"]: (line["status"], line["message"]) for line in lines}
