"""The images a real node runs, built locally (no registry) by the scripts in hack/images."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from phonefleet_testbed.binaries import repo_root

__all__ = ["NodeImages", "ensure_images"]

# Seconds each script may take on a cold machine (docker.io install, debootstrap, pip, npm).
_SCRIPTS = {
    "dockerd.sh": 300.0,
    "base-image.sh": 600.0,
    "build.sh": 900.0,
    "appium-image.sh": 600.0,
}


@dataclass(frozen=True)
class NodeImages:
    """The operator, worker and Appium sidecar images, by name."""

    operator: str
    worker: str
    appium: str

    @property
    def all(self) -> tuple[str, str, str]:
        """Every image, for importing into the node."""
        return (self.operator, self.worker, self.appium)


def ensure_images() -> NodeImages:
    """Start Docker if needed and build (or reuse) every image; raise with the script's output.

    ``PHONEFLEET_IMAGE_TAG`` names the tag of the operator and worker images (default ``dev``).
    """
    tag = os.environ.get("PHONEFLEET_IMAGE_TAG", "dev")
    appium = os.environ.get("PHONEFLEET_APPIUM_IMAGE", f"phonefleet/appium-fake:{tag}")
    env = {**os.environ, "PHONEFLEET_IMAGE_TAG": tag, "PHONEFLEET_APPIUM_IMAGE": appium}
    scripts = repo_root() / "hack" / "images"
    for name, timeout in _SCRIPTS.items():
        result = subprocess.run(
            ["bash", str(scripts / name)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"hack/images/{name} failed ({result.returncode}):\n{result.stderr[-3000:]}"
            )
    return NodeImages(
        operator=f"phonefleet/operator:{tag}", worker=f"phonefleet/worker:{tag}", appium=appium
    )
