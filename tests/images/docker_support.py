"""Running the images under test: the docker CLI with argument lists, and containers that always go.

(This folder is not a package; the tests import this module by name, as tests/appium does.)
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "OPERATOR_IMAGE",
    "SCRIPTS",
    "SIMULATOR_IMAGE",
    "WORKER_IMAGE",
    "Container",
    "Images",
    "docker",
    "http_get",
    "running",
]

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "hack" / "images"
OPERATOR_IMAGE = "phonefleet/operator:dev"
WORKER_IMAGE = "phonefleet/worker:dev"
SIMULATOR_IMAGE = "phonefleet/geelark-sim:dev"


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; with ``check``, fail with its output when it exits non-zero."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} exited with {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result


def http_get(url: str) -> tuple[int, str]:
    """The status and body of a GET, status 0 while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own http URL)
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError:
        return 0, ""


@dataclass(frozen=True)
class Images:
    """The names of the images built from the working tree."""

    operator: str
    worker: str
    simulator: str


@dataclass(frozen=True)
class Container:
    """A detached container started by ``running``."""

    name: str

    def logs(self) -> str:
        """Everything the container wrote to stdout and stderr so far."""
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def is_running(self) -> bool:
        """True while the container's main process runs."""
        state = docker("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def stop(self, grace_seconds: int = 20) -> int:
        """Send SIGTERM (SIGKILL after ``grace_seconds``) and return the exit code."""
        docker("stop", "--time", str(grace_seconds), self.name, timeout=grace_seconds + 30)
        state = docker("inspect", "--format", "{{.State.ExitCode}}", self.name)
        return int(state.stdout.strip())


@contextmanager
def running(
    image: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    volumes: Sequence[str] = (),
) -> Iterator[Container]:
    """Run ``image`` detached on the host network; the container is removed on exit, always.

    No ``--rm``: a container that crashed keeps its logs for the failure message until then.
    """
    name = f"phonefleet-test-{uuid.uuid4().hex[:10]}"
    command = ["run", "--detach", "--name", name, "--network", "host"]
    for volume in volumes:
        command += ["--volume", volume]
    for key, value in (env or {}).items():
        command += ["--env", f"{key}={value}"]
    try:
        docker(*command, image, *args)
        yield Container(name)
    finally:
        docker("rm", "--force", name, check=False)
