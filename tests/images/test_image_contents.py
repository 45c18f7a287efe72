"""What the images hold: the locked dependencies exactly, and no test tooling in production."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from docker_support import Images, docker, http_get, running
from packaging.utils import canonicalize_name

from phonefleet_testbed.geelark_sim import DEFAULT_TOKEN, token_headers
from phonefleet_testbed.processes import free_port
from phonefleet_testbed.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", re.MULTILINE)
#: Prints {distribution: version} of the image's /opt/venv.
_INSTALLED = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)


def in_image(image: str, code: str) -> str:
    """What ``code`` prints when the image's own Python runs it (no network)."""
    return docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/opt/venv/bin/python",
        image,
        "-c",
        code,
    ).stdout


@pytest.mark.parametrize(
    ("image", "lock", "project"),
    [
        ("operator", "operator.txt", "phonefleet"),
        ("worker", "worker.txt", "phonefleet"),
        ("simulator", "simulator.txt", "phonefleet-testbed"),
    ],
)
def test_an_image_holds_exactly_its_locked_dependencies(
    images: Images, image: str, lock: str, project: str
) -> None:
    """Every distribution in the image is pinned by its lock at that version, plus the project."""
    installed = {
        canonicalize_name(name): version
        for name, version in json.loads(in_image(getattr(images, image), _INSTALLED)).items()
    }
    pinned = {
        canonicalize_name(name): version
        for name, version in _PIN.findall((REPO / "requirements" / lock).read_text())
    }

    assert installed.pop(canonicalize_name(project)) == "0.1.0"
    assert {n: v for n, v in installed.items() if pinned.get(n) != v} == {}


@pytest.mark.parametrize("image", ["operator", "worker"])
def test_production_images_carry_no_test_bed(images: Images, image: str) -> None:
    """Neither the simulator nor the control-plane runner is importable in a production image."""
    code = "import importlib.util as u; print(u.find_spec('phonefleet_testbed') is None)"

    assert in_image(getattr(images, image), code).strip() == "True"


def test_the_simulator_image_serves_the_open_api(images: Images) -> None:
    """The simulator image answers phone/list for its seeded phones with the default token."""
    port = free_port()
    with running(images.simulator, "--host=127.0.0.1", f"--port={port}", "--phones=3") as sim:
        wait_for(
            lambda: http_get(f"http://127.0.0.1:{port}/_sim/running")[0] == 200,
            60,
            message=lambda: f"the simulator on port {port}; its logs:\n{sim.logs()}",
        )
        listed = requests.post(
            f"http://127.0.0.1:{port}/open/v1/phone/list",
            json={"page": 1, "pageSize": 10},
            headers=token_headers(DEFAULT_TOKEN),
            timeout=10,
        ).json()

    assert listed["code"] == 0
    assert listed["data"]["total"] == 3
