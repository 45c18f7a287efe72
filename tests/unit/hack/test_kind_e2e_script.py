"""hack/kind-e2e.sh cannot run here (it needs Docker, kind and registries), so it is checked
statically: bash parses it, it stops on the first error, and every file it uses exists."""

from __future__ import annotations

import re
import shutil
import subprocess

from phonefleet_testbed.binaries import repo_root

SCRIPT = repo_root() / "hack" / "kind-e2e.sh"


def test_bash_parses_the_script() -> None:
    """`bash -n`: no syntax error anywhere, including branches a run would not take."""
    bash = shutil.which("bash")
    assert bash, "bash is required (apt-get install bash)"
    result = subprocess.run([bash, "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_the_script_stops_on_the_first_error() -> None:
    """Errors, unset variables and failures inside pipelines all end the run."""
    lines = SCRIPT.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines


def test_every_repository_path_the_script_uses_exists() -> None:
    """Each "$repo/..." the script reads (Dockerfiles, overlays, manifests) is in the checkout."""
    text = SCRIPT.read_text()
    paths = set(re.findall(r"\$repo/([A-Za-z0-9_./-]+)", text))
    paths |= {f"Dockerfile.{c}" for c in ("operator", "worker")}  # "$repo/Dockerfile.$component"
    paths = {p for p in paths if "$" not in p and not p.endswith(".")}
    assert {"hack/kind/base", "hack/kind/simulator", "manifests/manager/namespace.yaml"} <= paths
    missing = sorted(p for p in paths if not (repo_root() / p).exists())
    assert not missing, f"hack/kind-e2e.sh uses files that do not exist: {missing}"
