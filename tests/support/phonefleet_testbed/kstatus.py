"""kstatus, the health rule Flux applies to custom resources, as hack/kstatus builds it."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from phonefleet_testbed.binaries import build

__all__ = ["kstatus"]


def kstatus(objects: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """(status, message) by object name, as sigs.k8s.io/cli-utils computes them for ``objects``
    (one object or a List). Builds the command on first use (about a minute; then cached)."""
    binary = build("kstatus/build.sh")
    result = subprocess.run(
        [str(binary)], input=json.dumps(objects), capture_output=True, text=True, check=True
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {line["name"]: (line["status"], line["message"]) for line in lines}
