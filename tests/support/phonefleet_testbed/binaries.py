"""Finding the control-plane binaries: the cache that hack/controlplane/build.sh fills."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Binaries", "build", "repo_root"]

_REQUIRED = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
)


def repo_root() -> Path:
    """The checkout this package lives in (the test bed is installed in editable mode)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "hack" / "controlplane" / "build.sh").is_file():
            return parent
    raise RuntimeError(f"{here} is not inside a phonefleet checkout (no hack/controlplane)")


def build(script: str, *args: str) -> Path:
    """Run ``hack/<script>`` (a warm cache costs nothing, a cold one builds what is missing) and
    return the path it prints last: where the result is."""
    result = subprocess.run(
        ["bash", str(repo_root() / "hack" / script), *args],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return Path(result.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Binaries:
    """Paths of the control-plane executables and KWOK's stage files."""

    directory: Path

    @classmethod
    def ensure(cls) -> Binaries:
        """Return the cached binaries, building whatever is missing (a warm cache costs nothing).

        ``PHONEFLEET_CONTROLPLANE_BIN_DIR`` points at a ready folder and skips the build script.
        """
        explicit = os.environ.get("PHONEFLEET_CONTROLPLANE_BIN_DIR")
        binaries = cls(Path(explicit) if explicit else build("controlplane/build.sh"))
        missing = [name for name in _REQUIRED if not binaries.path(name).is_file()]
        if missing:
            raise RuntimeError(f"Control-plane binaries missing in {binaries.directory}: {missing}")
        return binaries

    def path(self, name: str) -> Path:
        """The executable called ``name``."""
        return self.directory / name

    @property
    def kwok_stages(self) -> list[Path]:
        """KWOK's stage files (node and pod lifecycles)."""
        return sorted((self.directory / "kwok-stages").glob("*.yaml"))
