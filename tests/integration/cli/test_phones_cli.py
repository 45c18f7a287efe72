"""`phonefleet phones list`: the Geelark inventory, each phone's holder from real PhoneClaims."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import DEFAULT_TOKEN, GeelarkSimulator, SimulatorConfig
from phonefleet_testbed.scenarios import make_claim

PHONEFLEET = Path(sys.executable).parent / "phonefleet"


@pytest.fixture(scope="module")
def crds(control_plane: ControlPlane) -> None:
    """phonefleet's CRDs on the session's control plane."""
    install_crds(control_plane)


@pytest.fixture
def phones() -> Iterator[tuple[GeelarkSimulator, list[str]]]:
    """A simulator with three phones of ids unique to this test (claims are cluster-wide)."""
    with GeelarkSimulator(SimulatorConfig(phones=0)) as sim:
        ids = []
        for name in ("held-by-alpha", "free", "running"):
            phone_id = f"9{uuid.uuid4().int % 10**17:017d}"
            sim.admin.create_phone(name, phone_id=phone_id, status=0 if name == "running" else 2)
            ids.append(phone_id)
        yield sim, ids


@pytest.fixture
def claim(
    crds: None, kubectl: Kubectl, namespace: str, phones: tuple[GeelarkSimulator, list[str]]
) -> Iterator[str]:
    """A PhoneClaim making binding `alpha` of the test's namespace the holder of the first phone."""
    phone_id = phones[1][0]
    uid = str(uuid.uuid4())
    kubectl.apply(make_claim(phone_id, namespace, "alpha", uid, serial_name="held-by-alpha"))
    yield phone_id
    kubectl("delete", "phoneclaim", phone_id, "--wait=false", check=False)


def phonefleet(*args: str, url: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with Geelark credentials and a kubeconfig."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_GEELARK_")}
    env |= {
        "PHONEFLEET_GEELARK_URL": url,
        "PHONEFLEET_GEELARK_TOKEN": DEFAULT_TOKEN,
        "KUBECONFIG": str(kubeconfig),
    }
    return subprocess.run(
        [str(PHONEFLEET), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_table_shows_who_holds_each_phone(
    control_plane: ControlPlane,
    phones: tuple[GeelarkSimulator, list[str]],
    claim: str,
    namespace: str,
) -> None:
    """Each phone is listed with id, serial name and status; HELD BY comes from its PhoneClaim."""
    sim, (held, free, running) = phones

    result = phonefleet("phones", "list", url=sim.base_url, kubeconfig=control_plane.kubeconfig)

    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows == [
        ["ID", "SERIAL", "NAME", "STATUS", "HELD", "BY"],
        [free, "free", "Stopped", "<none>"],
        [held, "held-by-alpha", "Stopped", f"{namespace}/alpha"],
        [running, "running", "Running", "<none>"],
    ]
    assert result.stderr == ""


def test_json_gives_the_holder_whole(
    control_plane: ControlPlane,
    phones: tuple[GeelarkSimulator, list[str]],
    claim: str,
    namespace: str,
) -> None:
    """`-o json` gives every phone with its holder's namespace, name and uid."""
    sim, (held, _, _) = phones

    result = phonefleet(
        "phones", "list", "-o", "json", url=sim.base_url, kubeconfig=control_plane.kubeconfig
    )

    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["heldByKnown"] is True
    by_id = {phone["id"]: phone for phone in listing["phones"]}
    assert by_id[held]["heldBy"]["namespace"] == namespace
    assert by_id[held]["heldBy"]["name"] == "alpha"
    assert [p["heldBy"] for p in listing["phones"] if p["id"] != held] == [None, None]


def test_without_a_cluster_holders_are_unknown_not_free(
    phones: tuple[GeelarkSimulator, list[str]], tmp_path: Path
) -> None:
    """No reachable kubeconfig: HELD BY is - and standard error says why; the list still works."""
    sim, _ = phones

    result = phonefleet(
        "phones", "list", url=sim.base_url, kubeconfig=tmp_path / "missing.kubeconfig"
    )

    assert result.returncode == 0, result.stderr
    assert [line.split()[-1] for line in result.stdout.splitlines()[1:]] == ["-", "-", "-"]
    assert "HELD BY is unknown: could not read the PhoneClaims" in result.stderr
