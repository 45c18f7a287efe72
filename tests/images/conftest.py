"""The image tier: a Docker engine, the local base image and both images, built once a session.

Nothing here skips. When Docker cannot start or an image cannot be built the session fixture fails
and says why; CI runs the same scripts (hack/images/dockerd.sh, base-image.sh, build.sh).
"""

from __future__ import annotations

import subprocess

import pytest
from docker_support import OPERATOR_IMAGE, SCRIPTS, SIMULATOR_IMAGE, WORKER_IMAGE, Images

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.devenv import install_crds

# Seconds each script may take: a cold machine installs docker.io, debootstraps the base (about
# a minute) and builds both images (under a minute each); a warm one needs seconds.
SCRIPT_TIMEOUTS = {"dockerd.sh": 300.0, "base-image.sh": 600.0, "build.sh": 900.0}
# Seconds a docker test may take besides the session fixture.
TEST_TIMEOUT = 300.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/images as ``docker``, with room for the first build."""
    for item in items:
        if "/tests/images/" in str(item.path):
            item.add_marker(pytest.mark.docker)
            # Whichever test comes first pays for the session fixture (engine, base, builds), and
            # the fixture's own deadlines must fire first, as they say which step was too slow.
            item.add_marker(pytest.mark.timeout(sum(SCRIPT_TIMEOUTS.values()) + TEST_TIMEOUT))


def run_script(name: str) -> str:
    """Run hack/images/NAME and return what it reported on stderr; fail the session if it fails."""
    timeout = SCRIPT_TIMEOUTS[name]
    try:
        result = subprocess.run(
            ["bash", str(SCRIPTS / name)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"hack/images/{name} did not finish within {timeout:g} s", pytrace=False)
    if result.returncode != 0:
        pytest.fail(
            f"hack/images/{name} failed with exit code {result.returncode}; the docker tests "
            f"need a Docker engine (Debian's docker.io, run as root or with sudo) and are never "
            f"skipped:\n{result.stdout[-2000:]}{result.stderr[-3000:]}",
            pytrace=False,
        )
    return result.stderr


@pytest.fixture(scope="session")
def images() -> Images:
    """A running Docker engine and the three images, built from the working tree (local base)."""
    for name in SCRIPT_TIMEOUTS:
        print(run_script(name), end="")  # timings and sizes, shown with -s or on failure
    return Images(operator=OPERATOR_IMAGE, worker=WORKER_IMAGE, simulator=SIMULATOR_IMAGE)


@pytest.fixture(scope="session")
def crds(control_plane: ControlPlane) -> ControlPlane:
    """The session's control plane with phonefleet's CRDs installed."""
    install_crds(control_plane)
    return control_plane
